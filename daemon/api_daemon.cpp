// io.projlink.Daemon: status and metrics. Reload is served by the control
// thread itself (it owns the configuration); see control_server.cpp.

#include "actors/directory_db.hpp"
#include "daemon/session.hpp"

#include <caf/all.hpp>

namespace projlink {

namespace {
using varlink::json;
} // namespace

void add_daemon_api(handler_map& m) {
  const std::string i = "io.projlink.Daemon.";

  m[i + "GetStatus"] = [](const call_ptr& c, varlink::params& p) {
    p.finish();
    auto started = c->svc->started;
    auto* reg = c->svc->registry_stats;
    store_call<store_counts>(c, false, [](auto& d) { return directory::counts(d); },
                             [started, reg](const store_counts& n) {
                               std::chrono::duration<double> up
                                 = std::chrono::steady_clock::now() - started;
                               return json{{"version", PROJLINK_VERSION},
                                           {"uptime_s", up.count()},
                                           {"projects", n.projects},
                                           {"live_project_actors", reg != nullptr ? reg->live.load() : 0},
                                           {"sync_backlog", n.sync_backlog},
                                           {"notification_backlog", n.notification_backlog}};
                             });
  };

  m[i + "GetMetrics"] = [](const call_ptr& c, varlink::params& p) {
    p.finish();
    const auto& d = *c->svc->metrics;
    const auto& s = *c->svc->store_stats;
    const auto& r = *c->svc->registry_stats;
    const auto& n = *c->svc->notifier_stats;
    std::chrono::duration<double> up = std::chrono::steady_clock::now() - c->svc->started;
    json metrics{
      {"uptime_seconds", up.count()},
      {"calls_total", static_cast<double>(d.calls.load())},
      {"call_errors_total", static_cast<double>(d.call_errors.load())},
      {"protocol_errors_total", static_cast<double>(d.protocol_errors.load())},
      {"clients_accepted_total", static_cast<double>(d.clients_accepted.load())},
      {"clients_refused_total", static_cast<double>(d.clients_refused.load())},
      {"clients_timed_out_total", static_cast<double>(d.clients_timed_out.load())},
      {"clients_connected", static_cast<double>(d.clients_connected.load())},
      {"calls_in_flight_peak", static_cast<double>(d.calls_in_flight_peak.load())},
      {"reply_bytes", static_cast<double>(d.reply_bytes.load())},
      {"clients_closed_unread_total", static_cast<double>(d.clients_closed_unread.load())},
      {"watches_started_total", static_cast<double>(d.watches_started.load())},
      {"reloads_total", static_cast<double>(d.reloads.load())},
      {"store_commits_total", static_cast<double>(s.commits.load())},
      {"store_writes_total", static_cast<double>(s.writes.load())},
      {"store_reads_total", static_cast<double>(s.reads.load())},
      {"store_failed_commits_total", static_cast<double>(s.failed_commits.load())},
      {"project_actors_live", static_cast<double>(r.live.load())},
      {"project_actors_spawned_total", static_cast<double>(r.spawned.load())},
      {"project_actors_passivated_total", static_cast<double>(r.passivated.load())},
      {"project_actors_failed_total", static_cast<double>(r.failed.load())},
      {"project_actors_evicted_total", static_cast<double>(r.evicted.load())},
      {"unknown_project_messages_total", static_cast<double>(r.unknown.load())},
      {"peer_updates_resent_total", static_cast<double>(r.resent.load())},
      {"requests_expired_total", static_cast<double>(r.expired.load())},
      {"sync_jobs_applied_total", static_cast<double>(c->svc->sync_stats->applied.load())},
      {"sync_failed_attempts_total",
       static_cast<double>(c->svc->sync_stats->failed_attempts.load())},
      {"sync_batches_total", static_cast<double>(c->svc->sync_stats->batches.load())},
      {"notifications_delivered_total", static_cast<double>(n.delivered.load())},
      {"notification_failed_attempts_total", static_cast<double>(n.failed_attempts.load())},
    };
    c->reply({{"metrics", metrics}});
  };
}

} // namespace projlink
