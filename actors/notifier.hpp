#pragma once

// The notifier (SPEC §10, §11): drains the durable outbox and delivers each
// message — to a Maildir, over SMTP (libcurl), or to the log — at least
// once, with exponential backoff, off every project actor's thread.
//
// It runs detached (its own thread) because delivery blocks (fsync, network).
//   (notify)                  -- something was queued: deliver what is due
//   (configure, settings)     -- a reload changed notifications.*
//   (shutdown)                -- finish the batch in hand, then quit
// Results are written back through the store (state, attempts, last error,
// next attempt). A crash between delivery and that write delivers again at
// the next start (at least once); a Maildir message keeps its file name, so
// there it is replaced, not duplicated.

#include "actors/notifications_db.hpp"
#include "config/config.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace projlink {

/// What the notifier needs of the configuration (paths resolved).
struct notifier_settings {
  delivery_kind delivery = delivery_kind::maildir;
  std::string from = "projlink@localhost";
  std::string maildir;        ///< absolute
  std::string smtp_url = "smtp://127.0.0.1:25";
  std::string smtp_username;
  std::string smtp_password_file;
  bool smtp_starttls = true;
  retry_policy retry{std::chrono::seconds{5}, std::chrono::hours{1}, 20};

  static notifier_settings from_config(const config& cfg);
};

} // namespace projlink

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::notifier_settings)

namespace projlink {

/// Counters for Daemon.GetMetrics.
struct notifier_metrics {
  std::atomic<uint64_t> delivered{0};
  std::atomic<uint64_t> failed_attempts{0};
  std::atomic<uint64_t> given_up{0};
};

/// `db`: the notifier's own connection to the database, for its reads
/// (queued notifications, due messages); its writes go through `store`.
caf::actor spawn_notifier(caf::actor_system& sys, caf::actor store,
                          std::shared_ptr<SQLite::Database> db, notifier_settings settings,
                          notifier_metrics* metrics);

/// The RFC 5322 text of one message (CRLF line ends), with the
/// X-Projlink-* headers of SPEC §10.
std::string render_message(const outbox_item& item, const std::string& from);

/// Delivers `items` the configured way; one result per item, in order.
/// Blocking: call it from the notifier's own thread only.
std::vector<delivery_result> deliver(const notifier_settings& s,
                                     const std::vector<outbox_item>& items);

} // namespace projlink
