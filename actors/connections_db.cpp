#include "actors/connections_db.hpp"

#include "actors/directory_db.hpp"
#include "actors/error.hpp"
#include "actors/sql_util.hpp"
#include "actors/notifications_db.hpp"
#include "actors/rules.hpp"
#include "actors/sync_db.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <nlohmann/json.hpp>


namespace projlink::connections {

namespace {

using SQLite::Statement;
using sql::bind_opt;
using sql::opt_text;
using json = nlohmann::json;
using clock = std::chrono::system_clock;

constexpr const char* conn_cols
  = "id, upstream, downstream, state, requested_by, requested_at, decided_by, decided_at, "
    "ended_by, ended_at, reason, undo_until, manual_approval";

connection read_connection(Statement& q) {
  connection c;
  c.id = q.getColumn(0).getString();
  c.upstream = q.getColumn(1).getString();
  c.downstream = q.getColumn(2).getString();
  c.state = parse_conn_state(q.getColumn(3).getString()).value_or(conn_state::cancelled);
  c.requested_by = q.getColumn(4).getString();
  c.requested_at = q.getColumn(5).getString();
  c.decided_by = opt_text(q.getColumn(6));
  c.decided_at = opt_text(q.getColumn(7));
  c.ended_by = opt_text(q.getColumn(8));
  c.ended_at = opt_text(q.getColumn(9));
  c.reason = opt_text(q.getColumn(10));
  c.undo_until = opt_text(q.getColumn(11));
  c.manual_approval = q.getColumn(12).getInt() != 0;
  return c;
}

/// Writes `c` over its row (every mutable field) and marks `peer` unacked.
void save(db& d, const connection& c, const std::string& peer) {
  sql::stmt q(d, "UPDATE connections SET state = ?, decided_by = ?, decided_at = ?, "
                 "ended_by = ?, ended_at = ?, reason = ?, undo_until = ?, manual_approval = ?, "
                 "peer_unacked = ? WHERE id = ?");
  q.bind(1, to_string(c.state));
  bind_opt(q, 2, c.decided_by);
  bind_opt(q, 3, c.decided_at);
  bind_opt(q, 4, c.ended_by);
  bind_opt(q, 5, c.ended_at);
  bind_opt(q, 6, c.reason);
  bind_opt(q, 7, c.undo_until);
  q.bind(8, c.manual_approval ? 1 : 0);
  if (peer.empty())
    q.bind(9);
  else
    q.bind(9, peer);
  q.bind(10, c.id);
  q.exec();
}

/// Appends one history row; fills in its seq.
void append(db& d, event& e) {
  sql::stmt q(d, "INSERT INTO events (at, kind, project, peer, connection, user, reason, detail) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, e.at);
  q.bind(2, e.kind);
  q.bind(3, e.project);
  bind_opt(q, 4, e.peer);
  bind_opt(q, 5, e.connection);
  bind_opt(q, 6, e.user);
  bind_opt(q, 7, e.reason);
  if (e.detail.empty())
    q.bind(8);
  else
    q.bind(8, e.detail);
  q.exec();
  e.seq = d.getLastInsertRowid();
}

/// Records `e` in the history of its project and, for a connection event,
/// in the history of the other project too (each project's history is its
/// own: SPEC §6.2 Event). Returns the rows written, in seq order.
std::vector<event> record(db& d, const event& e) {
  std::vector<event> rows{e};
  append(d, rows.back());
  if (e.peer && *e.peer != e.project) {
    event mirror = e;
    mirror.project = *e.peer;
    mirror.peer = e.project;
    append(d, mirror);
    rows.push_back(std::move(mirror));
  }
  return rows;
}

/// A connection event on `side` (the project where it happened).
event conn_event(const connection& c, const std::string& kind, const std::string& side,
                 const std::optional<std::string>& user, const std::string& at,
                 const std::optional<std::string>& reason = std::nullopt,
                 const std::string& detail = {}) {
  event e;
  e.at = at;
  e.kind = kind;
  e.project = side;
  e.peer = side == c.downstream ? c.upstream : c.downstream;
  e.connection = c.id;
  e.user = user;
  e.reason = reason;
  e.detail = detail;
  return e;
}

/// One project's facts as its rules see them (rules::project_side).
caf::expected<rules::project_side> load_side(db& d, const std::string& id) {
  sql::stmt q(d, "SELECT company, active, role, permanently_disconnected, revisions FROM projects "
                 "WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return make_error(ec::not_found, std::string{"project"}, id);
  rules::project_side p;
  p.id = id;
  p.company = q.getColumn(0).getString();
  p.active = q.getColumn(1).getInt() != 0;
  p.role = parse_project_role(q.getColumn(2).getString()).value_or(project_role::none);
  p.permanently_disconnected = q.getColumn(3).getInt() != 0;
  p.revisions = q.getColumn(4).getInt64();
  sql::stmt link(d, "SELECT id FROM connections WHERE downstream = ? "
                    "AND state IN ('requesting', 'awaiting_approval', 'active')");
  link.bind(1, id);
  if (link.executeStep())
    p.upstream_link = link.getColumn(0).getString();
  sql::stmt n(d, "SELECT count(*) FROM connections WHERE upstream = ? "
                 "AND state IN ('requesting', 'awaiting_approval', 'active')");
  n.bind(1, id);
  n.executeStep();
  p.downstream_links = n.getColumn(0).getInt64();
  return p;
}

rules::actor_user actor_of(const user& u) {
  return {u.id, u.company, u.company_admin};
}

/// A user's effective levels in one project (none if it does not exist).
rules::levels levels_of(db& d, const user& u, const std::string& project) {
  auto at = directory::levels_in(d, u, project);
  return at ? *at : rules::levels{};
}

std::string company_of(db& d, const std::string& project) {
  sql::stmt q(d, "SELECT company FROM projects WHERE id = ?");
  q.bind(1, project);
  return q.executeStep() ? q.getColumn(0).getString() : std::string{};
}

caf::error denied(const char* action, const std::string& project) {
  return make_error(ec::permission_denied, std::string{action}, project);
}

/// The connection, the acting user and the user's levels on both sides.
struct context {
  connection c;
  user u;
  rules::levels at_up;
  rules::levels at_down;
};

caf::expected<context> load_context(db& d, const std::string& as, const std::string& id) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto c = find(d, id);
  if (!c)
    return std::move(c.error());
  context ctx{std::move(*c), std::move(*u), {}, {}};
  ctx.at_up = levels_of(d, ctx.u, ctx.c.upstream);
  ctx.at_down = levels_of(d, ctx.u, ctx.c.downstream);
  return ctx;
}

std::optional<std::string> expires_at_of(db& d, const std::string& id) {
  sql::stmt q(d, "SELECT expires_at FROM connections WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep() || q.getColumn(0).isNull())
    return std::nullopt;
  return q.getColumn(0).getString();
}

/// R6: the role is fixed the first time a connection becomes active.
void fix_roles(db& d, const connection& c) {
  sql::stmt q(d, "UPDATE projects SET role = ? WHERE id = ? AND role = 'none'");
  q.bind(1, "downstream");
  q.bind(2, c.downstream);
  q.exec();
  q.reset();
  q.bind(1, "upstream");
  q.bind(2, c.upstream);
  q.exec();
}

/// R9: an undo removes the copies still unpublished downstream and the
/// copies not made yet.
void remove_unpublished_copies(db& d, const std::string& id) {
  sql::stmt jobs(d, "DELETE FROM sync_jobs WHERE connection = ? AND state IN ('pending', 'failed')");
  jobs.bind(1, id);
  jobs.exec();
  // projects.revisions counts the revisions not deleted: lower it by the live
  // copies this removes (a copy already deleted upstream was counted out then).
  sql::stmt live(d, "UPDATE projects SET revisions = revisions - "
                    "(SELECT count(*) FROM revisions WHERE connection = ?1 AND published = 0 "
                    "AND deleted_at IS NULL) "
                    "WHERE id = (SELECT downstream FROM connections WHERE id = ?1)");
  live.bind(1, id);
  live.exec();
  sql::stmt revs(d, "DELETE FROM revisions WHERE connection = ? AND published = 0");
  revs.bind(1, id);
  revs.exec();
}

/// Persists transition `t`: the record (inserted when `insert`), the
/// expiry deadline, roles, copies and sync, the events in the history and
/// the notifications they queue. Returns what the caller and the peer see.
decision apply(db& d, rules::transition& t, bool insert) {
  const auto& c = t.conn;
  if (insert) {
    sql::stmt q(d, "INSERT INTO connections (id, upstream, downstream, state, requested_by, "
                   "requested_at, decided_at, undo_until, expires_at, peer_unacked) "
                   "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    q.bind(1, c.id);
    q.bind(2, c.upstream);
    q.bind(3, c.downstream);
    q.bind(4, to_string(c.state));
    q.bind(5, c.requested_by);
    q.bind(6, c.requested_at);
    bind_opt(q, 7, c.decided_at);
    bind_opt(q, 8, c.undo_until);
    if (t.expiry_change == rules::expiry::set)
      q.bind(9, t.expires_at);
    else
      q.bind(9);
    q.bind(10, t.peer);
    q.exec();
  } else {
    save(d, c, t.peer);
    if (t.expiry_change != rules::expiry::keep) {
      sql::stmt q(d, "UPDATE connections SET expires_at = ? WHERE id = ?");
      if (t.expiry_change == rules::expiry::set)
        q.bind(1, t.expires_at);
      else
        q.bind(1);
      q.bind(2, c.id);
      q.exec();
    }
  }
  if (t.fix_roles)
    fix_roles(d, c);
  if (t.remove_unpublished_copies)
    remove_unpublished_copies(d, c.id);
  if (t.stop_sync) {
    sql::stmt jobs(d, "DELETE FROM sync_jobs WHERE connection = ? "
                      "AND state IN ('pending', 'failed')");
    jobs.bind(1, c.id);
    jobs.exec();
  }
  if (t.bar_downstream) {
    sql::stmt p(d, "UPDATE projects SET permanently_disconnected = 1 WHERE id = ?");
    p.bind(1, c.downstream);
    p.exec();
  }
  decision out{c, {}, t.peer};
  for (auto& spec : t.events) {
    auto e = conn_event(c, spec.kind, spec.side, spec.user, t.at, spec.reason, spec.detail);
    auto rows = record(d, e);
    notifications::enqueue(d, rows.front(), c);
    out.events.insert(out.events.end(), rows.begin(), rows.end());
  }
  if (t.start_sync) {
    auto started = sync::start(d, c); // the backfill (SPEC §5)
    out.events.insert(out.events.end(), started.begin(), started.end());
  }
  return out;
}

caf::expected<decision> applied(db& d, caf::expected<rules::transition> t) {
  if (!t)
    return std::move(t.error());
  return apply(d, *t, false);
}

} // namespace

std::vector<event> record_event(db& d, const event& e) {
  return record(d, e);
}

std::string new_id() {
  return sql::random_id("c-");
}

// -- decisions ----------------------------------------------------------------
//
// Each loads the facts the rules need, asks the pure function in
// actors/rules.cpp, and persists its transition. A refusal returns before
// anything is written.

caf::expected<decision> request(db& d, const rule_limits& lim, const std::string& id,
                                const std::string& as, const std::string& downstream,
                                const std::string& upstream) {
  // A repeat of the same request (same id) is answered with what was decided.
  if (auto existing = find(d, id)) {
    if (existing->downstream != downstream || existing->upstream != upstream)
      return make_error(ec::already_exists, std::string{"connection"}, id);
    return decision{std::move(*existing), {}, {}};
  }
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto down = load_side(d, downstream);
  if (!down)
    return std::move(down.error());
  auto up = load_side(d, upstream);
  if (!up)
    return std::move(up.error());
  // The downstream's side first, then the upstream's (SPEC §11).
  auto at_down = levels_of(d, *u, downstream);
  if (auto err = rules::check_request_downstream(*down, at_down, upstream, lim))
    return err;
  auto company = directory::get_company(d, up->company);
  if (!company)
    return std::move(company.error());
  auto at_up = levels_of(d, *u, upstream);
  auto t = rules::decide_request(*up, at_up, id, u->id, downstream, company->auto_approve,
                                 clock::now(), lim);
  if (!t)
    return std::move(t.error());
  return apply(d, *t, true);
}

caf::expected<decision> approve(db& d, const rule_limits& lim, const std::string& as,
                                const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  if (ctx->at_up.cm < level::admin)
    return denied("approve", c.upstream);
  auto up = load_side(d, c.upstream);
  if (!up)
    return std::move(up.error());
  auto down = load_side(d, c.downstream);
  if (!down)
    return std::move(down.error());
  return applied(d, rules::decide_approve(c, expires_at_of(d, id), {*up, *down}, ctx->at_up,
                                          ctx->u.id, clock::now(), lim));
}

caf::expected<decision> reject(db& d, const std::string& as, const std::string& id,
                               const std::optional<std::string>& reason) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  return applied(d, rules::decide_reject(ctx->c, ctx->at_up, ctx->u.id, reason, clock::now()));
}

caf::expected<decision> undo(db& d, const rule_limits& lim, const std::string& as,
                             const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto now = clock::now();
  auto side = rules::choose_undo(ctx->c, ctx->at_up, ctx->at_down, now, lim);
  if (!side)
    return std::move(side.error());
  if (*side == rules::undo_side::upstream)
    return applied(d, rules::decide_upstream_undo(ctx->c, ctx->u.id, now, lim));
  return applied(d, rules::decide_downstream_undo(ctx->c, ctx->u.id, now, lim));
}

caf::expected<decision> cancel(db& d, const std::string& as, const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  return applied(d, rules::decide_cancel(ctx->c, ctx->at_down, ctx->u.id, clock::now()));
}

caf::expected<decision> disconnect(db& d, const std::string& as, const std::string& id,
                                   const std::string& reason, bool accept_terms) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  return applied(d, rules::decide_disconnect(ctx->c, ctx->at_up, ctx->at_down, ctx->u.id,
                                             reason, accept_terms, clock::now()));
}

caf::expected<decision> expire(db& d, const std::string& id) {
  auto c = find(d, id);
  if (!c)
    return std::move(c.error());
  auto t = rules::decide_expire(*c, expires_at_of(d, id), clock::now());
  if (!t)
    return decision{std::move(*c), {}, {}};
  return apply(d, *t, false);
}

caf::expected<void> acknowledged(db& d, const std::string& id, const std::string& peer,
                                 conn_state state) {
  sql::stmt q(d, "UPDATE connections SET peer_unacked = NULL "
                 "WHERE id = ? AND peer_unacked = ? AND state = ?");
  q.bind(1, id);
  q.bind(2, peer);
  q.bind(3, to_string(state));
  q.exec();
  return {};
}

// -- settings -----------------------------------------------------------------

caf::expected<settings> set_distribution(db& d, const std::string& as,
                                         const std::string& project, const std::string& mode,
                                         const std::vector<std::string>& users,
                                         std::vector<event>* written) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto company = company_of(d, project);
  if (company.empty())
    return make_error(ec::not_found, std::string{"project"}, project);
  if (!rules::may_configure_distribution(levels_of(d, *u, project)))
    return denied("configure_distribution", project);
  if (mode == "all_admins" && !users.empty())
    return make_error(ec::invalid_parameter, std::string{"users"});
  std::vector<std::string> ids;
  for (const auto& name : users) {
    auto member = directory::find_user(d, name);
    if (!member)
      return std::move(member.error());
    // Each listed user must be a cm admin there or a company admin.
    if (!rules::may_configure_distribution(levels_of(d, *member, project)))
      return make_error(ec::invalid_parameter, std::string{"users"});
    if (std::find(ids.begin(), ids.end(), member->id) == ids.end())
      ids.push_back(member->id);
  }
  sql::stmt q(d, "INSERT INTO distribution (project, mode, users) VALUES (?, ?, ?) "
                 "ON CONFLICT (project) DO UPDATE SET mode = excluded.mode, users = excluded.users");
  q.bind(1, project);
  q.bind(2, mode);
  q.bind(3, json(ids).dump());
  q.exec();
  event e;
  e.at = now_string();
  e.kind = "settings_changed";
  e.project = project;
  e.user = u->id;
  e.detail = json{{"mode", mode}, {"users", ids}}.dump();
  append(d, e);
  if (written != nullptr)
    written->push_back(e);
  return get_settings(d, as, project);
}

caf::expected<bool> set_approval_mode(db& d, const std::string& as, const std::string& company,
                                      bool auto_approve, std::vector<event>* written) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto c = directory::get_company(d, company);
  if (!c)
    return std::move(c.error());
  // R7: only a company admin of that company. The error names the company.
  if (!rules::may_set_approval(actor_of(*u), company))
    return denied("set_approval_mode", company);
  if (c->auto_approve == auto_approve)
    return auto_approve;
  sql::stmt q(d, "UPDATE companies SET auto_approve = ? WHERE id = ?");
  q.bind(1, auto_approve ? 1 : 0);
  q.bind(2, company);
  q.exec();
  // The change is in the history of each of the company's projects.
  sql::stmt ps(d, "SELECT id FROM projects WHERE company = ? ORDER BY id");
  ps.bind(1, company);
  auto at = now_string();
  auto detail = json{{"company", company}, {"auto_approve", auto_approve}}.dump();
  std::vector<event> events;
  while (ps.executeStep()) {
    event e;
    e.at = at;
    e.kind = "settings_changed";
    e.project = ps.getColumn(0).getString();
    e.user = u->id;
    e.detail = detail;
    events.push_back(std::move(e));
  }
  for (auto& e : events)
    append(d, e);
  if (written != nullptr)
    written->insert(written->end(), events.begin(), events.end());
  return auto_approve;
}

// -- reads ----------------------------------------------------------------------

caf::expected<connection> find(db& d, const std::string& id) {
  sql::stmt q(d, std::string{"SELECT "} + conn_cols + " FROM connections WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return make_error(ec::not_found, std::string{"connection"}, id);
  return read_connection(q);
}

namespace {

/// The view permission of SPEC §4 on one project.
caf::error check_view(db& d, const user& u, const std::string& project) {
  auto company = company_of(d, project);
  if (company.empty())
    return make_error(ec::not_found, std::string{"project"}, project);
  if (!rules::may_view(levels_of(d, u, project)))
    return denied("view", project);
  return {};
}

} // namespace

caf::expected<connection> get(db& d, const std::string& as, const std::string& id) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto c = find(d, id);
  if (!c)
    return c;
  // Either side's viewers may see it.
  if (check_view(d, *u, c->downstream) && check_view(d, *u, c->upstream))
    return denied("view", c->downstream);
  return c;
}

caf::expected<std::vector<connection>> list(db& d, const std::string& as,
                                            const std::string& project,
                                            const std::optional<std::string>& after,
                                            int64_t limit) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (auto err = check_view(d, *u, project))
    return err;
  sql::stmt q(d, std::string{"SELECT "} + conn_cols + " FROM connections WHERE upstream = ?1 "
                   "AND id > ?2 UNION ALL SELECT " + conn_cols + " FROM connections "
                   "WHERE downstream = ?1 AND id > ?2 ORDER BY id LIMIT ?3");
  q.bind(1, project);
  q.bind(2, after.value_or(std::string{}));
  q.bind(3, limit);
  std::vector<connection> out;
  while (q.executeStep())
    out.push_back(read_connection(q));
  return out;
}

caf::expected<std::vector<event>> history(db& d, const std::string& as,
                                          const std::string& project, int64_t after,
                                          int64_t limit) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (auto err = check_view(d, *u, project))
    return err;
  sql::stmt q(d, "SELECT seq, at, kind, project, peer, connection, user, reason, detail "
                 "FROM events WHERE project = ?2 AND seq > ?1 "
                 "ORDER BY seq LIMIT ?3");
  q.bind(1, after);
  q.bind(2, project);
  q.bind(3, limit);
  std::vector<event> out;
  while (q.executeStep()) {
    event e;
    e.seq = q.getColumn(0).getInt64();
    e.at = q.getColumn(1).getString();
    e.kind = q.getColumn(2).getString();
    e.project = q.getColumn(3).getString();
    e.peer = opt_text(q.getColumn(4));
    e.connection = opt_text(q.getColumn(5));
    e.user = opt_text(q.getColumn(6));
    e.reason = opt_text(q.getColumn(7));
    e.detail = q.getColumn(8).isNull() ? std::string{} : q.getColumn(8).getString();
    out.push_back(std::move(e));
  }
  return out;
}

caf::expected<settings> get_settings(db& d, const std::string& as, const std::string& project) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (auto err = check_view(d, *u, project))
    return err;
  settings s;
  s.project = project;
  sql::stmt q(d, "SELECT mode, users FROM distribution WHERE project = ?");
  q.bind(1, project);
  if (q.executeStep()) {
    s.mode = q.getColumn(0).getString();
    s.users = json::parse(q.getColumn(1).getString()).get<std::vector<std::string>>();
  }
  if (s.mode == "all_admins") {
    sql::stmt r(d, "SELECT u.email FROM access a JOIN users u ON u.id = a.user "
                   "WHERE a.project = ? AND a.cm = 3 ORDER BY u.email");
    r.bind(1, project);
    while (r.executeStep())
      s.recipients.push_back(r.getColumn(0).getString());
  } else {
    sql::stmt r(d, "SELECT email FROM users WHERE id = ?");
    for (const auto& id : s.users) {
      r.reset();
      r.bind(1, id);
      if (r.executeStep())
        s.recipients.push_back(r.getColumn(0).getString());
    }
  }
  return s;
}

caf::expected<std::vector<std::string>> viewable(db& d, const std::string& as,
                                                 const std::optional<std::string>& project) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (project) {
    if (auto err = check_view(d, *u, *project))
      return err;
    return std::vector<std::string>{*project};
  }
  sql::stmt q(d, "SELECT project FROM access WHERE user = ?1 AND cm >= 1 "
                 "UNION SELECT id FROM projects WHERE company = ?2 AND ?3");
  q.bind(1, u->id);
  q.bind(2, u->company);
  q.bind(3, u->company_admin ? 1 : 0);
  std::vector<std::string> out;
  while (q.executeStep())
    out.push_back(q.getColumn(0).getString());
  return out;
}

caf::expected<expiries> due_expiries(db& d, const std::string& until) {
  expiries out;
  sql::stmt q(d, "SELECT id, downstream FROM connections WHERE state = 'awaiting_approval' "
                 "AND expires_at <= ? ORDER BY expires_at");
  q.bind(1, until);
  while (q.executeStep())
    out.due.emplace_back(q.getColumn(0).getString(), q.getColumn(1).getString());
  sql::stmt next(d, "SELECT min(expires_at) FROM connections WHERE state = 'awaiting_approval' "
                    "AND expires_at > ?");
  next.bind(1, until);
  if (next.executeStep() && !next.getColumn(0).isNull())
    out.next = next.getColumn(0).getString();
  return out;
}

caf::expected<std::vector<unacked>> unacknowledged(db& d) {
  sql::stmt q(d, std::string{"SELECT "} + conn_cols
                   + ", peer_unacked FROM connections WHERE peer_unacked IS NOT NULL");
  std::vector<unacked> out;
  while (q.executeStep())
    out.push_back({read_connection(q), q.getColumn(13).getString()});
  return out;
}

} // namespace projlink::connections
