// Deterministic tests of the message protocol between project actors, the
// registry and the store, on CAF's test_coordinator: every message is
// delivered by `run()` on this thread, so each interleaving is reproducible.

#include "actors/actors.hpp"
#include "actors/directory_db.hpp"
#include "actors/schema.hpp"
#include "actors/store.hpp"
#include "actors/system.hpp"

#include <SQLiteCpp/Database.h>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace projlink;
namespace fs = std::filesystem;

namespace {

const char* directory_yaml = R"(companies:
  - {id: gc, name: GC}
  - {id: sub, name: Sub}
projects:
  - {id: a, company: sub, name: A}
  - {id: b, company: sub, name: B}
)";

template <class T>
using answer = std::shared_ptr<std::optional<caf::expected<T>>>;

struct deterministic {
  std::string path = (fs::temp_directory_path()
                      / ("projlink-actors-" + std::to_string(::getpid()) + ".db"))
                       .string();
  std::shared_ptr<SQLite::Database> db;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  store_metrics store_stats;
  registry_metrics stats;
  live_limits limits;
  caf::actor store;
  hub_actor hub;
  caf::actor registry;

  explicit deterministic(int upstreams = 20) {
    fs::remove(path);
    db = std::shared_ptr<SQLite::Database>(open_database(path, false));
    std::string yaml = directory_yaml;
    for (int i = 0; i < upstreams; ++i)
      yaml += "  - {id: u" + std::to_string(i) + ", company: gc, name: U}\n";
    yaml += "users:\n  - {id: sa, email: sa@t, name: SA, company: sub, company_admin: true}\n"
            "access:\n";
    for (int i = 0; i < upstreams; ++i)
      yaml += "  - {project: u" + std::to_string(i) + ", user: sa, drawings: read_only}\n";
    REQUIRE(directory::import_document(*db, yaml));
    config c;
    c.actors.scheduler_threads = 1;
    cfg = make_caf_config(c);
    cfg->set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(*cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    store = spawn_store(*sys, db, &store_stats, false);
    hub = spawn_hub(*sys);
    registry = spawn_registry(*sys, store, store, caf::actor{}, caf::actor{}, hub, &limits, &stats);
  }

  ~deterministic() {
    caf::anon_send(registry, atom::shutdown_v);
    caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
    caf::anon_send(store, atom::shutdown_v);
    sched->run();
    db.reset();
    fs::remove(path);
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
  }

  /// Sends `m` to project `p`'s actor through the registry; the answer is
  /// filled in by a later `run()`.
  template <class T>
  answer<T> ask(const std::string& p, caf::message m) {
    auto out = std::make_shared<std::optional<caf::expected<T>>>();
    sys->spawn(
      [](caf::event_based_actor* self, caf::actor reg, std::string project, caf::message msg,
         answer<T> out) {
        self->request(reg, caf::infinite, atom::route_v, project, msg)
          .then([out](T& x) { *out = std::move(x); }, [out](caf::error& e) { *out = e; });
      },
      registry, p, std::move(m), out);
    return out;
  }

  answer<connection> request(const std::string& down, const std::string& up) {
    return ask<connection>(down, caf::make_message(atom::request_v, std::string{"sa"}, up));
  }

  /// A value from the database (the store's connection, on this thread:
  /// only between run() calls).
  std::string scalar(const std::string& q) {
    auto v = db->execAndGet(q);
    return v.isNull() ? "NULL" : v.getString();
  }
};

} // namespace

TEST_CASE("protocol: the upstream decides, the downstream answers and clears the unacked mark") {
  deterministic t;
  auto r = t.request("a", "u0");
  t.sched->run();
  REQUIRE(*r);
  REQUIRE(**r);
  CHECK((**r)->state == conn_state::active);
  auto id = (**r)->id;
  CHECK(t.scalar("SELECT state FROM connections WHERE id = '" + id + "'") == "active");
  CHECK(t.scalar("SELECT peer_unacked FROM connections WHERE id = '" + id + "'") == "NULL");
  CHECK(t.stats.live == 2); // a and u0
  // requested + auto_approved, each in the history of both projects.
  CHECK(t.scalar("SELECT count(*) FROM events WHERE connection = '" + id + "'") == "4");
}

TEST_CASE("protocol: a downstream's 20 simultaneous requests are serialized, one is accepted") {
  deterministic t;
  std::vector<answer<connection>> rs;
  for (int i = 0; i < 20; ++i)
    rs.push_back(t.request("a", "u" + std::to_string(i)));
  t.sched->run();
  int ok = 0;
  for (auto& r : rs) {
    REQUIRE(*r);
    if (**r)
      ++ok;
    else
      CHECK(code_of((*r)->error()) == ec::already_connected);
  }
  CHECK(ok == 1);
  CHECK(t.scalar("SELECT count(*) FROM connections WHERE downstream = 'a'") == "1");
}

TEST_CASE("protocol: A requests B and B requests A in the same instant, never both") {
  deterministic t{0};
  auto ab = t.request("a", "b");
  auto ba = t.request("b", "a");
  t.sched->run();
  REQUIRE(*ab);
  REQUIRE(*ba);
  CHECK(static_cast<bool>(**ab) + static_cast<bool>(**ba) == 1);
  auto& loser = **ab ? **ba : **ab;
  CHECK(code_of(loser.error()) == ec::role_conflict);
  CHECK(t.scalar("SELECT count(*) FROM connections") == "1");
}

TEST_CASE("protocol: a repeated request with the same connection id is harmless") {
  deterministic t;
  auto msg = caf::make_message(atom::request_v, std::string{"c-fixed"}, std::string{"sa"},
                               std::string{"a"});
  auto first = t.ask<decision>("u0", msg);
  auto again = t.ask<decision>("u0", msg);
  t.sched->run();
  REQUIRE(*first);
  REQUIRE(**first);
  REQUIRE(*again);
  REQUIRE(**again);
  CHECK((**again)->conn.id == "c-fixed");
  CHECK((**again)->conn.state == (**first)->conn.state);
  CHECK((**again)->events.empty());
  CHECK(t.scalar("SELECT count(*) FROM connections") == "1");
  CHECK(t.scalar("SELECT count(*) FROM events") == "4"); // 2 events x 2 histories, once
}

TEST_CASE("protocol: a decision the peer never acknowledged is re-sent at start, then cleared") {
  deterministic t;
  auto r = t.request("a", "u0");
  t.sched->run();
  REQUIRE(**r);
  auto id = (**r)->id;
  // As if the daemon had died before the peer's ack was recorded.
  t.db->exec("UPDATE connections SET peer_unacked = 'a' WHERE id = '" + id + "'");
  caf::anon_send(t.registry, atom::recover_v);
  t.sched->run();
  CHECK(t.stats.resent == 1);
  CHECK(t.scalar("SELECT peer_unacked FROM connections WHERE id = '" + id + "'") == "NULL");
}

TEST_CASE("supervision: idle project actors passivate and come back on the next message") {
  deterministic t;
  t.limits.passivate_after_ms = 1000;
  auto r = t.request("a", "u0");
  t.sched->run();
  REQUIRE(**r);
  CHECK(t.stats.live == 2);
  t.sched->advance_time(std::chrono::seconds{2});
  t.sched->run();
  CHECK(t.stats.live == 0);
  CHECK(t.stats.passivated == 2);
  // The next message spawns a fresh actor, which sees the stored state.
  auto again = t.request("a", "u1");
  t.sched->run();
  REQUIRE(*again);
  REQUIRE_FALSE(**again);
  CHECK(code_of((*again)->error()) == ec::already_connected);
  CHECK(t.stats.live >= 1);
  CHECK(t.stats.spawned >= 3);
}
