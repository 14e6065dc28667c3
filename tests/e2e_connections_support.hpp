#pragma once

// A daemon with a directory of companies, projects and users ready for the
// connection tests, and short-hands for io.projlink.Connections calls.

#include "e2e_support.hpp"

#include <catch2/catch.hpp>

#include <memory>

namespace e2e {

/// gc auto-approves, gcm approves by hand. sa is the sub company's admin;
/// dan may request for d1 only; rita views d1; mcm is cm admin on upm; otto
/// is a stranger.
inline const char* world_yaml = R"(companies:
  - {id: gc, name: General Contractor}
  - {id: gcm, name: Careful Contractor, auto_approve: false}
  - {id: sub, name: Steel Sub}
  - {id: other, name: Other}
projects:
  - {id: up, company: gc, name: Tower}
  - {id: up2, company: gc, name: Bridge}
  - {id: upoff, company: gc, name: Old job, active: false}
  - {id: upm, company: gcm, name: Hospital}
  - {id: d1, company: sub, name: Tower steel}
  - {id: d2, company: sub, name: Bridge steel}
  - {id: d3, company: sub, name: Hospital steel}
  - {id: d4, company: sub, name: Spare}
  - {id: d5, company: sub, name: Spare 2}
  - {id: off, company: sub, name: Closed, active: false}
users:
  - {id: ga, email: ga@gc.test, name: GC Admin, company: gc, company_admin: true}
  - {id: ma, email: ma@gcm.test, name: GCM Admin, company: gcm, company_admin: true}
  - {id: mcm, email: mcm@gcm.test, name: GCM PM, company: gcm}
  - {id: sa, email: sa@sub.test, name: Sub Admin, company: sub, company_admin: true}
  - {id: dan, email: dan@sub.test, name: Dan, company: sub}
  - {id: rita, email: rita@sub.test, name: Rita, company: sub}
  - {id: otto, email: otto@other.test, name: Otto, company: other}
access:
  - {project: upm, user: mcm, cm: admin, drawings: admin}
  - {project: up, user: sa, drawings: read_only}
  - {project: up2, user: sa, drawings: read_only}
  - {project: upoff, user: sa, drawings: read_only}
  - {project: upm, user: sa, drawings: read_only}
  - {project: d1, user: dan, cm: admin, drawings: read_only}
  - {project: up, user: dan, drawings: read_only}
  - {project: upm, user: dan, drawings: read_only}
  - {project: d1, user: rita, cm: read_only}
  - {project: d2, user: ga, drawings: read_only}
  - {project: d1, user: ga, drawings: read_only}
)";

/// A started daemon with world_yaml imported and one open connection.
struct world {
  daemon_process d;
  std::unique_ptr<conn> c;

  explicit world(const std::string& extra = "", const std::string& actors_extra = "",
                 const std::string& storage_extra = "")
    : d("", extra, actors_extra, storage_extra) {
    d.start();
    connect();
    auto r = c->call("io.projlink.Directory.Import", {{"document", world_yaml}});
    REQUIRE(error_of(r).empty());
  }

  void connect() {
    c = std::make_unique<conn>(d.socket);
  }

  json call(const std::string& method, const json& params) {
    return c->call("io.projlink.Connections." + method, params);
  }
  json request(const std::string& as, const std::string& down, const std::string& up) {
    return call("Request", {{"as", as}, {"downstream", down}, {"upstream", up}});
  }
  /// The id of a successful reply's connection (fails the test otherwise).
  static std::string id(const json& reply) {
    INFO(reply.dump());
    REQUIRE(error_of(reply).empty());
    return reply["parameters"]["connection"]["id"];
  }
  json get(const std::string& conn_id, const std::string& as = "sa") {
    auto r = call("Get", {{"as", as}, {"connection", conn_id}});
    INFO(r.dump());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["connection"];
  }
  std::string state(const std::string& conn_id) {
    return get(conn_id)["state"];
  }
  json project(const std::string& id) {
    return c->call("io.projlink.Directory.GetProject", {{"id", id}})["parameters"]["project"];
  }
  json history(const std::string& project, const std::string& as = "sa") {
    auto r = call("History", {{"as", as}, {"project", project}, {"limit", 10000}});
    INFO(r.dump());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["events"];
  }
  /// The kinds of `project`'s history, in order.
  std::vector<std::string> kinds(const std::string& project, const std::string& as = "sa") {
    std::vector<std::string> out;
    for (const auto& e : history(project, as))
      out.push_back(e["kind"]);
    return out;
  }
};

/// Runs SQL on the daemon's database with the sqlite3 shell (daemon stopped
/// or not: WAL lets both in).
inline run_result sql(const daemon_process& d, const std::string& statements) {
  return run({"sqlite3", "-bail", (d.dir / "projlink.db").string()}, {},
             ".timeout 5000\n" + statements);
}

} // namespace e2e
