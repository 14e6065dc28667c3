#pragma once

// Every actor interface of the daemon, in one place (STYLE.md): a reader
// learns the whole message protocol from this page.
//
//   session ──route──► registry ──delegate──► project actor ──► store
//                                                │   ▲
//                    project actor ◄─route/update┘   └─ hub (Watch)
//
// Project actors never hold each other's handles: every message to a project
// goes through the registry by project id (SPEC §13), so a peer that was
// passivated, restarted or (later) lives on another node is reached the same
// way. Every message carries plain values (ids, model types), never pointers.

#include "actors/atoms.hpp"
#include "actors/connections_db.hpp"
#include "actors/model.hpp"

#include <caf/actor.hpp>
#include <caf/actor_addr.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <functional>
#include <string>
#include <vector>

namespace projlink {

/// One project's actor (actors/project.cpp). It alone decides changes to its
/// project's connection state, one request at a time as a downstream; each
/// decision is persisted through the store before it is acknowledged.
using project_actor = caf::typed_actor<
  /// Session → downstream: Request(as, upstream). Queued behind this
  /// project's other requests; answered with the connection as committed.
  caf::replies_to<atom::request, std::string, std::string>::with<connection>,
  /// Downstream → upstream: request of connection (id, as, downstream). The
  /// upstream checks every rule, persists and answers: a decision is
  /// "accept", an error "refuse". Idempotent by connection id.
  caf::replies_to<atom::request, std::string, std::string, std::string>::with<decision>,
  /// Session → upstream: Approve(as, connection).
  caf::replies_to<atom::approve, std::string, std::string>::with<connection>,
  /// Session → upstream: Reject(as, connection, reason; "" = none).
  caf::replies_to<atom::reject, std::string, std::string, std::string>::with<connection>,
  /// Session → downstream: Undo(as, connection); R9 picks the side.
  caf::replies_to<atom::undo, std::string, std::string>::with<connection>,
  /// Session → downstream: Cancel(as, connection).
  caf::replies_to<atom::cancel, std::string, std::string>::with<connection>,
  /// Session → downstream: Disconnect(as, connection, reason, accept_terms).
  caf::replies_to<atom::disconnect, std::string, std::string, std::string, bool>::with<connection>,
  /// Registry → downstream: the request's ttl passed (R10). Idempotent.
  caf::replies_to<atom::expire, std::string>::with<connection>,
  /// Peer → project: a decision on a connection they share, until acked.
  /// Idempotent by (connection id, state).
  caf::replies_to<atom::update, connection>::with<atom::ack>,
  /// Self: passivation check.
  caf::reacts_to<atom::tick>,
  /// Registry → project: stop once idle (it reported idle before).
  caf::reacts_to<atom::passivate>>;

/// Receives a committed event; returns false when the subscriber is gone.
using event_sink = std::function<bool(const event&)>;

/// One Watch: the projects it covers and where events go. Local only.
struct subscription {
  caf::actor_addr owner;              ///< unsubscribed when this actor ends
  std::vector<std::string> projects;  ///< events of these projects (as either side)
  event_sink sink;
};

} // namespace projlink

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::subscription)

namespace projlink {

/// The event hub (actors/hub.cpp): fans committed events out to Watch calls.
using hub_actor = caf::typed_actor<
  /// Adds a Watch; removed when its owner terminates or its sink says so.
  caf::reacts_to<atom::subscribe, subscription>,
  /// Events committed by a decision, in seq order.
  caf::reacts_to<atom::publish, std::vector<event>>>;

/// Limits read by project actors; changed by a reload. Thread-safe.
struct live_limits {
  std::atomic<int64_t> undo_window_ms{5 * 60 * 1000};
  std::atomic<int64_t> request_ttl_ms{int64_t{30} * 24 * 3600 * 1000};
  std::atomic<int64_t> max_revisions{100'000};
  std::atomic<int64_t> passivate_after_ms{10 * 60 * 1000};
  std::atomic<int64_t> max_live{1'000'000};
  rule_limits rules() const {
    return {std::chrono::milliseconds{undo_window_ms.load()},
            std::chrono::milliseconds{request_ttl_ms.load()}, max_revisions.load()};
  }
};

/// Counters of the registry for GetStatus / GetMetrics.
struct registry_metrics {
  std::atomic<int64_t> live{0};        ///< live project actors
  std::atomic<uint64_t> spawned{0};
  std::atomic<uint64_t> passivated{0};
  std::atomic<uint64_t> failed{0};     ///< project actors that ended with an error
  std::atomic<uint64_t> resent{0};     ///< peer updates re-sent after a restart
  std::atomic<uint64_t> expired{0};    ///< requests expired by the timer
  std::atomic<uint64_t> evicted{0};    ///< passivated early to stay within actors.max_live
  std::atomic<uint64_t> unknown{0};    ///< messages for projects that do not exist (no actor)
};

/// What every project actor needs; owned by whoever spawns the registry and
/// outliving every actor.
struct project_env {
  caf::actor store;
  caf::actor reader; ///< reads of committed state (the store in deterministic tests)
  caf::actor notifier; ///< kicked after every decision that queued notifications
  caf::actor sync;     ///< kicked when an activation queued a backfill
  caf::actor registry;
  hub_actor hub;
  const live_limits* limits = nullptr;
  registry_metrics* metrics = nullptr;
};

/// The registry / supervisor (actors/registry.cpp). Dynamically typed
/// because it forwards any project message:
///   (route, project id, message)  -> whatever the project actor answers;
///       on first use it checks (one read) that the project exists, and
///       answers NotFound(project) without spawning anything if not; holds
///       messages while an actor loads or passivates; keeps at most
///       actors.max_live actors, passivating the least recently used.
///   (idle, project id, its address) -- from a project actor: passivate it.
///   (schedule)                    -- a pending request was created: re-arm
///                                    the expiry timer (R10).
///   (recover)                     -- at start: re-send unacknowledged peer
///                                    updates, expire what is due.
///   (status)                      -> live project actors (int64_t)
///   (shutdown)                    -- stop every project actor, then itself.
caf::actor spawn_registry(caf::actor_system& sys, caf::actor store, caf::actor reader,
                          caf::actor notifier, caf::actor sync, hub_actor hub,
                          const live_limits* limits, registry_metrics* metrics);

hub_actor spawn_hub(caf::actor_system& sys);

/// Spawns the actor of `project` (used by the registry).
project_actor spawn_project(caf::actor_system& sys, std::string project, project_env env);

/// Sends `conn` to `peer` through the registry until it is acknowledged
/// (a few tries with backoff), then clears the durable "unacknowledged" mark;
/// what is still unacknowledged is re-sent at the next start. Runs in a
/// short-lived actor of its own, so any actor may call it.
void inform_peer(caf::actor_system& sys, const project_env& env, connection conn,
                 std::string peer);

} // namespace projlink
