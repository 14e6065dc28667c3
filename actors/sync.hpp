#pragma once

// Sync (SPEC §5, §11): a coordinator and `sync.workers` workers that copy
// drawings for active connections from the durable job queue.
//
//   coordinator (scheduler thread, never blocks)
//     (notify)  -- something was queued: claim due jobs and hand them out
//     claims a batch through the store, gives it to an idle worker, and
//     publishes the events the worker's batch produced.
//   worker (detached: reads files)
//     (request, jobs) -> events
//     verifies each file against its SHA-256 (once per blob per batch),
//     then applies the batch in one store transaction (sync_db::apply).
//
// At start the coordinator returns jobs a crash left running to pending.
// A job is at least once (the queue is durable) and at most once in effect
// (one copy per connection + upstream revision).

#include "actors/actors.hpp"
#include "actors/blob_store.hpp"
#include "actors/sync_db.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <atomic>

namespace projlink {

struct sync_metrics {
  std::atomic<uint64_t> applied{0};        ///< jobs done
  std::atomic<uint64_t> failed_attempts{0}; ///< jobs that failed an attempt
  std::atomic<uint64_t> batches{0};
};

caf::actor spawn_sync(caf::actor_system& sys, caf::actor store, hub_actor hub, caf::actor notifier,
                      const blob_store* blobs, uint32_t workers, sync_retry retry,
                      sync_metrics* metrics);

} // namespace projlink
