// projlinkd: the daemon. Reads the configuration, opens the store, starts
// the actor system and serves the control socket until SIGTERM.

#include "actors/notifier.hpp"
#include "actors/schema.hpp"
#include "actors/store.hpp"
#include "actors/sync.hpp"
#include "actors/system.hpp"
#include "config/config.hpp"
#include "daemon/control_server.hpp"
#include "daemon/file_pool.hpp"
#include "daemon/logging.hpp"
#include "daemon/metrics_http.hpp"
#include "daemon/notify.hpp"

#include <SQLiteCpp/Database.h>
#include <caf/all.hpp>
#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <iostream>

namespace fs = std::filesystem;
using namespace projlink;

namespace {

constexpr const char* default_config_file = "/etc/projlink/projlink.yaml";
constexpr auto drain_grace = std::chrono::seconds{10};

const char* usage = R"(usage: projlinkd [-c FILE] [--check-config]
       projlinkd --local DIR

Connects construction projects so that drawings flow from an upstream
project to its downstream projects. Serves the varlink control protocol
on a Unix socket; see projlinkctl(1).

  -c, --config FILE   configuration file (default /etc/projlink/projlink.yaml;
                      built-in defaults when that file does not exist)
      --check-config  validate the configuration, print the result and exit
                      (0 valid, 1 invalid)
      --local DIR     run on the built-in configuration with state, socket
                      (DIR/projlink.sock) and Maildir (DIR/outbox) under DIR,
                      the calling user as operator; no root needed
  -V, --version       print the version and exit
  -h, --help          print this help and exit

Logs go to stderr. Under systemd (JOURNAL_STREAM names stderr) each line
starts with its syslog priority, and lines about one project or connection
carry the journal fields PROJLINK_PROJECT and PROJLINK_CONNECTION. With
metrics.listen set (e.g. "127.0.0.1:9464"), GET /metrics answers in the
Prometheus text format. SIGHUP re-reads the configuration file.
)";

struct options {
  std::string config_file;
  std::string local_dir;
  bool check = false;
};

int parse_args(int argc, char** argv, options& opts) {
  static const option longopts[] = {
    {"config", required_argument, nullptr, 'c'}, {"check-config", no_argument, nullptr, 'k'},
    {"local", required_argument, nullptr, 'l'},  {"version", no_argument, nullptr, 'V'},
    {"help", no_argument, nullptr, 'h'},         {nullptr, 0, nullptr, 0},
  };
  int ch;
  while ((ch = getopt_long(argc, argv, "c:Vh", longopts, nullptr)) != -1) {
    switch (ch) {
      case 'c': opts.config_file = optarg; break;
      case 'k': opts.check = true; break;
      case 'l': opts.local_dir = optarg; break;
      case 'V': std::cout << "projlinkd " << PROJLINK_VERSION << "\n"; return 0;
      case 'h': std::cout << usage; return 0;
      default: std::cerr << usage; return 2;
    }
  }
  if (optind < argc) {
    std::cerr << "projlinkd: unexpected argument '" << argv[optind] << "'\n" << usage;
    return 2;
  }
  if (!opts.local_dir.empty() && !opts.config_file.empty()) {
    std::cerr << "projlinkd: --local and --config exclude each other\n";
    return 2;
  }
  return -1;
}

/// Loads the configuration the options name; prints problems to stderr.
std::optional<config> load(const options& opts, bool verbose) {
  if (!opts.local_dir.empty())
    return local_config(opts.local_dir);
  auto file = opts.config_file.empty() ? default_config_file : opts.config_file;
  if (opts.config_file.empty() && !fs::exists(file)) {
    if (verbose)
      std::cerr << "projlinkd: " << file << " does not exist; using built-in defaults\n";
    return config{};
  }
  auto r = load_config(file);
  for (const auto& w : r.warnings)
    std::cerr << "projlinkd: " << file << ": warning: " << w << "\n";
  for (const auto& e : r.errors)
    std::cerr << "projlinkd: " << file << ": " << e.to_string() << "\n";
  return r.cfg;
}

void prepare_dirs(const config& cfg) {
  fs::create_directories(cfg.storage.state_dir);
  ::chmod(cfg.storage.state_dir.c_str(), 0750);
  fs::create_directories(cfg.path(cfg.storage.blobs));
  if (cfg.notifications.delivery == delivery_kind::maildir)
    for (const char* sub : {"tmp", "new", "cur"})
      fs::create_directories(fs::path{cfg.path(cfg.notifications.maildir)} / sub);
}

/// Holds an exclusive lock on the state directory for the daemon's life.
int lock_state_dir(const config& cfg) {
  auto path = cfg.path("projlinkd.lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    throw std::runtime_error("cannot open " + path + ": " + std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) < 0)
    throw std::runtime_error("another projlinkd is using " + cfg.storage.state_dir);
  return fd;
}

void raise_fd_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

/// The limits project actors read; a reload changes them in place.
void apply_limits(const config& cfg, live_limits& l) {
  l.undo_window_ms = cfg.connections.undo_window.count();
  l.request_ttl_ms = cfg.connections.request_ttl.count();
  l.max_revisions = static_cast<int64_t>(cfg.connections.max_drawing_revisions);
  l.passivate_after_ms = cfg.actors.passivate_after.count();
  l.max_live = static_cast<int64_t>(cfg.actors.max_live);
}

/// What a reload cannot change while running: the keys of `b` (the file)
/// that differ from `a` (what runs) among those only a restart applies.
std::vector<std::string> restart_only_changes(const config& a, const config& b) {
  std::vector<std::string> out;
  if (a.control.socket != b.control.socket)
    out.push_back("control.socket");
  if (a.control.socket_mode != b.control.socket_mode)
    out.push_back("control.socket_mode");
  if (a.storage.state_dir != b.storage.state_dir)
    out.push_back("storage.state_dir");
  if (a.storage.database != b.storage.database)
    out.push_back("storage.database");
  if (a.storage.blobs != b.storage.blobs)
    out.push_back("storage.blobs");
  if (a.storage.max_upload_bytes != b.storage.max_upload_bytes)
    out.push_back("storage.max_upload_bytes");
  if (a.actors.scheduler_threads != b.actors.scheduler_threads)
    out.push_back("actors.scheduler_threads");
  if (a.sync.workers != b.sync.workers)
    out.push_back("sync.workers");
  if (a.sync.retry.initial != b.sync.retry.initial || a.sync.retry.max != b.sync.retry.max
      || a.sync.retry.attempts != b.sync.retry.attempts)
    out.push_back("sync.retry");
  if (a.metrics.listen != b.metrics.listen)
    out.push_back("metrics.listen");
  return out;
}

/// Keeps in `next` the running values of the keys only a restart applies,
/// so that `cfg` always says what runs and the next reload reports them again.
void keep_restart_only(const config& running, config& next) {
  next.control.socket = running.control.socket;
  next.control.socket_mode = running.control.socket_mode;
  next.storage.state_dir = running.storage.state_dir;
  next.storage.database = running.storage.database;
  next.storage.blobs = running.storage.blobs;
  next.storage.max_upload_bytes = running.storage.max_upload_bytes;
  next.actors.scheduler_threads = running.actors.scheduler_threads;
  next.sync.workers = running.sync.workers;
  next.sync.retry = running.sync.retry;
  next.metrics.listen = running.metrics.listen;
}

int run(const options& opts, config cfg) {
  setup_logging(cfg);
  // Before any thread exists (libcurl's global state is not thread-safe).
  curl_global_init(CURL_GLOBAL_DEFAULT);
  raise_fd_limit();
  ::signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP})
    sigaddset(&sigs, s);
  ::sigprocmask(SIG_BLOCK, &sigs, nullptr);
  int sig_fd = ::signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);

  prepare_dirs(cfg);
  int lock_fd = lock_state_dir(cfg);
  // Before any actor exists: a taken port ends the start cleanly.
  int metrics_fd = cfg.metrics.listen.empty() ? -1 : metrics_http::bind_listen(cfg.metrics.listen);
  auto clean_marker = cfg.path("clean-shutdown");
  auto db_path = cfg.path(cfg.storage.database);
  bool was_clean = fs::exists(clean_marker) || !fs::exists(db_path);
  fs::remove(clean_marker);
  if (!was_clean)
    spdlog::warn("previous run did not shut down cleanly; checking the database");
  // Checked at every start, not only after a crash: a database corrupted
  // after a clean shutdown used to start "healthy" and fail every call
  // (issue 15 item 9). PRAGMA quick_check reads every page once.
  auto check_started = std::chrono::steady_clock::now();
  std::shared_ptr<SQLite::Database> db = open_database(db_path, true);
  spdlog::info("database check: {} ms",
               std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now() - check_started)
                 .count());
  spdlog::info("database {} at schema version {}", db_path, schema_version());

  auto caf_cfg = make_caf_config(cfg);
  caf::actor_system sys{*caf_cfg};
  daemon_metrics metrics;
  store_metrics store_stats;
  reply_queue replies;
  services svc;
  svc.store = spawn_store(sys, db, &store_stats);
  db.reset(); // the store actor owns it now
  svc.reader = spawn_reader(sys, open_database(db_path, false), &store_stats);
  svc.replies = &replies;
  svc.metrics = &metrics;
  svc.store_stats = &store_stats;
  svc.started = std::chrono::steady_clock::now();
  live_limits limits;
  apply_limits(cfg, limits);
  registry_metrics registry_stats;
  blob_store blobs{cfg.path(cfg.storage.blobs)};
  file_settings files;
  files.set_import_dirs(cfg.storage.import_dirs);
  files.max_upload_bytes = cfg.storage.max_upload_bytes;
  files.fd_timeout_ms = cfg.control.fd_timeout.count();
  svc.blobs = &blobs;
  svc.files = &files;
  // Bounded file I/O for calls: at most this many uploads and exports copy
  // at once, whatever the number of clients (SPEC §6.3).
  file_pool file_workers{sys, 8};
  svc.file_workers = &file_workers;
  notifier_metrics notifier_stats;
  auto notifier = spawn_notifier(sys, svc.store, open_database(db_path, false),
                                 notifier_settings::from_config(cfg), &notifier_stats);
  svc.notifier_stats = &notifier_stats;
  svc.hub = spawn_hub(sys);
  sync_metrics sync_stats;
  svc.sync = spawn_sync(sys, svc.store, svc.hub, notifier, &blobs, cfg.sync.workers,
                        sync_retry{cfg.sync.retry.initial, cfg.sync.retry.max,
                                   static_cast<int64_t>(cfg.sync.retry.attempts)},
                        &sync_stats);
  svc.sync_stats = &sync_stats;
  svc.registry = spawn_registry(sys, svc.store, svc.reader, notifier, svc.sync, svc.hub,
                                &limits, &registry_stats);
  svc.registry_stats = &registry_stats;
  // Re-send what peers did not acknowledge and expire what fell due while
  // the daemon was down, before the first call is served.
  caf::anon_send(svc.registry, atom::recover_v);

  auto server = std::make_unique<control_server>(sys, &svc, control_limits::from(cfg));
  std::string where;
  if (int fd = notify::activation_socket(); fd >= 0) {
    server->listen(fd);
    where = "the socket passed by systemd";
  } else {
    auto path = cfg.path(cfg.control.socket);
    fs::create_directories(fs::path{path}.parent_path());
    server->listen(control_server::bind_unix(path, cfg.control.socket_mode), path);
    where = path;
  }

  std::unique_ptr<metrics_http> prometheus;
  if (metrics_fd >= 0) {
    prometheus = std::make_unique<metrics_http>(sys, &svc, metrics_fd);
    auto a = parse_listen_address(cfg.metrics.listen);
    spdlog::info("metrics: serving http://{}:{}/metrics",
                 a->v6 ? "[" + a->host + "]" : a->host, prometheus->port());
  }

  server->on_reload = [&]() -> control_server::reload_result {
    notify::reloading();
    metrics.reloads++;
    std::string err;
    std::vector<std::string> restart_needed;
    if (cfg.source.empty()) {
      spdlog::info("reload: running on the built-in configuration; nothing to re-read");
    } else if (auto r = load_config(cfg.source); !r.cfg) {
      for (const auto& e : r.errors)
        err += (err.empty() ? "" : "; ") + e.to_string();
      spdlog::error("reload: {} rejected, keeping the running configuration: {}", cfg.source, err);
    } else {
      for (const auto& w : r.warnings)
        spdlog::warn("reload: {}", w);
      restart_needed = restart_only_changes(cfg, *r.cfg);
      for (const auto& key : restart_needed)
        spdlog::warn("reload: {} changed; it takes effect at the next restart", key);
      auto next = std::move(*r.cfg);
      keep_restart_only(cfg, next);
      cfg = std::move(next);
      setup_logging(cfg);
      server->set_limits(control_limits::from(cfg));
      apply_limits(cfg, limits);
      files.set_import_dirs(cfg.storage.import_dirs);
      files.fd_timeout_ms = cfg.control.fd_timeout.count();
      caf::anon_send(notifier, atom::configure_v, notifier_settings::from_config(cfg));
      spdlog::info("reload: {} applied", cfg.source);
    }
    notify::ready("serving");
    return {err, restart_needed};
  };

  server->watch(sig_fd, [&] {
    signalfd_siginfo si{};
    while (::read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
      if (si.ssi_signo == SIGHUP) {
        spdlog::info("SIGHUP: reloading {}", cfg.source.empty() ? "(built-in)" : cfg.source);
        server->on_reload();
      } else {
        spdlog::info("{}: draining in-flight calls", strsignal(static_cast<int>(si.ssi_signo)));
        notify::stopping();
        server->stop(drain_grace);
      }
    }
  });

  // Watchdog: ping the store through the actor system; only a pong (which
  // needs a free scheduler thread and a responsive store) sends WATCHDOG=1.
  int wd_fd = -1;
  if (auto interval = notify::watchdog_interval(); interval.count() > 0) {
    wd_fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    auto half = interval / 2;
    itimerspec its{};
    its.it_interval.tv_sec = half.count() / 1'000'000;
    its.it_interval.tv_nsec = (half.count() % 1'000'000) * 1000;
    its.it_value = its.it_interval;
    ::timerfd_settime(wd_fd, 0, &its, nullptr);
    server->on_internal_reply = [](const outgoing_reply&) { notify::watchdog(); };
    server->watch(wd_fd, [&, half] {
      uint64_t ticks;
      [[maybe_unused]] auto n = ::read(wd_fd, &ticks, sizeof(ticks));
      // Arguments go through spawn, not a capture: CAF 0.17's function-actor
      // factory binds a null reference for an empty argument list (UBSan).
      sys.spawn(
        [](caf::event_based_actor* self, caf::actor store, reply_queue* q, caf::timespan timeout) {
          self->request(store, timeout, atom::ping_v)
            .then([=](atom::pong) { q->push({0, 0, {}, false}); },
                  [=](caf::error& e) {
                    spdlog::error("watchdog: store did not answer: {}", caf::to_string(e));
                  });
        },
        svc.store, &replies, std::chrono::duration_cast<caf::timespan>(half));
    });
    spdlog::info("watchdog: pinging every {}ms", half.count() / 1000);
  }

  spdlog::info("projlinkd {} ready on {} (state in {})", PROJLINK_VERSION, where,
               cfg.storage.state_dir);
  notify::ready("serving");
  server->run();

  spdlog::info("shutting down");
  prometheus.reset(); // its scrapes ask the store: stop it while the actors live
  server.reset(); // closes every client and ends its session actor
  // Ordered shutdown: project actors, then the hub, the store last (it
  // commits what they queued before it closes the database).
  caf::anon_send(svc.registry, atom::shutdown_v);
  caf::anon_send_exit(svc.hub, caf::exit_reason::user_shutdown);
  caf::anon_send(svc.sync, atom::shutdown_v);
  caf::anon_send(notifier, atom::shutdown_v);
  caf::anon_send(svc.reader, atom::shutdown_v);
  svc.reader = nullptr;
  file_workers.shutdown();
  caf::anon_send(svc.store, atom::shutdown_v);
  svc.store = nullptr;
  sys.await_all_actors_done();
  std::FILE* f = std::fopen(clean_marker.c_str(), "w");
  if (f != nullptr)
    std::fclose(f);
  if (wd_fd >= 0)
    ::close(wd_fd);
  ::close(sig_fd);
  ::close(lock_fd);
  spdlog::info("stopped");
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  options opts;
  if (int rc = parse_args(argc, argv, opts); rc >= 0)
    return rc;
  auto cfg = load(opts, !opts.check);
  if (opts.check) {
    if (!cfg)
      return 1;
    std::cout << "projlinkd: configuration "
              << (opts.local_dir.empty()
                    ? (cfg->source.empty() ? std::string{"(built-in defaults)"} : cfg->source)
                    : "--local " + opts.local_dir)
              << " is valid\n";
    return 0;
  }
  if (!cfg)
    return 1;
  try {
    return run(opts, std::move(*cfg));
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
}
