// The rules of SPEC §2 and the permissions of §4 as pure functions
// (actors/rules.hpp): no database, no actor system. One case per rule and
// per refusal.

#include "actors/error.hpp"
#include "actors/rules.hpp"

#include <catch2/catch.hpp>

using namespace projlink;
using namespace projlink::rules;
using namespace std::chrono_literals;

namespace {

const auto t0 = *parse_time("2026-11-28T10:00:00.000Z");
const rule_limits lim{5min, 30 * 24h, 100};

const levels admin{level::admin, level::admin};
const levels reader{level::read_only, level::read_only};
const levels none{};

project_side side(std::string id, std::string company = "co") {
  project_side p;
  p.id = std::move(id);
  p.company = std::move(company);
  return p;
}

/// The error's code, or ec::none for success.
ec code(const caf::error& e) {
  return e ? code_of(e) : ec::none;
}

template <class T>
ec code(const caf::expected<T>& x) {
  return x ? ec::none : code_of(x.error());
}

/// A connection as decide_request makes it.
connection requested(bool auto_approve, time_point at = t0) {
  auto t = decide_request(side("u"), admin, "c-1", "alice", "d", auto_approve, at, lim);
  REQUIRE(t);
  return t->conn;
}

/// An active connection approved by a person at `at`.
connection approved(time_point at = t0) {
  auto c = requested(false, at);
  auto t = decide_approve(c, std::nullopt, {side("u"), side("d")}, admin, "ursula", at, lim);
  REQUIRE(t);
  return t->conn;
}

} // namespace

TEST_CASE("rules: a company admin is admin on both tools in every project of their company only") {
  actor_user boss{"boss", "co", true};
  CHECK(effective(boss, "co", none).cm == level::admin);
  CHECK(effective(boss, "co", none).drawings == level::admin);
  CHECK(effective(boss, "other", reader).cm == level::read_only);
  actor_user plain{"p", "co", false};
  CHECK(effective(plain, "co", reader).cm == level::read_only);
}

// -- Request: the downstream's side ---------------------------------------------------

TEST_CASE("rules R1: a project cannot connect to itself") {
  CHECK(code(check_request_downstream(side("d"), admin, "d", lim)) == ec::self_connection);
}

TEST_CASE("rules R2: the requester needs cm admin downstream") {
  CHECK(code(check_request_downstream(side("d"), {level::standard, level::admin}, "u", lim))
        == ec::permission_denied);
}

TEST_CASE("rules R2: the requester needs drawings read_only downstream") {
  CHECK(code(check_request_downstream(side("d"), {level::admin, level::none}, "u", lim))
        == ec::permission_denied);
}

TEST_CASE("rules R1: an inactive downstream cannot request") {
  auto d = side("d");
  d.active = false;
  CHECK(code(check_request_downstream(d, admin, "u", lim)) == ec::project_inactive);
}

TEST_CASE("rules R11: a disconnected downstream can never request again") {
  auto d = side("d");
  d.permanently_disconnected = true;
  CHECK(code(check_request_downstream(d, admin, "u", lim)) == ec::permanently_disconnected);
}

TEST_CASE("rules R3: a downstream with a live upstream link is AlreadyConnected") {
  auto d = side("d");
  d.upstream_link = "c-0";
  auto err = check_request_downstream(d, admin, "u", lim);
  CHECK(code(err) == ec::already_connected);
}

TEST_CASE("rules R5: an upstream (by role or by live downstreams) cannot request") {
  auto d = side("d");
  d.role = project_role::upstream;
  CHECK(code(check_request_downstream(d, admin, "u", lim)) == ec::role_conflict);
  auto e = side("e");
  e.downstream_links = 1;
  CHECK(code(check_request_downstream(e, admin, "u", lim)) == ec::role_conflict);
}

TEST_CASE("rules R13: a downstream over max_drawing_revisions cannot request") {
  auto d = side("d");
  d.revisions = 101;
  CHECK(code(check_request_downstream(d, admin, "u", lim)) == ec::too_many_revisions);
  d.revisions = 100;
  CHECK(code(check_request_downstream(d, admin, "u", lim)) == ec::none);
}

// -- Request: the upstream's decision --------------------------------------------------

TEST_CASE("rules R2: the requester needs drawings read_only upstream") {
  CHECK(code(decide_request(side("u"), none, "c-1", "a", "d", true, t0, lim))
        == ec::permission_denied);
}

TEST_CASE("rules R1: an inactive upstream refuses") {
  auto u = side("u");
  u.active = false;
  CHECK(code(decide_request(u, reader, "c-1", "a", "d", true, t0, lim)) == ec::project_inactive);
}

TEST_CASE("rules R5: a downstream (by role or by a live link) cannot be an upstream") {
  auto u = side("u");
  u.role = project_role::downstream;
  CHECK(code(decide_request(u, reader, "c-1", "a", "d", true, t0, lim)) == ec::role_conflict);
  auto v = side("v");
  v.upstream_link = "c-9";
  CHECK(code(decide_request(v, reader, "c-1", "a", "d", true, t0, lim)) == ec::role_conflict);
}

TEST_CASE("rules R13: an upstream over max_drawing_revisions refuses") {
  auto u = side("u");
  u.revisions = 101;
  CHECK(code(decide_request(u, reader, "c-1", "a", "d", true, t0, lim)) == ec::too_many_revisions);
}

TEST_CASE("rules R4: an upstream with downstreams accepts more") {
  auto u = side("u");
  u.role = project_role::upstream;
  u.downstream_links = 40;
  CHECK(code(decide_request(u, reader, "c-1", "a", "d", true, t0, lim)) == ec::none);
}

TEST_CASE("rules R7: auto-approval makes the request active at once, fixing roles and syncing") {
  auto t = decide_request(side("u"), reader, "c-1", "alice", "d", true, t0, lim);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::active);
  CHECK(t->conn.decided_at == format_time(t0));
  CHECK_FALSE(t->conn.decided_by); // nobody: an auto-approval
  CHECK(t->fix_roles);
  CHECK(t->start_sync);
  CHECK(t->expiry_change == expiry::keep);
  REQUIRE(t->events.size() == 2);
  CHECK(t->events[0].kind == "requested");
  CHECK(t->events[0].side == "d");
  CHECK(t->events[1].kind == "auto_approved");
  CHECK(t->events[1].side == "u");
  CHECK(t->peer == "d");
}

TEST_CASE("rules R7 and R10: without auto-approval the request waits until request_ttl") {
  auto t = decide_request(side("u"), reader, "c-1", "alice", "d", false, t0, lim);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::awaiting_approval);
  CHECK(t->expiry_change == expiry::set);
  CHECK(t->expires_at == format_time(t0 + 30 * 24h));
  CHECK(t->conn.undo_until == format_time(t0 + 5min));
  CHECK_FALSE(t->fix_roles);
  CHECK_FALSE(t->start_sync);
}

// -- Approve / Reject ---------------------------------------------------------------------

TEST_CASE("rules §4: approve needs cm admin upstream") {
  auto c = requested(false);
  CHECK(code(decide_approve(c, std::nullopt, {side("u"), side("d")},
                            {level::standard, level::admin}, "x", t0, lim))
        == ec::permission_denied);
}

TEST_CASE("rules: approve only what awaits approval") {
  auto c = requested(true);
  CHECK(code(decide_approve(c, std::nullopt, {side("u"), side("d")}, admin, "x", t0, lim))
        == ec::invalid_state);
}

TEST_CASE("rules R10: an expired request cannot be approved") {
  auto c = requested(false);
  auto deadline = format_time(t0 + 1s);
  CHECK(code(decide_approve(c, deadline, {side("u"), side("d")}, admin, "x", t0 + 2s, lim))
        == ec::invalid_state);
}

TEST_CASE("rules R1: approve refuses when an end became inactive") {
  auto c = requested(false);
  auto down = side("d");
  down.active = false;
  CHECK(code(decide_approve(c, std::nullopt, {side("u"), down}, admin, "x", t0, lim))
        == ec::project_inactive);
}

TEST_CASE("rules R13: approve refuses when an end has too many revisions") {
  auto c = requested(false);
  auto up = side("u");
  up.revisions = 1000;
  CHECK(code(decide_approve(c, std::nullopt, {up, side("d")}, admin, "x", t0, lim))
        == ec::too_many_revisions);
}

TEST_CASE("rules R6: approval activates, records who, fixes roles and starts the backfill") {
  auto c = requested(false);
  auto t = decide_approve(c, format_time(t0 + 1h), {side("u"), side("d")}, admin, "ursula",
                          t0 + 1min, lim);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::active);
  CHECK(t->conn.decided_by == "ursula");
  CHECK(t->conn.manual_approval);
  CHECK(t->conn.undo_until == format_time(t0 + 6min));
  CHECK(t->fix_roles);
  CHECK(t->start_sync);
  CHECK(t->expiry_change == expiry::clear);
  REQUIRE(t->events.size() == 1);
  CHECK(t->events[0].kind == "approved");
  CHECK(t->events[0].side == "u");
}

TEST_CASE("rules §4: reject needs cm admin upstream, and only what awaits approval") {
  auto c = requested(false);
  CHECK(code(decide_reject(c, reader, "x", std::nullopt, t0)) == ec::permission_denied);
  CHECK(code(decide_reject(requested(true), admin, "x", std::nullopt, t0)) == ec::invalid_state);
}

TEST_CASE("rules R8: a rejection keeps its reason and ends the record") {
  auto t = decide_reject(requested(false), admin, "ursula", std::string{"not yet"}, t0);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::rejected);
  CHECK(t->conn.reason == "not yet");
  CHECK(t->events[0].kind == "rejected");
  CHECK(t->events[0].reason == "not yet");
  CHECK_FALSE(is_live(t->conn.state)); // the downstream may request again
}

// -- Undo (R9) -------------------------------------------------------------------------------

TEST_CASE("rules R9: undo needs cm admin on one side") {
  CHECK(code(choose_undo(requested(false), reader, reader, t0, lim)) == ec::permission_denied);
}

TEST_CASE("rules R9: admin on both sides: the upstream undo for a user's approval in its window") {
  auto c = approved();
  CHECK(*choose_undo(c, admin, admin, t0 + 1min, lim) == undo_side::upstream);
  // Outside the approval's window, or for an auto-approval: the downstream undo.
  CHECK(*choose_undo(c, admin, admin, t0 + 6min, lim) == undo_side::downstream);
  CHECK(*choose_undo(requested(true), admin, admin, t0, lim) == undo_side::downstream);
}

TEST_CASE("rules R9: the upstream undo returns a user's approval to awaiting_approval") {
  auto c = approved();
  auto t = decide_upstream_undo(c, "ursula", t0 + 1min, lim);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::awaiting_approval);
  CHECK_FALSE(t->conn.decided_by);
  CHECK(t->expiry_change == expiry::set);
  CHECK(t->expires_at == format_time(t0 + 1min + 30 * 24h));
  CHECK(t->remove_unpublished_copies);
  CHECK(t->events[0].detail.find("upstream") != std::string::npos);
}

TEST_CASE("rules R9: the upstream never undoes an auto-approval") {
  CHECK(code(decide_upstream_undo(requested(true), "u", t0, lim)) == ec::invalid_state);
}

TEST_CASE("rules R9: the upstream undo window runs from the approval") {
  CHECK(code(decide_upstream_undo(approved(), "u", t0 + 5min, lim)) == ec::undo_window_expired);
}

TEST_CASE("rules R9: the downstream undo cancels within the window after its request") {
  auto t = decide_downstream_undo(requested(false), "alice", t0 + 4min, lim);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::cancelled);
  CHECK(t->remove_unpublished_copies);
  CHECK(code(decide_downstream_undo(requested(false), "alice", t0 + 5min, lim))
        == ec::undo_window_expired);
}

TEST_CASE("rules R9: after an auto-approval the downstream window runs from it") {
  auto c = requested(true, t0);
  CHECK(code(decide_downstream_undo(c, "alice", t0 + 4min, lim)) == ec::none);
}

TEST_CASE("rules R9: nothing to undo once the connection ended") {
  auto t = decide_reject(requested(false), admin, "ursula", std::nullopt, t0);
  REQUIRE(t);
  CHECK(code(decide_downstream_undo(t->conn, "alice", t0, lim)) == ec::invalid_state);
}

// -- Cancel, expiry (R10) --------------------------------------------------------------------

TEST_CASE("rules R10: cancel needs cm admin downstream and a pending request") {
  CHECK(code(decide_cancel(requested(false), reader, "x", t0)) == ec::permission_denied);
  CHECK(code(decide_cancel(requested(true), admin, "x", t0)) == ec::invalid_state);
  auto t = decide_cancel(requested(false), admin, "alice", t0 + 40 * 24h);
  REQUIRE(t); // at any time
  CHECK(t->conn.state == conn_state::cancelled);
  CHECK(t->conn.ended_by == "alice");
}

TEST_CASE("rules R10: a pending request expires at its deadline, not before") {
  auto c = requested(false);
  auto deadline = format_time(t0 + 30 * 24h);
  CHECK_FALSE(decide_expire(c, deadline, t0 + 29 * 24h));
  auto t = decide_expire(c, deadline, t0 + 30 * 24h);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::expired);
  CHECK_FALSE(t->events[0].user);
  // Idempotent: an active connection never expires.
  CHECK_FALSE(decide_expire(requested(true), deadline, t0 + 31 * 24h));
}

// -- Disconnect (R11, R12) ----------------------------------------------------------------

TEST_CASE("rules R11: disconnect needs cm admin on either side") {
  CHECK(code(decide_disconnect(requested(true), reader, reader, "x", "why", true, t0))
        == ec::permission_denied);
}

TEST_CASE("rules R11: disconnect needs a reason") {
  CHECK(code(decide_disconnect(requested(true), admin, none, "x", "  \n", true, t0))
        == ec::reason_required);
}

TEST_CASE("rules R11: disconnect needs accepted terms") {
  CHECK(code(decide_disconnect(requested(true), admin, none, "x", "why", false, t0))
        == ec::terms_not_accepted);
}

TEST_CASE("rules R11: only an active connection is disconnected") {
  CHECK(code(decide_disconnect(requested(false), admin, admin, "x", "why", true, t0))
        == ec::invalid_state);
}

TEST_CASE("rules R11 and R12: a disconnect bars the downstream and stops its sync") {
  auto t = decide_disconnect(requested(true), admin, none, "ursula", "job done", true, t0);
  REQUIRE(t);
  CHECK(t->conn.state == conn_state::disconnected);
  CHECK(t->bar_downstream);
  CHECK(t->stop_sync);
  CHECK_FALSE(t->remove_unpublished_copies); // R12: copies stay
  CHECK(t->events[0].side == "u");           // decided by the upstream side
  CHECK(t->peer == "d");
  auto both = decide_disconnect(requested(true), admin, admin, "boss", "why", true, t0);
  CHECK(both->events[0].side == "d"); // admin on both: the downstream's side
}

// -- Permissions without a transition ---------------------------------------------------

TEST_CASE("rules §4: view needs cm read_only, distribution cm admin, approval a company admin") {
  CHECK(may_view(reader));
  CHECK_FALSE(may_view(none));
  CHECK(may_configure_distribution(admin));
  CHECK_FALSE(may_configure_distribution({level::standard, level::admin}));
  CHECK(may_set_approval({"b", "co", true}, "co"));
  CHECK_FALSE(may_set_approval({"b", "co", true}, "other"));
  CHECK_FALSE(may_set_approval({"p", "co", false}, "co"));
}
