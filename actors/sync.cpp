#include "actors/sync.hpp"

#include "actors/drawings_db.hpp"
#include "actors/store.hpp"
#include "daemon/logging.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <map>
#include <optional>

namespace projlink {

namespace {

constexpr auto store_timeout = std::chrono::seconds{120};
// Jobs per claim and per apply transaction. 256 → 1,024 took the
// 100,000-revision backfill from 24–30 s to 18.7 s (docs/performance.md);
// a write call arriving meanwhile waits for at most one batch's apply.
constexpr int64_t batch_size = 1024;
/// A safety net: look for due retries at least this often.
constexpr auto poll_interval = std::chrono::seconds{2};
/// How often unreferenced blobs are collected, the first time after a start
/// (not at once: a daemon restarted in a loop would collect each time), and
/// how old an unreferenced file must be. The environment variables
/// PROJLINK_BLOB_COLLECT_INTERVAL and PROJLINK_BLOB_COLLECT_MIN_AGE (seconds,
/// decimals allowed) override the interval (first run included) and the age
/// for tests such as the crash campaign; not configuration (docs/operations.md).
constexpr auto collect_interval = std::chrono::hours{1};
constexpr auto first_collect = std::chrono::minutes{1};
constexpr auto collect_min_age = std::chrono::minutes{10};

std::optional<std::chrono::milliseconds> env_seconds(const char* name) {
  const char* v = std::getenv(name);
  if (!v || !*v)
    return std::nullopt;
  char* end = nullptr;
  double x = std::strtod(v, &end);
  if (*end != '\0' || !(x >= 0) || x > 1e7)
    return std::nullopt;
  return std::chrono::milliseconds{static_cast<int64_t>(x * 1000)};
}

struct collect_timing {
  std::chrono::milliseconds first, every;
  std::chrono::seconds min_age;
};

collect_timing collect_timing_now() {
  collect_timing t{first_collect, collect_interval, collect_min_age};
  if (auto every = env_seconds("PROJLINK_BLOB_COLLECT_INTERVAL")) {
    t.every = std::max(*every, std::chrono::milliseconds{10});
    t.first = t.every;
  }
  if (auto age = env_seconds("PROJLINK_BLOB_COLLECT_MIN_AGE"))
    t.min_age = std::chrono::duration_cast<std::chrono::seconds>(*age);
  return t;
}

struct worker_state {
  static inline const char* name = "sync-worker";
};

caf::behavior worker(caf::stateful_actor<worker_state>* self, caf::actor store,
                     const blob_store* blobs, sync_retry retry, sync_metrics* metrics) {
  return {
    [=](atom::request, std::vector<sync_job>& jobs) -> caf::result<std::vector<event>> {
      // Verify every file against its hash before anything refers to it
      // (blocking reads: this actor has its own thread).
      std::map<std::string, std::string> verified; // sha256 -> error ("" = ok)
      std::vector<job_check> checks;
      for (const auto& j : jobs) {
        if (j.kind == "delete" || j.sha256.empty())
          continue;
        auto it = verified.find(j.sha256);
        if (it == verified.end()) {
          auto ok = blobs->verify(j.sha256, j.size);
          it = verified.emplace(j.sha256, ok ? std::string{} : describe(ok.error())).first;
        }
        if (!it->second.empty()) {
          checks.push_back({j.id, it->second});
          log_about(spdlog::level::warn, {"", j.connection},
                    "sync: " + j.kind + " of " + j.upstream_revision + " failed: " + it->second);
        }
      }
      metrics->failed_attempts += checks.size();
      auto rp = self->make_response_promise<std::vector<event>>();
      auto n = jobs.size();
      self
        ->request(store, store_timeout, atom::write_v,
                  make_store_fn([jobs = std::move(jobs), checks, retry](SQLite::Database& d) {
                    return sync::apply(d, jobs, checks, retry);
                  }))
        .then(
          [=](std::vector<event>& events) mutable {
            metrics->applied += n;
            metrics->batches++;
            rp.deliver(std::move(events));
          },
          [=](caf::error& e) mutable { rp.deliver(std::move(e)); });
      return rp;
    },
  };
}

struct coordinator_state {
  caf::actor store;
  hub_actor hub;
  caf::actor notifier;
  std::vector<caf::actor> workers;
  std::vector<caf::actor> idle;
  bool claiming = false;
  bool again = false;
  /// Batches handed to workers and not finished, and the highest job id
  /// among them: the next claim starts above it, so no job is handed out
  /// twice; with nothing in flight, claims start from the first pending job
  /// again (retries fall due below the mark).
  int in_flight = 0;
  int64_t claimed_to = 0;
  std::string next_due; ///< earliest pending job (empty: none known)
  const blob_store* blobs = nullptr;
  static inline const char* name = "sync";
};

using self_ptr = caf::stateful_actor<coordinator_state>*;

void pump(self_ptr self);

void finished(self_ptr self, const caf::actor& w, std::vector<event>& events) {
  auto& st = self->state;
  st.idle.push_back(w);
  if (--st.in_flight == 0)
    st.claimed_to = 0;
  if (!events.empty()) {
    self->send(st.hub, atom::publish_v, events);
    if (st.notifier)
      self->send(st.notifier, atom::notify_v);
  }
  pump(self);
}

void pump(self_ptr self) {
  auto& st = self->state;
  if (st.claiming) {
    st.again = true;
    return;
  }
  if (st.idle.empty())
    return;
  st.claiming = true;
  st.again = false;
  auto after = st.in_flight > 0 ? st.claimed_to : int64_t{0};
  self
    ->request(st.store, store_timeout, atom::read_v,
              make_store_fn([after](SQLite::Database& d) { return sync::claim(d, batch_size, after); }))
    .then(
      [=](claimed& c) {
        auto& st = self->state;
        st.claiming = false;
        st.next_due = c.next_due;
        if (c.jobs.empty()) {
          if (st.again)
            pump(self);
          return;
        }
        st.claimed_to = std::max(st.claimed_to, c.jobs.back().id);
        st.in_flight++;
        auto w = st.idle.back();
        st.idle.pop_back();
        self->request(w, caf::infinite, atom::request_v, std::move(c.jobs))
          .then([=](std::vector<event>& events) { finished(self, w, events); },
                [=](caf::error& e) {
                  spdlog::error("sync: a batch failed: {}; its jobs are retried",
                                caf::to_string(e));
                  // Its jobs are still pending: claimed again once nothing
                  // is in flight.
                  std::vector<event> none;
                  finished(self, w, none);
                });
        // More may be due: feed the other idle workers.
        pump(self);
      },
      [=](caf::error& e) {
        self->state.claiming = false;
        spdlog::error("sync: cannot claim jobs: {}", caf::to_string(e));
      });
}

/// One collection on a thread of its own: the snapshot of referenced blobs
/// comes from the store, and so does the re-check of what was chosen.
void collect_blobs(self_ptr self, std::chrono::seconds min_age) {
  auto store = self->state.store;
  self
    ->request(store, store_timeout, atom::read_v,
              make_store_fn([](SQLite::Database& d) { return drawings::referenced_blobs(d); }))
    .then(
      [=](std::vector<std::string>& refs) {
        self->spawn<caf::detached>(
          [min_age](caf::blocking_actor* me, const blob_store* b, caf::actor store,
                    std::vector<std::string> snapshot) {
            auto check = [&](const std::vector<std::string>& chosen) {
              caf::expected<std::vector<std::string>> out{make_error(ec::internal, "no reply")};
              me->request(store, store_timeout, atom::read_v,
                          make_store_fn([chosen](SQLite::Database& d) {
                            return drawings::unreferenced_blobs(d, chosen);
                          }))
                .receive([&](std::vector<std::string>& xs) { out = std::move(xs); },
                         [&](caf::error& e) { out = std::move(e); });
              return out;
            };
            if (auto n = b->collect(snapshot, check, min_age); n > 0)
              spdlog::info("blobs: removed {} unreferenced files", n);
          },
          self->state.blobs, store, std::move(refs));
      },
      [](caf::error& e) { spdlog::warn("blobs: collection skipped: {}", caf::to_string(e)); });
}

caf::behavior coordinator(self_ptr self, caf::actor store, hub_actor hub, caf::actor notifier,
                          const blob_store* blobs, uint32_t workers, sync_retry retry,
                          sync_metrics* metrics) {
  auto& st = self->state;
  st.store = store;
  st.blobs = blobs;
  st.hub = std::move(hub);
  st.notifier = std::move(notifier);
  for (uint32_t i = 0; i < std::max(workers, 1u); ++i) {
    auto w = self->spawn<caf::detached + caf::linked>(worker, store, blobs, retry, metrics);
    st.workers.push_back(w);
    st.idle.push_back(w);
  }
  // Jobs a crash left running are pending again, then work starts.
  self
    ->request(store, store_timeout, atom::write_v,
              make_store_fn([](SQLite::Database& d) { return sync::recover(d); }))
    .then(
      [=](int64_t n) {
        if (n > 0)
          spdlog::info("sync: resumed {} jobs interrupted by the last stop", n);
        pump(self);
      },
      [=](caf::error& e) { spdlog::error("sync: recovery failed: {}", caf::to_string(e)); });
  self->delayed_send(self, poll_interval, atom::tick_v);
  auto timing = collect_timing_now();
  self->delayed_send(self, timing.first, atom::flush_v);
  return {
    // Garbage collection of blobs no revision refers to (e.g. an upload
    // whose revision was refused after its file was stored): mark and
    // sweep, see blob_store::collect.
    [=](atom::flush) {
      self->delayed_send(self, timing.every, atom::flush_v);
      collect_blobs(self, timing.min_age);
    },
    [=](atom::notify) { pump(self); },
    [=](atom::tick) {
      // Only when a retry fell due: new work arrives with a kick.
      const auto& due = self->state.next_due;
      if (!due.empty() && due <= now_string())
        pump(self);
      self->delayed_send(self, poll_interval, atom::tick_v);
    },
    [=](atom::shutdown) {
      for (auto& w : self->state.workers)
        self->send_exit(w, caf::exit_reason::user_shutdown);
      self->quit();
    },
  };
}

} // namespace

caf::actor spawn_sync(caf::actor_system& sys, caf::actor store, hub_actor hub, caf::actor notifier,
                      const blob_store* blobs, uint32_t workers, sync_retry retry,
                      sync_metrics* metrics) {
  return sys.spawn(coordinator, std::move(store), std::move(hub), std::move(notifier), blobs,
                   workers, retry, metrics);
}

} // namespace projlink
