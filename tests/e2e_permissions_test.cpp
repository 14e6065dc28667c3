// End to end: the permission matrix of SPEC §4, every Connections action ×
// every level of the acting user, and a refusal changes nothing.

#include "e2e_connections_support.hpp"

using namespace e2e;

namespace {

enum class side { upstream, downstream };

struct action {
  const char* name;
  side subject;            ///< the project whose level matters
  const char* precondition; ///< none | pending | active
  int min_level;           ///< 1 read_only .. 3 admin, 4 company admin only
};

const action actions[] = {
  {"view", side::downstream, "active", 1},
  {"request", side::downstream, "none", 3},
  {"approve", side::upstream, "pending", 3},
  {"reject", side::upstream, "pending", 3},
  {"undo", side::downstream, "pending", 3},
  {"cancel", side::downstream, "pending", 3},
  {"disconnect-as-downstream", side::downstream, "active", 3},
  {"disconnect-as-upstream", side::upstream, "active", 3},
  {"configure_distribution", side::downstream, "none", 3},
  {"set_approval_mode", side::upstream, "none", 4},
};

const char* levels[] = {"none", "read_only", "standard", "admin", "company_admin"};

struct cell {
  conn& c;
  std::string k;
  std::string up() const {
    return "up" + k;
  }
  std::string down() const {
    return "dn" + k;
  }
  std::string actor() const {
    return "x" + k;
  }

  json dir(const std::string& method, const json& p) {
    auto r = c.call("io.projlink.Directory." + method, p);
    INFO(method << " " << p.dump() << " -> " << r.dump());
    REQUIRE(error_of(r).empty());
    return r["parameters"];
  }
  json con(const std::string& method, json p, const std::string& as) {
    p["as"] = as;
    return c.call("io.projlink.Connections." + method, p);
  }

  /// Companies, projects, two company admins and the acting user at `level`
  /// on the subject project (drawings read_only on both, for R2).
  void build(const action& a, const std::string& level) {
    dir("CreateCompany", {{"id", "cu" + k}, {"name", "Up " + k}, {"auto_approve", false}});
    dir("CreateCompany", {{"id", "cd" + k}, {"name", "Down " + k}});
    dir("CreateProject", {{"id", up()}, {"company", "cu" + k}, {"name", "Up"}});
    dir("CreateProject", {{"id", down()}, {"company", "cd" + k}, {"name", "Down"}});
    dir("CreateUser", {{"id", "ua" + k}, {"email", "ua" + k + "@t"}, {"name", "UA"},
                       {"company", "cu" + k}, {"company_admin", true}});
    dir("CreateUser", {{"id", "da" + k}, {"email", "da" + k + "@t"}, {"name", "DA"},
                       {"company", "cd" + k}, {"company_admin", true}});
    dir("SetAccess", {{"project", up()}, {"user", "da" + k}, {"drawings", "read_only"}});
    dir("SetAccess", {{"project", down()}, {"user", "ua" + k}, {"cm", "read_only"}});
    auto subject = a.subject == side::upstream ? up() : down();
    bool company_admin = level == "company_admin";
    std::string company = a.subject == side::upstream ? "cu" + k : "cd" + k;
    dir("CreateUser", {{"id", actor()}, {"email", actor() + "@t"}, {"name", "X"},
                       {"company", company_admin ? company : "ext"},
                       {"company_admin", company_admin}});
    for (const auto& p : {up(), down()})
      dir("SetAccess", {{"project", p}, {"user", actor()}, {"drawings", "read_only"}});
    if (!company_admin)
      dir("SetAccess", {{"project", subject}, {"user", actor()}, {"cm", level}});
  }

  /// Brings the connection into the action's precondition; returns its id.
  std::string prepare(const action& a) {
    if (std::string{a.precondition} == "none")
      return {};
    auto r = con("Request", {{"downstream", down()}, {"upstream", up()}}, "da" + k);
    auto id = world::id(r);
    if (std::string{a.precondition} == "active")
      REQUIRE(error_of(con("Approve", {{"connection", id}}, "ua" + k)).empty());
    return id;
  }

  /// Everything an action could change, as seen by the two company admins.
  json snapshot(const std::string& id) {
    json s;
    if (!id.empty())
      s["connection"] = con("Get", {{"connection", id}}, "da" + k);
    s["down"] = con("List", {{"project", down()}}, "da" + k);
    s["down_history"] = con("History", {{"project", down()}}, "da" + k);
    s["up_history"] = con("History", {{"project", up()}}, "ua" + k);
    s["settings"] = con("GetSettings", {{"project", down()}}, "da" + k);
    s["companies"] = c.call("io.projlink.Directory.ListCompanies", json::object());
    return s;
  }

  /// Performs the action as the acting user; returns the reply.
  json perform(const action& a, const std::string& id) {
    std::string n = a.name;
    auto as = actor();
    if (n == "view") {
      // Every view method must agree.
      auto r = con("Get", {{"connection", id}}, as);
      for (const char* m : {"List", "History", "GetSettings"}) {
        auto other = con(m, {{"project", down()}}, as);
        CHECK(error_of(other) == error_of(r));
      }
      return r;
    }
    if (n == "request")
      return con("Request", {{"downstream", down()}, {"upstream", up()}}, as);
    if (n == "approve")
      return con("Approve", {{"connection", id}}, as);
    if (n == "reject")
      return con("Reject", {{"connection", id}, {"reason", "no"}}, as);
    if (n == "undo")
      return con("Undo", {{"connection", id}}, as);
    if (n == "cancel")
      return con("Cancel", {{"connection", id}}, as);
    if (n.rfind("disconnect", 0) == 0)
      return con("Disconnect", {{"connection", id}, {"reason", "r"}, {"accept_terms", true}}, as);
    if (n == "configure_distribution")
      return con("SetDistribution", {{"project", down()}, {"mode", "specific_users"},
                                     {"users", {"da" + k}}},
                 as);
    return con("SetApprovalMode", {{"company", "cu" + k}, {"auto_approve", true}}, as);
  }
};

} // namespace

TEST_CASE("permission matrix: every action at every level, and a refusal changes nothing") {
  daemon_process d;
  d.start();
  conn c{d.socket};
  REQUIRE(error_of(c.call("io.projlink.Directory.CreateCompany", {{"id", "ext"}, {"name", "Ext"}}))
            .empty());
  int n = 0;
  int allowed_count = 0;
  for (const auto& a : actions) {
    for (int l = 0; l < 5; ++l) {
      cell x{c, std::to_string(n++)};
      INFO("action " << a.name << " as " << levels[l]);
      x.build(a, levels[l]);
      auto id = x.prepare(a);
      auto before = x.snapshot(id);
      auto r = x.perform(a, id);
      bool expect_allowed = l >= a.min_level;
      INFO(r.dump());
      if (expect_allowed) {
        allowed_count++;
        CHECK(error_of(r).empty());
      } else {
        CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
        std::string action_name = a.name;
        if (action_name.rfind("disconnect", 0) == 0)
          action_name = "disconnect";
        CHECK(r["parameters"]["action"] == action_name);
        CHECK(x.snapshot(id) == before);
      }
    }
  }
  // view: 4 levels; set_approval_mode: 1; the other 8 actions: 2 each.
  CHECK(allowed_count == 4 + 1 + 8 * 2);
}
