#pragma once

// The connection rules of SPEC §2 and the permissions of §4 as pure
// functions over values (STYLE.md: rules tested without a database).
//
// Each function decides one side's part of one action from what that side
// knows (its project's facts, the acting user's levels there, the
// connection record) and returns either a named error (`ec`, in a
// caf::error) or a `transition`: the new record, the events to record and
// the effects to apply. No function here reads or writes anything; the
// caller loads the facts and persists the transition (today
// actors/connections_db.cpp, inside the store's transaction).
//
// The split by side follows SPEC §11: the downstream checks its side of a
// request (`check_request_downstream`) before the upstream decides
// (`decide_request`); the upstream decides Approve, Reject, its Undo and
// expiry; the downstream decides Cancel and its Undo; Disconnect is decided
// by the caller's side.

#include "actors/model.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace projlink {

/// The configured limits the rules use (SPEC §8 `connections`).
struct rule_limits {
  std::chrono::milliseconds undo_window{std::chrono::minutes{5}};
  std::chrono::milliseconds request_ttl{std::chrono::hours{24 * 30}};
  int64_t max_revisions = 100'000;
};

namespace rules {

using time_point = std::chrono::system_clock::time_point;

/// A user's effective levels in one project (SPEC §1: a company admin is
/// admin on both tools in every project of their company).
struct levels {
  level cm = level::none;
  level drawings = level::none;
};

/// The acting user, as the directory has it.
struct actor_user {
  std::string id;
  std::string company;
  bool company_admin = false;
};

/// What one project knows about itself that its rules use (SPEC §11).
struct project_side {
  std::string id;
  std::string company;
  bool active = true;
  project_role role = project_role::none;
  bool permanently_disconnected = false;
  /// Live (not deleted) drawing revisions, for R13.
  int64_t revisions = 0;
  /// Its own live connection as a downstream, if any (R3, R5).
  std::optional<std::string> upstream_link;
  /// How many live connections it has as an upstream (R5).
  int64_t downstream_links = 0;
};

/// Levels of `u` in a project of company `project_company` whose directory
/// gives `entry` (none when the user has no entry there).
levels effective(const actor_user& u, const std::string& project_company, levels entry);

/// A history entry a transition records (SPEC R15). `side` is the project
/// where it happened; each connection event is recorded in the history of
/// both projects of the connection.
struct event_spec {
  std::string kind;
  std::string side;
  std::optional<std::string> user;
  std::optional<std::string> reason;
  std::string detail; ///< JSON object as text; empty = none
};

/// How a transition changes the request's expiry deadline (R10).
enum class expiry : uint8_t { keep, set, clear };

/// What one decision changes (SPEC §11: the record, events, and the sync
/// effects its state change implies).
struct transition {
  connection conn;
  std::string at; ///< when it was decided: the time of its events
  std::vector<event_spec> events;
  expiry expiry_change = expiry::keep;
  std::string expires_at; ///< with expiry::set
  /// R6: fix both roles (the connection became active).
  bool fix_roles = false;
  /// §5: queue the backfill of every published upstream revision.
  bool start_sync = false;
  /// R9: remove the copies still unpublished downstream and queued jobs.
  bool remove_unpublished_copies = false;
  /// R12: queue nothing more for this connection.
  bool stop_sync = false;
  /// R11: the downstream can never connect again.
  bool bar_downstream = false;
  /// The project on the other side, which must learn of the decision.
  std::string peer;
};

// -- request ------------------------------------------------------------------

/// The downstream's side of Request(as, downstream → upstream): R1 (self,
/// active), R2 (cm admin and drawings ≥ read_only downstream), R3, R5, R11,
/// R13. `at` are the user's levels in the downstream project.
caf::error check_request_downstream(const project_side& down, const levels& at,
                                    const std::string& upstream, const rule_limits& lim);

/// The upstream's side and decision: R1, R2 (drawings ≥ read_only
/// upstream), R5, R13, then R7: active at once when `auto_approve`, else
/// awaiting_approval until `request_ttl` passes.
caf::expected<transition> decide_request(const project_side& up, const levels& at,
                                         const std::string& id, const std::string& user,
                                         const std::string& downstream, bool auto_approve,
                                         time_point now, const rule_limits& lim);

// -- decisions on an existing connection ---------------------------------------

/// Facts of both ends that Approve re-checks (R1, R13).
struct ends {
  project_side up;
  project_side down;
};

/// Approve: cm admin upstream, awaiting_approval, not past `expires_at`
/// (R10), both ends active (R1) and within R13.
caf::expected<transition> decide_approve(const connection& c,
                                         const std::optional<std::string>& expires_at,
                                         const ends& e, const levels& at_up,
                                         const std::string& user, time_point now,
                                         const rule_limits& lim);

/// Reject: cm admin upstream, awaiting_approval.
caf::expected<transition> decide_reject(const connection& c, const levels& at_up,
                                        const std::string& user,
                                        const std::optional<std::string>& reason, time_point now);

/// R9: which undo applies when the user has `at_up` and `at_down`.
enum class undo_side : uint8_t { upstream, downstream };
caf::expected<undo_side> choose_undo(const connection& c, const levels& at_up,
                                     const levels& at_down, time_point now, const rule_limits& lim);

/// The upstream undo: an active connection a user approved, within the
/// window after the approval → awaiting_approval (a fresh request_ttl).
caf::expected<transition> decide_upstream_undo(const connection& c, const std::string& user,
                                               time_point now, const rule_limits& lim);

/// The downstream undo: a live connection within the window after its
/// request (or its auto-approval) → cancelled.
caf::expected<transition> decide_downstream_undo(const connection& c, const std::string& user,
                                                 time_point now, const rule_limits& lim);

/// Cancel (R10): cm admin downstream, awaiting_approval (or requesting).
caf::expected<transition> decide_cancel(const connection& c, const levels& at_down,
                                        const std::string& user, time_point now);

/// Disconnect (R11): cm admin on either side, a reason, accepted terms,
/// active. Decided by the downstream side when the user is admin on both.
caf::expected<transition> decide_disconnect(const connection& c, const levels& at_up,
                                            const levels& at_down, const std::string& user,
                                            const std::string& reason, bool accept_terms,
                                            time_point now);

/// Expiry (R10): a pending request whose deadline passed → expired;
/// nullopt when it is not due (or no longer pending).
std::optional<transition>
decide_expire(const connection& c, const std::optional<std::string>& expires_at, time_point now);

// -- permissions without a transition --------------------------------------------

/// §4 view: cm ≥ read_only in that project.
bool may_view(const levels& at);

/// §4 configure_distribution: cm admin in that project; each listed user
/// must be cm admin there (or a company admin of its company).
bool may_configure_distribution(const levels& at);

/// R7: only a company admin of `company` changes its approval settings.
bool may_set_approval(const actor_user& u, const std::string& company);

} // namespace rules
} // namespace projlink
