#pragma once

#include <atomic>
#include <cstdint>

namespace projlink {

/// Daemon-wide counters for Daemon.GetMetrics. Relaxed atomics: each is a
/// monotonic count or a gauge read for reporting only.
struct daemon_metrics {
  std::atomic<uint64_t> calls{0};            ///< calls received
  std::atomic<uint64_t> call_errors{0};      ///< calls answered with an error
  std::atomic<uint64_t> protocol_errors{0};  ///< malformed messages
  std::atomic<uint64_t> clients_accepted{0};
  std::atomic<uint64_t> clients_refused{0};  ///< over max_clients or not allowed
  std::atomic<uint64_t> clients_timed_out{0};
  std::atomic<int64_t> clients_connected{0};
  std::atomic<uint64_t> reloads{0};
  /// The most calls (oneway included) any one connection had in flight.
  std::atomic<uint64_t> calls_in_flight_peak{0};
  std::atomic<uint64_t> reply_bytes{0};        ///< unread replies of all connections
  std::atomic<uint64_t> clients_closed_unread{0}; ///< over an unread-reply bound
  /// Watch calls subscribed to the hub; counted after the subscription is in
  /// the hub's mailbox, so every event committed afterwards reaches them.
  std::atomic<uint64_t> watches_started{0};
};

} // namespace projlink
