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

/// The notifier's half: up to `limit` queued rows become one message per
/// recipient, rendered now (a list that resolves to nobody: one failed row
/// that says so). Returns how many queued rows it expanded.
caf::expected<int64_t> expand(db& d, int64_t limit);

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

/// Connections.Notifications, with the view permission.
caf::expected<std::vector<notification>> list(db& d, const std::string& as,
                                              const std::string& project, int64_t limit);

} // namespace notifications
} // namespace projlink
