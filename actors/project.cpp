// The project actor: serializes its project's decisions, runs each through
// the store (connections_db checks every rule against committed state and
// persists), and only then answers, publishes the events and tells the peer.

#include "actors/actors.hpp"
#include "actors/store.hpp"

#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <vector>

namespace projlink {

namespace {

/// How long a decision may wait for the store or the peer.
constexpr auto decision_timeout = std::chrono::seconds{60};
/// How often a request to a peer that is down is re-sent (same id).
constexpr int request_tries = 3;

struct queued_request {
  std::string as;
  std::string upstream;
  caf::typed_response_promise<connection> promise;
};

struct project_state {
  std::string id;
  project_env env;
  /// Decisions waiting for the store or a peer; passivation waits for 0.
  int busy = 0;
  bool passivating = false;
  caf::actor_clock::time_point last_active; // on the actor clock (testable)
  /// This project's own requests (as downstream), one at a time: a second
  /// request waits for the first to be decided (R3 without a race).
  /// A vector, not a deque: an empty std::deque already allocates ~600
  /// bytes, and most project actors never queue anything (SPEC §12 memory).
  std::vector<queued_request> requests;
  bool requesting = false;
  static inline const char* name = "project";
};

using self_ptr = project_actor::stateful_pointer<project_state>;

void begin(self_ptr self) {
  self->state.busy++;
  self->state.last_active = self->clock().now();
}

void end(self_ptr self) {
  self->state.busy--;
  self->state.last_active = self->clock().now();
  if (self->state.passivating && self->state.busy == 0)
    self->quit();
}

std::chrono::milliseconds passivate_after(self_ptr self) {
  return std::chrono::milliseconds{
    std::max<int64_t>(self->state.env.limits->passivate_after_ms.load(), 1)};
}

/// Committed events go to Watch calls; the notifier delivers what they
/// queued in the outbox.
void publish(self_ptr self, const std::vector<event>& events) {
  if (events.empty())
    return;
  self->send(self->state.env.hub, atom::publish_v, events);
  if (self->state.env.notifier)
    caf::anon_send(self->state.env.notifier, atom::notify_v);
  if (self->state.env.sync)
    caf::anon_send(self->state.env.sync, atom::notify_v);
}

/// What follows every committed decision this actor made.
void after_commit(self_ptr self, const decision& d) {
  publish(self, d.events);
  if (d.conn.state == conn_state::awaiting_approval && !d.events.empty())
    caf::anon_send(self->state.env.registry, atom::schedule_v);
  if (!d.peer.empty() && d.peer != self->state.id)
    inform_peer(self->system(), self->state.env, d.conn, d.peer);
}

/// Runs decision `fn` through the store; answers with the connection.
template <class F>
caf::result<connection> decide(self_ptr self, F fn) {
  auto rp = self->make_response_promise<connection>();
  begin(self);
  self->request(self->state.env.store, decision_timeout, atom::write_v,
                make_store_fn(std::move(fn)))
    .then(
      [=](decision& d) mutable {
        rp.deliver(d.conn);
        after_commit(self, d);
        end(self);
      },
      [=](caf::error& e) mutable {
        rp.deliver(std::move(e));
        end(self);
      });
  return rp;
}

bool retryable(const caf::error& e) {
  return e == caf::sec::request_receiver_down || e == caf::sec::request_timeout;
}

void next_request(self_ptr self);

/// Sends our request to the upstream (through the registry); the upstream
/// decides. Re-sent with the same id when the upstream actor went down.
void send_request(self_ptr self, queued_request q, std::string id, int tries_left) {
  auto& st = self->state;
  auto msg = caf::make_message(atom::request_v, id, q.as, st.id);
  self->request(st.env.registry, decision_timeout, atom::route_v, q.upstream, std::move(msg))
    .then(
      [=](decision& d) mutable {
        q.promise.deliver(d.conn);
        if (d.conn.state == conn_state::awaiting_approval && !d.events.empty())
          caf::anon_send(self->state.env.registry, atom::schedule_v);
        // The upstream's decision reached us: clear its "unacked" mark.
        if (d.peer == self->state.id) {
          auto conn_id = d.conn.id;
          auto peer = d.peer;
          auto state = d.conn.state;
          self->request(self->state.env.store, decision_timeout, atom::write_v,
                        make_store_fn([=](SQLite::Database& db) {
                          return connections::acknowledged(db, conn_id, peer, state);
                        }))
            .then([] {}, [](caf::error&) {});
        }
        self->state.requesting = false;
        end(self);
        next_request(self);
      },
      [=](caf::error& e) mutable {
        if (retryable(e) && tries_left > 1) {
          send_request(self, std::move(q), id, tries_left - 1);
          return;
        }
        q.promise.deliver(std::move(e));
        self->state.requesting = false;
        end(self);
        next_request(self);
      });
}

void next_request(self_ptr self) {
  auto& st = self->state;
  if (st.requesting || st.requests.empty())
    return;
  auto q = std::move(st.requests.front());
  st.requests.erase(st.requests.begin());
  st.requesting = true;
  begin(self);
  send_request(self, std::move(q), connections::new_id(), request_tries);
}

project_actor::behavior_type project_behavior(self_ptr self, std::string id, project_env env) {
  self->state.id = std::move(id);
  self->state.env = std::move(env);
  self->state.last_active = self->clock().now();
  self->delayed_send(self, passivate_after(self), atom::tick_v);
  return {
    // Session → downstream: queue our request.
    [=](atom::request, std::string& as, std::string& upstream) -> caf::result<connection> {
      auto rp = self->make_response_promise<connection>();
      self->state.last_active = self->clock().now();
      self->state.requests.push_back({std::move(as), std::move(upstream), rp});
      next_request(self);
      return rp;
    },
    // Downstream → upstream: decide on a request addressed to us.
    [=](atom::request, std::string& conn_id, std::string& as,
        std::string& downstream) -> caf::result<decision> {
      auto rp = self->make_response_promise<decision>();
      begin(self);
      auto lim = self->state.env.limits->rules();
      auto upstream = self->state.id;
      self->request(self->state.env.store, decision_timeout, atom::write_v,
                    make_store_fn([=](SQLite::Database& db) {
                      return connections::request(db, lim, conn_id, as, downstream, upstream);
                    }))
        .then(
          [=](decision& d) mutable {
            rp.deliver(d);
            publish(self, d.events);
            end(self);
          },
          [=](caf::error& e) mutable {
            rp.deliver(std::move(e));
            end(self);
          });
      return rp;
    },
    [=](atom::approve, std::string& as, std::string& conn_id) {
      auto lim = self->state.env.limits->rules();
      return decide(self, [=](SQLite::Database& db) {
        return connections::approve(db, lim, as, conn_id);
      });
    },
    [=](atom::reject, std::string& as, std::string& conn_id, std::string& reason) {
      auto r = reason.empty() ? std::nullopt : std::optional<std::string>{reason};
      return decide(self,
                    [=](SQLite::Database& db) { return connections::reject(db, as, conn_id, r); });
    },
    [=](atom::undo, std::string& as, std::string& conn_id) {
      auto lim = self->state.env.limits->rules();
      return decide(self,
                    [=](SQLite::Database& db) { return connections::undo(db, lim, as, conn_id); });
    },
    [=](atom::cancel, std::string& as, std::string& conn_id) {
      return decide(self,
                    [=](SQLite::Database& db) { return connections::cancel(db, as, conn_id); });
    },
    [=](atom::disconnect, std::string& as, std::string& conn_id, std::string& reason,
        bool accept_terms) {
      return decide(self, [=](SQLite::Database& db) {
        return connections::disconnect(db, as, conn_id, reason, accept_terms);
      });
    },
    [=](atom::expire, std::string& conn_id) {
      return decide(self, [=](SQLite::Database& db) { return connections::expire(db, conn_id); });
    },
    // A peer's decision on a connection we share. The durable state is
    // already committed; this is where our side would react (the drawings
    // sync hooks in here). Repeats are harmless.
    [=](atom::update, connection& c) {
      self->state.last_active = self->clock().now();
      spdlog::debug("project {}: peer decision on {}: {}", self->state.id, c.id, to_string(c.state));
      return atom::ack_v;
    },
    [=](atom::tick) {
      auto& st = self->state;
      auto idle = self->clock().now() - st.last_active;
      auto limit = passivate_after(self);
      if (st.busy == 0 && st.requests.empty() && idle >= limit) {
        caf::anon_send(st.env.registry, atom::idle_v, st.id, self->address());
        self->delayed_send(self, limit, atom::tick_v);
      } else {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(limit - idle);
        self->delayed_send(self, std::max(left, std::chrono::milliseconds{1}), atom::tick_v);
      }
    },
    [=](atom::passivate) {
      self->state.passivating = true;
      if (self->state.busy == 0)
        self->quit();
    },
  };
}

} // namespace

project_actor spawn_project(caf::actor_system& sys, std::string project_id, project_env env) {
  return sys.spawn(project_behavior, std::move(project_id), std::move(env));
}

} // namespace projlink
