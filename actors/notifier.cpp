#include "actors/notifier.hpp"

#include "actors/atoms.hpp"
#include "actors/error.hpp"
#include "actors/store.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace projlink {

namespace {

constexpr auto store_timeout = std::chrono::seconds{60};
constexpr int64_t batch_size = 100;    ///< messages delivered per round
constexpr int64_t expand_batch = 1000; ///< queued rows expanded per transaction

struct notifier_state {
  caf::actor store;
  std::shared_ptr<SQLite::Database> db; ///< its own connection, for reads
  notifier_settings settings;
  notifier_metrics* metrics = nullptr;
  bool busy = false;         ///< a batch is in hand
  bool again = false;        ///< a kick arrived meanwhile
  std::string timer_at;      ///< when the retry timer fires (empty: not armed)
  static inline const char* name = "notifier";
};

using self_ptr = caf::stateful_actor<notifier_state>*;

void arm(self_ptr self, const std::string& at) {
  auto& st = self->state;
  if (at.empty() || (!st.timer_at.empty() && st.timer_at <= at))
    return;
  auto when = parse_time(at);
  if (!when)
    return;
  st.timer_at = at;
  auto delay = std::chrono::duration_cast<std::chrono::milliseconds>(
    *when - std::chrono::system_clock::now());
  self->delayed_send(self, std::max(delay, std::chrono::milliseconds{1}), atom::tick_v);
}

void deliver_due(self_ptr self, bool more_queued);

/// Runs `f` on the notifier's own read connection (this actor has its own
/// thread: blocking is allowed here), one snapshot per call.
template <class F>
auto read(self_ptr self, F f) -> decltype(f(std::declval<SQLite::Database&>())) {
  auto& d = *self->state.db;
  try {
    SQLite::Transaction tx{d};
    auto r = f(d);
    tx.commit();
    return r;
  } catch (const std::exception& e) {
    return make_error(ec::internal, std::string{"storage: "} + e.what());
  }
}

/// One round: expand what decisions queued (recipients resolved and text
/// rendered here, from committed state; only the rows written through the
/// store), then deliver what is due. Each in batches.
void batch(self_ptr self) {
  auto& st = self->state;
  if (st.busy) {
    st.again = true;
    return;
  }
  st.busy = true;
  st.again = false;
  auto prepared = read(self, [](SQLite::Database& db) {
    return notifications::prepare(db, expand_batch);
  });
  if (!prepared) {
    spdlog::error("notifier: cannot read queued notifications: {}",
                  caf::to_string(prepared.error()));
    deliver_due(self, false);
    return;
  }
  if (prepared->empty()) {
    deliver_due(self, false);
    return;
  }
  bool full = static_cast<int64_t>(prepared->size()) == expand_batch;
  self
    ->request(st.store, store_timeout, atom::write_v,
              make_store_fn([xs = std::move(*prepared)](SQLite::Database& db) {
                return notifications::expand(db, xs);
              }))
    .then([=](int64_t) { deliver_due(self, full); },
          [=](caf::error& e) {
            spdlog::error("notifier: cannot expand queued notifications: {}",
                          caf::to_string(e));
            deliver_due(self, false);
          });
}

void deliver_due(self_ptr self, bool more_queued) {
  auto& st = self->state;
  auto now = now_string();
  auto due = read(self, [now](SQLite::Database& db) {
    return notifications::due(db, now, batch_size);
  });
  if (!due) {
    st.busy = false;
    spdlog::error("notifier: cannot read the outbox: {}", caf::to_string(due.error()));
    self->delayed_send(self, std::chrono::seconds{1}, atom::notify_v);
    return;
  }
  auto items = std::move(*due);
  // Blocking delivery: this actor has its own thread.
  auto results = items.empty() ? std::vector<delivery_result>{} : deliver(st.settings, items);
  for (const auto& r : results) {
    if (r.delivered) {
      st.metrics->delivered++;
    } else {
      st.metrics->failed_attempts++;
      spdlog::warn("notification {}: {}", r.id, r.error);
    }
  }
  bool full = static_cast<int64_t>(items.size()) == batch_size;
  auto then = [=](const std::string& next) {
    auto& st = self->state;
    st.busy = false;
    if (full || more_queued || st.again || (!next.empty() && next <= now_string()))
      self->send(self, atom::notify_v);
    else
      arm(self, next);
  };
  if (results.empty()) {
    // Nothing to record: when is the next retry due? (own connection)
    auto next = read(self, [](SQLite::Database& db) { return notifications::next_due(db); });
    then(next ? *next : std::string{});
    return;
  }
  auto retry = st.settings.retry;
  self
    ->request(st.store, store_timeout, atom::write_v,
              make_store_fn([results, retry](SQLite::Database& db) {
                return notifications::record(db, results, retry.initial, retry.max,
                                             retry.attempts);
              }))
    .then([=](std::string& next) { then(next); },
          [=](caf::error& e) {
            self->state.busy = false;
            spdlog::error("notifier: cannot record deliveries: {}", caf::to_string(e));
            self->delayed_send(self, std::chrono::seconds{1}, atom::notify_v);
          });
}

caf::behavior notifier(self_ptr self, caf::actor store, std::shared_ptr<SQLite::Database> db,
                       notifier_settings settings, notifier_metrics* metrics) {
  self->state.store = std::move(store);
  self->state.db = std::move(db);
  self->state.settings = std::move(settings);
  self->state.metrics = metrics;
  // Resume what a previous run left pending.
  self->send(self, atom::notify_v);
  return {
    [=](atom::notify) { batch(self); },
    [=](atom::tick) {
      self->state.timer_at.clear();
      batch(self);
    },
    [=](atom::configure, notifier_settings& s) {
      self->state.settings = std::move(s);
      batch(self);
    },
    [=](atom::shutdown) {
      self->state.db.reset();
      self->quit();
    },
  };
}

} // namespace

notifier_settings notifier_settings::from_config(const config& cfg) {
  notifier_settings s;
  s.delivery = cfg.notifications.delivery;
  s.from = cfg.notifications.from;
  s.maildir = cfg.path(cfg.notifications.maildir);
  s.smtp_url = cfg.notifications.smtp.url;
  s.smtp_username = cfg.notifications.smtp.username;
  s.smtp_password_file = cfg.notifications.smtp.password_file.empty()
                           ? std::string{}
                           : cfg.path(cfg.notifications.smtp.password_file);
  s.smtp_starttls = cfg.notifications.smtp.starttls;
  s.retry = cfg.notifications.retry;
  return s;
}

caf::actor spawn_notifier(caf::actor_system& sys, caf::actor store,
                          std::shared_ptr<SQLite::Database> db, notifier_settings settings,
                          notifier_metrics* metrics) {
  return sys.spawn<caf::detached>(notifier, std::move(store), std::move(db), std::move(settings),
                                  metrics);
}

} // namespace projlink
