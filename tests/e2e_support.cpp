#include "e2e_support.hpp"

#include "daemon/unix_socket.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace e2e {

namespace {

std::atomic<int> counter{0};

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int connect_to(const fs::path& socket) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, socket.c_str(), sizeof(addr.sun_path) - 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) < 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

} // namespace

daemon_process::daemon_process(std::string control_extra, std::string extra,
                               std::string actors_extra_, std::string storage_extra_)
  : actors_extra(std::move(actors_extra_)), storage_extra(std::move(storage_extra_)) {
  dir = fs::temp_directory_path()
        / ("projlink-e2e-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  socket = dir / "projlink.sock";
  config_file = dir / "projlink.yaml";
  write_config(control_extra, extra);
}

void daemon_process::write_config(const std::string& control_extra, const std::string& extra) {
  std::ofstream out(config_file);
  out << "control:\n"
      << "  socket: projlink.sock\n"
      << "  operators: { uids: [0, " << ::getuid() << "], groups: [] }\n"
      << "  clients: { uids: [], groups: [] }\n"
      << control_extra << "storage:\n"
      << "  state_dir: " << dir.string() << "\n"
      << storage_extra
      << "actors:\n  scheduler_threads: 2\n"
      << actors_extra
      << "logging:\n  level: debug\n"
      << extra;
}

daemon_process::~daemon_process() {
  if (pid_ > 0)
    stop(SIGKILL);
  std::error_code ec;
  fs::remove_all(dir, ec);
}

void daemon_process::start(const std::map<std::string, std::string>& env) {
  pid_ = ::fork();
  REQUIRE(pid_ >= 0);
  if (pid_ == 0) {
    int log = ::open((dir / "daemon.log").c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    ::dup2(log, 2);
    ::dup2(log, 1);
    for (const auto& [k, v] : env)
      ::setenv(k.c_str(), v.c_str(), 1);
    ::execl(PROJLINKD, PROJLINKD, "-c", config_file.c_str(), nullptr);
    ::_exit(127);
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (std::chrono::steady_clock::now() < deadline) {
    int fd = connect_to(socket);
    if (fd >= 0) {
      ::close(fd);
      return;
    }
    int status;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      FAIL("projlinkd exited at start:\n" << log());
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
  FAIL("projlinkd did not open its socket in time:\n" << log());
}

void daemon_process::signal(int sig) {
  if (pid_ > 0)
    ::kill(pid_, sig);
}

int daemon_process::stop(int sig) {
  if (pid_ <= 0)
    return -1;
  ::kill(pid_, sig);
  int status = 0;
  ::waitpid(pid_, &status, 0);
  pid_ = -1;
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return 128 + WTERMSIG(status);
}

std::string daemon_process::log() const {
  return slurp(dir / "daemon.log");
}

size_t daemon_process::open_fds() const {
  size_t n = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid_) + "/fd"))
    ++n;
  return n;
}

conn::conn(const fs::path& socket) {
  fd_ = connect_to(socket);
  REQUIRE(fd_ >= 0);
}

conn::~conn() {
  if (fd_ >= 0)
    ::close(fd_);
}

void conn::send_raw(const std::string& bytes, const std::vector<int>& fds) {
  // A failure means the daemon closed the connection; the test checks replies.
  projlink::send_with_fds(fd_, bytes, fds);
}

void conn::send_call(const std::string& method, const json& params, bool oneway, bool more) {
  send_raw(projlink::varlink::encode_call(method, params, more, oneway));
}

std::optional<json> conn::read(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds{timeout_ms};
  for (;;) {
    if (auto text = reader_.next())
      return json::parse(*text);
    if (eof_)
      return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0)
      return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left)) <= 0)
      continue;
    char buf[65536];
    auto n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n <= 0) {
      eof_ = true;
      continue;
    }
    reader_.feed(buf, static_cast<size_t>(n));
  }
}

json conn::call(const std::string& method, const json& params) {
  send_call(method, params);
  auto r = read();
  REQUIRE(r);
  return *r;
}

bool conn::closed_within(int timeout_ms) {
  while (auto r = read(timeout_ms)) {
  }
  return eof_;
}

run_result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env,
               const std::string& stdin_text) {
  auto tmp = fs::temp_directory_path()
             / ("projlink-run-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::string out_path = tmp.string() + ".out";
  std::string err_path = tmp.string() + ".err";
  std::string in_path = tmp.string() + ".in";
  std::ofstream(in_path) << stdin_text;
  pid_t pid = ::fork();
  if (pid == 0) {
    int in = ::open(in_path.c_str(), O_RDONLY);
    int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& [k, v] : env)
      ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  run_result r;
  r.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  for (const auto* p : {&out_path, &err_path, &in_path})
    fs::remove(*p);
  return r;
}

run_result ctl(const fs::path& socket, const std::vector<std::string>& args,
               const std::string& stdin_text) {
  std::vector<std::string> argv{PROJLINKCTL};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {{"PROJLINK_SOCKET", socket.string()}}, stdin_text);
}

std::string error_of(const json& reply) {
  if (auto e = reply.find("error"); e != reply.end())
    return e->get<std::string>();
  return "";
}

} // namespace e2e
