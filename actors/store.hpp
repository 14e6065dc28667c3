#pragma once

// The store actor: the one owner of the SQLite database (SPEC §11).
//
// It runs detached (its own thread) because SQLite blocks. Work arrives as
// closures over the connection:
//
//   (atom::write, store_fn) -> result of the closure
//       Batched with every other write already in the mailbox into one
//       IMMEDIATE transaction (group commit): one fsync for the batch. Each
//       closure runs inside its own SAVEPOINT, so a closure that fails rolls
//       back only its own changes and its caller gets its error. Replies are
//       sent only after COMMIT returned: an acknowledged write is durable.
//   (atom::read, store_fn) -> result of the closure
//       Runs at once when no write is queued; otherwise it joins the batch
//       after those writes (so a pipelined write-then-read sees the write).
//   (atom::ping) -> atom::pong
//       Liveness check for the watchdog: answered when the queue drains.
//   (atom::shutdown) -> void
//       Commits what is queued, closes the database and quits.
//
// The closure returns caf::expected<caf::message>; helpers `store_write` and
// `store_read` below wrap typed closures.

#include "actors/atoms.hpp"
#include "actors/error.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/actor_system.hpp>
#include <caf/expected.hpp>
#include <caf/message.hpp>

#include <atomic>
#include <functional>
#include <memory>

namespace SQLite {
class Database;
}

namespace projlink {

using store_fn = std::function<caf::expected<caf::message>(SQLite::Database&)>;

} // namespace projlink

// A closure never leaves the process: the store is local by design.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::store_fn)

namespace projlink {

/// Counters the store keeps for Daemon.GetMetrics.
struct store_metrics {
  std::atomic<uint64_t> commits{0};
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> failed_commits{0};
};

/// Spawns the store actor owning `db`. `metrics` must outlive the actor.
/// `detached = false` only for deterministic tests (test_coordinator), where
/// blocking the one scheduler thread is what they want.
caf::actor spawn_store(caf::actor_system& sys, std::shared_ptr<SQLite::Database> db,
                       store_metrics* metrics, bool detached = true);

/// Spawns a reader: a detached actor with its own connection `db` (opened
/// after the store's, on the same file) that answers (atom::read, store_fn)
/// at once, each closure inside one deferred read transaction (one WAL
/// snapshot), never waiting for the store's group commits. It sees what the
/// store has committed, which is everything anyone was told succeeded; a
/// client that pipelines a write and then a read must send that read to the
/// store instead (call_context::read_target does). (atom::shutdown) closes it.
caf::actor spawn_reader(caf::actor_system& sys, std::shared_ptr<SQLite::Database> db,
                        store_metrics* metrics);

/// Wraps a typed closure `caf::expected<T>(SQLite::Database&)` as a store_fn;
/// its reply carries the T (nothing for expected<void>).
template <class F>
store_fn make_store_fn(F f) {
  return [f = std::move(f)](SQLite::Database& d) -> caf::expected<caf::message> {
    auto r = f(d);
    if (!r)
      return std::move(r.error());
    if constexpr (std::is_same_v<decltype(r), caf::expected<void>>)
      return caf::make_message();
    else
      return caf::make_message(std::move(*r));
  };
}

} // namespace projlink
