#include "actors/directory_db.hpp"
#include "actors/error.hpp"
#include "actors/schema.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Transaction.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace projlink;
namespace fs = std::filesystem;

namespace {

struct temp_db {
  std::string path;
  std::shared_ptr<SQLite::Database> db;
  temp_db() {
    path = (fs::temp_directory_path() / ("projlink-test-" + std::to_string(::getpid()) + "-"
                                         + std::to_string(counter++) + ".db"))
             .string();
    db = open_database(path, true);
  }
  ~temp_db() {
    db.reset();
    for (auto suffix : {"", "-wal", "-shm"})
      fs::remove(path + suffix);
  }
  static inline int counter = 0;
};

ec code(const caf::error& e) {
  return code_of(e);
}

} // namespace

TEST_CASE("migrations create the schema once and record its version") {
  temp_db t;
  CHECK(t.db->execAndGet("PRAGMA user_version").getInt() == schema_version());
  CHECK(t.db->execAndGet("PRAGMA journal_mode").getString() == "wal");
  for (auto table : {"companies", "projects", "users", "access", "connections", "events",
                     "distribution", "drawings", "revisions", "blobs", "sync_jobs", "outbox"})
    CHECK(t.db->tableExists(table));
  // Re-opening runs nothing again.
  t.db.reset();
  t.db = open_database(t.path, true);
  CHECK(t.db->execAndGet("PRAGMA user_version").getInt() == schema_version());
}

TEST_CASE("migration 5 splits each connection event into both projects' histories, in order") {
  temp_db t;
  t.db.reset();
  for (auto suffix : {"", "-wal", "-shm"})
    fs::remove(t.path + suffix);
  t.db = open_database(t.path, false, 4);
  REQUIRE(t.db->execAndGet("PRAGMA user_version").getInt() == 4);
  t.db->exec("INSERT INTO events (at, kind, project, peer, connection) VALUES "
             "('2026-01-01T00:00:00.000Z', 'requested', 'd', 'u', 'c-1'),"
             "('2026-01-01T00:00:01.000Z', 'settings_changed', 'u', NULL, NULL),"
             "('2026-01-01T00:00:02.000Z', 'approved', 'u', 'd', 'c-1')");
  t.db.reset();
  t.db = open_database(t.path, false);
  CHECK(t.db->execAndGet("PRAGMA user_version").getInt() == schema_version());
  SQLite::Statement q(*t.db, "SELECT group_concat(kind || ':' || project, ' ') FROM "
                             "(SELECT kind, project FROM events ORDER BY seq)");
  REQUIRE(q.executeStep());
  CHECK(q.getColumn(0).getString()
        == "requested:d requested:u settings_changed:u approved:u approved:d");
  SQLite::Statement d(*t.db, "SELECT group_concat(kind, ' ') FROM "
                             "(SELECT kind FROM events WHERE project = 'd' ORDER BY seq)");
  REQUIRE(d.executeStep());
  CHECK(d.getColumn(0).getString() == "requested approved");
}

TEST_CASE("a database newer than the build is refused") {
  temp_db t;
  t.db->exec("PRAGMA user_version = 999");
  t.db.reset();
  CHECK_THROWS_WITH(open_database(t.path, false), Catch::Contains("newer than this build"));
}

TEST_CASE("companies, projects and users are created, found and listed") {
  temp_db t;
  auto& d = *t.db;
  REQUIRE(directory::create_company(d, {"gc", "GC", false}));
  project p;
  p.id = "tower";
  p.company = "gc";
  p.name = "Tower";
  auto created = directory::create_project(d, p);
  REQUIRE(created);
  CHECK(created->role == project_role::none);
  CHECK(created->active);
  REQUIRE(directory::create_user(d, {"alice", "Alice@GC.example", "Alice", "gc", true}));
  auto by_email = directory::find_user(d, "alice@gc.example");
  REQUIRE(by_email);
  CHECK(by_email->id == "alice");
  CHECK(directory::list_projects(d, std::string{"gc"})->size() == 1);
  CHECK(code(directory::list_projects(d, std::string{"nope"}).error()) == ec::not_found);
}

TEST_CASE("bad input is refused with a named error and changes nothing") {
  temp_db t;
  auto& d = *t.db;
  REQUIRE(directory::create_company(d, {"gc", "GC", true}));
  CHECK(code(directory::create_company(d, {"gc", "again", true}).error()) == ec::already_exists);
  CHECK(code(directory::create_company(d, {"Bad Id", "x", true}).error()) == ec::invalid_parameter);
  CHECK(code(directory::create_company(d, {"ok", "", true}).error()) == ec::invalid_parameter);
  project p;
  p.id = "p";
  p.company = "missing";
  p.name = "P";
  CHECK(code(directory::create_project(d, p).error()) == ec::not_found);
  CHECK(code(directory::create_user(d, {"u", "not-an-email", "U", "gc", false}).error())
        == ec::invalid_parameter);
  REQUIRE(directory::create_user(d, {"u", "u@x.example", "U", "gc", false}));
  CHECK(code(directory::create_user(d, {"v", "U@X.example", "V", "gc", false}).error())
        == ec::already_exists);
  CHECK(code(directory::set_access(d, "nope", "u", level::admin, {}).error()) == ec::not_found);
  CHECK(directory::list_companies(d)->size() == 1);
  CHECK(directory::list_users(d, {})->size() == 1);
}

TEST_CASE("access entries keep levels not given and can be removed") {
  temp_db t;
  auto& d = *t.db;
  REQUIRE(directory::create_company(d, {"gc", "GC", true}));
  project p;
  p.id = "tower";
  p.company = "gc";
  p.name = "Tower";
  REQUIRE(directory::create_project(d, p));
  REQUIRE(directory::create_user(d, {"u", "u@x.example", "U", "gc", false}));
  auto a = directory::set_access(d, "tower", "u@x.example", level::admin, {});
  REQUIRE(a);
  CHECK(a->user == "u");
  CHECK(a->cm == level::admin);
  CHECK(a->drawings == level::none);
  a = directory::set_access(d, "tower", "u", {}, level::read_only);
  CHECK(a->cm == level::admin);
  CHECK(a->drawings == level::read_only);
  REQUIRE(directory::remove_access(d, "tower", "u"));
  CHECK(directory::list_access(d, "tower")->empty());
  CHECK(code(directory::remove_access(d, "tower", "u").error()) == ec::not_found);
}

TEST_CASE("import applies a whole document, updating what exists") {
  temp_db t;
  auto& d = *t.db;
  REQUIRE(directory::create_company(d, {"gc", "Old name", true}));
  auto r = directory::import_document(d, R"(
access:
  - {project: tower, user: alice, cm: admin}
users:
  - {id: alice, email: alice@gc.example, name: Alice, company: gc}
companies:
  - {id: gc, name: New name, auto_approve: false}
projects:
  - {id: tower, company: gc, name: Tower}
)");
  REQUIRE(r);
  CHECK(r->companies == 1);
  CHECK(r->projects == 1);
  CHECK(r->users == 1);
  CHECK(r->access == 1);
  auto c = directory::get_company(d, "gc");
  CHECK(c->name == "New name");
  CHECK_FALSE(c->auto_approve);
}

TEST_CASE("import errors name line and column") {
  temp_db t;
  auto& d = *t.db;
  auto place = [&](const std::string& doc) {
    auto r = directory::import_document(d, doc);
    REQUIRE_FALSE(r);
    const auto& err = r.error();
    REQUIRE(code(err) == ec::invalid_document);
    const auto& ctx = err.context();
    return std::tuple{ctx.get_as<int64_t>(0), ctx.get_as<int64_t>(1), ctx.get_as<std::string>(2)};
  };
  auto [l1, c1, m1] = place("companies:\n  - {id: a, name: A}\n  - {id: a!, name: B}\n");
  CHECK(l1 == 3);
  CHECK(c1 == 5);
  CHECK(m1.find("bad id") != std::string::npos);
  auto [l2, c2, m2] = place("companies: [{id: a, name: A, colour: red}]\n");
  CHECK(l2 == 1);
  CHECK(m2.find("colour") != std::string::npos);
  auto [l3, c3, m3] = place("projects:\n  - {id: p, company: nope, name: P}\n");
  CHECK(l3 == 2);
  CHECK(m3.find("no company 'nope'") != std::string::npos);
  auto [l4, c4, m4] = place("people: []\n");
  CHECK(l4 == 1);
  auto [l5, c5, m5] = place("companies: [\n");
  CHECK(m5.find("YAML") != std::string::npos);
  auto [l6, c6, m6] = place("access:\n  - {project: p, user: u, cm: boss}\n");
  CHECK(l6 == 2);
  CHECK(m6.find("cm") != std::string::npos);
}
