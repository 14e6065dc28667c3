#pragma once

// Connections (SPEC §2-§4) as SQL over one connection: the authoritative
// check of every rule and the durable record of every decision.
//
// A project actor decides *when* a change is attempted (it serializes its
// own decisions); these functions decide *whether* it is allowed, against
// committed state, inside the store's transaction. Because the store runs
// one closure at a time, two decisions made concurrently by different
// project actors are checked one after the other, so together they can never
// break R3 or R5 (the partial unique index on connections is a second guard).
//
// REQUIRES: called on the store's thread; writes inside a transaction (the
// store's SAVEPOINT rolls back a function that returns an error, so a
// refusal changes nothing).

#include "actors/model.hpp"
#include "actors/rules.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace projlink {

/// The outcome of one decision: the connection as committed, the history
/// entries written with it (seq filled in), and the peer project that must
/// be told (empty: none). Travels between project actors.
struct decision {
  connection conn;
  std::vector<event> events;
  std::string peer;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, decision& x) {
  return f(x.conn, x.events, x.peer);
}

/// A peer project that has not acknowledged a decision yet.
struct unacked {
  connection conn;
  std::string peer;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, unacked& x) {
  return f(x.conn, x.peer);
}

namespace connections {

using db = SQLite::Database;

/// Records `e` in its project's history and, for a connection event
/// (`peer` set), in the other project's too; returns the rows with their seq.
std::vector<event> record_event(db& d, const event& e);

/// A fresh connection id (`c-` + 16 hex digits).
std::string new_id();

// -- decisions (writes) ------------------------------------------------------

/// Request (R1-R7, R11, R13), decided on the upstream side: creates `id` as
/// awaiting_approval, or active at once when the upstream's company
/// auto-approves (R7). Repeating a request with the same id and downstream
/// returns the existing record (idempotent).
caf::expected<decision> request(db& d, const rule_limits& lim, const std::string& id,
                                const std::string& as, const std::string& downstream,
                                const std::string& upstream);
caf::expected<decision> approve(db& d, const rule_limits& lim, const std::string& as,
                                const std::string& id);
caf::expected<decision> reject(db& d, const std::string& as, const std::string& id,
                               const std::optional<std::string>& reason);
/// R9: the upstream or the downstream undo, chosen as SPEC R9 says.
caf::expected<decision> undo(db& d, const rule_limits& lim, const std::string& as,
                             const std::string& id);
caf::expected<decision> cancel(db& d, const std::string& as, const std::string& id);
caf::expected<decision> disconnect(db& d, const std::string& as, const std::string& id,
                                   const std::string& reason, bool accept_terms);
/// R10: expires `id` if it is still pending and its deadline passed;
/// otherwise returns it unchanged with no events (idempotent).
caf::expected<decision> expire(db& d, const std::string& id);

/// Clears the "peer has not acknowledged" mark once `peer` confirmed `state`.
caf::expected<void> acknowledged(db& d, const std::string& id, const std::string& peer,
                                 conn_state state);

// -- settings (writes) -------------------------------------------------------

caf::expected<settings> set_distribution(db& d, const std::string& as,
                                         const std::string& project, const std::string& mode,
                                         const std::vector<std::string>& users,
                                         std::vector<event>* written);
caf::expected<bool> set_approval_mode(db& d, const std::string& as, const std::string& company,
                                      bool auto_approve, std::vector<event>* written);

// -- reads -------------------------------------------------------------------

caf::expected<connection> find(db& d, const std::string& id);
/// Get with the view permission of SPEC §4 (either side).
caf::expected<connection> get(db& d, const std::string& as, const std::string& id);
/// Connections.List: the connections of `project` on either side, ascending
/// by id, after `after` (exclusive), at most `limit`.
caf::expected<std::vector<connection>> list(db& d, const std::string& as,
                                            const std::string& project,
                                            const std::optional<std::string>& after,
                                            int64_t limit);
caf::expected<std::vector<event>> history(db& d, const std::string& as,
                                          const std::string& project, int64_t after,
                                          int64_t limit);
caf::expected<settings> get_settings(db& d, const std::string& as, const std::string& project);
/// The projects `as` may view (Watch without a project), or just `project`
/// after checking the view permission.
caf::expected<std::vector<std::string>> viewable(db& d, const std::string& as,
                                                 const std::optional<std::string>& project);

/// Pending requests whose deadline is at or before `until`, and the earliest
/// deadline still ahead (empty: none).
struct expiries {
  std::vector<std::pair<std::string, std::string>> due; ///< (connection, downstream)
  std::string next;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, expiries& x) {
  return f(x.due, x.next);
}
caf::expected<expiries> due_expiries(db& d, const std::string& until);
/// Decisions some peer has not acknowledged (re-sent at start).
caf::expected<std::vector<unacked>> unacknowledged(db& d);

} // namespace connections
} // namespace projlink
