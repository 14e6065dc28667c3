#include "actors/error.hpp"
#include "actors/schema.hpp"
#include "actors/store.hpp"
#include "actors/system.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <caf/all.hpp>
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace projlink;
namespace fs = std::filesystem;

namespace {

struct fixture {
  std::string path = (fs::temp_directory_path()
                      / ("projlink-store-" + std::to_string(::getpid()) + ".db"))
                       .string();
  store_metrics metrics;
  std::unique_ptr<caf::actor_system_config> cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::actor store;

  fixture() {
    auto db = std::shared_ptr<SQLite::Database>(open_database(path, true));
    db->exec("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT NOT NULL)");
    config c;
    c.actors.scheduler_threads = 2;
    cfg = make_caf_config(c);
    sys = std::make_unique<caf::actor_system>(*cfg);
    store = spawn_store(*sys, db, &metrics);
  }

  ~fixture() {
    caf::anon_send(store, atom::shutdown_v);
    store = nullptr;
    sys->await_all_actors_done();
    sys.reset();
    for (auto suffix : {"", "-wal", "-shm"})
      fs::remove(path + suffix);
  }

  /// Count of rows in t, read through a fresh connection (what is durable).
  int64_t durable_rows() {
    SQLite::Database d(path, SQLite::OPEN_READONLY);
    return d.execAndGet("SELECT count(*) FROM t").getInt64();
  }
};

store_fn insert(int k, bool fail_after = false) {
  return make_store_fn([=](SQLite::Database& d) -> caf::expected<int64_t> {
    SQLite::Statement q(d, "INSERT INTO t (k, v) VALUES (?, 'x')");
    q.bind(1, k);
    q.exec();
    if (fail_after)
      return make_error(ec::invalid_parameter, std::string{"k"});
    return int64_t{k};
  });
}

} // namespace

TEST_CASE("concurrent writes are all committed, in fewer transactions than writes") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  constexpr int n = 500;
  for (int i = 0; i < n; ++i)
    self->send(f.store, atom::write_v, insert(i));
  int ok = 0;
  self->receive_for(ok, n)(
    [&](int64_t) {}, [&](caf::error& e) { FAIL(caf::to_string(e)); });
  CHECK(f.durable_rows() == n);
  CHECK(f.metrics.writes == n);
  // Group commit: the writes queued together share transactions.
  CHECK(f.metrics.commits < f.metrics.writes);
}

TEST_CASE("a failing write rolls back only itself and gets its error") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  self->send(f.store, atom::write_v, insert(1));
  self->send(f.store, atom::write_v, insert(2, true));
  self->send(f.store, atom::write_v, insert(3));
  std::vector<std::string> results;
  for (int i = 0; i < 3; ++i)
    self->receive([&](int64_t k) { results.push_back(std::to_string(k)); },
                  [&](caf::error& e) { results.push_back(to_string(code_of(e))); });
  CHECK(results == std::vector<std::string>{"1", "invalid_parameter", "3"});
  CHECK(f.durable_rows() == 2);
}

TEST_CASE("a constraint violation becomes an internal error, not a crash") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  self->request(f.store, caf::infinite, atom::write_v, insert(7)).receive([](int64_t) {}, [](caf::error& e) { FAIL(caf::to_string(e)); });
  self->request(f.store, caf::infinite, atom::write_v, insert(7))
    .receive([](int64_t) { FAIL("duplicate key accepted"); },
             [](caf::error& e) { CHECK(code_of(e) == ec::internal); });
  CHECK(f.durable_rows() == 1);
}

TEST_CASE("a read queued behind writes sees them") {
  fixture f;
  caf::scoped_actor self{*f.sys};
  for (int i = 0; i < 10; ++i)
    self->send(f.store, atom::write_v, insert(i));
  self->send(f.store, atom::read_v, make_store_fn([](SQLite::Database& d) -> caf::expected<int64_t> {
               return d.execAndGet("SELECT -count(*) FROM t").getInt64();
             }));
  int64_t last = 0;
  for (int i = 0; i < 11; ++i)
    self->receive([&](int64_t v) { last = v; });
  CHECK(last == -10);
}
