#pragma once

// The durable sync job queue (SPEC §5) as SQL. Jobs are queued in the same
// transaction as the upstream change that causes them (drawings_db, and
// the activation of a connection); the sync actors claim, verify and apply
// them. Applying a job is idempotent: one copy per connection + upstream
// revision (a unique index), so a job applied twice after a crash is
// harmless.
//
// REQUIRES: called on the store's thread, writes inside a transaction.

#include "actors/model.hpp"

#include <caf/expected.hpp>

#include <chrono>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace projlink {

struct sync_job {
  int64_t id = 0;
  std::string connection;
  std::string upstream_revision;
  std::string kind; ///< copy | update | delete
  int64_t attempts = 0;
  std::string sha256; ///< of the upstream revision's file
  int64_t size = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_job& x) {
  return f(x.id, x.connection, x.upstream_revision, x.kind, x.attempts, x.sha256, x.size);
}

/// What a worker found before applying a job (e.g. a blob that does not
/// match its hash).
struct job_check {
  int64_t id = 0;
  std::string error; ///< empty: fine
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, job_check& x) {
  return f(x.id, x.error);
}

/// A claimed batch, and when the next job falls due (empty: none queued).
struct claimed {
  std::vector<sync_job> jobs;
  std::string next_due;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, claimed& x) {
  return f(x.jobs, x.next_due);
}

/// Connections.SyncStatus.
struct sync_status {
  std::string connection;
  std::string state = "idle"; ///< idle | syncing | failed
  int64_t pending = 0;
  int64_t done = 0;
  int64_t failed = 0;
  int64_t bytes_done = 0;
  int64_t bytes_total = 0;
  std::optional<std::string> last_error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sync_status& x) {
  return f(x.connection, x.state, x.pending, x.done, x.failed, x.bytes_done, x.bytes_total,
           opt(x.last_error));
}

struct sync_retry {
  std::chrono::milliseconds initial{1000};
  std::chrono::milliseconds max{300'000};
  int64_t attempts = 10;
};

namespace sync {

using db = SQLite::Database;

/// Up to `limit` due pending jobs with ids above `after` (oldest first, so
/// a backfill arrives oldest first). A read: the caller keeps the jobs it
/// handed out apart by id (jobs are no longer marked `running`, which cost
/// one more row and three index updates per job).
caf::expected<claimed> claim(db& d, int64_t limit, int64_t after);

/// Applies `jobs` (checked by a worker: `checks`), marks each done, or
/// counts a failed attempt (backoff; failed after `retry.attempts`, with a
/// sync_failed event). Returns the events written.
caf::expected<std::vector<event>> apply(db& d, const std::vector<sync_job>& jobs,
                                        const std::vector<job_check>& checks,
                                        const sync_retry& retry);

/// At start: jobs left `running` (by a build that marked claims) are
/// pending again.
caf::expected<int64_t> recover(db& d);

caf::expected<sync_status> status(db& d, const std::string& as, const std::string& connection);
/// Failed jobs of `connection` back to pending, attempts reset.
caf::expected<sync_status> retry(db& d, const std::string& as, const std::string& connection);

/// Queues the backfill of a connection that just became active; records
/// sync_started when there is something to copy. Returns the events.
std::vector<event> start(db& d, const connection& c);

} // namespace sync
} // namespace projlink
