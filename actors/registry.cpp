// The registry / supervisor: project id -> live project actor. Spawns on
// first use, passivates idle actors without losing a message, restarts
// (on next use) an actor that failed, runs the expiry timer of R10 and, at
// start, re-sends the peer updates nobody acknowledged.

#include "actors/actors.hpp"
#include "actors/directory_db.hpp"
#include "actors/store.hpp"
#include "daemon/logging.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <list>
#include <unordered_map>

namespace projlink {

namespace {

constexpr auto store_timeout = std::chrono::seconds{60};

/// One project's place in the registry. An entry is `loading` while the
/// registry checks that the project exists, live with a handle after, and
/// `draining` once asked to passivate; messages wait in `held` meanwhile.
struct entry {
  project_actor handle;
  bool loading = false;
  bool draining = false;
  std::vector<std::pair<caf::response_promise, caf::message>> held;
  /// Position in the registry's recency list (front: most recently used).
  std::list<std::string>::iterator recent;
};

struct registry_state {
  project_env env;
  std::unordered_map<std::string, entry> actors;
  std::unordered_map<caf::actor_addr, std::string> names;
  /// Live project ids, most recently used first (actors.max_live).
  std::list<std::string> recency;
  /// Deadline the expiry timer is armed for (empty: not armed).
  std::string timer_at;
  static inline const char* name = "registry";
};

using self_ptr = caf::stateful_actor<registry_state>*;

void deliver(self_ptr self, const std::string& id, caf::response_promise rp, caf::message m);

/// Passivates the least recently used live actors beyond actors.max_live.
/// An actor asked to passivate finishes what it is doing first.
void evict(self_ptr self) {
  auto& st = self->state;
  auto max_live = std::max<int64_t>(st.env.limits->max_live.load(), 1);
  auto over = static_cast<int64_t>(st.recency.size()) - max_live;
  for (auto it = st.recency.rbegin(); over > 0 && it != st.recency.rend(); ++it) {
    auto& e = st.actors.at(*it);
    if (e.loading || e.draining)
      continue;
    e.draining = true;
    self->send(e.handle, atom::passivate_v);
    st.env.metrics->evicted++;
    --over;
  }
}

/// Spawns the actor of `id`, whose project exists, and hands it what waited.
void spawn(self_ptr self, const std::string& id) {
  auto& st = self->state;
  auto it = st.actors.find(id);
  if (it == st.actors.end() || !it->second.loading)
    return;
  auto& e = it->second;
  e.handle = spawn_project(self->system(), id, st.env);
  e.loading = false;
  self->monitor(e.handle);
  st.names.emplace(e.handle.address(), id);
  st.env.metrics->live++;
  st.env.metrics->spawned++;
  auto held = std::move(e.held);
  e.held.clear();
  for (auto& [rp, m] : held)
    rp.delegate(caf::actor_cast<caf::actor>(e.handle), std::move(m));
  evict(self);
}

/// Forgets the loading entry of `id` and answers what waited with `err`
/// (`unknown`: the project does not exist, counted in the metrics).
void drop(self_ptr self, const std::string& id, const caf::error& err, bool unknown) {
  auto& st = self->state;
  auto it = st.actors.find(id);
  if (it == st.actors.end())
    return;
  auto held = std::move(it->second.held);
  st.recency.erase(it->second.recent);
  st.actors.erase(it);
  if (unknown)
    st.env.metrics->unknown += held.size();
  for (auto& [rp, m] : held)
    rp.deliver(err);
}

/// First use of `id`: one read checks that the project exists. A project
/// that does not exist gets no actor: what waited is answered NotFound.
void load(self_ptr self, const std::string& id) {
  auto& st = self->state;
  st.recency.push_front(id);
  auto& e = st.actors.emplace(id, entry{}).first->second;
  e.loading = true;
  e.recent = st.recency.begin();
  self
    ->request(st.env.reader, store_timeout, atom::read_v,
              make_store_fn([id](SQLite::Database& db) { return directory::project_exists(db, id); }))
    .then(
      [=](bool exists) {
        if (exists)
          spawn(self, id);
        else
          drop(self, id, make_error(ec::not_found, std::string{"project"}, id), true);
      },
      [=](caf::error& err) { drop(self, id, err, false); });
}

void deliver(self_ptr self, const std::string& id, caf::response_promise rp, caf::message m) {
  auto& st = self->state;
  auto it = st.actors.find(id);
  if (it == st.actors.end()) {
    load(self, id);
    it = st.actors.find(id);
  }
  auto& e = it->second;
  st.recency.splice(st.recency.begin(), st.recency, e.recent);
  if (e.loading || e.draining) {
    e.held.emplace_back(std::move(rp), std::move(m));
    return;
  }
  rp.delegate(caf::actor_cast<caf::actor>(e.handle), std::move(m));
}

/// Expires what is due (through each downstream's actor) and arms the timer
/// for the next deadline.
void sweep(self_ptr self) {
  auto now = now_string();
  self
    ->request(self->state.env.store, store_timeout, atom::read_v,
              make_store_fn([now](SQLite::Database& db) { return connections::due_expiries(db, now); }))
    .then(
      [=](connections::expiries& x) {
        for (auto& due : x.due) {
          const auto& conn = due.first;
          const auto& downstream = due.second;
          // Answered to us; nobody else waits for it.
          self->request(caf::actor_cast<caf::actor>(self), store_timeout, atom::route_v, downstream,
                        caf::make_message(atom::expire_v, conn))
            .then(
              [=](connection& c) {
                if (c.state == conn_state::expired)
                  self->state.env.metrics->expired++;
              },
              [=, conn = conn](caf::error& e) {
                log_about(spdlog::level::warn, {"", conn},
                          "expiry of " + conn + " failed: " + caf::to_string(e));
              });
        }
        auto& st = self->state;
        if (x.next.empty() || (!st.timer_at.empty() && st.timer_at <= x.next))
          return;
        auto when = parse_time(x.next);
        if (!when)
          return;
        st.timer_at = x.next;
        auto delay = *when - std::chrono::system_clock::now() + std::chrono::milliseconds{1};
        auto ms = std::max(std::chrono::duration_cast<std::chrono::milliseconds>(delay),
                           std::chrono::milliseconds{1});
        // Long timers are re-armed in steps: a clock change cannot strand them.
        self->delayed_send(self, std::min(ms, std::chrono::milliseconds{3'600'000}),
                           atom::tick_v);
      },
      [=](caf::error& e) { spdlog::error("expiry sweep failed: {}", caf::to_string(e)); });
}

caf::behavior registry(self_ptr self, caf::actor store, caf::actor reader, caf::actor notifier,
                       caf::actor sync, hub_actor hub, const live_limits* limits,
                       registry_metrics* metrics) {
  auto& st = self->state;
  st.env = project_env{std::move(store),
                       std::move(reader),
                       std::move(notifier),
                       std::move(sync),
                       caf::actor_cast<caf::actor>(self),
                       std::move(hub),
                       limits,
                       metrics};
  self->set_down_handler([=](caf::down_msg& dm) {
    auto& st = self->state;
    auto n = st.names.find(dm.source);
    if (n == st.names.end())
      return;
    auto id = n->second;
    st.names.erase(n);
    st.env.metrics->live--;
    auto it = st.actors.find(id);
    if (it == st.actors.end() || it->second.handle.address() != dm.source)
      return;
    auto held = std::move(it->second.held);
    if (it->second.draining) {
      st.env.metrics->passivated++;
    } else if (dm.reason && dm.reason != caf::exit_reason::user_shutdown) {
      st.env.metrics->failed++;
      log_about(spdlog::level::err, {id, ""},
                "project actor " + id + " failed: " + caf::to_string(dm.reason)
                  + "; it restarts on next use");
    }
    st.recency.erase(it->second.recent);
    st.actors.erase(it);
    // Messages that arrived while it passivated go to its successor.
    for (auto& [rp, m] : held)
      deliver(self, id, std::move(rp), std::move(m));
  });
  return {
    [=](atom::route, std::string& id, caf::message& m) {
      deliver(self, id, self->make_response_promise(), std::move(m));
    },
    [=](atom::idle, std::string& id, caf::actor_addr& who) {
      auto it = self->state.actors.find(id);
      if (it == self->state.actors.end() || it->second.draining
          || it->second.handle.address() != who)
        return;
      it->second.draining = true;
      self->send(it->second.handle, atom::passivate_v);
    },
    [=](atom::schedule) {
      auto& st = self->state;
      if (!st.timer_at.empty()) {
        auto ttl = std::chrono::milliseconds{st.env.limits->request_ttl_ms.load()};
        if (format_time(std::chrono::system_clock::now() + ttl) >= st.timer_at)
          return; // the armed timer fires first and re-arms
      }
      sweep(self);
    },
    [=](atom::tick) {
      self->state.timer_at.clear();
      sweep(self);
    },
    [=](atom::recover) {
      self
        ->request(self->state.env.store, store_timeout, atom::read_v,
                  make_store_fn([](SQLite::Database& db) { return connections::unacknowledged(db); }))
        .then(
          [=](std::vector<unacked>& xs) {
            for (auto& x : xs) {
              self->state.env.metrics->resent++;
              inform_peer(self->system(), self->state.env, std::move(x.conn), std::move(x.peer));
            }
            if (!xs.empty())
              spdlog::info("re-sent {} unacknowledged peer updates", xs.size());
          },
          [=](caf::error& e) { spdlog::error("recovery failed: {}", caf::to_string(e)); });
      sweep(self);
    },
    [=](atom::status) { return self->state.env.metrics->live.load(); },
    [=](atom::shutdown) {
      for (auto& [id, e] : self->state.actors)
        self->send_exit(e.handle, caf::exit_reason::user_shutdown);
      self->quit();
    },
  };
}

struct informer_state {
  int tries = 0;
  static inline const char* name = "informer";
};

/// Delivers one peer update until acknowledged, then clears the mark.
caf::behavior informer(caf::stateful_actor<informer_state>* self, project_env env,
                       connection conn, std::string peer) {
  self->send(self, atom::tick_v);
  return {
    [=](atom::tick) {
      self
        ->request(env.registry, store_timeout, atom::route_v, peer,
                  caf::make_message(atom::update_v, conn))
        .then(
          [=](atom::ack) {
            self
              ->request(env.store, store_timeout, atom::write_v,
                        make_store_fn([=](SQLite::Database& db) {
                          return connections::acknowledged(db, conn.id, peer, conn.state);
                        }))
              .then([=] { self->quit(); }, [=](caf::error&) { self->quit(); });
          },
          [=](caf::error& e) {
            if (++self->state.tries >= 5) {
              spdlog::warn("peer {} did not acknowledge {} ({}); re-sent at next start", peer,
                           conn.id, caf::to_string(e));
              self->quit();
              return;
            }
            self->delayed_send(self, std::chrono::milliseconds{100 << self->state.tries},
                               atom::tick_v);
          });
    },
  };
}

} // namespace

caf::actor spawn_registry(caf::actor_system& sys, caf::actor store, caf::actor reader,
                          caf::actor notifier, caf::actor sync, hub_actor hub,
                          const live_limits* limits, registry_metrics* metrics) {
  return sys.spawn(registry, std::move(store), std::move(reader), std::move(notifier),
                   std::move(sync), std::move(hub), limits, metrics);
}

void inform_peer(caf::actor_system& sys, const project_env& env, connection conn,
                 std::string peer) {
  sys.spawn(informer, env, std::move(conn), std::move(peer));
}

} // namespace projlink
