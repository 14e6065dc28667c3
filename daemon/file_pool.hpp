#pragma once

// The bounded pool that reads and writes files for calls (SPEC §6.3): a
// passed descriptor (upload, export) or a path under storage.import_dirs is
// copied here, never on a scheduler thread and never on a thread of its
// own. A fixed number of detached worker actors take tasks, each to the
// least busy worker; a task waits on a client's descriptor at most
// control.fd_timeout without progress and stops when the client hangs up,
// so a pipe that never ends holds one worker for at most that long.

#include "actors/blob_store.hpp"

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace projlink {

/// One unit of file work; runs on a pool worker.
struct file_task {
  std::function<caf::expected<blob_info>()> run;
};

class file_pool {
public:
  /// Spawns `workers` detached actors.
  file_pool(caf::actor_system& sys, size_t workers);

  /// The worker with the fewest tasks queued; count the task with `begin`
  /// before sending it and the worker ends it.
  const caf::actor& pick() const;

  /// Stops the workers (at shutdown).
  void shutdown();

  size_t size() const {
    return workers_.size();
  }

private:
  std::vector<caf::actor> workers_;
  std::unique_ptr<std::atomic<int64_t>[]> load_;
};

} // namespace projlink

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(projlink::file_task)
