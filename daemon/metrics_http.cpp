#include "daemon/metrics_http.hpp"

#include "daemon/metrics_registry.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <caf/all.hpp>
#include <microhttpd.h>
#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <cstdarg>
#include <cstdio>
#include <ctime>
#include <stdexcept>

namespace projlink {

namespace {

using varlink::json;

/// Label values escaped as the exposition format wants (\\, \", \n).
std::string escape(std::string_view v) {
  std::string out;
  for (char ch : v) {
    if (ch == '\\' || ch == '"')
      out += '\\';
    if (ch == '\n') {
      out += "\\n";
      continue;
    }
    out += ch;
  }
  return out;
}

std::string number(double v) {
  if (std::isnan(v))
    return "NaN";
  if (std::isinf(v))
    return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.0f", v);
    return buf;
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

/// Writes families: HELP and TYPE once, then samples.
class writer {
public:
  std::string out;

  void family(const char* name, const char* type, const char* help) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
  }

  void sample(std::string_view name, const std::vector<std::pair<std::string, std::string>>& labels,
              double v) {
    out += name;
    if (!labels.empty()) {
      out += '{';
      for (size_t i = 0; i < labels.size(); ++i) {
        if (i > 0)
          out += ',';
        out += labels[i].first + "=\"" + escape(labels[i].second) + '"';
      }
      out += '}';
    }
    out += ' ';
    out += number(v);
    out += '\n';
  }

  void one(const char* name, const char* type, const char* help, double v) {
    family(name, type, help);
    sample(name, {}, v);
  }

  void histogram(const std::string& name, std::vector<std::pair<std::string, std::string>> labels,
                 const telemetry::histogram::snapshot& h) {
    auto with_le = labels;
    with_le.emplace_back("le", "");
    for (size_t i = 0; i < h.cumulative.size(); ++i) {
      with_le.back().second = i < h.bounds.size() ? number(h.bounds[i]) : "+Inf";
      sample(name + "_bucket", with_le, static_cast<double>(h.cumulative[i]));
    }
    sample(name + "_sum", labels, h.sum);
    sample(name + "_count", labels, static_cast<double>(h.cumulative.back()));
  }
};

/// Counts by one column: `SELECT col, count(*) FROM table GROUP BY col`.
json group_count(SQLite::Database& db, const char* sql) {
  json out = json::object();
  SQLite::Statement q(db, sql);
  while (q.executeStep())
    out[q.getColumn(0).getString()] = q.getColumn(1).getInt64();
  return out;
}

void log_from_mhd(void*, const char* fmt, va_list ap) {
  char buf[512];
  std::vsnprintf(buf, sizeof(buf), fmt, ap);
  std::string msg{buf};
  while (!msg.empty() && msg.back() == '\n')
    msg.pop_back();
  spdlog::warn("metrics: {}", msg);
}

MHD_Result answer(void* cls, MHD_Connection* conn, const char* url, const char* method,
                  const char*, const char*, size_t*, void**) {
  auto* self = static_cast<metrics_http*>(cls);
  std::string body;
  unsigned status = MHD_HTTP_OK;
  const char* type = "text/plain; version=0.0.4; charset=utf-8";
  std::string_view m{method};
  if (m != "GET" && m != "HEAD") {
    status = MHD_HTTP_METHOD_NOT_ALLOWED;
    body = "only GET /metrics\n";
    type = "text/plain; charset=utf-8";
  } else if (std::string_view{url} != "/metrics") {
    status = MHD_HTTP_NOT_FOUND;
    body = "not found: try /metrics\n";
    type = "text/plain; charset=utf-8";
  } else {
    body = self->scrape();
  }
  auto* r = MHD_create_response_from_buffer(body.size(), body.data(), MHD_RESPMEM_MUST_COPY);
  MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
  if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
    MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
  auto ret = MHD_queue_response(conn, status, r);
  MHD_destroy_response(r);
  return ret;
}

} // namespace

std::string metrics_store_snapshot(SQLite::Database& db) {
  json s;
  s["projects"] = db.execAndGet("SELECT count(*) FROM projects").getInt64();
  s["connections"] = group_count(db, "SELECT state, count(*) FROM connections GROUP BY state");
  // A connection event is one row in each of its two projects' histories: count it once.
  s["events"] = group_count(db, "SELECT kind, sum(CASE WHEN peer IS NULL THEN 2 ELSE 1 END) / 2 "
                                "FROM events GROUP BY kind");
  s["sync_jobs"] = group_count(db, "SELECT state, count(*) FROM sync_jobs GROUP BY state");
  s["sync_bytes"]
    = db.execAndGet("SELECT coalesce(sum(bytes), 0) FROM sync_jobs WHERE state = 'done'").getInt64();
  s["outbox"] = group_count(db, "SELECT state, count(*) FROM outbox GROUP BY state");
  return s.dump();
}

std::string render_prometheus(const services& svc, const std::string& db_json) {
  writer w;
  const auto& d = *svc.metrics;
  auto& reg = telemetry::registry::global();

  w.family("projlink_build_info", "gauge", "Always 1; the version of the running projlinkd.");
  w.sample("projlink_build_info", {{"version", PROJLINK_VERSION}}, 1);
  {
    auto up = std::chrono::steady_clock::now() - svc.started;
    double start = static_cast<double>(std::time(nullptr))
                   - std::chrono::duration<double>(up).count();
    w.one("projlink_start_time_seconds", "gauge", "When the daemon started, in Unix seconds.",
          std::floor(start));
  }

  // Calls.
  w.family("projlink_calls_total", "counter",
           "Varlink calls answered, by method and outcome (ok or the error's name).");
  for (const auto& c : reg.calls())
    w.sample("projlink_calls_total", {{"method", c.method}, {"outcome", c.outcome}},
             static_cast<double>(c.count));
  w.family("projlink_call_duration_seconds", "histogram",
           "Time from a call's arrival at its session to its first answer, by method.");
  for (const auto& [m, h] : reg.call_latency())
    w.histogram("projlink_call_duration_seconds", {{"method", m}}, h);
  w.one("projlink_protocol_errors_total", "counter",
        "Messages that were not valid varlink calls.", static_cast<double>(d.protocol_errors.load()));

  // Clients.
  w.one("projlink_clients_connected", "gauge", "Clients connected to the control socket.",
        static_cast<double>(d.clients_connected.load()));
  w.one("projlink_clients_accepted_total", "counter", "Client connections accepted.",
        static_cast<double>(d.clients_accepted.load()));
  w.one("projlink_clients_refused_total", "counter",
        "Client connections refused (over max_clients or not allowed).",
        static_cast<double>(d.clients_refused.load()));
  w.one("projlink_clients_timed_out_total", "counter", "Client connections closed as idle.",
        static_cast<double>(d.clients_timed_out.load()));
  w.one("projlink_reloads_total", "counter", "Configuration reloads (SIGHUP or Daemon.Reload).",
        static_cast<double>(d.reloads.load()));

  // Store.
  const auto& s = *svc.store_stats;
  w.one("projlink_store_commits_total", "counter", "Group commits (transactions) of the store.",
        static_cast<double>(s.commits.load()));
  w.one("projlink_store_writes_total", "counter", "Writes committed by the store.",
        static_cast<double>(s.writes.load()));
  w.one("projlink_store_reads_total", "counter", "Reads served by the store actor.",
        static_cast<double>(s.reads.load()));
  w.one("projlink_store_failed_commits_total", "counter",
        "Group commits that failed and were rolled back.",
        static_cast<double>(s.failed_commits.load()));
  w.family("projlink_store_commit_batch_size", "histogram",
           "Writes per group commit.");
  w.histogram("projlink_store_commit_batch_size", {}, reg.commit_batch());
  w.family("projlink_store_commit_duration_seconds", "histogram",
           "Time of one group commit, BEGIN to COMMIT.");
  w.histogram("projlink_store_commit_duration_seconds", {}, reg.commit_latency());
  w.family("projlink_store_state", "gauge",
           "1 for the store's state (ok, or the fault the last failed commit showed), 0 for the "
           "others.");
  auto state = reg.store();
  for (auto st : {telemetry::store_state::ok, telemetry::store_state::corrupt,
                  telemetry::store_state::io_error, telemetry::store_state::full,
                  telemetry::store_state::error})
    w.sample("projlink_store_state", {{"state", telemetry::to_string(st)}}, st == state ? 1 : 0);

  // Project actors.
  if (const auto* r = svc.registry_stats) {
    w.one("projlink_project_actors_live", "gauge", "Live project actors.",
          static_cast<double>(r->live.load()));
    w.one("projlink_project_actors_spawned_total", "counter", "Project actors started.",
          static_cast<double>(r->spawned.load()));
    w.one("projlink_project_actors_passivated_total", "counter",
          "Idle project actors stopped (their state stays in the store).",
          static_cast<double>(r->passivated.load()));
    w.one("projlink_project_actors_failed_total", "counter", "Project actors that ended with an error.",
          static_cast<double>(r->failed.load()));
    w.one("projlink_requests_expired_total", "counter",
          "Connection requests expired by request_ttl.", static_cast<double>(r->expired.load()));
  }

  // Sync.
  if (const auto* y = svc.sync_stats) {
    w.one("projlink_sync_copies_total", "counter", "Sync jobs (copies, updates, deletions) applied.",
          static_cast<double>(y->applied.load()));
    w.one("projlink_sync_failures_total", "counter", "Sync job attempts that failed.",
          static_cast<double>(y->failed_attempts.load()));
    w.one("projlink_sync_batches_total", "counter", "Batches of sync jobs claimed.",
          static_cast<double>(y->batches.load()));
  }

  // Notifications.
  if (const auto* n = svc.notifier_stats) {
    w.family("projlink_notification_deliveries_total", "counter",
             "Notification delivery attempts by outcome: delivered, failed (will be retried), "
             "given_up (no attempts left).");
    w.sample("projlink_notification_deliveries_total", {{"outcome", "delivered"}},
             static_cast<double>(n->delivered.load()));
    w.sample("projlink_notification_deliveries_total", {{"outcome", "failed"}},
             static_cast<double>(n->failed_attempts.load()));
    w.sample("projlink_notification_deliveries_total", {{"outcome", "given_up"}},
             static_cast<double>(n->given_up.load()));
  }

  // What the store holds (one read per scrape).
  auto db = db_json.empty() ? json() : json::parse(db_json, nullptr, false);
  bool have_db = db.is_object();
  w.one("projlink_store_up", "gauge", "1 if this scrape's read of the store succeeded.",
        have_db ? 1 : 0);
  if (have_db) {
    auto by = [&](const char* name, const char* help, const char* label, const json& counts,
                  std::initializer_list<const char*> always) {
      w.family(name, "gauge", help);
      json all = counts;
      for (const char* k : always)
        if (!all.contains(k))
          all[k] = 0;
      for (const auto& [k, v] : all.items())
        w.sample(name, {{label, k}}, v.get<double>());
    };
    w.one("projlink_projects", "gauge", "Projects in the directory.", db.value("projects", 0.0));
    by("projlink_connections", "Connections by state.", "state", db["connections"],
       {"awaiting_approval", "active", "rejected", "cancelled", "expired", "disconnected"});
    w.family("projlink_changes_total", "counter",
             "Durable changes (history events) by kind, since the database was created.");
    for (const auto& [k, v] : db["events"].items())
      w.sample("projlink_changes_total", {{"kind", k}}, v.get<double>());
    const auto& jobs = db["sync_jobs"];
    w.one("projlink_sync_backlog", "gauge", "Sync jobs pending or running.",
          jobs.value("pending", 0.0) + jobs.value("running", 0.0));
    by("projlink_sync_jobs", "Sync jobs in the durable queue by state.", "state", jobs,
       {"pending", "running", "done", "failed"});
    w.one("projlink_sync_bytes_total", "counter", "Bytes of the sync jobs done (copied files).",
          db.value("sync_bytes", 0.0));
    const auto& outbox = db["outbox"];
    w.one("projlink_notification_backlog", "gauge", "Notifications waiting for delivery.",
          outbox.value("pending", 0.0));
    by("projlink_notifications", "Notifications in the outbox by state.", "state", outbox,
       {"pending", "delivered", "failed"});
  }
  return w.out;
}

int metrics_http::bind_listen(const std::string& listen) {
  auto a = parse_listen_address(listen);
  if (!a)
    throw std::runtime_error("metrics.listen: bad address " + listen);
  sockaddr_storage ss{};
  socklen_t len = 0;
  if (a->v6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(a->port);
    ::inet_pton(AF_INET6, a->host.c_str(), &s6->sin6_addr);
    len = sizeof(*s6);
  } else {
    auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
    s4->sin_family = AF_INET;
    s4->sin_port = htons(a->port);
    ::inet_pton(AF_INET, a->host.c_str(), &s4->sin_addr);
    len = sizeof(*s4);
  }
  int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    throw std::runtime_error("metrics.listen: socket: " + std::string(std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (a->v6)
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || ::listen(fd, 64) != 0) {
    auto err = std::string(std::strerror(errno));
    ::close(fd);
    throw std::runtime_error("metrics.listen: cannot listen on " + listen + ": " + err);
  }
  return fd;
}

metrics_http::metrics_http(caf::actor_system& sys, const services* svc, int listen_fd)
  : sys_(sys), svc_(svc) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  ::getsockname(listen_fd, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(ss.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port
                                         : reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
  if (ss.ss_family == AF_INET6)
    flags |= MHD_USE_IPv6;
  // The logger first: MHD reports options before it to stderr itself.
  mhd_ = MHD_start_daemon(flags, 0, nullptr, nullptr, &answer, this,
                          MHD_OPTION_EXTERNAL_LOGGER, &log_from_mhd, nullptr,
                          MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(listen_fd),
                          MHD_OPTION_CONNECTION_LIMIT, static_cast<unsigned>(16),
                          MHD_OPTION_CONNECTION_TIMEOUT, static_cast<unsigned>(30), MHD_OPTION_END);
  if (mhd_ == nullptr) {
    ::close(listen_fd);
    throw std::runtime_error("metrics.listen: libmicrohttpd could not start");
  }
}

metrics_http::~metrics_http() {
  if (mhd_ != nullptr)
    MHD_stop_daemon(mhd_);
}

std::string metrics_http::scrape() {
  std::string db_json;
  caf::actor target = svc_->reader ? svc_->reader : svc_->store;
  if (target) {
    caf::scoped_actor self{sys_};
    self
      ->request(target, std::chrono::seconds{10}, atom::read_v,
                make_store_fn([](SQLite::Database& db) -> caf::expected<std::string> {
                  return metrics_store_snapshot(db);
                }))
      .receive([&](std::string& s) { db_json = std::move(s); },
               [&](caf::error& e) {
                 spdlog::warn("metrics: the store did not answer: {}", caf::to_string(e));
               });
  }
  return render_prometheus(*svc_, db_json);
}

} // namespace projlink
