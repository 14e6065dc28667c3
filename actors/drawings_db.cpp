#include "actors/drawings_db.hpp"

#include "actors/directory_db.hpp"
#include "actors/error.hpp"
#include "actors/sql_util.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <nlohmann/json.hpp>


namespace projlink::drawings {

namespace {

using SQLite::Statement;
using sql::bind_opt;
using sql::opt_text;

constexpr const char* rev_select = R"sql(
SELECT r.id, r.project, dr.number, dr.title, r.revision, r.status, r.drawing_date,
       r.received_date, dr.discipline, di.position, dr.area, a.description, r.set_name, s.date,
       r.obsolete, r.published, r.connection IS NOT NULL, r.upstream_revision, r.sha256, r.size,
       r.deleted_at
FROM revisions r JOIN drawings dr ON dr.id = r.drawing
LEFT JOIN disciplines di ON di.project = r.project AND di.name = dr.discipline
LEFT JOIN areas a ON a.project = r.project AND a.name = dr.area
LEFT JOIN sets s ON s.project = r.project AND s.name = r.set_name
)sql";

revision read(Statement& q) {
  revision r;
  r.id = q.getColumn(0).getString();
  r.project = q.getColumn(1).getString();
  r.number = q.getColumn(2).getString();
  r.title = q.getColumn(3).getString();
  r.label = q.getColumn(4).getString();
  r.status = opt_text(q.getColumn(5));
  r.drawing_date = opt_text(q.getColumn(6));
  r.received_date = opt_text(q.getColumn(7));
  r.discipline = opt_text(q.getColumn(8));
  if (!q.getColumn(9).isNull())
    r.discipline_position = q.getColumn(9).getInt64();
  r.area = opt_text(q.getColumn(10));
  r.area_description = opt_text(q.getColumn(11));
  r.set = opt_text(q.getColumn(12));
  r.set_date = opt_text(q.getColumn(13));
  r.obsolete = q.getColumn(14).getInt() != 0;
  r.published = q.getColumn(15).getInt() != 0;
  r.connected = q.getColumn(16).getInt() != 0;
  r.upstream_revision = opt_text(q.getColumn(17));
  r.sha256 = q.getColumn(18).getString();
  r.size = q.getColumn(19).getInt64();
  r.deleted_at = opt_text(q.getColumn(20));
  return r;
}

caf::error denied(const char* action, const std::string& project) {
  return make_error(ec::permission_denied, std::string{action}, project);
}

/// The `as` user's drawings level in `project` (company admins: admin).
caf::expected<level> drawings_level(db& d, const std::string& as, const std::string& project) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto at = directory::levels_in(d, *u, project);
  if (!at)
    return std::move(at.error());
  return at->drawings;
}

caf::error require(db& d, const std::string& as, const std::string& project, level min,
                   const char* action) {
  auto l = drawings_level(d, as, project);
  if (!l)
    return std::move(l.error());
  if (*l < min)
    return denied(action, project);
  return {};
}

/// ConnectedReadOnly when `table`'s row (project, name) came from a connection.
caf::error connected_part(db& d, const char* table, const std::string& project,
                          const std::optional<std::string>& name) {
  if (!name)
    return {};
  sql::stmt q(d, std::string{"SELECT connection IS NOT NULL FROM "} + table
                   + " WHERE project = ? AND name = ?");
  q.bind(1, project);
  q.bind(2, *name);
  if (q.executeStep() && q.getColumn(0).getInt() != 0)
    return make_error(ec::connected_read_only, *name);
  return {};
}

/// Queues `kind` jobs of `rev` for every active downstream of `project`.
void queue(db& d, const std::string& project, const std::string& rev, const char* kind) {
  sql::stmt q(d, "INSERT INTO sync_jobs (connection, upstream_revision, kind, created_at) "
                 "SELECT id, ?, ?, ? FROM connections WHERE upstream = ? AND state = 'active'");
  q.bind(1, rev);
  q.bind(2, kind);
  q.bind(3, now_string());
  q.bind(4, project);
  q.exec();
}

caf::error check_fields(const drawing_fields& f) {
  for (const auto* s : {&f.title, &f.status, &f.discipline, &f.area, &f.area_description, &f.set})
    if (*s && s->value().size() > 1000)
      return make_error(ec::invalid_parameter, std::string{"text"});
  for (const auto* t : {&f.drawing_date, &f.received_date, &f.set_date})
    if (*t && t->value().size() > 40)
      return make_error(ec::invalid_parameter, std::string{"date"});
  return {};
}

} // namespace

void upsert_parts(db& d, const std::string& project, const drawing_fields& f,
                  const std::optional<std::string>& connection) {
  if (f.area) {
    sql::stmt q(d, "INSERT INTO areas (project, name, description, connection) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (project, name) DO UPDATE SET "
                   "description = coalesce(excluded.description, description)");
    q.bind(1, project);
    q.bind(2, *f.area);
    bind_opt(q, 3, f.area_description);
    bind_opt(q, 4, connection);
    q.exec();
  }
  if (f.discipline) {
    sql::stmt q(d, "INSERT INTO disciplines (project, name, position, connection) "
                   "VALUES (?, ?, ?, ?) ON CONFLICT (project, name) DO UPDATE SET "
                   "position = coalesce(excluded.position, position)");
    q.bind(1, project);
    q.bind(2, *f.discipline);
    if (f.discipline_position)
      q.bind(3, *f.discipline_position);
    else
      q.bind(3);
    bind_opt(q, 4, connection);
    q.exec();
  }
  if (f.set) {
    sql::stmt q(d, "INSERT INTO sets (project, name, date, connection) VALUES (?, ?, ?, ?) "
                   "ON CONFLICT (project, name) DO UPDATE SET date = coalesce(excluded.date, date)");
    q.bind(1, project);
    q.bind(2, *f.set);
    bind_opt(q, 3, f.set_date);
    bind_opt(q, 4, connection);
    q.exec();
  }
}

bool is_deleted(db& d, const std::string& id) {
  sql::stmt q(d, "SELECT deleted_at IS NOT NULL FROM revisions WHERE id = ?");
  q.bind(1, id);
  return q.executeStep() && q.getColumn(0).getInt() != 0;
}

caf::expected<revision> load(db& d, const std::string& id) {
  sql::stmt q(d, std::string{rev_select} + " WHERE r.id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return make_error(ec::not_found, std::string{"revision"}, id);
  return read(q);
}

std::optional<revision> load_live(db& d, const std::string& id) {
  sql::stmt q(d, std::string{rev_select} + " WHERE r.id = ? AND r.deleted_at IS NULL");
  q.bind(1, id);
  if (!q.executeStep())
    return std::nullopt;
  return read(q);
}

namespace {

/// A revision that is not deleted, and `as`'s level in its project.
caf::expected<std::pair<revision, level>> live(db& d, const std::string& as,
                                               const std::string& id) {
  auto r = load(d, id);
  if (!r)
    return std::move(r.error());
  sql::stmt q(d, "SELECT deleted_at IS NOT NULL FROM revisions WHERE id = ?");
  q.bind(1, id);
  q.executeStep();
  if (q.getColumn(0).getInt() != 0)
    return make_error(ec::not_found, std::string{"revision"}, id);
  auto l = drawings_level(d, as, r->project);
  if (!l)
    return std::move(l.error());
  // Unpublished revisions are invisible below drawings: admin, except to
  // the standard users who may upload (they see what they may change).
  if (*l < level::read_only || (!r->published && *l < level::standard))
    return denied("view", r->project);
  return std::make_pair(std::move(*r), *l);
}

} // namespace

caf::expected<void> check_upload(db& d, const upload_request& r) {
  if (auto err = require(d, r.as, r.project, level::standard, "upload"))
    return err;
  if (auto err = check_fields(r.fields))
    return err;
  sql::stmt q(d, "SELECT connection IS NOT NULL FROM drawings WHERE project = ? AND number = ?");
  q.bind(1, r.project);
  q.bind(2, r.number);
  if (q.executeStep() && q.getColumn(0).getInt() != 0)
    return make_error(ec::connected_read_only, r.number);
  if (auto err = connected_part(d, "sets", r.project, r.fields.set))
    return err;
  if (auto err = connected_part(d, "areas", r.project, r.fields.area))
    return err;
  return {};
}

caf::expected<revision> insert(db& d, const upload_request& r, const blob_info& blob) {
  if (auto ok = check_upload(d, r); !ok)
    return std::move(ok.error());
  const auto& f = r.fields;
  upsert_parts(d, r.project, f, std::nullopt);
  int64_t drawing = 0;
  {
    sql::stmt find(d, "SELECT id FROM drawings WHERE project = ? AND number = ?");
    find.bind(1, r.project);
    find.bind(2, r.number);
    if (find.executeStep()) {
      drawing = find.getColumn(0).getInt64();
      sql::stmt up(d, "UPDATE drawings SET title = coalesce(?, title), "
                      "discipline = coalesce(?, discipline), area = coalesce(?, area) WHERE id = ?");
      bind_opt(up, 1, f.title);
      bind_opt(up, 2, f.discipline);
      bind_opt(up, 3, f.area);
      up.bind(4, drawing);
      up.exec();
    } else {
      sql::stmt ins(d, "INSERT INTO drawings (project, number, title, discipline, area) "
                       "VALUES (?, ?, ?, ?, ?)");
      ins.bind(1, r.project);
      ins.bind(2, r.number);
      ins.bind(3, f.title.value_or(r.number));
      bind_opt(ins, 4, f.discipline);
      bind_opt(ins, 5, f.area);
      ins.exec();
      drawing = d.getLastInsertRowid();
    }
  }
  auto at = now_string();
  sql::stmt b(d, "INSERT OR IGNORE INTO blobs (sha256, size, created_at) VALUES (?, ?, ?)");
  b.bind(1, blob.sha256);
  b.bind(2, blob.size);
  b.bind(3, at);
  b.exec();
  auto id = sql::ordered_id("r-");
  sql::stmt q(d, "INSERT INTO revisions (id, project, drawing, revision, status, drawing_date, "
                 "received_date, set_name, sha256, size, created_at) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, id);
  q.bind(2, r.project);
  q.bind(3, drawing);
  q.bind(4, r.label);
  bind_opt(q, 5, f.status);
  bind_opt(q, 6, f.drawing_date);
  bind_opt(q, 7, f.received_date);
  bind_opt(q, 8, f.set);
  q.bind(9, blob.sha256);
  q.bind(10, blob.size);
  q.bind(11, at);
  q.exec();
  sql::stmt n(d, "UPDATE projects SET revisions = revisions + 1 WHERE id = ?");
  n.bind(1, r.project);
  n.exec();
  return load(d, id);
}

caf::expected<std::vector<revision>> publish(db& d, const std::string& as,
                                             const std::string& project,
                                             const std::vector<std::string>& ids) {
  if (auto err = require(d, as, project, level::admin, "publish"))
    return err;
  std::vector<revision> out;
  auto at = now_string();
  auto to_copy = nlohmann::json::array();
  for (const auto& id : ids) {
    auto r = load(d, id);
    if (!r || r->project != project)
      return make_error(ec::not_found, std::string{"revision"}, id);
    sql::stmt q(d, "UPDATE revisions SET published = 1, published_at = ?1, published_seq = "
                   "coalesce((SELECT max(published_seq) FROM revisions WHERE project = ?3 "
                   "AND published_seq IS NOT NULL), 0) + 1 " // the partial index: O(log n)
                   "WHERE id = ?2 AND published = 0 AND deleted_at IS NULL");
    q.bind(1, at);
    q.bind(2, id);
    q.bind(3, project);
    if (q.exec() > 0 && !r->connected)
      to_copy.push_back(id); // copies are never sent on
    auto now = load(d, id);
    out.push_back(std::move(*now));
  }
  if (!to_copy.empty()) {
    // One copy job per active downstream and revision, each downstream's
    // jobs consecutive (in publication order): a sync batch then covers a
    // few downstreams whole, and each gets one drawings_published.
    sql::stmt q(d, "INSERT INTO sync_jobs (connection, upstream_revision, kind, created_at) "
                   "SELECT c.id, j.value, 'copy', ? FROM connections c, json_each(?) j "
                   "WHERE c.upstream = ? AND c.state = 'active' ORDER BY c.id, j.key");
    q.bind(1, at);
    q.bind(2, to_copy.dump());
    q.bind(3, project);
    q.exec();
  }
  return out;
}

caf::expected<revision> update(db& d, const std::string& as, const std::string& id,
                               const drawing_fields& f) {
  auto cur = live(d, as, id);
  if (!cur)
    return std::move(cur.error());
  auto& [r, l] = *cur;
  if (l < level::standard || (r.published && l < level::admin))
    return denied("update", r.project);
  if (r.connected)
    return make_error(ec::connected_read_only, id);
  if (auto err = check_fields(f))
    return err;
  if (auto err = connected_part(d, "sets", r.project, f.set))
    return err;
  if (auto err = connected_part(d, "areas", r.project, f.area))
    return err;
  // A description, position or date alone changes the revision's own
  // area, discipline or set.
  auto parts = f;
  if (!parts.area && parts.area_description)
    parts.area = r.area;
  if (!parts.discipline && parts.discipline_position)
    parts.discipline = r.discipline;
  if (!parts.set && parts.set_date)
    parts.set = r.set;
  upsert_parts(d, r.project, parts, std::nullopt);
  sql::stmt dr(d, "UPDATE drawings SET title = coalesce(?, title), "
                  "discipline = coalesce(?, discipline), area = coalesce(?, area) "
                  "WHERE id = (SELECT drawing FROM revisions WHERE id = ?)");
  bind_opt(dr, 1, f.title);
  bind_opt(dr, 2, f.discipline);
  bind_opt(dr, 3, f.area);
  dr.bind(4, id);
  dr.exec();
  sql::stmt rv(d, "UPDATE revisions SET status = coalesce(?, status), "
                  "drawing_date = coalesce(?, drawing_date), "
                  "received_date = coalesce(?, received_date), set_name = coalesce(?, set_name) "
                  "WHERE id = ?");
  bind_opt(rv, 1, f.status);
  bind_opt(rv, 2, f.drawing_date);
  bind_opt(rv, 3, f.received_date);
  bind_opt(rv, 4, f.set);
  rv.bind(5, id);
  rv.exec();
  if (r.published)
    queue(d, r.project, id, "update");
  return load(d, id);
}

caf::expected<revision> set_obsolete(db& d, const std::string& as, const std::string& id,
                                     bool obsolete) {
  auto cur = live(d, as, id);
  if (!cur)
    return std::move(cur.error());
  auto& [r, l] = *cur;
  if (l < level::admin)
    return denied("set_obsolete", r.project);
  if (r.connected)
    return make_error(ec::connected_read_only, id);
  if (r.obsolete != obsolete) {
    sql::stmt q(d, "UPDATE revisions SET obsolete = ? WHERE id = ?");
    q.bind(1, obsolete ? 1 : 0);
    q.bind(2, id);
    q.exec();
    if (r.published)
      queue(d, r.project, id, "update");
  }
  return load(d, id);
}

caf::expected<void> remove(db& d, const std::string& as, const std::string& id) {
  auto cur = live(d, as, id);
  if (!cur)
    return std::move(cur.error());
  auto& [r, l] = *cur;
  if (l < level::admin)
    return denied("delete", r.project);
  if (r.connected)
    return make_error(ec::connected_read_only, id);
  sql::stmt q(d, "UPDATE revisions SET deleted_at = ? WHERE id = ?");
  q.bind(1, now_string());
  q.bind(2, id);
  q.exec();
  sql::stmt n(d, "UPDATE projects SET revisions = revisions - 1 WHERE id = ?");
  n.bind(1, r.project);
  n.exec();
  if (r.published)
    queue(d, r.project, id, "delete");
  return {};
}

caf::expected<revision> get(db& d, const std::string& as, const std::string& id) {
  auto cur = live(d, as, id);
  if (!cur)
    return std::move(cur.error());
  return std::move(cur->first);
}

caf::expected<revision> for_export(db& d, const std::string& as, const std::string& id) {
  return get(d, as, id);
}

caf::expected<std::vector<revision>> list(db& d, const std::string& as, const std::string& project,
                                          bool include_unpublished,
                                          const std::optional<std::string>& after, int64_t limit) {
  if (auto err = require(d, as, project, include_unpublished ? level::admin : level::read_only,
                         include_unpublished ? "view_unpublished" : "view"))
    return err;
  sql::stmt q(d, std::string{rev_select} + " WHERE r.project = ?1 AND r.deleted_at IS NULL "
                 + (include_unpublished ? "" : "AND r.published = 1 ")
                 + "AND (?2 IS NULL OR r.id > ?2) ORDER BY r.id LIMIT ?3");
  q.bind(1, project);
  sql::bind_opt(q, 2, after);
  q.bind(3, limit);
  std::vector<revision> out;
  while (q.executeStep())
    out.push_back(read(q));
  return out;
}

caf::expected<std::vector<revision>> deleted(db& d, const std::string& as,
                                             const std::string& project,
                                             const std::optional<std::string>& after,
                                             int64_t limit) {
  if (auto err = require(d, as, project, level::admin, "view_deleted"))
    return err;
  std::optional<std::string> at, id;
  if (after) {
    auto nl = after->find('\n');
    if (nl == std::string::npos)
      return make_error(ec::invalid_parameter, std::string{"after"});
    at = after->substr(0, nl);
    id = after->substr(nl + 1);
  }
  sql::stmt q(d, std::string{rev_select}
                   + " WHERE r.project = ?1 AND r.deleted_at IS NOT NULL"
                     " AND (?2 IS NULL OR (r.deleted_at, r.id) > (?2, ?3))"
                     " ORDER BY r.deleted_at, r.id LIMIT ?4");
  q.bind(1, project);
  sql::bind_opt(q, 2, at);
  sql::bind_opt(q, 3, id);
  q.bind(4, limit);
  std::vector<revision> out;
  while (q.executeStep())
    out.push_back(read(q));
  return out;
}

caf::expected<std::vector<std::string>> referenced_blobs(db& d) {
  // Copies share their upstream revision's blob (schema migration 7).
  sql::stmt q(d, "SELECT DISTINCT sha256 FROM revisions WHERE connection IS NULL ORDER BY sha256");
  std::vector<std::string> out;
  while (q.executeStep())
    out.push_back(q.getColumn(0).getString());
  return out;
}

caf::expected<std::vector<std::string>> unreferenced_blobs(db& d,
                                                           const std::vector<std::string>& candidates) {
  // revisions_by_blob: a copy's blob is its upstream revision's (migration 7).
  sql::stmt q(d, "SELECT 1 FROM revisions WHERE sha256 = ? AND connection IS NULL LIMIT 1");
  std::vector<std::string> out;
  for (const auto& sha : candidates) {
    q.reset();
    q.bind(1, sha);
    if (!q.executeStep())
      out.push_back(sha);
  }
  return out;
}

int64_t queue_backfill(db& d, const std::string& connection, const std::string& upstream) {
  sql::stmt q(d, "INSERT INTO sync_jobs (connection, upstream_revision, kind, created_at) "
                 "SELECT ?, id, 'copy', ? FROM revisions WHERE project = ? AND published = 1 "
                 "AND deleted_at IS NULL AND connection IS NULL "
                 "ORDER BY published_seq, published_at, id");
  q.bind(1, connection);
  q.bind(2, now_string());
  q.bind(3, upstream);
  return q.exec();
}

} // namespace projlink::drawings
