#pragma once

// The durable outbox of SPEC §10 as SQL. `enqueue` runs inside the
// transaction of the decision that causes the notification, so a committed
// decision always has its notifications queued, and a rolled-back one none;
// it writes one small row per list and renders nothing. The notifier then
// `expand`s each into one row per recipient, rendered at that moment, in
// batches of its own: each message is delivered, retried and recorded on
// its own (one refused address does not hold up the others).
//
// REQUIRES: called on the store's thread, writes inside a transaction.

#include "actors/model.hpp"

#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace projlink {

/// One queued message, ready for delivery.
struct outbox_item {
  int64_t id = 0;
  std::string at;
  std::string event;      ///< connection_requested, request_rejected, …
  std::string project;    ///< the project whose list the recipient is on
  std::optional<std::string> connection;
  std::string recipient;  ///< one e-mail address
  std::string subject;
  std::string body;
  int64_t attempts = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, outbox_item& x) {
  return f(x.id, x.at, x.event, x.project, opt(x.connection), x.recipient, x.subject, x.body,
           x.attempts);
}

/// Connections.Notifications: one entry of the list.
struct notification {
  int64_t id = 0;
  std::string at;
  std::string event;
  std::string project;
  std::optional<std::string> connection;
  std::vector<std::string> recipients;
  std::string state; ///< pending | delivered | failed
  int64_t attempts = 0;
  std::optional<std::string> last_error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, notification& x) {
  return f(x.id, x.at, x.event, x.project, opt(x.connection), x.recipients, x.state, x.attempts,
           opt(x.last_error));
}

/// A queued notification, resolved and rendered (notifications::prepare).
struct expansion {
  int64_t id = 0;                      ///< the queued outbox row
  std::vector<std::string> recipients; ///< empty: nobody to tell
  std::string subject;
  std::string body;
  std::string error;                   ///< why nobody, when empty
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, expansion& x) {
  return f(x.id, x.recipients, x.subject, x.body, x.error);
}

/// The outcome of one delivery attempt.
struct delivery_result {
  int64_t id = 0;
  bool delivered = false;
  bool permanent = false; ///< the server refused for good (e.g. 550): no retry
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delivery_result& x) {
  return f(x.id, x.delivered, x.permanent, x.error);
}

namespace notifications {

using db = SQLite::Database;

/// Queues what `e` (an event of connection `c`, as recorded: its seq set)
/// notifies, per SPEC §10: one row per list, in the decision's transaction.
/// Recipients and text are resolved later by `expand`. Returns the rows.
int enqueue(db& d, const event& e, const connection& c);

/// The notifier's half, read side: for up to `limit` queued rows, the
/// recipients and the rendered message, from committed state. Runs on the
/// notifier's own read connection, off the store's thread.
caf::expected<std::vector<expansion>> prepare(db& d, int64_t limit);

/// The notifier's half, write side: each queued row becomes one message
/// per recipient (a list that resolves to nobody: one failed row that says
/// so). A row already expanded is left alone. Returns the rows expanded.
caf::expected<int64_t> expand(db& d, const std::vector<expansion>& xs);

/// The distribution list of `project`, resolved to e-mail addresses.
std::vector<std::string> recipients_of(db& d, const std::string& project);

/// Up to `limit` pending messages due at `now`, oldest first.
caf::expected<std::vector<outbox_item>> due(db& d, const std::string& now, int64_t limit);

/// Records results; a failure is retried after `backoff(attempts)` until
/// `max_attempts`, then marked failed. Returns the earliest next attempt of
/// anything still pending (empty: none).
caf::expected<std::string> record(db& d, const std::vector<delivery_result>& results,
                                  std::chrono::milliseconds initial, std::chrono::milliseconds max,
                                  int64_t max_attempts);

/// When the next pending message is due: now, the earliest retry, or empty.
caf::expected<std::string> next_due(db& d);

/// Connections.Notifications, with the view permission.
/// Newest first (by at, then id), after the (at, id) `after` (exclusive).
caf::expected<std::vector<notification>> list(db& d, const std::string& as,
                                              const std::string& project,
                                              const std::optional<std::pair<std::string, int64_t>>& after,
                                              int64_t limit);

} // namespace notifications
} // namespace projlink
