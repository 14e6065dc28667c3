#include "daemon/metrics_registry.hpp"

#include <SQLiteCpp/Exception.h>
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <mutex>

namespace projlink::telemetry {

histogram::histogram(std::vector<double> bounds)
  : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i)
    counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double v) {
  auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  counts_[static_cast<size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  if (v > 0 && std::isfinite(v))
    sum_micro_.fetch_add(static_cast<uint64_t>(std::llround(v * 1e6)), std::memory_order_relaxed);
}

histogram::snapshot histogram::read() const {
  snapshot s;
  s.bounds = bounds_;
  uint64_t acc = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    acc += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(acc);
  }
  s.sum = static_cast<double>(sum_micro_.load(std::memory_order_relaxed)) / 1e6;
  return s;
}

std::vector<double> histogram::seconds_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

const char* to_string(store_state s) {
  switch (s) {
    case store_state::ok: return "ok";
    case store_state::corrupt: return "corrupt";
    case store_state::io_error: return "io_error";
    case store_state::full: return "full";
    case store_state::error: return "error";
  }
  return "error";
}

int sqlite_code_of(const std::exception& e) {
  if (const auto* x = dynamic_cast<const SQLite::Exception*>(&e))
    return x->getExtendedErrorCode();
  return 0;
}

registry::registry()
  : commit_batch_({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048}),
    commit_seconds_(histogram::seconds_buckets()) {
}

registry& registry::global() {
  static registry r;
  return r;
}

void registry::call(std::string_view method, std::string_view outcome, double seconds) {
  auto find = [&]() -> std::pair<method_stats*, std::atomic<uint64_t>*> {
    auto m = methods_.find(method);
    if (m == methods_.end())
      return {nullptr, nullptr};
    auto o = m->second->outcomes.find(outcome);
    return {m->second.get(), o == m->second->outcomes.end() ? nullptr : o->second.get()};
  };
  std::pair<method_stats*, std::atomic<uint64_t>*> at;
  {
    std::shared_lock<std::shared_mutex> g{mtx_};
    at = find();
  }
  if (at.second == nullptr) {
    std::unique_lock<std::shared_mutex> g{mtx_};
    auto& m = methods_[std::string(method)];
    if (!m)
      m = std::make_unique<method_stats>();
    auto& o = m->outcomes[std::string(outcome)];
    if (!o)
      o = std::make_unique<std::atomic<uint64_t>>(0);
    at = {m.get(), o.get()};
  }
  at.second->fetch_add(1, std::memory_order_relaxed);
  at.first->latency.observe(seconds);
}

void registry::commit(size_t writes, double seconds) {
  commit_batch_.observe(static_cast<double>(writes));
  commit_seconds_.observe(seconds);
  store_.store(store_state::ok, std::memory_order_relaxed);
}

void registry::commit_failed(int sqlite_code) {
  auto s = store_state::error;
  switch (sqlite_code & 0xff) {
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: s = store_state::corrupt; break;
    case SQLITE_IOERR: s = store_state::io_error; break;
    case SQLITE_FULL: s = store_state::full; break;
    default: break;
  }
  store_.store(s, std::memory_order_relaxed);
}

std::vector<registry::call_row> registry::calls() const {
  std::vector<call_row> out;
  std::shared_lock<std::shared_mutex> g{mtx_};
  for (const auto& [m, st] : methods_)
    for (const auto& [o, n] : st->outcomes)
      out.push_back({m, o, n->load(std::memory_order_relaxed)});
  return out;
}

std::vector<std::pair<std::string, histogram::snapshot>> registry::call_latency() const {
  std::vector<std::pair<std::string, histogram::snapshot>> out;
  std::shared_lock<std::shared_mutex> g{mtx_};
  for (const auto& [m, st] : methods_)
    out.emplace_back(m, st->latency.read());
  return out;
}

} // namespace projlink::telemetry
