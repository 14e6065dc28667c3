#include "actors/connections_db.hpp"

#include "actors/directory_db.hpp"
#include "actors/error.hpp"
#include "actors/sql_util.hpp"
#include "actors/notifications_db.hpp"
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
  c.state = q.getColumn(3).getString();
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
  q.bind(1, c.state);
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

/// Appends a history entry; fills in its seq.
void record(db& d, event& e) {
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

struct project_row {
  std::string id;
  std::string company;
  bool active = true;
  std::string role;
  bool permanently_disconnected = false;
};

caf::expected<project_row> load_project(db& d, const std::string& id) {
  sql::stmt q(d, "SELECT id, company, active, role, permanently_disconnected FROM projects "
                 "WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return make_error(ec::not_found, std::string{"project"}, id);
  return project_row{q.getColumn(0).getString(), q.getColumn(1).getString(),
                     q.getColumn(2).getInt() != 0, q.getColumn(3).getString(),
                     q.getColumn(4).getInt() != 0};
}

/// A user's effective levels in one project: a company admin is admin on
/// both tools in every project of their company (SPEC §1).
struct levels {
  level cm = level::none;
  level drawings = level::none;
};

levels levels_of(db& d, const user& u, const project_row& p) {
  if (u.company_admin && u.company == p.company)
    return {level::admin, level::admin};
  sql::stmt q(d, "SELECT cm, drawings FROM access WHERE project = ? AND user = ?");
  q.bind(1, p.id);
  q.bind(2, u.id);
  if (!q.executeStep())
    return {};
  return {static_cast<level>(q.getColumn(0).getInt()),
          static_cast<level>(q.getColumn(1).getInt())};
}

caf::error denied(const char* action, const std::string& project) {
  return make_error(ec::permission_denied, std::string{action}, project);
}

/// The connection, the acting user and both projects.
struct context {
  connection c;
  user u;
  project_row up;
  project_row down;
  levels at_up;
  levels at_down;
};

caf::expected<context> load_context(db& d, const std::string& as, const std::string& id) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  auto c = find(d, id);
  if (!c)
    return std::move(c.error());
  auto up = load_project(d, c->upstream);
  if (!up)
    return std::move(up.error());
  auto down = load_project(d, c->downstream);
  if (!down)
    return std::move(down.error());
  context ctx{std::move(*c), std::move(*u), std::move(*up), std::move(*down), {}, {}};
  ctx.at_up = levels_of(d, ctx.u, ctx.up);
  ctx.at_down = levels_of(d, ctx.u, ctx.down);
  return ctx;
}

std::optional<std::string> live_link_of(db& d, const std::string& downstream) {
  sql::stmt q(d, "SELECT id FROM connections WHERE downstream = ? "
                 "AND state IN ('awaiting_approval', 'active')");
  q.bind(1, downstream);
  if (q.executeStep())
    return q.getColumn(0).getString();
  return std::nullopt;
}

int64_t live_links_to(db& d, const std::string& upstream) {
  sql::stmt q(d, "SELECT count(*) FROM connections WHERE upstream = ? "
                 "AND state IN ('awaiting_approval', 'active')");
  q.bind(1, upstream);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

int64_t revisions_of(db& d, const std::string& project) {
  sql::stmt q(d, "SELECT count(*) FROM revisions WHERE project = ? AND deleted_at IS NULL");
  q.bind(1, project);
  q.executeStep();
  return q.getColumn(0).getInt64();
}

/// R13 for both ends.
caf::error check_revisions(db& d, const rule_limits& lim, const std::string& a,
                           const std::string& b) {
  for (const auto& p : {a, b}) {
    auto n = revisions_of(d, p);
    if (n > lim.max_revisions)
      return make_error(ec::too_many_revisions, p, n, lim.max_revisions);
  }
  return {};
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

std::string at_plus(clock::time_point t, std::chrono::milliseconds d) {
  return format_time(t + d);
}

} // namespace

void record_event(db& d, event& e) {
  record(d, e);
}

std::string new_id() {
  return sql::random_id("c-");
}

// -- decisions ----------------------------------------------------------------

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
  auto down = load_project(d, downstream);
  if (!down)
    return std::move(down.error());
  auto up = load_project(d, upstream);
  if (!up)
    return std::move(up.error());
  if (downstream == upstream)
    return make_error(ec::self_connection, downstream);
  // R2: cm admin downstream, drawings >= read_only on both sides.
  auto at_down = levels_of(d, *u, *down);
  auto at_up = levels_of(d, *u, *up);
  if (at_down.cm < level::admin || at_down.drawings < level::read_only)
    return denied("request", downstream);
  if (at_up.drawings < level::read_only)
    return denied("request", upstream);
  // R1
  if (!down->active)
    return make_error(ec::project_inactive, downstream);
  if (!up->active)
    return make_error(ec::project_inactive, upstream);
  // R11
  if (down->permanently_disconnected)
    return make_error(ec::permanently_disconnected, downstream);
  // R3
  if (auto live = live_link_of(d, downstream))
    return make_error(ec::already_connected, downstream, *live);
  // R5/R6: the downstream must not be (or be becoming) an upstream, and the
  // upstream must not be (or be becoming) a downstream.
  if (down->role == "upstream" || live_links_to(d, downstream) > 0)
    return make_error(ec::role_conflict, downstream, std::string{"upstream"});
  if (up->role == "downstream" || live_link_of(d, upstream))
    return make_error(ec::role_conflict, upstream, std::string{"downstream"});
  // R13
  if (auto err = check_revisions(d, lim, downstream, upstream))
    return err;
  // R7
  auto company = directory::get_company(d, up->company);
  if (!company)
    return std::move(company.error());
  auto now = clock::now();
  auto at = format_time(now);
  connection c;
  c.id = id;
  c.upstream = upstream;
  c.downstream = downstream;
  c.requested_by = u->id;
  c.requested_at = at;
  c.undo_until = at_plus(now, lim.undo_window);
  std::optional<std::string> expires;
  if (company->auto_approve) {
    c.state = "active";
    c.decided_at = at;
  } else {
    c.state = "awaiting_approval";
    expires = at_plus(now, lim.request_ttl);
  }
  sql::stmt q(d, "INSERT INTO connections (id, upstream, downstream, state, requested_by, "
                 "requested_at, decided_at, undo_until, expires_at, peer_unacked) "
                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
  q.bind(1, c.id);
  q.bind(2, c.upstream);
  q.bind(3, c.downstream);
  q.bind(4, c.state);
  q.bind(5, c.requested_by);
  q.bind(6, c.requested_at);
  bind_opt(q, 7, c.decided_at);
  bind_opt(q, 8, c.undo_until);
  bind_opt(q, 9, expires);
  q.bind(10, c.downstream);
  q.exec();
  decision out{c, {}, c.downstream};
  out.events.push_back(conn_event(c, "requested", downstream, u->id, at));
  if (company->auto_approve) {
    fix_roles(d, c);
    out.events.push_back(conn_event(c, "auto_approved", upstream, std::nullopt, at));
  }
  for (auto& e : out.events) {
    record(d, e);
    notifications::enqueue(d, e, out.conn);
  }
  if (c.state == "active") {
    auto started = sync::start(d, c); // the backfill (SPEC §5)
    out.events.insert(out.events.end(), started.begin(), started.end());
  }
  return out;
}

caf::expected<decision> approve(db& d, const rule_limits& lim, const std::string& as,
                                const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  if (ctx->at_up.cm < level::admin)
    return denied("approve", c.upstream);
  if (c.state != "awaiting_approval")
    return make_error(ec::invalid_state, c.id, c.state);
  auto now = clock::now();
  auto at = format_time(now);
  {
    sql::stmt q(d, "SELECT expires_at FROM connections WHERE id = ?");
    q.bind(1, id);
    q.executeStep();
    if (!q.getColumn(0).isNull() && q.getColumn(0).getString() <= at)
      return make_error(ec::invalid_state, c.id, std::string{"expired"});
  }
  if (!ctx->down.active)
    return make_error(ec::project_inactive, c.downstream);
  if (!ctx->up.active)
    return make_error(ec::project_inactive, c.upstream);
  if (auto err = check_revisions(d, lim, c.downstream, c.upstream))
    return err;
  c.state = "active";
  c.decided_by = ctx->u.id;
  c.decided_at = at;
  c.manual_approval = true;
  c.undo_until = at_plus(now, lim.undo_window);
  save(d, c, c.downstream);
  sql::stmt q(d, "UPDATE connections SET expires_at = NULL WHERE id = ?");
  q.bind(1, id);
  q.exec();
  fix_roles(d, c);
  decision out{c, {conn_event(c, "approved", c.upstream, ctx->u.id, at)}, c.downstream};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  auto started = sync::start(d, c); // the backfill (SPEC §5)
  out.events.insert(out.events.end(), started.begin(), started.end());
  return out;
}

caf::expected<decision> reject(db& d, const std::string& as, const std::string& id,
                               const std::optional<std::string>& reason) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  if (ctx->at_up.cm < level::admin)
    return denied("reject", c.upstream);
  if (c.state != "awaiting_approval")
    return make_error(ec::invalid_state, c.id, c.state);
  auto at = now_string();
  c.state = "rejected";
  c.decided_by = ctx->u.id;
  c.decided_at = at;
  c.reason = reason;
  c.undo_until.reset();
  save(d, c, c.downstream);
  decision out{c, {conn_event(c, "rejected", c.upstream, ctx->u.id, at, reason)}, c.downstream};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  return out;
}

caf::expected<decision> undo(db& d, const rule_limits& lim, const std::string& as,
                             const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  bool up_admin = ctx->at_up.cm == level::admin;
  bool down_admin = ctx->at_down.cm == level::admin;
  if (!up_admin && !down_admin)
    return denied("undo", c.downstream);
  auto now = clock::now();
  auto at = format_time(now);
  auto window_open = [&](const std::optional<std::string>& from) {
    if (!from)
      return false;
    // `from` + window > now  <=>  from > now - window (times sort as text).
    return *from > format_time(now - lim.undo_window);
  };
  // R9: the upstream undo applies to an active, manually approved connection
  // still in its window; otherwise (or for a downstream-only admin) the
  // downstream undo.
  bool upstream_undo = up_admin
                       && (!down_admin
                           || (c.state == "active" && c.manual_approval
                               && window_open(c.decided_at)));
  if (upstream_undo) {
    if (c.state != "active" || !c.manual_approval)
      return make_error(ec::invalid_state, c.id, c.state);
    if (!window_open(c.decided_at))
      return make_error(ec::undo_window_expired, c.id);
    c.state = "awaiting_approval";
    c.decided_by.reset();
    c.decided_at.reset();
    c.manual_approval = false;
    // The downstream's own window still runs from its request.
    c.undo_until.reset();
    if (auto requested = parse_time(c.requested_at); requested && window_open(c.requested_at))
      c.undo_until = at_plus(*requested, lim.undo_window);
    save(d, c, c.downstream);
    sql::stmt q(d, "UPDATE connections SET expires_at = ? WHERE id = ?");
    q.bind(1, at_plus(now, lim.request_ttl));
    q.bind(2, id);
    q.exec();
    remove_unpublished_copies(d, id);
    decision out{c,
                 {conn_event(c, "undone", c.upstream, ctx->u.id, at, std::nullopt,
                             R"({"side":"upstream","to":"awaiting_approval"})")},
                 c.downstream};
    record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
    return out;
  }
  if (!is_live(c.state))
    return make_error(ec::invalid_state, c.id, c.state);
  // The downstream's window runs from its request, or from the auto-approval.
  auto from = c.state == "active" && !c.manual_approval ? c.decided_at : c.requested_at;
  if (!window_open(from))
    return make_error(ec::undo_window_expired, c.id);
  c.state = "cancelled";
  c.ended_by = ctx->u.id;
  c.ended_at = at;
  c.undo_until.reset();
  save(d, c, c.upstream);
  remove_unpublished_copies(d, id);
  decision out{c,
               {conn_event(c, "undone", c.downstream, ctx->u.id, at, std::nullopt,
                           R"({"side":"downstream","to":"cancelled"})")},
               c.upstream};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  return out;
}

caf::expected<decision> cancel(db& d, const std::string& as, const std::string& id) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  if (ctx->at_down.cm < level::admin)
    return denied("cancel", c.downstream);
  if (c.state != "awaiting_approval")
    return make_error(ec::invalid_state, c.id, c.state);
  auto at = now_string();
  c.state = "cancelled";
  c.ended_by = ctx->u.id;
  c.ended_at = at;
  c.undo_until.reset();
  save(d, c, c.upstream);
  decision out{c, {conn_event(c, "cancelled", c.downstream, ctx->u.id, at)}, c.upstream};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  return out;
}

caf::expected<decision> disconnect(db& d, const std::string& as, const std::string& id,
                                   const std::string& reason, bool accept_terms) {
  auto ctx = load_context(d, as, id);
  if (!ctx)
    return std::move(ctx.error());
  auto& c = ctx->c;
  bool down_admin = ctx->at_down.cm == level::admin;
  bool up_admin = ctx->at_up.cm == level::admin;
  if (!down_admin && !up_admin)
    return denied("disconnect", c.downstream);
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error(ec::reason_required);
  if (!accept_terms)
    return make_error(ec::terms_not_accepted);
  if (c.state != "active")
    return make_error(ec::invalid_state, c.id, c.state);
  auto at = now_string();
  // The side the caller acts for: the downstream when admin on both.
  const auto& side = down_admin ? c.downstream : c.upstream;
  const auto& peer = down_admin ? c.upstream : c.downstream;
  c.state = "disconnected";
  c.ended_by = ctx->u.id;
  c.ended_at = at;
  c.reason = reason;
  c.undo_until.reset();
  save(d, c, peer);
  // R11: permanent for the downstream. R12: nothing new is copied.
  sql::stmt p(d, "UPDATE projects SET permanently_disconnected = 1 WHERE id = ?");
  p.bind(1, c.downstream);
  p.exec();
  sql::stmt jobs(d, "DELETE FROM sync_jobs WHERE connection = ? AND state IN ('pending', 'failed')");
  jobs.bind(1, id);
  jobs.exec();
  decision out{c, {conn_event(c, "disconnected", side, ctx->u.id, at, reason)}, peer};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  return out;
}

caf::expected<decision> expire(db& d, const std::string& id) {
  auto c = find(d, id);
  if (!c)
    return std::move(c.error());
  auto at = now_string();
  sql::stmt q(d, "SELECT expires_at FROM connections WHERE id = ?");
  q.bind(1, id);
  q.executeStep();
  if (c->state != "awaiting_approval" || q.getColumn(0).isNull()
      || q.getColumn(0).getString() > at)
    return decision{std::move(*c), {}, {}};
  c->state = "expired";
  c->ended_at = at;
  c->undo_until.reset();
  save(d, *c, c->upstream);
  decision out{*c, {conn_event(*c, "expired", c->downstream, std::nullopt, at)}, c->upstream};
  record(d, out.events.back());
  notifications::enqueue(d, out.events.back(), out.conn);
  return out;
}

caf::expected<void> acknowledged(db& d, const std::string& id, const std::string& peer,
                                 const std::string& state) {
  sql::stmt q(d, "UPDATE connections SET peer_unacked = NULL "
                 "WHERE id = ? AND peer_unacked = ? AND state = ?");
  q.bind(1, id);
  q.bind(2, peer);
  q.bind(3, state);
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
  auto p = load_project(d, project);
  if (!p)
    return std::move(p.error());
  if (levels_of(d, *u, *p).cm < level::admin)
    return denied("configure_distribution", project);
  if (mode == "all_admins" && !users.empty())
    return make_error(ec::invalid_parameter, std::string{"users"});
  std::vector<std::string> ids;
  for (const auto& name : users) {
    auto member = directory::find_user(d, name);
    if (!member)
      return std::move(member.error());
    // Each listed user must be a cm admin there or a company admin.
    if (levels_of(d, *member, *p).cm < level::admin)
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
  record(d, e);
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
  if (!u->company_admin || u->company != company)
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
    record(d, e);
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
  auto p = load_project(d, project);
  if (!p)
    return std::move(p.error());
  if (levels_of(d, u, *p).cm < level::read_only)
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

caf::expected<connection_lists> list(db& d, const std::string& as, const std::string& project) {
  auto u = directory::find_user(d, as);
  if (!u)
    return std::move(u.error());
  if (auto err = check_view(d, *u, project))
    return err;
  connection_lists out;
  for (const char* side : {"downstream", "upstream"}) {
    sql::stmt q(d, std::string{"SELECT "} + conn_cols + " FROM connections WHERE " + side
                     + " = ? ORDER BY requested_at, id");
    q.bind(1, project);
    auto& xs = std::string{side} == "downstream" ? out.as_downstream : out.as_upstream;
    while (q.executeStep())
      xs.push_back(read_connection(q));
  }
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
                 "FROM events WHERE seq > ?1 AND (project = ?2 OR peer = ?2) "
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
