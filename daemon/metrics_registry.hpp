#pragma once

// The metrics that need more than a counter: calls by method and outcome,
// call latency and group-commit histograms, the store's health as the last
// commit saw it. One process-wide registry; code anywhere records with one
// line (`telemetry::registry::global().call(...)`), the /metrics endpoint
// (daemon/metrics_http) and Daemon.GetMetrics read it. Thread-safe: the
// maps take a lock only to add a new method or outcome; counting is atomic.

#include <atomic>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace projlink::telemetry {

/// A Prometheus histogram with fixed upper bounds (`le`); observe is
/// lock-free.
class histogram {
public:
  explicit histogram(std::vector<double> bounds);
  void observe(double v);

  struct snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative; ///< one per bound, then +Inf
    double sum = 0;
  };
  snapshot read() const;

  /// Latency buckets in seconds, 0.5 ms to 10 s.
  static std::vector<double> seconds_buckets();

private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_; ///< per bucket, +Inf last
  std::atomic<uint64_t> sum_micro_{0};               ///< sum in millionths
};

/// The store's state as metrics report it: ok, or the named fault of
/// SPEC §8 that the last failed commit showed (corrupt, io_error, full;
/// `error` for any other failure). A later successful commit makes it ok.
enum class store_state { ok, corrupt, io_error, full, error };
const char* to_string(store_state s);

/// SQLite's extended result code of a SQLiteCpp exception; 0 for others.
int sqlite_code_of(const std::exception& e);

class registry {
public:
  static registry& global();

  /// One answered call (first reply or error): `outcome` is `ok` or the
  /// error's short name; `method` must be a declared method (callers map
  /// anything else to `unknown`, so hostile names cannot grow the map).
  void call(std::string_view method, std::string_view outcome, double seconds);

  /// One group commit of `writes` writes that took `seconds`.
  void commit(size_t writes, double seconds);
  /// A failed commit, with SQLite's primary result code when known (0 if not).
  void commit_failed(int sqlite_code);
  store_state store() const {
    return store_.load(std::memory_order_relaxed);
  }

  struct call_row {
    std::string method;
    std::string outcome;
    uint64_t count;
  };
  std::vector<call_row> calls() const;
  std::vector<std::pair<std::string, histogram::snapshot>> call_latency() const;
  histogram::snapshot commit_batch() const {
    return commit_batch_.read();
  }
  histogram::snapshot commit_latency() const {
    return commit_seconds_.read();
  }

private:
  registry();
  struct method_stats {
    histogram latency{histogram::seconds_buckets()};
    std::map<std::string, std::unique_ptr<std::atomic<uint64_t>>, std::less<>> outcomes;
  };
  mutable std::shared_mutex mtx_;
  std::map<std::string, std::unique_ptr<method_stats>, std::less<>> methods_;
  histogram commit_batch_;
  histogram commit_seconds_;
  std::atomic<store_state> store_{store_state::ok};
};

} // namespace projlink::telemetry
