// End-to-end tests of issue 15: clients that try to abuse the daemon (SPEC
// §5 upload by path, §6.3 resources, descriptors and bounds). Each starts
// the real projlinkd and acts as a hostile client would.

#include "e2e_connections_support.hpp"

#include <catch2/catch.hpp>

#include <openssl/evp.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <random>
#include <set>
#include <sstream>
#include <thread>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

constexpr uid_t nobody = 65534;

/// Tests that connect as another uid (seteuid) need root; elsewhere they
/// say so and pass without checking.
#define NEEDS_ROOT()                                                                            \
  do {                                                                                          \
    if (::geteuid() != 0) {                                                                     \
      WARN("skipped: needs root to connect as uid " << nobody);                                 \
      return;                                                                                   \
    }                                                                                           \
  } while (false)

const char* drawing_access = R"(access:
  - {project: up, user: dan, drawings: standard}
)";

std::string write_bytes(const fs::path& p, size_t size, unsigned seed) {
  std::mt19937 gen{seed};
  std::string bytes(size, '\0');
  for (auto& c : bytes)
    c = static_cast<char>(gen());
  std::ofstream(p, std::ios::binary) << bytes;
  return bytes;
}

std::string sha256(const std::string& bytes) {
  unsigned char d[32];
  unsigned len = 0;
  EVP_Digest(bytes.data(), bytes.size(), d, &len, EVP_sha256(), nullptr);
  static const char* hex = "0123456789abcdef";
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    out += hex[d[i] >> 4];
    out += hex[d[i] & 15];
  }
  return out;
}

/// A connection made with effective uid `uid` (SO_PEERCRED records it).
std::unique_ptr<conn> connect_as(uid_t uid, const fs::path& socket) {
  REQUIRE(::seteuid(uid) == 0);
  std::unique_ptr<conn> c;
  try {
    c = std::make_unique<conn>(socket);
  } catch (...) {
    REQUIRE(::seteuid(0) == 0);
    throw;
  }
  REQUIRE(::seteuid(0) == 0);
  return c;
}

/// A daemon whose socket `nobody` may use as a client.
struct hostile_world {
  daemon_process d;
  std::unique_ptr<conn> c; ///< root: an operator

  /// `who`: what else `control` says of nobody (by default a delegate,
  /// who may act as any user, like a web portal).
  explicit hostile_world(const std::string& control_extra, const std::string& storage_extra = "",
                         const std::string& who = "")
    : d() {
    // Our own configuration: nobody is a client, the socket is open to it.
    std::ofstream out(d.config_file);
    out << "control:\n"
        << "  socket: projlink.sock\n"
        << "  socket_mode: \"0666\"\n"
        << "  operators: { uids: [0], groups: [] }\n"
        << "  clients: { uids: [" << nobody << ", " << nobody - 1 << "], groups: [] }\n"
        << (who.empty() ? "  delegates: { uids: [" + std::to_string(nobody) + "] }\n" : who)
        << control_extra << "storage:\n"
        << "  state_dir: " << d.dir.string() << "\n"
        << storage_extra << "actors:\n  scheduler_threads: 2\n"
        << "logging:\n  level: debug\n";
    out.close();
    fs::permissions(d.dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec
                             | fs::perms::others_read | fs::perms::others_exec);
    d.start();
    c = std::make_unique<conn>(d.socket);
    REQUIRE(error_of(c->call("io.projlink.Directory.Import", {{"document", world_yaml}})).empty());
    REQUIRE(error_of(c->call("io.projlink.Directory.Import", {{"document", drawing_access}}))
              .empty());
  }

  static json upload_params(const std::string& as, json extra) {
    json p{{"as", as}, {"project", "up"}, {"number", "A-1"}, {"title", "t"}, {"revision", "A"}};
    p.update(extra);
    return p;
  }

  json metrics() {
    return c->call("io.projlink.Daemon.GetMetrics")["parameters"]["metrics"];
  }
};

size_t threads_of(pid_t pid) {
  size_t n = 0;
  for ([[maybe_unused]] const auto& t : fs::directory_iterator("/proc/" + std::to_string(pid) + "/task"))
    ++n;
  return n;
}

} // namespace

TEST_CASE("hostile: a path upload serves only what the caller could read, beneath the root, "
          "through no symlink") {
  NEEDS_ROOT();
  auto base = fs::temp_directory_path() / ("projlink-h15-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "in" / "real");
  fs::create_directories(base / "in" / "closed");
  fs::permissions(base, fs::perms(0755));
  auto open_bytes = write_bytes(base / "in" / "open.pdf", 1000, 1);
  auto secret_bytes = write_bytes(base / "in" / "secret.pdf", 1000, 2);
  write_bytes(base / "in" / "real" / "x.pdf", 1000, 3);
  write_bytes(base / "in" / "closed" / "y.pdf", 1000, 4);
  fs::permissions(base / "in" / "open.pdf", fs::perms(0644));
  fs::permissions(base / "in" / "secret.pdf", fs::perms(0600)); // root only
  fs::permissions(base / "in" / "real" / "x.pdf", fs::perms(0644));
  fs::permissions(base / "in" / "closed", fs::perms(0700)); // nobody cannot search it
  fs::permissions(base / "in" / "closed" / "y.pdf", fs::perms(0644));
  fs::create_directory_symlink(base / "in" / "real", base / "in" / "lnk");
  hostile_world w{"", "  import_dirs: [" + (base / "in").string() + "]\n"};
  auto c = connect_as(nobody, w.d.socket);
  auto up = [&](conn& via, const fs::path& p) {
    return via.call("io.projlink.Drawings.Upload",
                    hostile_world::upload_params("dan", {{"path", p.string()}}));
  };
  auto ok = up(*c, base / "in" / "open.pdf");
  INFO(ok.dump());
  CHECK(ok["parameters"]["revision"]["sha256"] == sha256(open_bytes));
  for (const auto& bad : {base / "in" / "secret.pdf", base / "in" / "closed" / "y.pdf",
                          base / "in" / "lnk" / "x.pdf", base / "in" / "." / "open.pdf"}) {
    INFO(bad);
    auto r = up(*c, bad);
    CHECK(error_of(r) == "io.projlink.Drawings.PathNotAllowed");
  }
  // Root may read the secret file itself, so it may upload it.
  auto mine = up(*w.c, base / "in" / "secret.pdf");
  INFO(mine.dump());
  CHECK(mine["parameters"]["revision"]["sha256"] == sha256(secret_bytes));
  fs::remove_all(base);
}

TEST_CASE("hostile: a directory swapped for a symlink during path uploads never leads outside") {
  auto base = fs::temp_directory_path() / ("projlink-h15s-" + std::to_string(::getpid()));
  fs::remove_all(base);
  fs::create_directories(base / "in" / "d");
  fs::create_directories(base / "outside");
  auto inside = write_bytes(base / "in" / "d" / "f.pdf", 500, 5);
  auto secret = write_bytes(base / "outside" / "f.pdf", 500, 6);
  hostile_world w{"", "  import_dirs: [" + (base / "in").string() + "]\n"};
  std::atomic<bool> stop{false};
  std::thread swapper([&] {
    auto d = base / "in" / "d", real = base / "in" / "d.real", tmp = base / "in" / "d.tmp";
    while (!stop) {
      ::rename(d.c_str(), real.c_str());
      ::symlink((base / "outside").c_str(), tmp.c_str());
      ::rename(tmp.c_str(), d.c_str());
      ::rename(d.c_str(), tmp.c_str());
      ::rename(real.c_str(), d.c_str());
      ::unlink(tmp.c_str());
    }
  });
  int stored = 0, escapes = 0;
  for (int i = 0; i < 400; ++i) {
    auto r = w.c->call("io.projlink.Drawings.Upload",
                       hostile_world::upload_params(
                         "dan", {{"path", (base / "in" / "d" / "f.pdf").string()},
                                 {"number", "S-" + std::to_string(i)}}));
    if (!error_of(r).empty()) {
      CHECK(error_of(r) == "io.projlink.Drawings.PathNotAllowed");
      continue;
    }
    ++stored;
    if (r["parameters"]["revision"]["sha256"] == sha256(secret))
      ++escapes;
    else
      CHECK(r["parameters"]["revision"]["sha256"] == sha256(inside));
  }
  stop = true;
  swapper.join();
  INFO("stored " << stored);
  CHECK(escapes == 0);
  fs::remove_all(base);
}

TEST_CASE("hostile: oneway calls count as in flight (control.max_calls_in_flight)") {
  hostile_world w{"  max_calls_in_flight: 4\n"};
  conn c{w.d.socket};
  std::string burst;
  for (int i = 0; i < 3000; ++i)
    burst += projlink::varlink::encode_call("io.projlink.Connections.History",
                                            {{"as", "ga"}, {"project", "up"}}, false, true);
  c.send_raw(burst);
  // Answered once the oneway calls before it were served, in order.
  auto r = c.call("io.projlink.Daemon.GetMetrics");
  INFO(r.dump());
  REQUIRE(error_of(r).empty());
  CHECK(r["parameters"]["metrics"]["calls_in_flight_peak"].get<double>() <= 4);
  CHECK(r["parameters"]["metrics"]["calls_in_flight_peak"].get<double>() >= 1);
  // SIGTERM still drains and exits cleanly.
  CHECK(w.d.stop(SIGTERM) == 0);
}

TEST_CASE("hostile: each passed descriptor goes to the call whose bytes carried it") {
  hostile_world w{""};
  auto a = write_bytes(w.d.dir / "a.pdf", 3000, 7);
  auto b = write_bytes(w.d.dir / "b.pdf", 3000, 8);
  for (int round = 0; round < 3; ++round) {
    // Stopped, the daemon finds all three calls queued at once: one read
    // brings the call without a descriptor and the first upload together.
    w.d.signal(SIGSTOP);
    conn c{w.d.socket};
    int fa = ::open((w.d.dir / "a.pdf").c_str(), O_RDONLY | O_CLOEXEC);
    int fb = ::open((w.d.dir / "b.pdf").c_str(), O_RDONLY | O_CLOEXEC);
    c.send_raw(projlink::varlink::encode_call("org.varlink.service.GetInfo", json::object()));
    c.send_raw(projlink::varlink::encode_call(
                 "io.projlink.Drawings.Upload",
                 hostile_world::upload_params("dan", {{"file_fd", 0}, {"number", "F-" + std::to_string(round)}})),
               {fa});
    c.send_raw(projlink::varlink::encode_call(
                 "io.projlink.Drawings.Upload",
                 hostile_world::upload_params("dan", {{"file_fd", 0}, {"number", "G-" + std::to_string(round)}})),
               {fb});
    ::close(fa);
    ::close(fb);
    w.d.signal(SIGCONT);
    auto info = c.read(30'000);
    REQUIRE(info);
    CHECK(error_of(*info).empty());
    auto ra = c.read(30'000);
    auto rb = c.read(30'000);
    REQUIRE(ra);
    REQUIRE(rb);
    INFO(ra->dump() << "\n" << rb->dump());
    CHECK((*ra)["parameters"]["revision"]["sha256"] == sha256(a));
    CHECK((*rb)["parameters"]["revision"]["sha256"] == sha256(b));
  }
}

TEST_CASE("hostile: uploads are bounded by storage.max_upload_bytes, a stalled descriptor by "
          "control.fd_timeout") {
  hostile_world w{"  fd_timeout: 500ms\n", "  max_upload_bytes: 1MiB\n"};
  write_bytes(w.d.dir / "big.pdf", 2 << 20, 9);
  auto upload_fd = [&](int fd) {
    w.c->send_raw(projlink::varlink::encode_call("io.projlink.Drawings.Upload",
                                                 hostile_world::upload_params("dan", {{"file_fd", 0}})),
                  {fd});
    auto r = w.c->read(60'000);
    REQUIRE(r);
    return *r;
  };
  int big = ::open((w.d.dir / "big.pdf").c_str(), O_RDONLY | O_CLOEXEC);
  auto r = upload_fd(big);
  ::close(big);
  CHECK(error_of(r) == "io.projlink.Drawings.FileTooLarge");
  CHECK(r["parameters"]["limit"] == 1 << 20);
  int zero = ::open("/dev/zero", O_RDONLY | O_CLOEXEC);
  r = upload_fd(zero);
  ::close(zero);
  CHECK(error_of(r) == "io.projlink.Drawings.FileTooLarge");
  // A pipe whose writer never writes nor closes: refused after fd_timeout.
  int p[2];
  REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
  r = upload_fd(p[0]);
  ::close(p[0]);
  CHECK(error_of(r) == "org.varlink.service.InvalidParameter");
  CHECK(r["parameters"]["parameter"] == "file_fd");
  ::close(p[1]);
  // Nothing was stored.
  auto l = w.c->call("io.projlink.Drawings.List",
                     {{"as", "ga"}, {"project", "up"}, {"include_unpublished", true}});
  CHECK(l["parameters"]["revisions"].empty());
  size_t tmp_files = 0;
  for ([[maybe_unused]] const auto& f : fs::directory_iterator(w.d.dir / "blobs" / "tmp"))
    ++tmp_files;
  CHECK(tmp_files == 0);
}

TEST_CASE("hostile: clients that hang up mid-upload hold no thread; uploads go on") {
  hostile_world w{""};
  auto before = threads_of(w.d.pid());
  std::vector<int> writers;
  {
    std::vector<std::unique_ptr<conn>> stuck;
    for (int i = 0; i < 30; ++i) {
      int p[2];
      REQUIRE(::pipe2(p, O_CLOEXEC) == 0);
      writers.push_back(p[1]);
      stuck.push_back(std::make_unique<conn>(w.d.socket));
      stuck.back()->send_raw(
        projlink::varlink::encode_call("io.projlink.Drawings.Upload",
                                       hostile_world::upload_params("dan", {{"file_fd", 0}})),
        {p[0]});
      ::close(p[0]);
    }
  } // every stuck client hangs up; the pipes' writers stay open
  auto f = write_bytes(w.d.dir / "ok.pdf", 5000, 10);
  int fd = ::open((w.d.dir / "ok.pdf").c_str(), O_RDONLY | O_CLOEXEC);
  w.c->send_raw(projlink::varlink::encode_call("io.projlink.Drawings.Upload",
                                               hostile_world::upload_params("dan", {{"file_fd", 0}})),
                {fd});
  ::close(fd);
  auto r = w.c->read(60'000);
  REQUIRE(r);
  INFO(r->dump());
  CHECK((*r)["parameters"]["revision"]["sha256"] == sha256(f));
  CHECK(threads_of(w.d.pid()) <= before + 2);
  for (int x : writers)
    ::close(x);
}

TEST_CASE("hostile: connections are bounded per uid, with control.operator_slots kept for "
          "operators") {
  NEEDS_ROOT();
  hostile_world w{"  max_clients: 2\n  max_clients_per_uid: 2\n  operator_slots: 2\n"};
  w.c.reset(); // no operator connection for now
  std::vector<std::unique_ptr<conn>> mine;
  for (int i = 0; i < 3; ++i)
    mine.push_back(connect_as(nobody, w.d.socket));
  // The first two are served; the third is closed (control.max_clients_per_uid).
  CHECK(error_of(mine[0]->call("org.varlink.service.GetInfo")).empty());
  CHECK(error_of(mine[1]->call("org.varlink.service.GetInfo")).empty());
  CHECK(mine[2]->closed_within(10'000));
  // The client filled control.max_clients; the operator still gets in.
  auto st = ctl(w.d.socket, {"status"});
  INFO(st.out << st.err);
  CHECK(st.status == 0);
  conn op1{w.d.socket};
  CHECK(error_of(op1.call("org.varlink.service.GetInfo")).empty());
  // Once projlinkctl's connection is gone: two clients and op1.
  double connected = 0;
  for (int i = 0; i < 300 && connected != 3; ++i) {
    connected = op1.call("io.projlink.Daemon.GetMetrics")["parameters"]["metrics"]["clients_connected"]
                  .get<double>();
    if (connected != 3)
      std::this_thread::sleep_for(100ms);
  }
  REQUIRE(connected == 3);
  conn op2{w.d.socket};
  CHECK(error_of(op2.call("org.varlink.service.GetInfo")).empty());
  // Past max_clients + operator_slots even an operator is refused.
  conn op3{w.d.socket};
  CHECK(op3.closed_within(10'000));
  CHECK(w.d.log().find("refused a connection of uid " + std::to_string(nobody)) != std::string::npos);
}

TEST_CASE("hostile: a client that never reads its replies is closed at "
          "control.max_unread_reply_bytes") {
  hostile_world w{"  max_unread_reply_bytes: 4MiB\n"};
  {
    conn greedy{w.d.socket};
    std::string burst;
    for (int i = 0; i < 3000; ++i)
      burst += projlink::varlink::encode_call("org.varlink.service.GetInterfaceDescription",
                                              {{"interface", "io.projlink.Connections"}});
    greedy.send_raw(burst); // and never reads
    json m;
    for (int i = 0; i < 600; ++i) {
      m = w.metrics();
      if (m["clients_closed_unread_total"].get<double>() >= 1)
        break;
      std::this_thread::sleep_for(100ms);
    }
  }
  auto m = w.metrics();
  INFO(m.dump());
  CHECK(m["clients_closed_unread_total"].get<double>() >= 1);
  CHECK(m["reply_bytes"].get<double>() < 4 << 20);
  CHECK(w.d.log().find("control.max_unread_reply_bytes") != std::string::npos);
}

TEST_CASE("hostile: long lists are paged by SPEC §6.2's one rule and projlinkctl follows the pages") {
  hostile_world w{""};
  std::string doc = "companies:\n";
  for (int i = 0; i < 2500; ++i)
    doc += "  - {id: zz" + std::to_string(10000 + i) + ", name: Company " + std::to_string(i) + "}\n";
  REQUIRE(error_of(w.c->call("io.projlink.Directory.Import", {{"document", doc}})).empty());
  auto first = w.c->call("io.projlink.Directory.ListCompanies");
  REQUIRE(error_of(first).empty());
  CHECK(first["parameters"]["companies"].size() == 1000); // the default limit
  REQUIRE(first["parameters"].contains("next"));
  // Walk with limit 700: every company exactly once, ascending by id.
  std::vector<std::string> seen;
  json after;
  for (int page = 0; page < 100; ++page) {
    json p{{"limit", 700}};
    if (!after.is_null())
      p["after"] = after;
    auto r = w.c->call("io.projlink.Directory.ListCompanies", p);
    REQUIRE(error_of(r).empty());
    for (const auto& c : r["parameters"]["companies"])
      seen.push_back(c["id"]);
    if (!r["parameters"].contains("next"))
      break;
    after = r["parameters"]["next"];
  }
  CHECK(seen.size() == 2504); // and the world's four
  CHECK(std::is_sorted(seen.begin(), seen.end()));
  CHECK(std::set<std::string>(seen.begin(), seen.end()).size() == seen.size());
  // Bad limits and tokens change nothing and are named.
  auto bad = [&](const std::string& method, json p) {
    auto r = w.c->call(method, p);
    return r["parameters"].value("parameter", std::string{"-"});
  };
  CHECK(bad("io.projlink.Directory.ListCompanies", {{"limit", 0}}) == "limit");
  CHECK(bad("io.projlink.Directory.ListCompanies", {{"limit", 10001}}) == "limit");
  CHECK(bad("io.projlink.Directory.ListCompanies", {{"after", "nonsense"}}) == "after");
  // A token of another method or filter is refused.
  auto token = first["parameters"]["next"];
  CHECK(bad("io.projlink.Directory.ListUsers", {{"after", token}}) == "after");
  CHECK(bad("io.projlink.Directory.ListProjects", {{"company", "gc"}, {"after", token}}) == "after");
  // projlinkctl follows every page; with --limit it shows one.
  auto all = ctl(w.d.socket, {"--json", "company", "list"});
  REQUIRE(all.status == 0);
  CHECK(json::parse(all.out)["companies"].size() == 2504);
  auto one = ctl(w.d.socket, {"--json", "company", "list", "--limit", "3"});
  REQUIRE(one.status == 0);
  CHECK(json::parse(one.out)["companies"].size() == 3);
  // History pages carry next as a seq.
  for (int i = 0; i < 3; ++i)
    REQUIRE(error_of(w.c->call("io.projlink.Connections.SetApprovalMode",
                               {{"as", "ga"}, {"company", "gc"}, {"auto_approve", i % 2 == 0}}))
              .empty());
  REQUIRE(error_of(w.c->call("io.projlink.Connections.Request",
                             {{"as", "dan"}, {"downstream", "d1"}, {"upstream", "up"}}))
            .empty());
  auto h = w.c->call("io.projlink.Connections.History", {{"as", "ga"}, {"project", "up"}, {"limit", 1}});
  INFO(h.dump());
  REQUIRE(h["parameters"]["events"].size() == 1);
  REQUIRE(h["parameters"].contains("next"));
  CHECK(h["parameters"]["next"] == h["parameters"]["events"][0]["seq"]);
}

TEST_CASE("hostile: who a call acts as is bound to the caller's uid (SPEC §6.3)") {
  NEEDS_ROOT();
  // nobody is mapped to dan; nobody - 1 is a plain client.
  hostile_world w{"", "", "  identities: [{ uid: " + std::to_string(nobody) + ", user: dan }]\n"};
  auto c = connect_as(nobody, w.d.socket);
  auto list = [&](conn& via, json p) {
    p["project"] = "d1";
    return via.call("io.projlink.Connections.List", p);
  };
  CHECK(error_of(list(*c, json::object())).empty());              // as dan
  CHECK(error_of(list(*c, {{"as", "dan"}})).empty());             // the same
  CHECK(error_of(list(*c, {{"as", "dan@sub.test"}})).empty());    // by email
  CHECK(error_of(list(*c, {{"as", "ga"}})) == "org.varlink.service.PermissionDenied");
  CHECK(error_of(list(*c, {{"as", "nobody-here"}})) == "org.varlink.service.PermissionDenied");
  // A change is logged with the caller's uid and pid.
  auto r = c->call("io.projlink.Connections.Request", {{"downstream", "d1"}, {"upstream", "up"}});
  INFO(r.dump());
  CHECK(error_of(r).empty());
  CHECK(w.d.log().find("change: io.projlink.Connections.Request by uid=" + std::to_string(nobody))
        != std::string::npos);
  // A plain client may call only what takes no `as`.
  auto plain = connect_as(nobody - 1, w.d.socket);
  CHECK(error_of(list(*plain, json::object())) == "org.varlink.service.PermissionDenied");
  CHECK(error_of(list(*plain, {{"as", "dan"}})) == "org.varlink.service.PermissionDenied");
  CHECK(error_of(plain->call("io.projlink.Daemon.GetStatus")).empty());
  // An operator must say whom it acts as.
  auto op = list(*w.c, json::object());
  CHECK(error_of(op) == "org.varlink.service.InvalidParameter");
  CHECK(op["parameters"]["parameter"] == "as");
  // projlinkctl run by the mapped uid needs no --as.
  // Real and effective uid both the mapped one (setpriv): a process whose
  // uids differ is not dumpable, and the sanitizers' runtime can then read
  // neither its options nor its memory maps.
  auto st = run({"setpriv", "--reuid=" + std::to_string(nobody), "--keep-groups", PROJLINKCTL,
                 "connections", "d1"},
                {{"PROJLINK_SOCKET", w.d.socket.string()}});
  INFO(st.out << st.err);
  CHECK(st.status == 0);
  auto no_as = ctl(w.d.socket, {"connections", "d1"});
  CHECK(no_as.status == 1);
  CHECK(no_as.err.find("--as") != std::string::npos);
}

TEST_CASE("hostile: reasons follow SPEC §6.2; a smuggling sequence is refused and changes nothing") {
  hostile_world w{""};
  auto req = w.c->call("io.projlink.Connections.Request",
                       {{"as", "sa"}, {"downstream", "d3"}, {"upstream", "upm"}});
  REQUIRE(error_of(req).empty());
  std::string id = req["parameters"]["connection"]["id"];
  for (const std::string& bad : {std::string("x\r.\r\nMAIL FROM:<a@b>"), std::string("nul\0x", 5),
                                 std::string(1001, 'r'), std::string("\x1b[31m")}) {
    auto r = w.c->call("io.projlink.Connections.Reject", {{"as", "ma"}, {"connection", id}, {"reason", bad}});
    INFO(r.dump());
    CHECK(error_of(r) == "org.varlink.service.InvalidParameter");
    CHECK(r["parameters"]["parameter"] == "reason");
  }
  auto get = w.c->call("io.projlink.Connections.Get", {{"as", "ma"}, {"connection", id}});
  CHECK(get["parameters"]["connection"]["state"] == "awaiting_approval");
  auto ok = w.c->call("io.projlink.Connections.Reject",
                      {{"as", "ma"}, {"connection", id}, {"reason", "  not now\nsorry  "}});
  INFO(ok.dump());
  REQUIRE(error_of(ok).empty());
  CHECK(ok["parameters"]["connection"]["reason"] == "not now\nsorry");
}

TEST_CASE("hostile: a Watch stops streaming once its user may no longer view the project") {
  hostile_world w{""};
  conn watch{w.d.socket};
  watch.send_call("io.projlink.Connections.Watch", {{"as", "rita"}, {"project", "d1"}}, false, true);
  // Wait until the Watch is subscribed: every event committed later reaches it.
  for (int i = 0; i < 600 && w.metrics()["watches_started_total"].get<double>() < 1; ++i)
    std::this_thread::sleep_for(50ms);
  REQUIRE(w.metrics()["watches_started_total"].get<double>() >= 1);
  // rita views d1 (cm read_only): the request arrives.
  auto req = w.c->call("io.projlink.Connections.Request",
                       {{"as", "sa"}, {"downstream", "d1"}, {"upstream", "upm"}});
  REQUIRE(error_of(req).empty());
  std::string id = req["parameters"]["connection"]["id"];
  auto first = watch.read(30'000);
  REQUIRE(first);
  INFO(first->dump());
  CHECK((*first)["parameters"]["event"]["kind"] == "requested");
  // Her access goes; the next event of d1 is not streamed: the Watch ends.
  REQUIRE(error_of(w.c->call("io.projlink.Directory.RemoveAccess", {{"project", "d1"}, {"user", "rita"}}))
            .empty());
  REQUIRE(error_of(w.c->call("io.projlink.Connections.Cancel", {{"as", "sa"}, {"connection", id}})).empty());
  auto last = watch.read(30'000);
  REQUIRE(last);
  INFO(last->dump());
  CHECK(error_of(*last) == "io.projlink.Connections.PermissionDenied");
  CHECK((*last)["parameters"] == json{{"action", "view"}, {"project", "d1"}});
  CHECK_FALSE((*last).value("continues", false));
}

TEST_CASE("hostile: a Reload that no longer admits a peer closes its connections") {
  NEEDS_ROOT();
  hostile_world w{""};
  auto mine = connect_as(nobody, w.d.socket);
  REQUIRE(error_of(mine->call("io.projlink.Daemon.GetStatus")).empty());
  std::string text;
  {
    std::ifstream in(w.d.config_file);
    std::stringstream ss;
    ss << in.rdbuf();
    text = ss.str();
  }
  auto replace = [&](const std::string& a, const std::string& b) {
    auto pos = text.find(a);
    REQUIRE(pos != std::string::npos);
    text.replace(pos, a.size(), b);
  };
  replace("uids: [" + std::to_string(nobody) + ", ", "uids: [");
  replace("delegates: { uids: [" + std::to_string(nobody) + "] }", "delegates: { uids: [] }");
  std::ofstream(w.d.config_file) << text;
  auto r = w.c->call("io.projlink.Daemon.Reload");
  INFO(r.dump() << w.d.log());
  REQUIRE(error_of(r).empty());
  CHECK(mine->closed_within(10'000));
  CHECK(w.d.log().find("no longer admits") != std::string::npos);
}

TEST_CASE("hostile: a database corrupted after a clean shutdown is caught at the next start") {
  daemon_process d;
  d.start();
  {
    conn c{d.socket};
    REQUIRE(error_of(c.call("io.projlink.Directory.Import", {{"document", world_yaml}})).empty());
  }
  REQUIRE(d.stop(SIGTERM) == 0);
  auto db = d.dir / "projlink.db";
  REQUIRE(fs::file_size(db) > 4 * 4096);
  {
    std::fstream f(db, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    std::string junk(3 * 4096, '\xaa');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  // It does not start "healthy" to fail every call: it says why and exits.
  auto r = run({"timeout", "30", PROJLINKD, "-c", d.config_file.string()});
  INFO(r.out << r.err << d.log());
  CHECK(r.status == 1);
  CHECK((r.err + d.log()).find("integrity check") != std::string::npos);
}
