// End to end: io.projlink.Directory and Daemon.GetStatus through projlinkctl
// and the raw socket.

#include "e2e_support.hpp"

#include <catch2/catch.hpp>

using namespace e2e;

namespace {

const char* directory_yaml = R"(companies:
  - {id: gc, name: General Contractor Inc, auto_approve: false}
  - {id: sub, name: Steel Sub LLC}
projects:
  - {id: tower, company: gc, name: Tower A}
  - {id: tower-steel, company: sub, name: Tower A steel}
users:
  - {id: alice, email: alice@gc.example, name: Alice, company: gc, company_admin: true}
  - {id: bob, email: bob@sub.example, name: Bob, company: sub}
access:
  - {project: tower-steel, user: bob, cm: admin, drawings: admin}
  - {project: tower, user: bob@sub.example, drawings: read_only}
)";

} // namespace

TEST_CASE("projlinkctl import followed by project list shows the directory") {
  daemon_process d;
  d.start();
  auto imp = ctl(d.socket, {"import", "-"}, directory_yaml);
  CHECK(imp.status == 0);
  CHECK(imp.out == "imported 2 companies, 2 projects, 2 users, 2 access entries\n");
  auto list = ctl(d.socket, {"project", "list"});
  CHECK(list.status == 0);
  CHECK(list.out.find("tower        gc       Tower A        yes     none") != std::string::npos);
  CHECK(list.out.find("tower-steel  sub      Tower A steel") != std::string::npos);
  auto js = ctl(d.socket, {"project", "list", "--company", "sub", "--json"});
  REQUIRE(js.status == 0);
  auto j = json::parse(js.out);
  REQUIRE(j["projects"].size() == 1);
  CHECK(j["projects"][0]["id"] == "tower-steel");
  CHECK(j["projects"][0]["role"] == "none");
  auto access = ctl(d.socket, {"access", "list", "tower", "--json"});
  CHECK(json::parse(access.out)["access"][0] == json{{"project", "tower"}, {"user", "bob"},
                                                     {"cm", "none"}, {"drawings", "read_only"}});
  auto status = ctl(d.socket, {"status", "--json"});
  CHECK(json::parse(status.out)["projects"] == 2);
}

TEST_CASE("Import is all or nothing and names the line of the bad item") {
  daemon_process d;
  d.start();
  std::string doc = std::string(directory_yaml) + "  - {project: tower, user: nobody, cm: admin}\n";
  auto r = ctl(d.socket, {"import", "-"}, doc);
  CHECK(r.status == 1);
  CHECK(r.err == "error: InvalidDocument: line 13, column 5: no user 'nobody'\n");
  auto list = ctl(d.socket, {"company", "list", "--json"});
  CHECK(json::parse(list.out)["companies"].empty());
}

TEST_CASE("Directory methods create, update, list and remove") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  const std::string i = "io.projlink.Directory.";
  CHECK(c.call(i + "CreateCompany", {{"id", "gc"}, {"name", "GC"}})["parameters"]["company"]
        == json{{"id", "gc"}, {"name", "GC"}, {"auto_approve", true}});
  CHECK(error_of(c.call(i + "CreateCompany", {{"id", "gc"}, {"name", "again"}}))
        == "io.projlink.Directory.AlreadyExists");
  auto upd = c.call(i + "UpdateCompany", {{"id", "gc"}, {"auto_approve", false}});
  CHECK(upd["parameters"]["company"]["auto_approve"] == false);
  CHECK(upd["parameters"]["company"]["name"] == "GC");
  auto p = c.call(i + "CreateProject", {{"id", "p1"}, {"company", "gc"}, {"name", "P1"}, {"active", false}});
  CHECK(p["parameters"]["project"]["active"] == false);
  CHECK(p["parameters"]["project"]["permanently_disconnected"] == false);
  CHECK(p["parameters"]["project"]["revisions"] == 0);
  auto nf = c.call(i + "CreateProject", {{"id", "p2"}, {"company", "nope"}, {"name", "P2"}});
  CHECK(error_of(nf) == "io.projlink.Directory.NotFound");
  CHECK(nf["parameters"] == json{{"kind", "company"}, {"id", "nope"}});
  CHECK(c.call(i + "UpdateProject", {{"id", "p1"}, {"active", true}})["parameters"]["project"]["active"] == true);
  CHECK(c.call(i + "GetProject", {{"id", "p1"}})["parameters"]["project"]["name"] == "P1");
  auto u = c.call(i + "CreateUser", {{"id", "al"}, {"email", "al@gc.example"}, {"name", "Al"}, {"company", "gc"}});
  CHECK(u["parameters"]["user"]["company_admin"] == false);
  CHECK(error_of(c.call(i + "CreateUser", {{"id", "al2"}, {"email", "AL@gc.example"}, {"name", "Al"}, {"company", "gc"}}))
        == "io.projlink.Directory.AlreadyExists");
  CHECK(c.call(i + "UpdateUser", {{"id", "al"}, {"company_admin", true}})["parameters"]["user"]["company_admin"] == true);
  auto a = c.call(i + "SetAccess", {{"project", "p1"}, {"user", "al"}, {"cm", "admin"}});
  CHECK(a["parameters"]["access"] == json{{"project", "p1"}, {"user", "al"}, {"cm", "admin"}, {"drawings", "none"}});
  CHECK(c.call(i + "ListAccess", {{"project", "p1"}})["parameters"]["access"].size() == 1);
  CHECK(error_of(c.call(i + "RemoveAccess", {{"project", "p1"}, {"user", "al"}})).empty());
  CHECK(c.call(i + "ListAccess", {{"project", "p1"}})["parameters"]["access"].empty());
  CHECK(c.call(i + "ListUsers", {{"company", "gc"}})["parameters"]["users"].size() == 1);
}

TEST_CASE("projlinkctl exit status: 0 ok, 1 daemon error, 2 usage, 3 unreachable") {
  daemon_process d;
  d.start();
  CHECK(ctl(d.socket, {"status"}).status == 0);
  auto err = ctl(d.socket, {"project", "show", "nope"});
  CHECK(err.status == 1);
  CHECK(err.err == "error: NotFound: no project 'nope'\n");
  CHECK(ctl(d.socket, {"project", "add", "x"}).status == 2);
  CHECK(ctl(d.socket, {"frobnicate"}).status == 2);
  auto down = ctl(d.dir / "absent.sock", {"status"});
  CHECK(down.status == 3);
  CHECK(down.err.find("cannot connect") != std::string::npos);
  auto raw = ctl(d.socket, {"call", "io.projlink.Directory.ListCompanies", "{}"});
  CHECK(raw.status == 0);
  CHECK(json::parse(raw.out)["companies"].empty());
}
