// End to end: SIGKILL in the middle of a burst of concurrent requests,
// approvals, rejections, cancels, undos and disconnects; after the restart
// every acknowledged change is there, nothing half-done is visible and every
// invariant of SPEC §2 holds.

#include "e2e_connections_support.hpp"

#include <atomic>
#include <csignal>
#include <iostream>
#include <mutex>
#include <random>
#include <thread>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

constexpr int workers = 8;
constexpr int downstreams_per_worker = 12;
constexpr int upstreams = 4; // of each company

std::string directory() {
  std::string y = "companies:\n  - {id: gc, name: GC}\n"
                  "  - {id: gcm, name: GCM, auto_approve: false}\n  - {id: sub, name: Sub}\n"
                  "projects:\n";
  for (int i = 0; i < upstreams; ++i) {
    y += "  - {id: ua" + std::to_string(i) + ", company: gc, name: UA}\n";
    y += "  - {id: um" + std::to_string(i) + ", company: gcm, name: UM}\n";
  }
  for (int i = 0; i < workers * downstreams_per_worker; ++i)
    y += "  - {id: d" + std::to_string(i) + ", company: sub, name: D}\n";
  y += "users:\n"
       "  - {id: sa, email: sa@sub.test, name: SA, company: sub, company_admin: true}\n"
       "  - {id: ga, email: ga@gc.test, name: GA, company: gc, company_admin: true}\n"
       "  - {id: ma, email: ma@gcm.test, name: MA, company: gcm, company_admin: true}\n"
       "access:\n";
  for (int i = 0; i < upstreams; ++i)
    for (const char* p : {"ua", "um"})
      y += "  - {project: " + std::string{p} + std::to_string(i)
           + ", user: sa, drawings: read_only}\n";
  return y;
}

/// What the clients know: for each connection, its last acknowledged state
/// and the state an unanswered call may have moved it to.
struct ledger {
  std::mutex mtx;
  std::map<std::string, std::string> acked;
  std::map<std::string, std::string> in_flight;
  std::atomic<int> acknowledged{0};

  void ack(const std::string& id, const std::string& state) {
    std::lock_guard<std::mutex> g{mtx};
    acked[id] = state;
    in_flight.erase(id);
    acknowledged++;
  }
  void flying(const std::string& id, const std::string& target) {
    std::lock_guard<std::mutex> g{mtx};
    in_flight[id] = target;
  }
};

/// One worker: requests for its own downstreams and drives each connection
/// through random decisions until the daemon goes away.
void work(conn& c, int w, ledger& book, unsigned seed) {
  std::mt19937 rng{seed};
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<unsigned>(n)); };
  auto call = [&](const std::string& m, const json& p) -> std::optional<json> {
    c.send_call("io.projlink.Connections." + m, p);
    return c.read(10'000);
  };
  std::vector<bool> barred(downstreams_per_worker, false);
  for (;;) {
    int k = pick(downstreams_per_worker);
    if (barred[k])
      continue;
    auto down = "d" + std::to_string(w * downstreams_per_worker + k);
    auto up = std::string{pick(2) != 0 ? "ua" : "um"} + std::to_string(pick(upstreams));
    auto r = call("Request", {{"as", "sa"}, {"downstream", down}, {"upstream", up}});
    if (!r)
      return;
    if (!error_of(*r).empty()) {
      if (error_of(*r) == "io.projlink.Connections.PermanentlyDisconnected")
        barred[k] = true;
      continue;
    }
    auto conn_id = (*r)["parameters"]["connection"]["id"].get<std::string>();
    auto state = (*r)["parameters"]["connection"]["state"].get<std::string>();
    book.ack(conn_id, state);
    // Drive it to an end (or leave it active).
    for (int step = 0; step < 3; ++step) {
      std::string method;
      json p{{"connection", conn_id}};
      std::string target;
      int choice = pick(4);
      if (state == "awaiting_approval") {
        if (choice == 0) {
          method = "Approve", p["as"] = "ma", target = "active";
        } else if (choice == 1) {
          method = "Reject", p["as"] = "ma", p["reason"] = "crash test", target = "rejected";
        } else if (choice == 2) {
          method = "Cancel", p["as"] = "sa", target = "cancelled";
        } else {
          break; // leave it pending
        }
      } else if (state == "active") {
        if (choice == 0) {
          method = "Disconnect", p["as"] = "sa", p["reason"] = "crash test",
          p["accept_terms"] = true, target = "disconnected";
        } else if (choice == 1) {
          method = "Undo", p["as"] = "sa", target = "cancelled";
        } else {
          break; // leave it active
        }
      } else {
        break;
      }
      book.flying(conn_id, target);
      auto d = call(method, p);
      if (!d)
        return;
      if (!error_of(*d).empty())
        return; // unexpected; the checks below will show the state
      state = (*d)["parameters"]["connection"]["state"];
      book.ack(conn_id, state);
      if (state == "disconnected")
        barred[k] = true;
    }
  }
}

std::string one(const daemon_process& d, const std::string& q) {
  return sql(d, q + ";").out;
}

} // namespace

TEST_CASE("crash: SIGKILL during a burst of concurrent decisions loses nothing acknowledged") {
  daemon_process d{"", "connections:\n  undo_window: 1h\n"};
  d.start();
  {
    conn c{d.socket};
    auto r = c.call("io.projlink.Directory.Import", {{"document", directory()}});
    REQUIRE(error_of(r).empty());
  }
  ledger book;
  std::mt19937 rng{20261123};
  const int rounds = 3;
  for (int round = 0; round < rounds; ++round) {
    std::vector<std::unique_ptr<conn>> conns;
    for (int w = 0; w < workers; ++w)
      conns.push_back(std::make_unique<conn>(d.socket));
    std::vector<std::thread> threads;
    for (int w = 0; w < workers; ++w)
      threads.emplace_back(work, std::ref(*conns[w]), w, std::ref(book), rng());
    std::this_thread::sleep_for(std::chrono::milliseconds{150 + rng() % 350});
    d.stop(SIGKILL);
    for (auto& t : threads)
      t.join();
    d.start();
  }
  INFO(d.log());
  conn c{d.socket};
  // Every acknowledged state is there (or the state an unanswered call was
  // about to set).
  int checked = 0;
  for (const auto& [id, state] : book.acked) {
    auto r = c.call("io.projlink.Connections.Get", {{"as", "sa"}, {"connection", id}});
    REQUIRE(error_of(r).empty());
    auto now = r["parameters"]["connection"]["state"].get<std::string>();
    auto f = book.in_flight.find(id);
    INFO("connection " << id << " acked " << state << " now " << now);
    if (f == book.in_flight.end())
      CHECK(now == state);
    else
      CHECK((now == state || now == f->second));
    ++checked;
  }
  d.stop(SIGTERM);
  // The invariants of §2, on the database itself.
  CHECK(one(d, "PRAGMA integrity_check") == "ok\n");
  const std::string live = "('awaiting_approval', 'active')";
  // R3: at most one live upstream per downstream.
  CHECK(one(d, "SELECT count(*) FROM (SELECT downstream FROM connections WHERE state IN " + live
                 + " GROUP BY downstream HAVING count(*) > 1)")
        == "0\n");
  // R5: no project is live on both sides.
  CHECK(one(d, "SELECT count(*) FROM connections a JOIN connections b ON a.downstream = "
               "b.upstream WHERE a.state IN " + live + " AND b.state IN " + live)
        == "0\n");
  // R6: roles match every active connection, and no project ever played both.
  CHECK(one(d, "SELECT count(*) FROM connections c JOIN projects p ON p.id = c.downstream "
               "WHERE c.state = 'active' AND p.role <> 'downstream'")
        == "0\n");
  CHECK(one(d, "SELECT count(*) FROM connections c JOIN projects p ON p.id = c.upstream "
               "WHERE c.state = 'active' AND p.role <> 'upstream'")
        == "0\n");
  // R11: a disconnected downstream is barred and never connected again.
  CHECK(one(d, "SELECT count(*) FROM connections c JOIN projects p ON p.id = c.downstream "
               "WHERE c.state = 'disconnected' AND p.permanently_disconnected = 0")
        == "0\n");
  CHECK(one(d, "SELECT count(*) FROM connections c JOIN connections x ON x.downstream = "
               "c.downstream WHERE c.state = 'disconnected' AND x.requested_at > c.ended_at")
        == "0\n");
  // R15 / nothing half-done: every connection's state has its event.
  CHECK(one(d, "SELECT count(*) FROM connections c WHERE NOT EXISTS (SELECT 1 FROM events e "
               "WHERE e.connection = c.id AND e.kind = 'requested')")
        == "0\n");
  CHECK(one(d, "SELECT count(*) FROM connections c WHERE NOT EXISTS (SELECT 1 FROM events e "
               "WHERE e.connection = c.id AND e.kind = CASE c.state "
               "WHEN 'active' THEN CASE WHEN c.manual_approval THEN 'approved' ELSE "
               "'auto_approved' END WHEN 'awaiting_approval' THEN 'requested' "
               "WHEN 'cancelled' THEN CASE WHEN e.kind IN ('cancelled', 'undone') THEN e.kind ELSE '-' "
               "END WHEN 'rejected' THEN 'rejected' "
               "WHEN 'expired' THEN 'expired' ELSE 'disconnected' END)")
        == "0\n");
  CHECK(one(d, "SELECT count(*) FROM connections WHERE (state = 'disconnected' AND (ended_at IS "
               "NULL OR reason IS NULL)) OR (state = 'active' AND decided_at IS NULL)")
        == "0\n");
  CHECK(checked > 0);
  std::cout << "figure: crash test: " << rounds << " SIGKILLs, " << book.acknowledged
            << " acknowledged changes, " << checked << " connections checked\n";
}
