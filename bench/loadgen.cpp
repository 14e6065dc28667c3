// loadgen: the control-throughput benchmark of SPEC §12, and its baseline.
//
//   loadgen --socket S --clients 64 --pairs N --depth 1 [--offset K]
//   loadgen --baseline-db FILE --seconds 3
//
// With --socket, drives a running projlinkd whose directory holds upstream
// projects u0..u{U-1} (company "gcm", approval by hand) and downstream
// projects d0..d{N-1} (company "sub"), with "sa" the sub's company admin
// (drawings access on every upstream) and "ma" the gcm's company admin (the
// bench driver, bench/run, imports them). Each of --clients connections takes
// its share of the downstreams and, for each, calls Connections.Request and
// then Connections.Approve: two durable state changes, each acknowledged
// only after the daemon's COMMIT. --depth > 1 keeps that many pairs in
// flight per connection (varlink pipelining). Meanwhile one more connection
// calls Connections.Get in a loop and records each call's latency.
//
// With --baseline-db, measures what the daemon is compared against: SQLite
// autocommit inserts with journal_mode=WAL and synchronous=FULL into FILE
// (same disk), one transaction (one fsync) per row.
//
// Prints one JSON object on stdout.

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <nlohmann/json.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using json = nlohmann::json;
using clock_type = std::chrono::steady_clock;

namespace {

/// A blocking varlink connection (JSON + NUL).
class conn {
public:
  explicit conn(const std::string& path) {
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
    if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0)
      throw std::runtime_error("cannot connect to " + path + ": " + std::strerror(errno));
  }
  ~conn() {
    ::close(fd_);
  }
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;

  void send(const std::string& method, const json& params) {
    auto text = json{{"method", method}, {"parameters", params}}.dump();
    text.push_back('\0');
    for (size_t off = 0; off < text.size();) {
      auto n = ::write(fd_, text.data() + off, text.size() - off);
      if (n <= 0)
        throw std::runtime_error("write failed");
      off += static_cast<size_t>(n);
    }
  }

  json recv() {
    for (;;) {
      auto nul = buf_.find('\0', pos_);
      if (nul != std::string::npos) {
        auto msg = json::parse(buf_.begin() + static_cast<long>(pos_), buf_.begin() + static_cast<long>(nul));
        pos_ = nul + 1;
        if (pos_ == buf_.size()) {
          buf_.clear();
          pos_ = 0;
        }
        return msg;
      }
      char tmp[65536];
      auto n = ::read(fd_, tmp, sizeof(tmp));
      if (n <= 0)
        throw std::runtime_error("daemon closed the connection");
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  json call(const std::string& method, const json& params) {
    send(method, params);
    return recv();
  }

private:
  int fd_ = -1;
  std::string buf_;
  size_t pos_ = 0;
};

std::string error_of(const json& reply) {
  return reply.contains("error") ? reply["error"].get<std::string>() : std::string{};
}

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double percentile(std::vector<double>& v, double p) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  auto i = static_cast<size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

json baseline(const std::string& file, double seconds) {
  ::unlink(file.c_str());
  SQLite::Database db{file, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE};
  db.exec("PRAGMA journal_mode=WAL");
  db.exec("PRAGMA synchronous=FULL");
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)");
  SQLite::Statement ins{db, "INSERT INTO t (v) VALUES (?)"};
  uint64_t n = 0;
  auto t0 = clock_type::now();
  while (seconds_since(t0) < seconds) {
    ins.bind(1, "a durable row of about the size of an event");
    ins.exec();
    ins.reset();
    ++n;
  }
  auto dt = seconds_since(t0);
  return {{"inserts", n}, {"seconds", dt}, {"per_second", static_cast<double>(n) / dt}};
}

struct options {
  std::string socket;
  int clients = 64;
  int pairs = 20000;
  int upstreams = 100;
  int depth = 1;
  int offset = 0; ///< downstreams d{offset}..d{offset+pairs-1}
  std::string baseline_db;
  double seconds = 3;
};

json drive(const options& o) {
  std::atomic<uint64_t> ok{0};
  std::atomic<uint64_t> failed{0};
  std::atomic<bool> done{false};
  std::string first_error;
  std::mutex err_mtx;

  // One connection made by hand, for the reader to Get.
  std::string probe;
  {
    conn c{o.socket};
    auto r = c.call("io.projlink.Connections.Request",
                    {{"as", "sa"}, {"downstream", "probe"}, {"upstream", "u0"}});
    if (error_of(r) == "io.projlink.Connections.AlreadyConnected")
      probe = r["parameters"]["connection"]; // made by an earlier run
    else if (error_of(r).empty())
      probe = r["parameters"]["connection"]["id"];
    else
      throw std::runtime_error("probe request failed: " + r.dump());
  }

  std::vector<double> latencies;
  std::thread reader{[&] {
    conn c{o.socket};
    json params{{"as", "sa"}, {"connection", probe}};
    while (!done.load()) {
      auto t0 = clock_type::now();
      auto r = c.call("io.projlink.Connections.Get", params);
      latencies.push_back(seconds_since(t0) * 1e3);
      if (!error_of(r).empty())
        failed++;
    }
  }};

  auto note_error = [&](const json& r) {
    failed++;
    std::lock_guard<std::mutex> g{err_mtx};
    if (first_error.empty())
      first_error = r.dump();
  };

  auto t0 = clock_type::now();
  std::vector<std::thread> writers;
  for (int w = 0; w < o.clients; ++w) {
    writers.emplace_back([&, w] {
      conn c{o.socket};
      // Pipelined: up to `depth` Requests in flight; each answered Request
      // is followed by its Approve, in flight the same way.
      std::deque<bool> in_flight; // true: an Approve
      int next = w;
      auto send_request = [&] {
        c.send("io.projlink.Connections.Request",
               {{"as", "sa"},
                {"downstream", "d" + std::to_string(o.offset + next)},
                {"upstream", "u" + std::to_string(next % o.upstreams)}});
        in_flight.push_back(false);
        next += o.clients;
      };
      while (static_cast<int>(in_flight.size()) < o.depth && next < o.pairs)
        send_request();
      while (!in_flight.empty()) {
        auto r = c.recv();
        bool approve = in_flight.front();
        in_flight.pop_front();
        if (!error_of(r).empty()) {
          note_error(r);
        } else {
          ok++;
          if (!approve) {
            c.send("io.projlink.Connections.Approve",
                   {{"as", "ma"}, {"connection", r["parameters"]["connection"]["id"]}});
            in_flight.push_back(true);
          }
        }
        while (static_cast<int>(in_flight.size()) < o.depth && next < o.pairs)
          send_request();
      }
    });
  }
  for (auto& t : writers)
    t.join();
  auto dt = seconds_since(t0);
  done = true;
  reader.join();
  json out{{"clients", o.clients},
           {"depth", o.depth},
           {"state_changes", ok.load()},
           {"failed", failed.load()},
           {"seconds", dt},
           {"per_second", static_cast<double>(ok.load()) / dt},
           {"get_calls", latencies.size()}};
  auto p50 = percentile(latencies, 0.50);
  auto p99 = percentile(latencies, 0.99);
  out["get_p50_ms"] = p50;
  out["get_p99_ms"] = p99;
  out["get_max_ms"] = latencies.empty() ? 0.0 : latencies.back();
  if (!first_error.empty())
    out["first_error"] = first_error;
  return out;
}

} // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc)
        throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--socket")
        o.socket = value();
      else if (a == "--clients")
        o.clients = std::stoi(value());
      else if (a == "--pairs")
        o.pairs = std::stoi(value());
      else if (a == "--upstreams")
        o.upstreams = std::stoi(value());
      else if (a == "--depth")
        o.depth = std::stoi(value());
      else if (a == "--offset")
        o.offset = std::stoi(value());
      else if (a == "--baseline-db")
        o.baseline_db = value();
      else if (a == "--seconds")
        o.seconds = std::stod(value());
      else {
        std::fprintf(stderr, "loadgen: unknown option %s\n", a.c_str());
        return 2;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "loadgen: %s\n", e.what());
      return 2;
    }
  }
  if (o.clients < 1 || o.depth < 1 || o.upstreams < 1) {
    std::fprintf(stderr, "loadgen: --clients, --depth and --upstreams must be positive\n");
    return 2;
  }
  try {
    json out;
    if (!o.baseline_db.empty())
      out = baseline(o.baseline_db, o.seconds);
    else if (!o.socket.empty())
      out = drive(o);
    else {
      std::fprintf(stderr, "loadgen: give --socket or --baseline-db\n");
      return 2;
    }
    std::printf("%s\n", out.dump().c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n", e.what());
    return 1;
  }
  return 0;
}
