// End to end: what an operator's tools see. /metrics checked by promtool and
// scraped by a real Prometheus, Reload's restart_needed, journald priorities.

#include "e2e_connections_support.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <regex>
#include <thread>

using namespace e2e;

namespace {

struct http_reply {
  int status = 0;
  std::string body;
};

/// GET http://127.0.0.1:port/path (HTTP/1.0, read to the end).
http_reply http_get(uint16_t port, const std::string& path) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  http_reply out;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return out;
  }
  std::string req = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
  REQUIRE(::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size()));
  std::string all;
  char buf[65536];
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 60000) <= 0)
      break;
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      break;
    all.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  auto head_end = all.find("\r\n\r\n");
  if (all.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos)
    return out;
  out.status = std::stoi(all.substr(9, 3));
  out.body = all.substr(head_end + 4);
  return out;
}

/// The port the daemon logged for /metrics (metrics.listen with port 0).
uint16_t metrics_port(const daemon_process& d) {
  static const std::regex re(R"(metrics: serving http://127\.0\.0\.1:([0-9]+)/metrics)");
  std::smatch m;
  auto log = d.log();
  INFO(log);
  REQUIRE(std::regex_search(log, m, re));
  return static_cast<uint16_t>(std::stoi(m[1]));
}

/// A loopback port nobody listens on now (the kernel's choice).
uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

const char* metrics_on = "metrics:\n  listen: \"127.0.0.1:0\"\n";

} // namespace

TEST_CASE("/metrics: Prometheus text format that promtool accepts, with calls by method and outcome") {
  world w(metrics_on);
  auto id = world::id(w.request("sa", "d1", "up"));
  w.call("Get", {{"as", "otto"}, {"connection", id}}); // an error outcome
  w.c->call("io.projlink.Daemon.GetStatus");
  auto port = metrics_port(w.d);
  auto r = http_get(port, "/metrics");
  REQUIRE(r.status == 200);
  const auto& text = r.body;
  INFO(text);
  CHECK(text.find("# TYPE projlink_calls_total counter") != std::string::npos);
  CHECK(text.find(R"(projlink_calls_total{method="io.projlink.Connections.Request",outcome="ok"} 1)")
        != std::string::npos);
  CHECK(text.find(R"(projlink_calls_total{method="io.projlink.Daemon.GetStatus",outcome="ok"} 1)")
        != std::string::npos);
  CHECK(std::regex_search(
    text, std::regex(R"(projlink_calls_total\{method="io.projlink.Connections.Get",outcome="[A-Za-z]+"\} 1)")));
  CHECK(text.find(R"(projlink_build_info{version=")") != std::string::npos);
  CHECK(text.find(R"(projlink_connections{state="active"} 1)") != std::string::npos);
  CHECK(text.find(R"(projlink_changes_total{kind="requested"} 1)") != std::string::npos);
  CHECK(text.find(R"(projlink_store_state{state="ok"} 1)") != std::string::npos);
  CHECK(text.find("projlink_store_up 1") != std::string::npos);
  CHECK(text.find("projlink_call_duration_seconds_bucket{method=\"io.projlink.Connections.Request\",le=\"+Inf\"} 1")
        != std::string::npos);
  CHECK(text.find("projlink_store_commit_batch_size_count") != std::string::npos);

  // promtool: no error, no lint warning.
  auto check = run({"promtool", "check", "metrics"}, {}, text);
  INFO(check.out << check.err);
  CHECK(check.status == 0);
  CHECK(check.out.empty());
  CHECK(check.err.empty());

  // Only /metrics; a hostile method name does not become a label.
  CHECK(http_get(port, "/").status == 404);
  w.c->call("io.projlink.Daemon.NoSuchThing\n{evil=\"1\"}");
  auto again = http_get(port, "/metrics").body;
  CHECK(again.find("evil") == std::string::npos);
  CHECK(again.find(R"(method="unknown",outcome="MethodNotFound")") != std::string::npos);
  // Daemon.GetMetrics still answers.
  auto m = w.c->call("io.projlink.Daemon.GetMetrics");
  CHECK(m["parameters"]["metrics"]["calls_total"].get<double>() >= 4);
}

TEST_CASE("a metrics port someone else holds stops the start with the reason, before serving") {
  int holder = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(holder, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  REQUIRE(::listen(holder, 1) == 0);
  socklen_t len = sizeof(a);
  ::getsockname(holder, reinterpret_cast<sockaddr*>(&a), &len);
  daemon_process d("", "metrics:\n  listen: \"127.0.0.1:" + std::to_string(ntohs(a.sin_port))
                         + "\"\n");
  auto r = run({PROJLINKD, "-c", d.config_file.string()});
  ::close(holder);
  INFO(r.err);
  CHECK(r.status == 1);
  CHECK(r.err.find("metrics.listen: cannot listen on 127.0.0.1:") != std::string::npos);
  CHECK_FALSE(fs::exists(d.socket));
}

TEST_CASE("a real Prometheus server scrapes the daemon and answers a query for projlink_calls_total") {
  REQUIRE(run({"sh", "-c", "command -v prometheus"}).status == 0); // scripts/setup-deps
  world w(metrics_on);
  w.c->call("io.projlink.Daemon.GetStatus");
  auto target = metrics_port(w.d);
  auto prom_dir = w.d.dir / "prometheus";
  fs::create_directories(prom_dir / "data");
  {
    std::ofstream cfg(prom_dir / "prometheus.yml");
    cfg << "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        << "scrape_configs:\n  - job_name: projlink\n    static_configs:\n"
        << "      - targets: ['127.0.0.1:" << target << "']\n";
  }
  // Prometheus cannot listen on port 0 and tell us: take a free port, and
  // try another if someone took it before Prometheus bound it.
  pid_t prom = -1;
  struct reaper { // Prometheus never outlives the test, even when a REQUIRE throws
    pid_t& pid;
    ~reaper() {
      if (pid > 0) {
        ::kill(pid, SIGTERM);
        int status;
        ::waitpid(pid, &status, 0);
      }
    }
  } reap{prom};
  uint16_t web = 0;
  auto log_path = prom_dir / "prometheus.log";
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{120};
  json result;
  for (int attempt = 0; attempt < 5 && result.empty(); ++attempt) {
    web = free_port();
    prom = ::fork();
    REQUIRE(prom >= 0);
    if (prom == 0) {
      int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      std::string cfg = "--config.file=" + (prom_dir / "prometheus.yml").string();
      std::string data = "--storage.tsdb.path=" + (prom_dir / "data").string();
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(web);
      ::execlp("prometheus", "prometheus", cfg.c_str(), data.c_str(), listen.c_str(), nullptr);
      ::_exit(127);
    }
    // Poll the query API until the series is there (Prometheus starts,
    // scrapes every second, and the sample becomes queryable).
    while (std::chrono::steady_clock::now() < deadline) {
      int status;
      if (::waitpid(prom, &status, WNOHANG) == prom) {
        prom = -1;
        break; // did not start (port taken?): next attempt
      }
      auto r = http_get(web, "/api/v1/query?query=projlink_calls_total");
      if (r.status == 200) {
        auto j = json::parse(r.body, nullptr, false);
        if (!j.is_discarded() && j.value("status", "") == "success"
            && !j["data"]["result"].empty()) {
          result = j["data"]["result"];
          break;
        }
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{250});
    }
    if (prom > 0 && result.empty())
      break; // running but no series before the deadline
  }
  if (prom > 0) {
    ::kill(prom, SIGTERM);
    int status;
    ::waitpid(prom, &status, 0);
    prom = -1;
  }
  std::ifstream plog(log_path);
  std::stringstream ss;
  ss << plog.rdbuf();
  INFO("prometheus log:\n" << ss.str());
  REQUIRE(!result.empty());
  bool found = false;
  for (const auto& series : result)
    if (series["metric"].value("method", "") == "io.projlink.Daemon.GetStatus"
        && series["metric"].value("outcome", "") == "ok"
        && series["metric"].value("job", "") == "projlink")
      found = true;
  CHECK(found);
}

TEST_CASE("Reload returns the changed keys only a restart applies, again until the restart") {
  daemon_process d("", "sync:\n  workers: 2\n");
  d.start();
  conn c{d.socket};
  auto r = c.call("io.projlink.Daemon.Reload");
  CHECK(r["parameters"]["restart_needed"] == json::array());
  d.write_config("  max_clients: 50\n", std::string("sync:\n  workers: 3\n") + metrics_on);
  r = c.call("io.projlink.Daemon.Reload");
  INFO(r.dump());
  CHECK(r["parameters"]["restart_needed"] == json{"sync.workers", "metrics.listen"});
  auto out = ctl(d.socket, {"reload"});
  CHECK(out.status == 0);
  CHECK(out.out.find("restart needed for: sync.workers metrics.listen") != std::string::npos);
  // Nothing of them runs yet: no /metrics.
  CHECK(d.log().find("metrics: serving") == std::string::npos);
}

TEST_CASE("under journald each stderr line starts with its syslog priority") {
  daemon_process d("", "notifications:\n  delivery: log\n");
  // The daemon's stderr is daemon.log: tell it that this file is the journal.
  { std::ofstream touch(d.dir / "daemon.log"); }
  struct stat st {};
  REQUIRE(::stat((d.dir / "daemon.log").c_str(), &st) == 0);
  d.start({{"JOURNAL_STREAM", std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino)}});
  conn c{d.socket};
  REQUIRE(error_of(c.call("io.projlink.Directory.Import", {{"document", world_yaml}})).empty());
  auto r = c.call("io.projlink.Connections.Request",
                  {{"as", "dan"}, {"downstream", "d1"}, {"upstream", "upm"}});
  auto id = world::id(r);
  // The notification to the upstream's list is logged (delivery: log).
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (d.log().find("connection_requested") == std::string::npos
         && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  d.stop(SIGTERM);
  auto log = d.log();
  INFO(log);
  std::istringstream lines(log);
  std::string line;
  int n = 0;
  while (std::getline(lines, line)) {
    ++n;
    CHECK(std::regex_match(line, std::regex("<[2-7]>(trace|debug|info |warning|error|critical).*")));
  }
  CHECK(n > 3);
  CHECK(log.find("<6>info  projlinkd") != std::string::npos);
  // No journal socket here: the fields are on the line instead.
  if (::access("/run/systemd/journal/socket", F_OK) != 0)
    CHECK(log.find("project=upm connection=" + id) != std::string::npos);
}
