#include "actors/notifier.hpp"

#include "actors/atoms.hpp"
#include "actors/store.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

namespace projlink {

namespace {

constexpr auto store_timeout = std::chrono::seconds{60};
constexpr int64_t batch_size = 100;    ///< messages delivered per round
constexpr int64_t expand_batch = 1000; ///< queued rows expanded per transaction

struct notifier_state {
  caf::actor store;
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

/// One round: expand what decisions queued (rendering each message), then
/// deliver what is due. Both in batches, each in one store transaction.
void batch(self_ptr self) {
  auto& st = self->state;
  if (st.busy) {
    st.again = true;
    return;
  }
  st.busy = true;
  st.again = false;
  self
    ->request(st.store, store_timeout, atom::write_v,
              make_store_fn([](SQLite::Database& db) {
                return notifications::expand(db, expand_batch);
              }))
    .then([=](int64_t n) { deliver_due(self, n == expand_batch); },
          [=](caf::error& e) {
            spdlog::error("notifier: cannot expand queued notifications: {}",
                          caf::to_string(e));
            deliver_due(self, false);
          });
}

void deliver_due(self_ptr self, bool more_queued) {
  auto& st = self->state;
  auto now = now_string();
  self
    ->request(st.store, store_timeout, atom::read_v,
              make_store_fn([now](SQLite::Database& db) {
                return notifications::due(db, now, batch_size);
              }))
    .then(
      [=](std::vector<outbox_item>& items) {
        auto& st = self->state;
        // Blocking delivery: this actor has its own thread.
        auto results = items.empty() ? std::vector<delivery_result>{}
                                     : deliver(st.settings, items);
        for (const auto& r : results) {
          if (r.delivered) {
            st.metrics->delivered++;
          } else {
            st.metrics->failed_attempts++;
            spdlog::warn("notification {}: {}", r.id, r.error);
          }
        }
        auto retry = st.settings.retry;
        self
          ->request(st.store, store_timeout, atom::write_v,
                    make_store_fn([results, retry](SQLite::Database& db) {
                      return notifications::record(db, results, retry.initial, retry.max,
                                                   retry.attempts);
                    }))
          .then(
            [=](std::string& next) {
              auto& st = self->state;
              st.busy = false;
              bool full = static_cast<int64_t>(items.size()) == batch_size;
              if (full || more_queued || st.again || (!next.empty() && next <= now_string()))
                self->send(self, atom::notify_v);
              else
                arm(self, next);
            },
            [=](caf::error& e) {
              self->state.busy = false;
              spdlog::error("notifier: cannot record deliveries: {}", caf::to_string(e));
              self->delayed_send(self, std::chrono::seconds{1}, atom::notify_v);
            });
      },
      [=](caf::error& e) {
        self->state.busy = false;
        spdlog::error("notifier: cannot read the outbox: {}", caf::to_string(e));
        self->delayed_send(self, std::chrono::seconds{1}, atom::notify_v);
      });
}

caf::behavior notifier(self_ptr self, caf::actor store, notifier_settings settings,
                       notifier_metrics* metrics) {
  self->state.store = std::move(store);
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
    [=](atom::shutdown) { self->quit(); },
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

caf::actor spawn_notifier(caf::actor_system& sys, caf::actor store, notifier_settings settings,
                          notifier_metrics* metrics) {
  return sys.spawn<caf::detached>(notifier, std::move(store), std::move(settings), metrics);
}

} // namespace projlink
