#include "actors/rules.hpp"

#include "actors/error.hpp"

namespace projlink::rules {

namespace {

caf::error denied(const char* action, const std::string& project) {
  return make_error(ec::permission_denied, std::string{action}, project);
}

caf::error invalid_state(const connection& c) {
  return make_error(ec::invalid_state, c.id, std::string{to_string(c.state)});
}

/// R13 for one end.
caf::error check_revisions(const project_side& p, const rule_limits& lim) {
  if (p.revisions > lim.max_revisions)
    return make_error(ec::too_many_revisions, p.id, p.revisions, lim.max_revisions);
  return {};
}

/// True while `from` + window is still ahead of `now` (R9).
bool window_open(const std::optional<std::string>& from, time_point now, const rule_limits& lim) {
  if (!from)
    return false;
  // Times sort as text: from + window > now  <=>  from > now - window.
  return *from > format_time(now - lim.undo_window);
}

transition make(connection c, std::string peer, time_point now) {
  transition t;
  t.conn = std::move(c);
  t.peer = std::move(peer);
  t.at = format_time(now);
  return t;
}

} // namespace

levels effective(const actor_user& u, const std::string& project_company, levels entry) {
  if (u.company_admin && u.company == project_company)
    return {level::admin, level::admin};
  return entry;
}

// -- request ------------------------------------------------------------------------

caf::error check_request_downstream(const project_side& down, const levels& at,
                                    const std::string& upstream, const rule_limits& lim) {
  if (down.id == upstream)
    return make_error(ec::self_connection, down.id);
  // R2: cm admin downstream and drawings ≥ read_only there.
  if (at.cm < level::admin || at.drawings < level::read_only)
    return denied("request", down.id);
  // R1
  if (!down.active)
    return make_error(ec::project_inactive, down.id);
  // R11
  if (down.permanently_disconnected)
    return make_error(ec::permanently_disconnected, down.id);
  // R3
  if (down.upstream_link)
    return make_error(ec::already_connected, down.id, *down.upstream_link);
  // R5/R6: the downstream must not be (or be becoming) an upstream.
  if (down.role == project_role::upstream || down.downstream_links > 0)
    return make_error(ec::role_conflict, down.id, std::string{"upstream"});
  // R13
  return check_revisions(down, lim);
}

caf::expected<transition> decide_request(const project_side& up, const levels& at,
                                         const std::string& id, const std::string& user,
                                         const std::string& downstream, bool auto_approve,
                                         time_point now, const rule_limits& lim) {
  // R2: drawings ≥ read_only upstream.
  if (at.drawings < level::read_only)
    return denied("request", up.id);
  // R1
  if (!up.active)
    return make_error(ec::project_inactive, up.id);
  // R5/R6: the upstream must not be (or be becoming) a downstream.
  if (up.role == project_role::downstream || up.upstream_link)
    return make_error(ec::role_conflict, up.id, std::string{"downstream"});
  // R13
  if (auto err = check_revisions(up, lim))
    return err;
  auto at_text = format_time(now);
  connection c;
  c.id = id;
  c.upstream = up.id;
  c.downstream = downstream;
  c.requested_by = user;
  c.requested_at = at_text;
  c.undo_until = format_time(now + lim.undo_window);
  auto t = make(std::move(c), downstream, now);
  t.events.push_back({"requested", downstream, user, std::nullopt, {}});
  // R7
  if (auto_approve) {
    t.conn.state = conn_state::active;
    t.conn.decided_at = at_text;
    t.fix_roles = true;
    t.start_sync = true;
    t.events.push_back({"auto_approved", up.id, std::nullopt, std::nullopt, {}});
  } else {
    t.conn.state = conn_state::awaiting_approval;
    t.expiry_change = expiry::set;
    t.expires_at = format_time(now + lim.request_ttl);
  }
  return t;
}

// -- decisions on an existing connection ------------------------------------------------

caf::expected<transition> decide_approve(const connection& c,
                                         const std::optional<std::string>& expires_at,
                                         const ends& e, const levels& at_up,
                                         const std::string& user, time_point now,
                                         const rule_limits& lim) {
  if (at_up.cm < level::admin)
    return denied("approve", c.upstream);
  if (c.state != conn_state::awaiting_approval)
    return invalid_state(c);
  auto at_text = format_time(now);
  if (expires_at && *expires_at <= at_text)
    return make_error(ec::invalid_state, c.id, std::string{"expired"});
  if (!e.down.active)
    return make_error(ec::project_inactive, c.downstream);
  if (!e.up.active)
    return make_error(ec::project_inactive, c.upstream);
  if (auto err = check_revisions(e.down, lim))
    return err;
  if (auto err = check_revisions(e.up, lim))
    return err;
  auto t = make(c, c.downstream, now);
  t.conn.state = conn_state::active;
  t.conn.decided_by = user;
  t.conn.decided_at = at_text;
  t.conn.manual_approval = true;
  t.conn.undo_until = format_time(now + lim.undo_window);
  t.expiry_change = expiry::clear;
  t.fix_roles = true;
  t.start_sync = true;
  t.events.push_back({"approved", c.upstream, user, std::nullopt, {}});
  return t;
}

caf::expected<transition> decide_reject(const connection& c, const levels& at_up,
                                        const std::string& user,
                                        const std::optional<std::string>& reason, time_point now) {
  if (at_up.cm < level::admin)
    return denied("reject", c.upstream);
  if (c.state != conn_state::awaiting_approval)
    return invalid_state(c);
  auto t = make(c, c.downstream, now);
  t.conn.state = conn_state::rejected;
  t.conn.decided_by = user;
  t.conn.decided_at = format_time(now);
  t.conn.reason = reason;
  t.conn.undo_until.reset();
  t.expiry_change = expiry::clear;
  t.events.push_back({"rejected", c.upstream, user, reason, {}});
  return t;
}

caf::expected<undo_side> choose_undo(const connection& c, const levels& at_up,
                                     const levels& at_down, time_point now,
                                     const rule_limits& lim) {
  bool up_admin = at_up.cm == level::admin;
  bool down_admin = at_down.cm == level::admin;
  if (!up_admin && !down_admin)
    return denied("undo", c.downstream);
  // R9: the upstream undo applies to an active connection that a user
  // approved, still in its window; otherwise (or for a downstream-only
  // admin) the downstream undo.
  bool upstream_applies =
    c.state == conn_state::active && c.manual_approval && window_open(c.decided_at, now, lim);
  if (up_admin && (!down_admin || upstream_applies))
    return undo_side::upstream;
  return undo_side::downstream;
}

caf::expected<transition> decide_upstream_undo(const connection& c, const std::string& user,
                                               time_point now, const rule_limits& lim) {
  if (c.state != conn_state::active || !c.manual_approval)
    return invalid_state(c);
  if (!window_open(c.decided_at, now, lim))
    return make_error(ec::undo_window_expired, c.id);
  auto t = make(c, c.downstream, now);
  t.conn.state = conn_state::awaiting_approval;
  t.conn.decided_by.reset();
  t.conn.decided_at.reset();
  t.conn.manual_approval = false;
  // The downstream's own window still runs from its request.
  t.conn.undo_until.reset();
  if (auto requested = parse_time(c.requested_at);
      requested && window_open(c.requested_at, now, lim))
    t.conn.undo_until = format_time(*requested + lim.undo_window);
  // The request waits for approval again, with a fresh request_ttl.
  t.expiry_change = expiry::set;
  t.expires_at = format_time(now + lim.request_ttl);
  t.remove_unpublished_copies = true;
  t.events.push_back(
    {"undone", c.upstream, user, std::nullopt, R"({"side":"upstream","to":"awaiting_approval"})"});
  return t;
}

caf::expected<transition> decide_downstream_undo(const connection& c, const std::string& user,
                                                 time_point now, const rule_limits& lim) {
  if (!is_live(c.state))
    return invalid_state(c);
  // The downstream's window runs from its request, or from the auto-approval.
  const auto& from = c.state == conn_state::active && !c.manual_approval
                       ? c.decided_at
                       : std::optional<std::string>{c.requested_at};
  if (!window_open(from, now, lim))
    return make_error(ec::undo_window_expired, c.id);
  auto t = make(c, c.upstream, now);
  t.conn.state = conn_state::cancelled;
  t.conn.ended_by = user;
  t.conn.ended_at = format_time(now);
  t.conn.undo_until.reset();
  t.expiry_change = expiry::clear;
  t.remove_unpublished_copies = true;
  t.events.push_back(
    {"undone", c.downstream, user, std::nullopt, R"({"side":"downstream","to":"cancelled"})"});
  return t;
}

caf::expected<transition> decide_cancel(const connection& c, const levels& at_down,
                                        const std::string& user, time_point now) {
  if (at_down.cm < level::admin)
    return denied("cancel", c.downstream);
  if (c.state != conn_state::awaiting_approval && c.state != conn_state::requesting)
    return invalid_state(c);
  auto t = make(c, c.upstream, now);
  t.conn.state = conn_state::cancelled;
  t.conn.ended_by = user;
  t.conn.ended_at = format_time(now);
  t.conn.undo_until.reset();
  t.expiry_change = expiry::clear;
  t.events.push_back({"cancelled", c.downstream, user, std::nullopt, {}});
  return t;
}

caf::expected<transition> decide_disconnect(const connection& c, const levels& at_up,
                                            const levels& at_down, const std::string& user,
                                            const std::string& reason, bool accept_terms,
                                            time_point now) {
  bool down_admin = at_down.cm == level::admin;
  bool up_admin = at_up.cm == level::admin;
  if (!down_admin && !up_admin)
    return denied("disconnect", c.downstream);
  if (reason.find_first_not_of(" \t\r\n") == std::string::npos)
    return make_error(ec::reason_required);
  if (!accept_terms)
    return make_error(ec::terms_not_accepted);
  if (c.state != conn_state::active)
    return invalid_state(c);
  // The side the user acts for: the downstream when admin on both.
  const auto& side = down_admin ? c.downstream : c.upstream;
  auto t = make(c, down_admin ? c.upstream : c.downstream, now);
  t.conn.state = conn_state::disconnected;
  t.conn.ended_by = user;
  t.conn.ended_at = format_time(now);
  t.conn.reason = reason;
  t.conn.undo_until.reset();
  t.bar_downstream = true; // R11
  t.stop_sync = true;      // R12
  t.events.push_back({"disconnected", side, user, reason, {}});
  return t;
}

std::optional<transition>
decide_expire(const connection& c, const std::optional<std::string>& expires_at, time_point now) {
  auto at_text = format_time(now);
  if (c.state != conn_state::awaiting_approval || !expires_at || *expires_at > at_text)
    return std::nullopt;
  auto t = make(c, c.upstream, now);
  t.conn.state = conn_state::expired;
  t.conn.ended_at = at_text;
  t.conn.undo_until.reset();
  t.expiry_change = expiry::clear;
  t.events.push_back({"expired", c.downstream, std::nullopt, std::nullopt, {}});
  return t;
}

// -- permissions -----------------------------------------------------------------------

bool may_view(const levels& at) {
  return at.cm >= level::read_only;
}

bool may_configure_distribution(const levels& at) {
  return at.cm >= level::admin;
}

bool may_set_approval(const actor_user& u, const std::string& company) {
  return u.company_admin && u.company == company;
}

} // namespace projlink::rules
