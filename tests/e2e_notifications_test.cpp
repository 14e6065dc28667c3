// End to end: notifications (SPEC §10) — every event of the table lands in
// the right Maildir for the right recipients; SMTP delivery against a real
// SMTP server (python3-aiosmtpd), down at first, refusing one recipient.

#include "e2e_connections_support.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

extern char** environ;

using namespace e2e;
using namespace std::chrono_literals;

namespace {

struct message {
  std::map<std::string, std::string> headers;
  std::string body;
};

/// Every message in `dir`/new and `dir`/cur.
std::vector<message> maildir(const fs::path& dir) {
  std::vector<message> out;
  for (const char* sub : {"new", "cur"}) {
    if (!fs::exists(dir / sub))
      continue;
    for (const auto& f : fs::directory_iterator(dir / sub)) {
      std::ifstream in(f.path());
      std::stringstream ss;
      ss << in.rdbuf();
      auto text = ss.str();
      message m;
      std::istringstream lines(text);
      std::string line;
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r')
          line.pop_back();
        if (line.empty())
          break;
        auto colon = line.find(':');
        if (colon != std::string::npos)
          m.headers[line.substr(0, colon)] = line.substr(colon + 2);
      }
      m.body = text.substr(static_cast<size_t>(lines.tellg()));
      out.push_back(std::move(m));
    }
  }
  return out;
}

template <class F>
bool eventually(F pred, std::chrono::milliseconds limit = 10s) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (pred())
      return true;
    std::this_thread::sleep_for(50ms);
  }
  return pred();
}

/// (event, project, recipient) of each message.
using triple = std::tuple<std::string, std::string, std::string>;

std::multiset<triple> triples(const std::vector<message>& ms) {
  std::multiset<triple> out;
  for (const auto& m : ms) {
    auto to = m.headers.at("To");
    out.insert({m.headers.at("X-Projlink-Event"), m.headers.at("X-Projlink-Project"),
                to.substr(1, to.size() - 2)});
  }
  return out;
}

int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

/// tests/smtp_server.py as a child process.
struct smtp_server {
  pid_t pid = -1;
  fs::path dir;
  smtp_server(int port, fs::path maildir) : dir(std::move(maildir)) {
    std::string script = std::string{PROJLINK_SOURCE_DIR} + "/tests/smtp_server.py";
    std::string p = std::to_string(port);
    std::vector<char*> argv{const_cast<char*>("/usr/bin/python3"), script.data(), p.data(),
                            const_cast<char*>(dir.c_str()), nullptr};
    REQUIRE(::posix_spawn(&pid, argv[0], nullptr, nullptr, argv.data(), environ) == 0);
    // Ready when it accepts connections.
    REQUIRE(eventually([&] {
      int fd = ::socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_port = htons(static_cast<uint16_t>(port));
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      ::close(fd);
      return ok;
    }));
  }
  ~smtp_server() {
    ::kill(pid, SIGTERM);
    int status = 0;
    ::waitpid(pid, &status, 0);
  }
};

json notifications(world& w, const std::string& as, const std::string& project) {
  auto r = w.call("Notifications", {{"as", as}, {"project", project}});
  INFO(r.dump());
  REQUIRE(error_of(r).empty());
  return r["parameters"]["notifications"];
}

} // namespace

TEST_CASE("notifications: every event reaches the right Maildir recipients") {
  world w;
  auto box = w.d.dir / "outbox";
  // Distribution lists: upm all_admins = mcm; d1 all_admins = dan;
  // up specific = ga (company admin); d2 specific = sa.
  REQUIRE(error_of(w.call("SetDistribution", {{"as", "ga"}, {"project", "up"},
                                               {"mode", "specific_users"}, {"users", {"ga"}}}))
            .empty());
  REQUIRE(error_of(w.call("SetDistribution", {{"as", "sa"}, {"project", "d2"},
                                               {"mode", "specific_users"}, {"users", {"sa"}}}))
            .empty());
  auto s = w.call("GetSettings", {{"as", "mcm"}, {"project", "upm"}});
  CHECK(s["parameters"]["settings"]["recipients"] == json{"mcm@gcm.test"});
  // A user who is not cm admin there cannot be put on a list.
  auto bad = w.call("SetDistribution", {{"as", "sa"}, {"project", "d1"},
                                        {"mode", "specific_users"}, {"users", {"rita"}}});
  CHECK(error_of(bad) == "org.varlink.service.InvalidParameter");
  CHECK(bad["parameters"]["parameter"] == "users");

  auto a = world::id(w.request("sa", "d1", "upm")); // connection_requested → upm
  REQUIRE(error_of(w.call("Reject", {{"as", "mcm"}, {"connection", a}, {"reason", "no"}})).empty());
  auto b = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(error_of(w.call("Cancel", {{"as", "sa"}, {"connection", b}})).empty());
  auto c = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", c}})).empty());
  REQUIRE(error_of(w.call("Disconnect", {{"as", "sa"},
                                          {"connection", c},
                                          {"reason", "job done"},
                                          {"accept_terms", true}}))
            .empty());
  auto d = world::id(w.request("sa", "d2", "up")); // auto-approved
  std::multiset<triple> expected{
    {"connection_requested", "upm", "mcm@gcm.test"},
    {"request_rejected", "d1", "dan@sub.test"},
    {"connection_requested", "upm", "mcm@gcm.test"},
    {"request_cancelled", "upm", "mcm@gcm.test"},
    {"request_cancelled", "d1", "dan@sub.test"},
    {"connection_requested", "upm", "mcm@gcm.test"},
    {"connection_created", "upm", "mcm@gcm.test"},
    {"connection_created", "d1", "dan@sub.test"},
    {"connection_disabled", "upm", "mcm@gcm.test"},
    {"connection_disabled", "d1", "dan@sub.test"},
    {"connection_created", "up", "ga@gc.test"},
    {"connection_created", "d2", "sa@sub.test"},
  };
  REQUIRE(eventually([&] { return maildir(box).size() >= expected.size(); }));
  std::this_thread::sleep_for(200ms); // nothing more arrives
  auto msgs = maildir(box);
  CHECK(triples(msgs) == expected);
  for (const auto& m : msgs) {
    CHECK(m.headers.count("X-Projlink-Connection") == 1);
    CHECK(m.headers.at("From") == "projlink <projlink@localhost>");
    CHECK(m.headers.at("Subject").rfind("[projlink] ", 0) == 0);
    if (m.headers.at("X-Projlink-Event") == "connection_disabled") {
      CHECK(m.headers.at("X-Projlink-Connection") == c);
      CHECK(m.body.find("Reason:      job done") != std::string::npos);
      CHECK(m.body.find("By:          Sub Admin <sa@sub.test>") != std::string::npos);
      CHECK(m.body.find("Tower steel (d1)") != std::string::npos);
    }
  }
  // Listed with their delivery state.
  auto listed = notifications(w, "mcm", "upm");
  CHECK(listed.size() == 6);
  for (const auto& n : listed) {
    CHECK(n["state"] == "delivered");
    CHECK(n["attempts"] == 1);
    CHECK(n["recipients"] == json{"mcm@gcm.test"});
  }
  CHECK(listed[0]["event"] == "connection_disabled");
  // An empty list is recorded, not silently dropped.
  w.c->call("io.projlink.Directory.SetAccess",
            {{"project", "up2"}, {"user", "ga"}, {"cm", "read_only"}});
  world::id(w.request("sa", "d3", "up2"));
  // Queued with the decision (listed as pending, no recipients yet), then
  // expanded by the notifier: a list that resolves to nobody fails, saying so.
  json empty;
  CHECK(eventually([&] {
    empty = notifications(w, "ga", "up2");
    return empty.size() == 1 && empty[0]["state"] == "failed";
  }));
  REQUIRE(empty.size() == 1);
  CHECK(empty[0]["last_error"] == "the distribution list of project up2 is empty");
  CHECK(empty[0]["recipients"].empty());
  // Viewing needs cm read_only.
  auto r = w.call("Notifications", {{"as", "otto"}, {"project", "upm"}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  // And projlinkctl shows them.
  auto out = ctl(w.d.socket, {"--as", "mcm", "notifications", "upm"});
  CHECK(out.status == 0);
  CHECK(out.out.find("connection_disabled") != std::string::npos);
  CHECK(out.out.find("mcm@gcm.test") != std::string::npos);
  (void) d;
}

TEST_CASE("notifications: an upstream undo notifies connection_unapproved to both lists") {
  world w;
  auto box = w.d.dir / "outbox";
  auto a = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", a}})).empty());
  auto r = w.call("Undo", {{"as", "mcm"}, {"connection", a}});
  REQUIRE(error_of(r).empty());
  CHECK(r["parameters"]["connection"]["state"] == "awaiting_approval");
  std::multiset<triple> expected{
    {"connection_requested", "upm", "mcm@gcm.test"},
    {"connection_created", "upm", "mcm@gcm.test"},
    {"connection_created", "d1", "dan@sub.test"},
    {"connection_unapproved", "upm", "mcm@gcm.test"},
    {"connection_unapproved", "d1", "dan@sub.test"},
  };
  REQUIRE(eventually([&] { return maildir(box).size() >= expected.size(); }));
  std::this_thread::sleep_for(200ms); // nothing more arrives
  CHECK(triples(maildir(box)) == expected);
}

TEST_CASE("notifications: an expired request notifies both sides") {
  world w{"connections:\n  request_ttl: 500ms\n"};
  auto a = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(eventually([&] {
    auto ms = maildir(w.d.dir / "outbox");
    return triples(ms).count({"request_expired", "d1", "dan@sub.test"}) == 1
           && triples(ms).count({"request_expired", "upm", "mcm@gcm.test"}) == 1;
  }));
  CHECK(w.state(a) == "expired");
}

TEST_CASE("notifications: nothing queued is lost when the daemon is killed before delivery") {
  // delivery: smtp to a port where nobody listens — messages stay pending.
  int port = free_port();
  world w{"notifications:\n  delivery: smtp\n  smtp: { url: \"smtp://127.0.0.1:"
          + std::to_string(port) + "\", starttls: false }\n"
          "  retry: { initial: 200ms, max: 400ms, attempts: 1000 }\n"};
  world::id(w.request("sa", "d1", "upm"));
  REQUIRE(eventually([&] {
    auto n = notifications(w, "mcm", "upm");
    return n.size() == 1 && n[0]["attempts"].get<int>() >= 1;
  }));
  auto n = notifications(w, "mcm", "upm");
  CHECK(n[0]["state"] == "pending");
  CHECK(n[0]["last_error"].get<std::string>().find("smtp:") == 0);
  // Crash, then restart with the server up: the queued message arrives.
  w.c.reset();
  w.d.stop(SIGKILL);
  smtp_server server{port, w.d.dir / "received"};
  w.d.start();
  w.connect();
  REQUIRE(eventually([&] { return maildir(server.dir).size() == 1; }));
  CHECK(eventually([&] { return notifications(w, "mcm", "upm")[0]["state"] == "delivered"; }));
}

TEST_CASE("notifications over SMTP: server down at first then delivered, a refused recipient fails alone") {
  int port = free_port();
  world w{"notifications:\n  delivery: smtp\n  from: projlink@gc.test\n"
          "  smtp: { url: \"smtp://127.0.0.1:" + std::to_string(port)
          + "\", starttls: false }\n"
            "  retry: { initial: 200ms, max: 400ms, attempts: 1000 }\n"};
  REQUIRE(error_of(w.c->call("io.projlink.Directory.CreateUser",
                             {{"id", "refuser"}, {"email", "refuse@gcm.test"}, {"name", "R"},
                              {"company", "gcm"}}))
            .empty());
  w.c->call("io.projlink.Directory.SetAccess",
            {{"project", "upm"}, {"user", "refuser"}, {"cm", "admin"}});
  auto a = world::id(w.request("sa", "d1", "upm"));
  // The server is down: both messages are retried.
  REQUIRE(eventually([&] {
    auto n = notifications(w, "mcm", "upm");
    return n.size() == 2 && n[0]["attempts"].get<int>() >= 2 && n[1]["attempts"].get<int>() >= 2;
  }));
  for (const auto& n : notifications(w, "mcm", "upm")) {
    CHECK(n["state"] == "pending");
    CHECK(n["last_error"].get<std::string>().find("smtp:") == 0);
  }
  // Now it comes up.
  smtp_server server{port, w.d.dir / "received"};
  REQUIRE(eventually([&] {
    auto n = notifications(w, "mcm", "upm");
    return n[0]["state"] != "pending" && n[1]["state"] != "pending";
  }));
  for (const auto& n : notifications(w, "mcm", "upm")) {
    INFO(n.dump());
    if (n["recipients"][0] == "mcm@gcm.test") {
      CHECK(n["state"] == "delivered");
    } else {
      CHECK(n["recipients"][0] == "refuse@gcm.test");
      CHECK(n["state"] == "failed");
      CHECK(n["last_error"].get<std::string>().find("550") != std::string::npos);
    }
  }
  auto got = maildir(server.dir);
  REQUIRE(got.size() == 1);
  CHECK(got[0].headers.at("X-Envelope-To") == "mcm@gcm.test");
  CHECK(got[0].headers.at("X-Projlink-Event") == "connection_requested");
  CHECK(got[0].headers.at("X-Projlink-Project") == "upm");
  CHECK(got[0].headers.at("X-Projlink-Connection") == a);
  CHECK(got[0].headers.at("From") == "projlink <projlink@gc.test>");
}
