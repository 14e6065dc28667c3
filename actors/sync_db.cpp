#include "actors/sync_db.hpp"

#include "actors/connections_db.hpp"
#include "actors/directory_db.hpp"
#include "actors/drawings_db.hpp"
#include "actors/error.hpp"
#include "actors/sql_util.hpp"
#include "actors/notifications_db.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <nlohmann/json.hpp>

#include <map>
#include <set>

namespace projlink::sync {

namespace {

using SQLite::Statement;
using sql::bind_opt;
using json = nlohmann::json;

drawing_fields fields_of(const revision& u) {
  drawing_fields f;
  f.title = u.title;
  f.status = u.status;
  f.drawing_date = u.drawing_date;
  f.received_date = u.received_date;
  f.discipline = u.discipline;
  f.discipline_position = u.discipline_position;
  f.area = u.area;
  f.area_description = u.area_description;
  f.set = u.set;
  f.set_date = u.set_date;
  return f;
}

/// The downstream drawing a copy belongs to (created, connected, if new).
int64_t drawing_for(db& d, const connection& c, const revision& u) {
  sql::stmt find(d, "SELECT id, connection FROM drawings WHERE project = ? AND number = ?");
  find.bind(1, c.downstream);
  find.bind(2, u.number);
  if (find.executeStep()) {
    auto id = find.getColumn(0).getInt64();
    if (!find.getColumn(1).isNull()) {
      sql::stmt up(d, "UPDATE drawings SET title = ?, discipline = ?, area = ? WHERE id = ?");
      up.bind(1, u.title);
      bind_opt(up, 2, u.discipline);
      bind_opt(up, 3, u.area);
      up.bind(4, id);
      up.exec();
    }
    return id;
  }
  sql::stmt ins(d, "INSERT INTO drawings (project, number, title, discipline, area, connection) "
                   "VALUES (?, ?, ?, ?, ?, ?)");
  ins.bind(1, c.downstream);
  ins.bind(2, u.number);
  ins.bind(3, u.title);
  bind_opt(ins, 4, u.discipline);
  bind_opt(ins, 5, u.area);
  ins.bind(6, c.id);
  ins.exec();
  return d.getLastInsertRowid();
}

/// What applying one job did.
enum class outcome { copied, updated, deleted, skipped };

/// What a batch's jobs look up more than once, looked up once per batch.
struct batch_context {
  /// Upstream revisions by id; nullopt: gone or deleted (a fan-out copies
  /// one revision into many downstreams: one load per batch).
  std::map<std::string, std::optional<revision>> upstream;
  /// (downstream, parts) already upserted in this batch.
  std::set<std::string> parts_done;
  /// Change of projects.revisions per project, written once at the end.
  std::map<std::string, int64_t> counted;

  const std::optional<revision>& load(db& d, const std::string& id) {
    auto it = upstream.find(id);
    if (it == upstream.end())
      it = upstream.emplace(id, drawings::load_live(d, id)).first;
    return it->second;
  }
  /// upsert_parts, unless the same parts went to the same project already.
  void parts(db& d, const connection& c, const revision& u) {
    if (!u.area && !u.discipline && !u.set)
      return;
    auto f = fields_of(u);
    std::string key = c.downstream + '\0' + c.id;
    for (const auto* x : {&f.area, &f.area_description, &f.discipline, &f.set, &f.set_date})
      key += (*x ? '\1' + **x : std::string{"\2"});
    key += f.discipline_position ? std::to_string(*f.discipline_position) : "-";
    if (parts_done.insert(key).second)
      drawings::upsert_parts(d, c.downstream, f, c.id);
  }
};

outcome copy(db& d, batch_context& b, const connection& c, const revision& u) {
  // One copy per connection + upstream revision (revisions_one_copy).
  sql::stmt exists(d, "SELECT 1 FROM revisions WHERE connection = ? AND upstream_revision = ?");
  exists.bind(1, c.id);
  exists.bind(2, u.id);
  if (exists.executeStep())
    return outcome::skipped; // already copied: at most once
  b.parts(d, c, u);
  auto drawing = drawing_for(d, c, u);
  sql::stmt q(d, "INSERT INTO revisions (id, project, drawing, revision, status, drawing_date, "
                 "received_date, set_name, obsolete, published, sha256, size, created_at, "
                 "connection, upstream_revision) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?)");
  q.bind(1, sql::ordered_id("r-"));
  q.bind(2, c.downstream);
  q.bind(3, drawing);
  q.bind(4, u.label);
  bind_opt(q, 5, u.status);
  bind_opt(q, 6, u.drawing_date);
  bind_opt(q, 7, u.received_date);
  bind_opt(q, 8, u.set);
  q.bind(9, u.obsolete ? 1 : 0);
  q.bind(10, u.sha256);
  q.bind(11, u.size);
  q.bind(12, now_string());
  q.bind(13, c.id);
  q.bind(14, u.id);
  q.exec();
  b.counted[c.downstream]++;
  return outcome::copied;
}

outcome update(db& d, batch_context& b, const connection& c, const revision& u) {
  sql::stmt find(d, "SELECT id FROM revisions WHERE connection = ? AND upstream_revision = ? "
                    "AND deleted_at IS NULL");
  find.bind(1, c.id);
  find.bind(2, u.id);
  if (!find.executeStep())
    return u.published ? copy(d, b, c, u) : outcome::skipped;
  auto id = find.getColumn(0).getString();
  drawings::upsert_parts(d, c.downstream, fields_of(u), c.id);
  // Copied metadata follows the upstream (the downstream cannot change it).
  sql::stmt parts(d, "UPDATE areas SET description = ? WHERE project = ? AND name = ? "
                     "AND connection = ?");
  if (u.area) {
    bind_opt(parts, 1, u.area_description);
    parts.bind(2, c.downstream);
    parts.bind(3, *u.area);
    parts.bind(4, c.id);
    parts.exec();
  }
  drawing_for(d, c, u);
  sql::stmt q(d, "UPDATE revisions SET status = ?, drawing_date = ?, received_date = ?, "
                 "set_name = ?, obsolete = ?, revision = ? WHERE id = ?");
  bind_opt(q, 1, u.status);
  bind_opt(q, 2, u.drawing_date);
  bind_opt(q, 3, u.received_date);
  bind_opt(q, 4, u.set);
  q.bind(5, u.obsolete ? 1 : 0);
  q.bind(6, u.label);
  q.bind(7, id);
  q.exec();
  return outcome::updated;
}

outcome remove(db& d, batch_context& b, const connection& c, const std::string& upstream_revision) {
  sql::stmt q(d, "UPDATE revisions SET deleted_at = ? WHERE connection = ? "
                 "AND upstream_revision = ? AND deleted_at IS NULL");
  q.bind(1, now_string());
  q.bind(2, c.id);
  q.bind(3, upstream_revision);
  if (q.exec() == 0)
    return outcome::skipped;
  b.counted[c.downstream]--;
  return outcome::deleted;
}

outcome apply_one(db& d, batch_context& b, const connection& c, const sync_job& j) {
  // R12: after a disconnect (or an undo) nothing new is copied.
  if (c.state != conn_state::active)
    return outcome::skipped;
  if (j.kind == "delete")
    return remove(d, b, c, j.upstream_revision);
  const auto& u = b.load(d, j.upstream_revision);
  if (!u)
    return outcome::skipped; // gone or deleted
  if (j.kind == "copy")
    return u->published ? copy(d, b, c, *u) : outcome::skipped;
  auto o = update(d, b, c, *u);
  b.parts_done.clear(); // an update may have changed what a part holds
  return o;
}

event downstream_event(const connection& c, const std::string& kind, std::string detail) {
  event e;
  e.at = now_string();
  e.kind = kind;
  e.project = c.downstream;
  e.peer = c.upstream;
  e.connection = c.id;
  e.detail = std::move(detail);
  return e;
}

bool has_event(db& d, const std::string& connection, const char* kind) {
  sql::stmt q(d, "SELECT 1 FROM events WHERE connection = ? AND kind = ?");
  q.bind(1, connection);
  q.bind(2, kind);
  return q.executeStep();
}

void emit(db& d, std::vector<event>& out, event e, const connection& c) {
  auto rows = connections::record_event(d, e);
  notifications::enqueue(d, rows.front(), c);
  out.insert(out.end(), rows.begin(), rows.end());
}

bool cm_admin(db& d, const user& u, const std::string& project) {
  auto at = directory::levels_in(d, u, project);
  return at && at->cm == level::admin;
}

} // namespace

caf::expected<claimed> claim(db& d, int64_t limit, int64_t after) {
  claimed out;
  auto now = now_string();
  sql::stmt q(d, "SELECT j.id, j.connection, j.upstream_revision, j.kind, j.attempts, "
                 "coalesce(r.sha256, ''), coalesce(r.size, 0) FROM sync_jobs j INDEXED BY sync_jobs_pending "
                 "LEFT JOIN revisions r ON r.id = j.upstream_revision "
                 "WHERE j.state = 'pending' AND j.id > ? "
                 "AND (j.next_attempt_at IS NULL OR j.next_attempt_at <= ?) "
                 "ORDER BY j.id LIMIT ?");
  q.bind(1, after);
  q.bind(2, now);
  q.bind(3, limit);
  while (q.executeStep())
    out.jobs.push_back({q.getColumn(0).getInt64(), q.getColumn(1).getString(),
                        q.getColumn(2).getString(), q.getColumn(3).getString(),
                        q.getColumn(4).getInt64(), q.getColumn(5).getString(),
                        q.getColumn(6).getInt64()});
  // The earliest pending job (NULL, i.e. due now, sorts first), read from
  // the (state, next_attempt_at) index instead of scanning every pending job.
  sql::stmt next(d, "SELECT next_attempt_at FROM sync_jobs WHERE state = 'pending' "
                    "ORDER BY next_attempt_at LIMIT 1");
  if (next.executeStep())
    out.next_due = next.getColumn(0).isNull() ? now : next.getColumn(0).getString();
  return out;
}

namespace {

/// apply's body. `per_job`: each job in its own savepoint, and a job that
/// throws counts as a failed attempt; otherwise an exception leaves the
/// whole batch to the caller.
std::vector<event> apply_jobs(db& d, const std::vector<sync_job>& jobs,
                              const std::vector<job_check>& checks, const sync_retry& retry,
                              bool per_job) {
  std::map<int64_t, std::string> problems;
  for (const auto& c : checks)
    if (!c.error.empty())
      problems[c.id] = c.error;
  std::vector<event> out;
  std::map<std::string, connection> conns;
  std::map<std::string, int64_t> copied;
  std::map<std::string, int64_t> removed;
  std::set<std::string> touched;
  auto at = now_string();
  batch_context batch;
  sql::stmt done(d, "UPDATE sync_jobs SET state = 'done', done_at = ?, attempts = attempts + 1, "
                    "bytes = ?, last_error = NULL WHERE id = ?");
  sql::stmt savepoint(d, "SAVEPOINT job");
  sql::stmt release(d, "RELEASE job");
  sql::stmt rollback(d, "ROLLBACK TO job");
  for (const auto& j : jobs) {
    auto it = conns.find(j.connection);
    if (it == conns.end()) {
      auto c = connections::find(d, j.connection);
      if (!c)
        continue; // the connection is gone: nothing to do
      it = conns.emplace(j.connection, std::move(*c)).first;
    }
    const auto& c = it->second;
    std::string error;
    auto record = [&](outcome o) {
      if (o == outcome::copied)
        copied[c.id]++;
      if (o == outcome::deleted)
        removed[c.id]++;
      touched.insert(c.id);
      done.reset();
      done.bind(1, at);
      done.bind(2, o == outcome::copied ? j.size : 0);
      done.bind(3, j.id);
      done.exec();
    };
    if (auto p = problems.find(j.id); p != problems.end()) {
      error = p->second;
    } else if (!per_job) {
      record(apply_one(d, batch, c, j));
      continue;
    } else {
      savepoint.reset();
      savepoint.exec();
      try {
        auto o = apply_one(d, batch, c, j);
        release.reset();
        release.exec();
        record(o);
        continue;
      } catch (const std::exception& e) {
        rollback.reset();
        rollback.exec();
        release.reset();
        release.exec();
        batch.parts_done.clear(); // rolled back; counted is changed last, not reached
        error = e.what();
      }
    }
    // A failed attempt: back off, or give up and say so (sync_failed).
    auto n = j.attempts + 1;
    bool give_up = n >= retry.attempts;
    auto delay = retry.initial;
    for (int64_t i = 1; i < n && delay < retry.max; ++i)
      delay *= 2;
    delay = std::min(delay, retry.max);
    sql::stmt f(d, "UPDATE sync_jobs SET state = ?, attempts = ?, last_error = ?, "
                   "next_attempt_at = ? WHERE id = ?");
    f.bind(1, give_up ? "failed" : "pending");
    f.bind(2, n);
    f.bind(3, error);
    if (give_up)
      f.bind(4);
    else
      f.bind(4, format_time(std::chrono::system_clock::now() + delay));
    f.bind(5, j.id);
    f.exec();
    if (give_up)
      emit(d, out,
           downstream_event(c, "sync_failed",
                            json{{"revision", j.upstream_revision}, {"error", error}}.dump()),
           c);
  }
  sql::stmt count(d, "UPDATE projects SET revisions = revisions + ? WHERE id = ?");
  for (const auto& [project, n] : batch.counted) {
    if (n == 0)
      continue;
    count.reset();
    count.bind(1, n);
    count.bind(2, project);
    count.exec();
  }
  for (const auto& id : touched) {
    const auto& c = conns.at(id);
    // Nothing to backfill (no sync_started) counts as a finished backfill.
    bool initial_done = has_event(d, id, "initial_sync_complete")
                        || !has_event(d, id, "sync_started");
    if (!initial_done) {
      // The backfill is complete when no copy job of it is left.
      sql::stmt left(d, "SELECT 1 FROM sync_jobs WHERE connection = ? AND kind = 'copy' "
                        "AND state IN ('pending', 'running') LIMIT 1");
      left.bind(1, id);
      if (!left.executeStep() && has_event(d, id, "sync_started")) {
        sql::stmt n(d, "SELECT count(*) FROM revisions WHERE connection = ?");
        n.bind(1, id);
        n.executeStep();
        emit(d, out,
             downstream_event(c, "initial_sync_complete",
                              json{{"revisions", n.getColumn(0).getInt64()}}.dump()),
             c);
      }
    } else if (copied[id] > 0) {
      emit(d, out, downstream_event(c, "drawings_published", json{{"revisions", copied[id]}}.dump()),
           c);
    }
    if (removed[id] > 0)
      emit(d, out, downstream_event(c, "drawings_deleted", json{{"revisions", removed[id]}}.dump()),
           c);
  }
  return out;
}

} // namespace

caf::expected<std::vector<event>> apply(db& d, const std::vector<sync_job>& jobs,
                                        const std::vector<job_check>& checks,
                                        const sync_retry& retry) {
  // Fast path: the whole batch without a savepoint per job (two statements
  // less per job). Should any job throw, the batch is rolled back and
  // applied again job by job, so that only that job fails its attempt.
  sql::stmt savepoint(d, "SAVEPOINT batch");
  savepoint.exec();
  try {
    auto out = apply_jobs(d, jobs, checks, retry, false);
    sql::stmt release(d, "RELEASE batch");
    release.exec();
    return out;
  } catch (const std::exception&) {
    d.exec("ROLLBACK TO batch");
    d.exec("RELEASE batch");
  }
  return apply_jobs(d, jobs, checks, retry, true);
}

caf::expected<int64_t> recover(db& d) {
  return d.exec("UPDATE sync_jobs SET state = 'pending' WHERE state = 'running'");
}

caf::expected<sync_status> status(db& d, const std::string& as, const std::string& connection) {
  auto c = connections::get(d, as, connection);
  if (!c)
    return std::move(c.error());
  sync_status s;
  s.connection = connection;
  sql::stmt q(d, "SELECT "
                 "coalesce(sum(j.state IN ('pending', 'running')), 0), "
                 "coalesce(sum(j.state = 'done'), 0), coalesce(sum(j.state = 'failed'), 0), "
                 "coalesce(sum(CASE WHEN j.state = 'done' THEN j.bytes ELSE 0 END), 0), "
                 "coalesce(sum(CASE WHEN j.state IN ('pending', 'running') AND j.kind = 'copy' "
                 "THEN coalesce(r.size, 0) ELSE 0 END), 0) "
                 "FROM sync_jobs j LEFT JOIN revisions r ON r.id = j.upstream_revision "
                 "WHERE j.connection = ?");
  q.bind(1, connection);
  q.executeStep();
  s.pending = q.getColumn(0).getInt64();
  s.done = q.getColumn(1).getInt64();
  s.failed = q.getColumn(2).getInt64();
  s.bytes_done = q.getColumn(3).getInt64();
  s.bytes_total = s.bytes_done + q.getColumn(4).getInt64();
  s.state = s.failed > 0 ? "failed" : s.pending > 0 ? "syncing" : "idle";
  sql::stmt e(d, "SELECT last_error FROM sync_jobs WHERE connection = ? AND last_error IS NOT NULL "
                 "ORDER BY id DESC LIMIT 1");
  e.bind(1, connection);
  if (e.executeStep())
    s.last_error = e.getColumn(0).getString();
  return s;
}

caf::expected<sync_status> retry(db& d, const std::string& as, const std::string& connection) {
  auto c = connections::get(d, as, connection);
  if (!c)
    return std::move(c.error());
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (!cm_admin(d, *u, c->downstream) && !cm_admin(d, *u, c->upstream))
    return make_error(ec::permission_denied, std::string{"retry_sync"}, c->downstream);
  sql::stmt q(d, "UPDATE sync_jobs SET state = 'pending', attempts = 0, next_attempt_at = NULL "
                 "WHERE connection = ? AND state = 'failed'");
  q.bind(1, connection);
  q.exec();
  return status(d, as, connection);
}

std::vector<event> start(db& d, const connection& c) {
  std::vector<event> out;
  auto n = drawings::queue_backfill(d, c.id, c.upstream);
  if (n > 0)
    emit(d, out, downstream_event(c, "sync_started", json{{"revisions", n}}.dump()), c);
  return out;
}

} // namespace projlink::sync
