// End to end: Drawings and sync (SPEC §5), one test per bullet, against the
// real projlinkd over its socket.

#include "e2e_connections_support.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

/// Drawings levels on top of world_yaml: rita reads up, dan uploads to up
/// and is d1's drawings admin (sa and ga are company admins).
const char* drawing_access = R"(access:
  - {project: up, user: rita, drawings: read_only}
  - {project: up, user: dan, drawings: standard}
  - {project: d1, user: dan, drawings: admin}
)";

std::string write_file(const fs::path& p, size_t size, unsigned seed) {
  std::mt19937 gen{seed};
  std::string bytes(size, '\0');
  for (auto& c : bytes)
    c = static_cast<char>(gen());
  std::ofstream(p, std::ios::binary) << bytes;
  return bytes;
}

/// True once a message in the Maildir `box` contains both strings.
bool eventually_file(const fs::path& box, const std::string& a, const std::string& b) {
  for (int i = 0; i < 200; ++i) {
    if (fs::exists(box / "new"))
      for (const auto& f : fs::directory_iterator(box / "new")) {
        std::ifstream in(f.path());
        std::stringstream ss;
        ss << in.rdbuf();
        auto t = ss.str();
        if (t.find(a) != std::string::npos && t.find(b) != std::string::npos)
          return true;
      }
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

std::string sha256_of(const fs::path& p) {
  auto r = run({"sha256sum", p.string()});
  return r.out.substr(0, 64);
}

struct drawings_world : world {
  explicit drawings_world(const std::string& extra = "", const std::string& storage_extra = "")
    : world(extra, "", storage_extra) {
    auto r = c->call("io.projlink.Directory.Import", {{"document", drawing_access}});
    REQUIRE(error_of(r).empty());
  }

  json dcall(const std::string& method, const json& p) {
    return c->call("io.projlink.Drawings." + method, p);
  }

  /// Uploads `file` by descriptor; returns the reply.
  json upload(const std::string& as, const std::string& project, const std::string& number,
              const fs::path& file, json extra = json::object()) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    extra["as"] = as;
    extra["project"] = project;
    extra["number"] = number;
    if (!extra.contains("title"))
      extra["title"] = "Sheet " + number;
    if (!extra.contains("revision"))
      extra["revision"] = "A";
    extra["file_fd"] = 0;
    c->send_raw(projlink::varlink::encode_call("io.projlink.Drawings.Upload", extra), {fd});
    ::close(fd);
    auto r = c->read(30'000);
    REQUIRE(r);
    return *r;
  }
  std::string uploaded(const std::string& as, const std::string& project,
                       const std::string& number, const fs::path& file,
                       json extra = json::object()) {
    auto r = upload(as, project, number, file, std::move(extra));
    INFO(r.dump());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["revision"]["id"];
  }
  void publish(const std::string& as, const std::string& project,
               const std::vector<std::string>& ids) {
    auto r = dcall("Publish", {{"as", as}, {"project", project}, {"revisions", ids}});
    INFO(r.dump());
    REQUIRE(error_of(r).empty());
  }
  json list(const std::string& as, const std::string& project, bool all = true) {
    auto r = dcall("List", {{"as", as}, {"project", project}, {"include_unpublished", all}});
    INFO(r.dump());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["revisions"];
  }
  json sync_status(const std::string& conn_id) {
    return call("SyncStatus", {{"as", "sa"}, {"connection", conn_id}})["parameters"]["status"];
  }
  /// Waits until nothing is pending for the connection.
  json settle(const std::string& conn_id, std::chrono::seconds limit = 30s) {
    auto end = std::chrono::steady_clock::now() + limit;
    json s;
    while (std::chrono::steady_clock::now() < end) {
      s = sync_status(conn_id);
      if (s["pending"] == 0)
        return s;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("sync did not settle: " << s.dump());
    return s;
  }
};

} // namespace

TEST_CASE("drawings: uploads arrive unpublished, publishing shows them, per SPEC §4") {
  drawings_world w;
  auto f = w.d.dir / "a.pdf";
  write_file(f, 10'000, 1);
  // rita (read_only) may not upload; dan (standard) may.
  auto r = w.upload("rita", "up", "A-1", f);
  CHECK(error_of(r) == "io.projlink.Drawings.PermissionDenied");
  CHECK(r["parameters"] == json{{"action", "upload"}, {"project", "up"}});
  auto id = w.uploaded("dan", "up", "A-1", f, {{"set", "IFC"}, {"discipline", "Arch"},
                                              {"discipline_position", 1}, {"area", "L1"}});
  auto rev = w.dcall("Get", {{"as", "dan"}, {"revision", id}})["parameters"]["revision"];
  CHECK(rev["published"] == false);
  CHECK(rev["connected"] == false);
  CHECK(rev["size"] == 10'000);
  CHECK(rev["sha256"] == sha256_of(f));
  CHECK(rev["set"] == "IFC");
  CHECK(rev["discipline_position"] == 1);
  // Unpublished: invisible to read_only users.
  CHECK(w.dcall("List", {{"as", "rita"}, {"project", "up"}})["parameters"]["revisions"].empty());
  CHECK(error_of(w.dcall("Get", {{"as", "rita"}, {"revision", id}}))
        == "io.projlink.Drawings.PermissionDenied");
  CHECK(error_of(w.dcall("List", {{"as", "rita"}, {"project", "up"}, {"include_unpublished", true}}))
        == "io.projlink.Drawings.PermissionDenied");
  // Only drawings admins publish.
  r = w.dcall("Publish", {{"as", "dan"}, {"project", "up"}, {"revisions", {id}}});
  CHECK(error_of(r) == "io.projlink.Drawings.PermissionDenied");
  w.publish("ga", "up", {id});
  auto seen = w.dcall("List", {{"as", "rita"}, {"project", "up"}})["parameters"]["revisions"];
  REQUIRE(seen.size() == 1);
  CHECK(seen[0]["published"] == true);
  CHECK(error_of(w.dcall("Get", {{"as", "rita"}, {"revision", "r-nope"}}))
        == "io.projlink.Drawings.NotFound");
  // Obsolete and delete: drawings admin only.
  CHECK(error_of(w.dcall("SetObsolete", {{"as", "dan"}, {"revision", id}, {"obsolete", true}}))
        == "io.projlink.Drawings.PermissionDenied");
  CHECK(w.dcall("SetObsolete", {{"as", "ga"}, {"revision", id}, {"obsolete", true}})
          ["parameters"]["revision"]["obsolete"]
        == true);
  CHECK(error_of(w.dcall("Delete", {{"as", "rita"}, {"revision", id}}))
        == "io.projlink.Drawings.PermissionDenied");
  CHECK(error_of(w.dcall("Delete", {{"as", "ga"}, {"revision", id}})).empty());
  CHECK(w.list("ga", "up").empty());
  CHECK(w.dcall("DeletedRevisions", {{"as", "ga"}, {"project", "up"}})["parameters"]["revisions"].size()
        == 1);
}

TEST_CASE("drawings: export round-trip by hash into a passed descriptor") {
  drawings_world w;
  auto f = w.d.dir / "big.pdf";
  auto bytes = write_file(f, 3'000'000, 2);
  auto id = w.uploaded("ga", "up", "A-1", f);
  w.publish("ga", "up", {id});
  auto out = w.d.dir / "exported.pdf";
  int fd = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  w.c->send_raw(projlink::varlink::encode_call("io.projlink.Drawings.Export",
                                               {{"as", "rita"}, {"revision", id}, {"file_fd", 0}}),
                {fd});
  ::close(fd);
  auto r = w.c->read(30'000);
  REQUIRE(r);
  INFO(r->dump());
  CHECK((*r)["parameters"]["size"] == 3'000'000);
  CHECK((*r)["parameters"]["sha256"] == sha256_of(f));
  CHECK(sha256_of(out) == sha256_of(f));
  // Export without a descriptor: InvalidParameter, nothing written.
  auto bad = w.dcall("Export", {{"as", "rita"}, {"revision", id}, {"file_fd", 0}});
  CHECK(error_of(bad) == "org.varlink.service.InvalidParameter");
  // projlinkctl does the same with a file name.
  auto via_ctl = ctl(w.d.socket, {"--as", "rita", "drawing", "export", id, (w.d.dir / "c.pdf").string()});
  CHECK(via_ctl.status == 0);
  CHECK(sha256_of(w.d.dir / "c.pdf") == sha256_of(f));
}

TEST_CASE("drawings: a path upload must resolve inside storage.import_dirs") {
  auto base = fs::temp_directory_path() / ("projlink-imports-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "in");
  drawings_world w{"", "  import_dirs: [" + (base / "in").string() + "]\n"};
  write_file(base / "in" / "ok.pdf", 1000, 3);
  write_file(base / "secret.pdf", 1000, 4);
  fs::create_symlink(base / "secret.pdf", base / "in" / "link.pdf");
  ::mkfifo((base / "in" / "fifo").c_str(), 0600);
  auto up = [&](const json& extra) {
    json p{{"as", "ga"}, {"project", "up"}, {"number", "A-1"}, {"title", "t"}, {"revision", "A"}};
    p.update(extra);
    return w.dcall("Upload", p);
  };
  auto ok = up({{"path", (base / "in" / "ok.pdf").string()}});
  CHECK(error_of(ok).empty());
  for (const auto& bad : {base / "secret.pdf", base / "in" / ".." / "secret.pdf",
                          base / "in" / "link.pdf", base / "in", base / "in" / "fifo",
                          fs::path{"relative.pdf"}, base / "in" / "missing.pdf"}) {
    INFO(bad);
    auto r = up({{"path", bad.string()}});
    CHECK(error_of(r) == "io.projlink.Drawings.PathNotAllowed");
    CHECK(r["parameters"]["path"] == bad.string());
  }
  CHECK(error_of(up(json::object())) == "org.varlink.service.InvalidParameter");
  CHECK(error_of(up({{"path", (base / "in" / "ok.pdf").string()}, {"file_fd", 0}}))
        == "org.varlink.service.InvalidParameter");
  CHECK(w.list("ga", "up").size() == 1);
  fs::remove_all(base);
}

TEST_CASE("sync: activation backfills every published revision oldest first, then initial_sync_complete") {
  drawings_world w;
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    auto f = w.d.dir / ("f" + std::to_string(i));
    write_file(f, 5000 + i, 10 + i);
    ids.push_back(w.uploaded("ga", "up", "A-" + std::to_string(i), f));
  }
  // Published one by one (order of publication), one left unpublished.
  for (int i : {3, 0, 2, 1})
    w.publish("ga", "up", {ids[static_cast<size_t>(i)]});
  auto conn_id = world::id(w.request("sa", "d1", "up"));
  auto s = w.settle(conn_id);
  CHECK(s["state"] == "idle");
  CHECK(s["done"] == 4);
  CHECK(s["bytes_done"] == 5003 + 5000 + 5002 + 5001);
  auto copies = w.list("sa", "d1");
  REQUIRE(copies.size() == 4);
  std::map<std::string, json> by_upstream;
  for (const auto& c : copies) {
    CHECK(c["published"] == false);
    CHECK(c["connected"] == true);
    by_upstream[c["upstream_revision"]] = c;
  }
  CHECK(by_upstream.count(ids[4]) == 0); // never published: not copied
  CHECK(by_upstream[ids[3]]["sha256"] == w.dcall("Get", {{"as", "ga"}, {"revision", ids[3]}})
                                            ["parameters"]["revision"]["sha256"]);
  // Oldest publication first: the backfill queued its jobs in publication order,
  // and workers claim by queue order (sync.workers run them in parallel, so the
  // order in which they finish is not a guarantee).
  auto queued = sql(w.d, "SELECT upstream_revision FROM sync_jobs ORDER BY id;");
  CHECK(queued.out == ids[3] + "\n" + ids[0] + "\n" + ids[2] + "\n" + ids[1] + "\n");
  auto kinds = w.kinds("d1");
  CHECK(kinds == std::vector<std::string>{"requested", "auto_approved", "sync_started",
                                          "initial_sync_complete"});
  // initial_sync_complete goes to the downstream's drawings admins (dan).
  CHECK(eventually_file(w.d.dir / "outbox", "initial_sync_complete", "dan@sub.test"));
}

TEST_CASE("sync: later publishes, metadata and obsolete changes and deletes reach the copies") {
  drawings_world w;
  auto conn_id = world::id(w.request("sa", "d1", "up"));
  auto f = w.d.dir / "f";
  write_file(f, 2000, 20);
  auto id = w.uploaded("ga", "up", "A-1", f, {{"area", "L1"}, {"area_description", "Level 1"}});
  w.publish("ga", "up", {id});
  w.settle(conn_id);
  auto copies = w.list("sa", "d1");
  REQUIRE(copies.size() == 1);
  auto copy = copies[0]["id"].get<std::string>();
  CHECK(copies[0]["area_description"] == "Level 1");
  // Metadata and obsolete status follow the upstream.
  REQUIRE(error_of(w.dcall("Update", {{"as", "ga"}, {"revision", id}, {"title", "Plan L1"},
                                      {"status", "For construction"},
                                      {"area_description", "First floor"}}))
            .empty());
  REQUIRE(error_of(w.dcall("SetObsolete", {{"as", "ga"}, {"revision", id}, {"obsolete", true}}))
            .empty());
  w.settle(conn_id);
  auto now = w.dcall("Get", {{"as", "sa"}, {"revision", copy}})["parameters"]["revision"];
  CHECK(now["title"] == "Plan L1");
  CHECK(now["status"] == "For construction");
  CHECK(now["obsolete"] == true);
  CHECK(now["area_description"] == "First floor");
  CHECK(now["published"] == false);
  // A later publish is copied.
  auto g = w.d.dir / "g";
  write_file(g, 3000, 21);
  auto id2 = w.uploaded("ga", "up", "A-2", g);
  w.publish("ga", "up", {id2});
  w.settle(conn_id);
  CHECK(w.list("sa", "d1").size() == 2);
  CHECK(w.kinds("d1").back() == "drawings_published");
  // An upstream delete removes the copy from the log and lists it in the
  // deleted-revisions report.
  REQUIRE(error_of(w.dcall("Delete", {{"as", "ga"}, {"revision", id}})).empty());
  w.settle(conn_id);
  auto left = w.list("sa", "d1");
  REQUIRE(left.size() == 1);
  CHECK(left[0]["upstream_revision"] == id2);
  auto report = w.dcall("DeletedRevisions", {{"as", "sa"}, {"project", "d1"}})["parameters"]["revisions"];
  REQUIRE(report.size() == 1);
  CHECK(report[0]["id"] == copy);
  CHECK(w.kinds("d1").back() == "drawings_deleted");
  CHECK(eventually_file(w.d.dir / "outbox", "drawings_deleted_upstream", "dan@sub.test"));
  CHECK(eventually_file(w.d.dir / "outbox", "drawings_published_upstream", "dan@sub.test"));
}

TEST_CASE("sync: copies are read-only downstream, its drawings admin publishes them, own drawings stay home") {
  drawings_world w;
  auto f = w.d.dir / "f";
  write_file(f, 2000, 30);
  auto id = w.uploaded("ga", "up", "A-1", f, {{"set", "IFC"}, {"area", "L1"}});
  w.publish("ga", "up", {id});
  auto conn_id = world::id(w.request("sa", "d1", "up"));
  w.settle(conn_id);
  auto copy = w.list("sa", "d1")[0]["id"].get<std::string>();
  auto r = w.dcall("Update", {{"as", "sa"}, {"revision", copy}, {"title", "mine"}});
  CHECK(error_of(r) == "io.projlink.Drawings.ConnectedReadOnly");
  CHECK(r["parameters"]["revision"] == copy);
  CHECK(error_of(w.dcall("Delete", {{"as", "sa"}, {"revision", copy}}))
        == "io.projlink.Drawings.ConnectedReadOnly");
  CHECK(error_of(w.dcall("SetObsolete", {{"as", "sa"}, {"revision", copy}, {"obsolete", true}}))
        == "io.projlink.Drawings.ConnectedReadOnly");
  CHECK(error_of(w.upload("sa", "d1", "B-1", f, {{"set", "IFC"}}))
        == "io.projlink.Drawings.ConnectedReadOnly");
  CHECK(error_of(w.upload("sa", "d1", "B-1", f, {{"area", "L1"}}))
        == "io.projlink.Drawings.ConnectedReadOnly");
  CHECK(error_of(w.upload("sa", "d1", "A-1", f)) == "io.projlink.Drawings.ConnectedReadOnly");
  // The downstream's drawings admin may publish a copy.
  auto p = w.dcall("Publish", {{"as", "dan"}, {"project", "d1"}, {"revisions", {copy}}});
  CHECK(p["parameters"]["revisions"][0]["published"] == true);
  // Its own drawings are never sent upstream.
  auto own = w.uploaded("sa", "d1", "S-1", f, {{"set", "Shop"}});
  w.publish("sa", "d1", {own});
  w.settle(conn_id);
  CHECK(w.list("ga", "up").size() == 1);
}

TEST_CASE("sync: undo removes unpublished copies, disconnect keeps every copy and copies nothing new") {
  drawings_world w;
  std::vector<std::string> ids;
  for (int i = 0; i < 2; ++i) {
    auto f = w.d.dir / ("f" + std::to_string(i));
    write_file(f, 1000, 40 + i);
    ids.push_back(w.uploaded("ga", "up", "A-" + std::to_string(i), f));
  }
  w.publish("ga", "up", ids);
  auto a = world::id(w.request("sa", "d1", "up"));
  w.settle(a);
  auto copies = w.list("sa", "d1");
  REQUIRE(copies.size() == 2);
  w.publish("dan", "d1", {copies[0]["id"]});
  REQUIRE(error_of(w.call("Undo", {{"as", "sa"}, {"connection", a}})).empty());
  auto left = w.list("sa", "d1");
  REQUIRE(left.size() == 1); // R9: the published copy stays
  CHECK(left[0]["published"] == true);
  CHECK(w.project("d1")["revisions"] == 1); // the count R13 uses follows the removal
  // Disconnect: every copy stays, nothing new arrives.
  auto b = world::id(w.request("sa", "d2", "up"));
  w.settle(b);
  CHECK(w.list("sa", "d2").size() == 2);
  REQUIRE(error_of(w.call("Disconnect", {{"as", "sa"}, {"connection", b}, {"reason", "done"},
                                         {"accept_terms", true}}))
            .empty());
  auto f = w.d.dir / "late";
  write_file(f, 1000, 50);
  auto late = w.uploaded("ga", "up", "A-9", f);
  w.publish("ga", "up", {late});
  REQUIRE(error_of(w.dcall("Delete", {{"as", "ga"}, {"revision", ids[0]}})).empty());
  std::this_thread::sleep_for(300ms);
  CHECK(w.list("sa", "d2").size() == 2);
  CHECK(sql(w.d, "SELECT count(*) FROM sync_jobs WHERE connection = '" + b + "' AND state <> 'done';").out
        == "0\n");
}

TEST_CASE("sync: SIGKILL during a large backfill, every revision copied exactly once, blobs intact") {
  auto base = fs::temp_directory_path() / ("projlink-backfill-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base);
  drawings_world w{"", "  import_dirs: [" + base.string() + "]\n"};
  const int n = 400;
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    auto f = base / ("f" + std::to_string(i));
    write_file(f, 4096 + static_cast<size_t>(i), static_cast<unsigned>(100 + i));
    auto r = w.dcall("Upload", {{"as", "ga"}, {"project", "up"}, {"number", "A-" + std::to_string(i)},
                                {"title", "t"}, {"revision", "A"}, {"path", f.string()}});
    REQUIRE(error_of(r).empty());
    ids.push_back(r["parameters"]["revision"]["id"]);
  }
  w.publish("ga", "up", ids);
  auto conn_id = world::id(w.request("sa", "d1", "up"));
  // Kill it while the backfill runs.
  for (int i = 0; i < 200 && w.sync_status(conn_id)["done"] == 0; ++i)
    std::this_thread::sleep_for(2ms);
  w.c.reset();
  w.d.stop(SIGKILL);
  w.d.start();
  w.connect();
  auto s = w.settle(conn_id, 60s);
  CHECK(s["done"].get<int>() >= n);
  CHECK(s["failed"] == 0);
  CHECK(sql(w.d, "SELECT count(*), count(DISTINCT upstream_revision) FROM revisions "
                 "WHERE connection = '" + conn_id + "';").out
        == std::to_string(n) + "|" + std::to_string(n) + "\n");
  CHECK(w.kinds("d1").back() == "initial_sync_complete");
  // Every blob's content matches its name.
  int checked = 0;
  for (const auto& dir : fs::directory_iterator(w.d.dir / "blobs")) {
    if (dir.path().filename() == "tmp")
      continue;
    for (const auto& b : fs::directory_iterator(dir.path())) {
      CHECK(sha256_of(b.path()) == b.path().filename().string());
      ++checked;
    }
  }
  CHECK(checked == n);
  CHECK(sql(w.d, "PRAGMA integrity_check;").out == "ok\n");
  fs::remove_all(base);
}

TEST_CASE("sync: many connections sync at once while control calls keep answering") {
  drawings_world w{"sync:\n  workers: 4\n"};
  std::vector<std::string> ids;
  for (int i = 0; i < 60; ++i) {
    auto f = w.d.dir / ("f" + std::to_string(i));
    write_file(f, 20'000, static_cast<unsigned>(200 + i));
    ids.push_back(w.uploaded("ga", "up", "A-" + std::to_string(i), f));
  }
  w.publish("ga", "up", ids);
  std::vector<std::string> conns;
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"})
    conns.push_back(world::id(w.request("sa", d, "up")));
  // While they sync, other calls are answered.
  conn other{w.d.socket};
  int answered = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = other.call("io.projlink.Daemon.GetStatus", json::object());
    answered += error_of(r).empty();
    auto g = other.call("io.projlink.Connections.Get", {{"as", "sa"}, {"connection", conns[0]}});
    answered += error_of(g).empty();
  }
  CHECK(answered == 100);
  for (const auto& c : conns) {
    auto s = w.settle(c, 60s);
    CHECK(s["done"] == 60);
  }
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"})
    CHECK(w.list("sa", d).size() == 60);
}
