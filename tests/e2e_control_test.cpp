// End to end: the control socket (SPEC §6.1, §6.3) and the daemon's
// lifecycle (§8), against the real projlinkd.

#include "e2e_support.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

using namespace e2e;

namespace {

/// Proof of life: a fresh connection gets GetInfo answered.
void still_serves(const daemon_process& d) {
  conn c{d.socket};
  auto r = c.call("org.varlink.service.GetInfo");
  REQUIRE(error_of(r).empty());
  CHECK(r["parameters"]["product"] == "projlinkd");
}

json companies(const daemon_process& d) {
  conn c{d.socket};
  return c.call("io.projlink.Directory.ListCompanies")["parameters"]["companies"];
}

} // namespace

TEST_CASE("GetInfo and GetInterfaceDescription serve the repository's .varlink files") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  auto info = c.call("org.varlink.service.GetInfo");
  auto names = info["parameters"]["interfaces"];
  CHECK(names.size() == 5);
  for (const auto& n : names) {
    auto desc = c.call("org.varlink.service.GetInterfaceDescription", {{"interface", n}});
    std::ifstream in(std::string(PROJLINK_SOURCE_DIR) + "/varlink/" + n.get<std::string>()
                     + ".varlink");
    std::stringstream file;
    file << in.rdbuf();
    CHECK(desc["parameters"]["description"] == file.str());
  }
  auto missing = c.call("org.varlink.service.GetInterfaceDescription", {{"interface", "no.such"}});
  CHECK(error_of(missing) == "org.varlink.service.InterfaceNotFound");
  CHECK(missing["parameters"]["interface"] == "no.such");
}

TEST_CASE("malformed messages get a named error and the connection keeps working") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  struct bad_input {
    std::string bytes;
    std::string error;
  };
  std::vector<bad_input> inputs{
    {std::string("{not json") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("[1,2,3]") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("\"just a string\"") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("{\"parameters\":{}}") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("{\"method\":42}") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("{\"method\":\"x.Y\",\"parameters\":[1]}") + '\0',
     "io.projlink.Daemon.ProtocolError"},
    {std::string("\xff\xfe\x01garbage") + '\0', "io.projlink.Daemon.ProtocolError"},
    {std::string("{\"method\":\"no.such.Method\"}") + '\0', "org.varlink.service.InterfaceNotFound"},
    {std::string("{\"method\":\"io.projlink.Directory.Nope\"}") + '\0',
     "org.varlink.service.MethodNotFound"},
    {std::string("{\"method\":\"nodots\"}") + '\0', "org.varlink.service.MethodNotFound"},
  };
  for (const auto& in : inputs) {
    INFO(in.bytes);
    c.send_raw(in.bytes);
    auto r = c.read();
    REQUIRE(r);
    CHECK(error_of(*r) == in.error);
  }
  auto ok = c.call("org.varlink.service.GetInfo");
  CHECK(error_of(ok).empty());
  still_serves(d);
}

TEST_CASE("wrong parameter types are InvalidParameter naming the parameter and change nothing") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  struct bad_call {
    std::string method;
    json params;
    std::string parameter;
  };
  std::vector<bad_call> calls{
    {"io.projlink.Directory.CreateCompany", {{"id", 5}, {"name", "X"}}, "id"},
    {"io.projlink.Directory.CreateCompany", {{"id", "x"}}, "name"},
    {"io.projlink.Directory.CreateCompany", {{"id", "x"}, {"name", "X"}, {"auto_approve", "yes"}},
     "auto_approve"},
    {"io.projlink.Directory.CreateCompany", {{"id", "Not Valid"}, {"name", "X"}}, "id"},
    {"io.projlink.Directory.CreateCompany", {{"id", "x"}, {"name", "X"}, {"colour", "red"}},
     "colour"},
    {"io.projlink.Directory.SetAccess", {{"project", "p"}, {"user", "u"}, {"cm", "boss"}}, "cm"},
    {"io.projlink.Directory.Import", {{"document", json::array()}}, "document"},
    {"org.varlink.service.GetInterfaceDescription", {{"interface", 1}}, "interface"},
  };
  for (const auto& bc : calls) {
    INFO(bc.method << " " << bc.params.dump());
    auto r = c.call(bc.method, bc.params);
    CHECK(error_of(r) == "org.varlink.service.InvalidParameter");
    CHECK(r["parameters"]["parameter"] == bc.parameter);
  }
  CHECK(companies(d).empty());
}

TEST_CASE("a message over max_message_bytes gets ProtocolError and the connection closes") {
  daemon_process d{"  max_message_bytes: 4KiB\n"};
  d.start();
  conn c{d.socket};
  std::string big = "{\"method\":\"io.projlink.Directory.CreateCompany\",\"parameters\":{\"id\":\"x\","
                    "\"name\":\"" + std::string(10000, 'a') + "\"}}";
  c.send_raw(big + '\0');
  auto r = c.read();
  REQUIRE(r);
  CHECK(error_of(*r) == "io.projlink.Daemon.ProtocolError");
  CHECK(c.closed_within(2000));
  SECTION("also when the NUL never comes") {
    conn c2{d.socket};
    c2.send_raw(std::string(8000, '{'));
    auto r2 = c2.read();
    REQUIRE(r2);
    CHECK(error_of(*r2) == "io.projlink.Daemon.ProtocolError");
    CHECK(c2.closed_within(2000));
  }
  CHECK(companies(d).empty());
  still_serves(d);
}

TEST_CASE("a client that sends half a message and stalls is closed after idle_timeout") {
  daemon_process d{"  idle_timeout: 500ms\n"};
  d.start();
  conn c{d.socket};
  c.send_raw("{\"method\":\"org.varlink.service.Get");
  auto t0 = std::chrono::steady_clock::now();
  CHECK(c.closed_within(5000));
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds{5});
  still_serves(d);
  CHECK(d.log().find("idle with half a message") != std::string::npos);
}

TEST_CASE("500 clients at once: the first max_clients are served, the rest closed, all survive") {
  // The test runs as an operator: it also gets control.operator_slots.
  daemon_process d{"  max_clients: 200\n  operator_slots: 4\n"};
  d.start();
  std::vector<std::unique_ptr<conn>> clients;
  for (int i = 0; i < 500; ++i)
    clients.push_back(std::make_unique<conn>(d.socket));
  for (auto& c : clients)
    c->send_call("org.varlink.service.GetInfo");
  int answered = 0, closed = 0;
  for (auto& c : clients) {
    auto r = c->read(5000);
    if (r) {
      CHECK(error_of(*r).empty());
      ++answered;
    } else {
      ++closed;
    }
  }
  CHECK(answered == 204);
  CHECK(closed == 296);
  clients.clear();
  // The slots free up again.
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  still_serves(d);
}

TEST_CASE("pipelined calls are answered in call order") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  std::string batch;
  for (int i = 0; i < 100; ++i) {
    auto id = "c" + std::to_string(i);
    batch += projlink::varlink::encode_call("io.projlink.Directory.CreateCompany",
                                            {{"id", id}, {"name", id}});
    batch += projlink::varlink::encode_call("org.varlink.service.GetInfo", json::object());
    batch += projlink::varlink::encode_call("io.projlink.Directory.ListCompanies", json::object());
  }
  c.send_raw(batch);
  for (int i = 0; i < 100; ++i) {
    auto created = c.read();
    REQUIRE(created);
    CHECK((*created)["parameters"]["company"]["id"] == "c" + std::to_string(i));
    auto info = c.read();
    REQUIRE(info);
    CHECK((*info)["parameters"]["product"] == "projlinkd");
    auto list = c.read();
    REQUIRE(list);
    // Every earlier write is visible to a later read on the same connection.
    CHECK((*list)["parameters"]["companies"].size() == static_cast<size_t>(i + 1));
  }
}

TEST_CASE("oneway calls take effect without a reply") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  c.send_call("io.projlink.Directory.CreateCompany", {{"id", "quiet"}, {"name", "Quiet"}}, true);
  c.send_call("no.such.Thing", json::object(), true);
  auto r = c.call("io.projlink.Directory.ListCompanies");
  // The first reply on the connection is the ListCompanies one.
  REQUIRE(r["parameters"].contains("companies"));
  CHECK(r["parameters"]["companies"].size() == 1);
}

TEST_CASE("descriptors passed with a call are received and closed, never leaked") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  c.call("org.varlink.service.GetInfo");
  auto before = d.open_fds();
  for (int i = 0; i < 50; ++i) {
    int p[2];
    REQUIRE(::pipe(p) == 0);
    c.send_raw(projlink::varlink::encode_call("org.varlink.service.GetInfo", json::object()),
               {p[0], p[1], p[0]});
    ::close(p[0]);
    ::close(p[1]);
    auto r = c.read();
    REQUIRE(r);
    CHECK(error_of(*r).empty());
  }
  // One more with more descriptors than a call may carry.
  std::vector<int> many;
  for (int i = 0; i < 40; ++i)
    many.push_back(::open("/dev/null", O_RDONLY));
  c.send_raw(projlink::varlink::encode_call("org.varlink.service.GetInfo", json::object()), many);
  for (int fd : many)
    ::close(fd);
  auto r = c.read();
  REQUIRE(r);
  std::this_thread::sleep_for(std::chrono::milliseconds{200});
  CHECK(d.open_fds() <= before);
}

TEST_CASE("SO_PEERCRED: operators, clients and strangers get what control.* allows") {
  daemon_process d{"", ""};
  d.write_config("", "");
  // uid 65534 (nobody) as client; our own uid as operator.
  std::ifstream in(d.config_file);
  std::stringstream cfg;
  cfg << in.rdbuf();
  auto text = cfg.str();
  auto pos = text.find("clients: { uids: []");
  auto stranger_and_client = [&](bool as_client) {
    std::string t = text;
    if (as_client)
      t.replace(pos, std::string("clients: { uids: []").size(), "clients: { uids: [65534]");
    std::ofstream(d.config_file) << t;
  };
  stranger_and_client(false);
  d.start();
  ::chmod(d.dir.c_str(), 0755);
  ::chmod(d.socket.c_str(), 0666);
  auto as_nobody = [&](const std::string& method) {
    // A child that drops to uid 65534 and makes one call.
    int pipefd[2];
    REQUIRE(::pipe(pipefd) == 0);
    pid_t pid = ::fork();
    if (pid == 0) {
      ::close(pipefd[0]);
      if (::setgid(65534) != 0 || ::setuid(65534) != 0)
        ::_exit(3);
      sockaddr_un addr{};
      addr.sun_family = AF_UNIX;
      std::strncpy(addr.sun_path, d.socket.c_str(), sizeof(addr.sun_path) - 1);
      int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
      if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0)
        ::_exit(4);
      auto msg = projlink::varlink::encode_call(method, json::object());
      if (::write(fd, msg.data(), msg.size()) < 0)
        ::_exit(5);
      char buf[4096];
      auto n = ::read(fd, buf, sizeof(buf));
      if (n > 0 && ::write(pipefd[1], buf, static_cast<size_t>(n)) < 0)
        ::_exit(6);
      ::_exit(0);
    }
    ::close(pipefd[1]);
    char buf[4096];
    std::string out;
    ssize_t n;
    while ((n = ::read(pipefd[0], buf, sizeof(buf))) > 0)
      out.append(buf, static_cast<size_t>(n));
    ::close(pipefd[0]);
    int status;
    ::waitpid(pid, &status, 0);
    if (getuid() != 0)
      return std::string("skip");
    REQUIRE(WEXITSTATUS(status) == 0);
    REQUIRE(!out.empty());
    return error_of(json::parse(out.substr(0, out.find('\0'))));
  };
  if (::getuid() != 0) {
    WARN("not root: cannot test another uid");
    return;
  }
  CHECK(as_nobody("org.varlink.service.GetInfo") == "org.varlink.service.PermissionDenied");
  CHECK(as_nobody("io.projlink.Daemon.GetStatus") == "org.varlink.service.PermissionDenied");
  CHECK(d.log().find("uid 65534") != std::string::npos);
  // Now make nobody a client: everything but Directory and Reload.
  stranger_and_client(true);
  d.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  CHECK(as_nobody("org.varlink.service.GetInfo").empty());
  CHECK(as_nobody("io.projlink.Daemon.GetStatus").empty());
  CHECK(as_nobody("io.projlink.Directory.ListCompanies") == "org.varlink.service.PermissionDenied");
  CHECK(as_nobody("io.projlink.Daemon.Reload") == "org.varlink.service.PermissionDenied");
}

TEST_CASE("the socket is created with socket_mode") {
  daemon_process d{"  socket_mode: \"0600\"\n"};
  d.start();
  struct stat st {};
  REQUIRE(::stat(d.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  d.stop();
  daemon_process d2;
  d2.start();
  REQUIRE(::stat(d2.socket.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0660);
}

TEST_CASE("SIGHUP and Reload re-read the file and a bad file is refused with the old one kept") {
  daemon_process d{"  max_message_bytes: 4KiB\n"};
  d.start();
  // A 6 KB call: an Import whose document is mostly a comment.
  std::string payload = "{\"method\":\"io.projlink.Directory.Import\",\"parameters\":"
                        "{\"document\":\"#" + std::string(6000, 'n') + "\\ncompanies: []\"}}";
  {
    conn c{d.socket};
    c.send_raw(payload + '\0');
    CHECK(error_of(*c.read()) == "io.projlink.Daemon.ProtocolError");
  }
  d.write_config("  max_message_bytes: 64KiB\n", "");
  d.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  {
    conn c{d.socket};
    c.send_raw(payload + '\0');
    auto r = c.read();
    REQUIRE(r);
    CHECK(error_of(*r).empty());
  }
  // A broken file: refused by Reload with the reason, the old limits stay.
  d.write_config("  max_message_bytes: lots\n", "");
  conn c{d.socket};
  auto r = c.call("io.projlink.Daemon.Reload");
  CHECK(error_of(r) == "io.projlink.Daemon.InvalidConfiguration");
  CHECK(r["parameters"]["message"].get<std::string>().find("control.max_message_bytes")
        != std::string::npos);
  d.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  still_serves(d);
  c.send_raw(payload + '\0');
  auto ok = c.read();
  REQUIRE(ok);
  CHECK(error_of(*ok).empty());
  CHECK(d.log().find("rejected, keeping the running configuration") != std::string::npos);
}

TEST_CASE("SIGTERM drains and exits 0 and the state survives a restart") {
  daemon_process d;
  d.start();
  {
    conn c{d.socket};
    std::string batch;
    for (int i = 0; i < 200; ++i)
      batch += projlink::varlink::encode_call("io.projlink.Directory.CreateCompany",
                                              {{"id", "c" + std::to_string(i)}, {"name", "C"}});
    c.send_raw(batch);
    // Wait for the first reply so the daemon is working on the batch.
    REQUIRE(c.read());
    d.signal(SIGTERM);
    int answered = 1;
    while (auto r = c.read(5000)) {
      CHECK(error_of(*r).empty());
      ++answered;
    }
    // Every answered call is durable: check after the restart.
    int status = d.stop(0);
    CHECK(status == 0);
    d.start();
    CHECK(companies(d).size() >= static_cast<size_t>(answered));
  }
  CHECK(d.log().find("stopped") != std::string::npos);
}

TEST_CASE("SIGKILL loses no acknowledged change") {
  daemon_process d;
  d.start();
  size_t acknowledged = 0;
  {
    conn c{d.socket};
    for (int i = 0; i < 50; ++i) {
      auto r = c.call("io.projlink.Directory.CreateCompany",
                      {{"id", "k" + std::to_string(i)}, {"name", "K"}});
      if (error_of(r).empty())
        ++acknowledged;
    }
  }
  CHECK(d.stop(SIGKILL) == 128 + SIGKILL);
  d.start();
  CHECK(companies(d).size() == acknowledged);
  CHECK(d.log().find("did not shut down cleanly") != std::string::npos);
}

TEST_CASE("a second daemon on the same state directory refuses to start") {
  daemon_process d;
  d.start();
  auto r = run({PROJLINKD, "-c", d.config_file.string()});
  CHECK(r.status == 1);
  CHECK(r.err.find("another") != std::string::npos);
  still_serves(d);
}

TEST_CASE("check-config validates and exits 0 or 1 naming the line") {
  daemon_process d;
  auto ok = run({PROJLINKD, "--check-config", "-c", d.config_file.string()});
  CHECK(ok.status == 0);
  CHECK(ok.out.find("valid") != std::string::npos);
  d.write_config("  max_clients: many\n", "");
  auto bad = run({PROJLINKD, "--check-config", "-c", d.config_file.string()});
  CHECK(bad.status == 1);
  CHECK(bad.err.find("control.max_clients (line 5, column 16)") != std::string::npos);
  auto example = run({PROJLINKD, "--check-config", "-c", PROJLINK_SOURCE_DIR "/config/projlink.yaml"});
  CHECK(example.status == 0);
  auto missing = run({PROJLINKD, "--check-config", "-c", "/nonexistent.yaml"});
  CHECK(missing.status == 1);
  auto usage = run({PROJLINKD, "--bogus"});
  CHECK(usage.status == 2);
}

TEST_CASE("READY=1 is sent once the socket answers, STOPPING=1 at SIGTERM") {
  daemon_process d;
  auto notify_path = d.dir / "notify.sock";
  int nfd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, notify_path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(nfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  d.start({{"NOTIFY_SOCKET", notify_path.string()}, {"WATCHDOG_USEC", "400000"}});
  auto receive = [&](int timeout_ms) {
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    ::setsockopt(nfd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    char buf[512];
    auto n = ::recv(nfd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
  };
  auto first = receive(5000);
  CHECK(first.find("READY=1") != std::string::npos);
  // The socket answers by the time READY=1 was sent.
  still_serves(d);
  // Watchdog pings come from the actor system.
  bool watchdog = false;
  for (int i = 0; i < 10 && !watchdog; ++i)
    watchdog = receive(1000).find("WATCHDOG=1") != std::string::npos;
  CHECK(watchdog);
  d.signal(SIGTERM);
  bool stopping = false;
  for (int i = 0; i < 10 && !stopping; ++i)
    stopping = receive(1000).find("STOPPING=1") != std::string::npos;
  CHECK(stopping);
  CHECK(d.stop(0) == 0);
  ::close(nfd);
}

TEST_CASE("a socket passed by systemd (socket activation) is used") {
  if (::access("/usr/bin/systemd-socket-activate", X_OK) != 0) {
    WARN("systemd-socket-activate not installed");
    return;
  }
  daemon_process d;
  auto passed = d.dir / "activated.sock";
  pid_t pid = ::fork();
  if (pid == 0) {
    int log = ::open((d.dir / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 2);
    ::dup2(log, 1);
    ::execl("/usr/bin/systemd-socket-activate", "systemd-socket-activate", "-l", passed.c_str(),
            PROJLINKD, "-c", d.config_file.c_str(), nullptr);
    ::_exit(127);
  }
  // systemd-socket-activate listens first and starts the daemon on the
  // first connection.
  for (int i = 0; i < 200 && !fs::exists(passed); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  {
    conn c{passed};
    auto r = c.call("org.varlink.service.GetInfo");
    CHECK(error_of(r).empty());
  }
  CHECK_FALSE(fs::exists(d.socket)); // the configured path was not used
  ::kill(pid, SIGTERM);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(d.log().find("the socket passed by systemd") != std::string::npos);
}
