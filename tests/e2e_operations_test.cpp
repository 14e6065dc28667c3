// End to end: the operator's procedures of docs/operations.md.

#include "e2e_connections_support.hpp"

#include <csignal>

using namespace e2e;

TEST_CASE("online backup with sqlite3 .backup while serving, then restore into a stopped daemon") {
  world w;
  auto a = world::id(w.request("sa", "d1", "up"));
  auto backup = w.d.dir / "backup.db";
  // While the daemon runs (and keeps writing).
  w.call("SetDistribution", {{"as", "sa"}, {"project", "d1"}, {"mode", "all_admins"}});
  auto r = run({"sqlite3", (w.d.dir / "projlink.db").string(), ".backup " + backup.string()});
  REQUIRE(r.status == 0);
  // A change after the backup, then disaster.
  auto b = world::id(w.request("sa", "d2", "up"));
  w.c.reset();
  REQUIRE(w.d.stop(SIGTERM) == 0);
  fs::copy_file(backup, w.d.dir / "projlink.db", fs::copy_options::overwrite_existing);
  fs::remove(w.d.dir / "projlink.db-wal");
  fs::remove(w.d.dir / "projlink.db-shm");
  fs::remove(w.d.dir / "clean-shutdown"); // as after a real restore: checked at start
  w.d.start();
  w.connect();
  CHECK(w.state(a) == "active");
  CHECK(w.kinds("d1") == std::vector<std::string>{"requested", "auto_approved", "settings_changed"});
  auto missing = w.call("Get", {{"as", "sa"}, {"connection", b}});
  CHECK(error_of(missing) == "io.projlink.Connections.NotFound");
  CHECK(w.d.log().find("checking the database") != std::string::npos);
}
