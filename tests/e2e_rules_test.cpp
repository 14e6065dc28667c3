// End to end: one test per connection rule of SPEC §2, named by its id,
// against the real projlinkd over its socket.

#include "e2e_connections_support.hpp"

#include <algorithm>
#include <csignal>
#include <set>
#include <thread>

using namespace e2e;
using namespace std::chrono_literals;

namespace {

json params_of(const json& reply) {
  return reply["parameters"];
}

} // namespace

TEST_CASE("R1 only active projects connect, never to themselves, same company allowed") {
  world w;
  auto r = w.request("sa", "off", "up");
  CHECK(error_of(r) == "io.projlink.Connections.ProjectInactive");
  CHECK(params_of(r)["project"] == "off");
  r = w.request("sa", "d1", "upoff");
  CHECK(error_of(r) == "io.projlink.Connections.ProjectInactive");
  CHECK(params_of(r)["project"] == "upoff");
  r = w.request("sa", "d1", "d1");
  CHECK(error_of(r) == "io.projlink.Connections.SelfConnection");
  CHECK(params_of(r)["project"] == "d1");
  // Same company, different names: allowed.
  auto id = world::id(w.request("sa", "d1", "d2"));
  CHECK(w.state(id) == "active");
  // A project made inactive after the request cannot be approved.
  auto pending = world::id(w.request("sa", "d3", "upm"));
  w.c->call("io.projlink.Directory.UpdateProject", {{"id", "d3"}, {"active", false}});
  r = w.call("Approve", {{"as", "mcm"}, {"connection", pending}});
  CHECK(error_of(r) == "io.projlink.Connections.ProjectInactive");
  CHECK(w.state(pending) == "awaiting_approval");
}

TEST_CASE("R2 only the downstream's cm admin with drawings access on both sides initiates") {
  world w;
  // rita: cm read_only on d1.
  auto r = w.request("rita", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  CHECK(params_of(r) == json{{"action", "request"}, {"project", "d1"}});
  // dan: cm admin on d1 but no drawings access on up2.
  r = w.request("dan", "d1", "up2");
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  CHECK(params_of(r) == json{{"action", "request"}, {"project", "up2"}});
  // ga is admin of up (company admin) but not of d2: the upstream side
  // cannot initiate on the downstream's behalf.
  r = w.request("ga", "d2", "up");
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  // Unknown user.
  r = w.request("nobody", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.NotFound");
  CHECK(params_of(r) == json{{"kind", "user"}, {"id", "nobody"}});
  // Nothing was created by any refusal.
  auto list = w.call("List", {{"as", "sa"}, {"project", "d1"}});
  CHECK(params_of(list)["as_downstream"].empty());
  // dan may, and by email too.
  CHECK(w.state(world::id(w.request("dan@sub.test", "d1", "up"))) == "active");
}

TEST_CASE("R3 a downstream has at most one pending or active upstream") {
  world w;
  auto first = world::id(w.request("sa", "d1", "upm"));
  auto r = w.request("sa", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.AlreadyConnected");
  CHECK(params_of(r) == json{{"project", "d1"}, {"connection", first}});
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", first}})).empty());
  r = w.request("sa", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.AlreadyConnected");
  // Once the first ends (here: cancelled by an undo) a new request is fine.
  auto d2 = world::id(w.request("sa", "d2", "upm"));
  REQUIRE(error_of(w.call("Cancel", {{"as", "sa"}, {"connection", d2}})).empty());
  CHECK(w.state(world::id(w.request("sa", "d2", "up"))) == "active");
}

TEST_CASE("R4 an upstream may have any number of downstreams") {
  world w;
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"})
    CHECK(w.state(world::id(w.request("sa", d, "up"))) == "active");
  auto list = params_of(w.call("List", {{"as", "ga"}, {"project", "up"}}));
  CHECK(list["as_upstream"].size() == 5);
  CHECK(list["as_downstream"].empty());
}

TEST_CASE("R5 no chains: a project is upstream or downstream, never both") {
  world w;
  // d1 becomes a downstream of up.
  world::id(w.request("sa", "d1", "up"));
  // d1 cannot be requested as an upstream.
  auto r = w.request("sa", "d2", "d1");
  CHECK(error_of(r) == "io.projlink.Connections.RoleConflict");
  CHECK(params_of(r) == json{{"project", "d1"}, {"role", "downstream"}});
  // Pending links count too: d3 waits on upm; d4 cannot request d3, and upm
  // (which received a request) cannot initiate.
  world::id(w.request("sa", "d3", "upm"));
  r = w.request("sa", "d4", "d3");
  CHECK(error_of(r) == "io.projlink.Connections.RoleConflict");
  CHECK(params_of(r) == json{{"project", "d3"}, {"role", "downstream"}});
  w.c->call("io.projlink.Directory.SetAccess",
            {{"project", "d5"}, {"user", "ma"}, {"drawings", "read_only"}});
  r = w.request("ma", "upm", "d5");
  CHECK(error_of(r) == "io.projlink.Connections.RoleConflict");
  CHECK(params_of(r) == json{{"project", "upm"}, {"role", "upstream"}});
}

TEST_CASE("R6 a project's role is fixed when its first connection becomes active") {
  world w;
  CHECK(w.project("d1")["role"] == "none");
  // Pending does not fix a role.
  auto pending = world::id(w.request("sa", "d1", "upm"));
  CHECK(w.project("d1")["role"] == "none");
  REQUIRE(error_of(w.call("Cancel", {{"as", "sa"}, {"connection", pending}})).empty());
  // Active does; an undo afterwards does not change it back.
  auto id = world::id(w.request("sa", "d1", "up"));
  CHECK(w.project("d1")["role"] == "downstream");
  CHECK(w.project("up")["role"] == "upstream");
  REQUIRE(error_of(w.call("Undo", {{"as", "sa"}, {"connection", id}})).empty());
  CHECK(w.state(id) == "cancelled");
  CHECK(w.project("d1")["role"] == "downstream");
  // With no live link left, d1 still cannot become an upstream.
  auto r = w.request("sa", "d2", "d1");
  CHECK(error_of(r) == "io.projlink.Connections.RoleConflict");
  CHECK(params_of(r)["role"] == "downstream");
}

TEST_CASE("R7 approval mode is the upstream company's, changed only by its company admin") {
  world w;
  auto auto_id = w.request("sa", "d1", "up");
  CHECK(params_of(auto_id)["connection"]["state"] == "active");
  CHECK_FALSE(params_of(auto_id)["connection"].contains("decided_by"));
  CHECK(w.kinds("up", "ga") == std::vector<std::string>{"requested", "auto_approved"});
  auto manual = w.request("sa", "d2", "upm");
  CHECK(params_of(manual)["connection"]["state"] == "awaiting_approval");
  // mcm is cm admin on upm but not a company admin.
  auto r = w.call("SetApprovalMode", {{"as", "mcm"}, {"company", "gcm"}, {"auto_approve", true}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  CHECK(params_of(r) == json{{"action", "set_approval_mode"}, {"project", "gcm"}});
  r = w.call("SetApprovalMode", {{"as", "ga"}, {"company", "gcm"}, {"auto_approve", true}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  r = w.call("SetApprovalMode", {{"as", "ma"}, {"company", "gcm"}, {"auto_approve", true}});
  CHECK(params_of(r) == json{{"auto_approve", true}});
  auto companies = w.c->call("io.projlink.Directory.ListCompanies", json::object());
  for (const auto& co : companies["parameters"]["companies"])
    if (co["id"] == "gcm")
      CHECK(co["auto_approve"] == true);
  // The pending request stays pending; a new one is approved at once.
  CHECK(w.state(world::id(manual)) == "awaiting_approval");
  CHECK(w.state(world::id(w.request("sa", "d3", "upm"))) == "active");
  // Approve by the upstream's cm admin.
  r = w.call("Approve", {{"as", "mcm"}, {"connection", world::id(manual)}});
  CHECK(params_of(r)["connection"]["state"] == "active");
  CHECK(params_of(r)["connection"]["decided_by"] == "mcm");
}

TEST_CASE("R8 a rejected downstream may request again and the rejection stays in history") {
  world w;
  auto first = world::id(w.request("sa", "d1", "upm"));
  auto r = w.call("Reject", {{"as", "mcm"}, {"connection", first}, {"reason", "wrong job"}});
  CHECK(params_of(r)["connection"]["state"] == "rejected");
  CHECK(params_of(r)["connection"]["reason"] == "wrong job");
  auto second = world::id(w.request("sa", "d1", "upm"));
  CHECK(second != first);
  CHECK(w.state(second) == "awaiting_approval");
  CHECK(w.state(first) == "rejected");
  auto h = w.history("d1");
  REQUIRE(h.size() == 3);
  CHECK(h[1]["kind"] == "rejected");
  CHECK(h[1]["reason"] == "wrong job");
  CHECK(h[1]["user"] == "mcm");
  // Rejecting twice: InvalidState.
  r = w.call("Reject", {{"as", "mcm"}, {"connection", first}});
  CHECK(error_of(r) == "io.projlink.Connections.InvalidState");
  CHECK(params_of(r) == json{{"connection", first}, {"state", "rejected"}});
  // Or another upstream.
  REQUIRE(error_of(w.call("Cancel", {{"as", "sa"}, {"connection", second}})).empty());
  CHECK(w.state(world::id(w.request("sa", "d1", "up"))) == "active");
}

TEST_CASE("R9 quick undo on either side within the undo window, then UndoWindowExpired") {
  world w{"connections:\n  undo_window: 1500ms\n"};
  // Downstream undo of an auto-approved connection → cancelled.
  auto a = world::id(w.request("sa", "d1", "up"));
  auto r = w.call("Undo", {{"as", "sa"}, {"connection", a}});
  CHECK(params_of(r)["connection"]["state"] == "cancelled");
  CHECK(w.history("d1").back()["kind"] == "undone");
  // Downstream undo of a pending request → cancelled.
  auto b = world::id(w.request("sa", "d2", "upm"));
  CHECK(params_of(w.call("Undo", {{"as", "sa"}, {"connection", b}}))["connection"]["state"]
        == "cancelled");
  // Upstream undo of a manual approval → back to awaiting_approval.
  auto c = world::id(w.request("sa", "d3", "upm"));
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", c}})).empty());
  r = w.call("Undo", {{"as", "mcm"}, {"connection", c}});
  CHECK(params_of(r)["connection"]["state"] == "awaiting_approval");
  CHECK_FALSE(params_of(r)["connection"].contains("decided_by"));
  // The upstream cannot undo an auto-approval.
  auto d = world::id(w.request("sa", "d4", "up"));
  r = w.call("Undo", {{"as", "ga"}, {"connection", d}});
  CHECK(error_of(r) == "io.projlink.Connections.InvalidState");
  // A stranger cannot undo.
  r = w.call("Undo", {{"as", "otto"}, {"connection", d}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  // After the window: UndoWindowExpired, and nothing changes.
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", c}})).empty());
  std::this_thread::sleep_for(1600ms);
  r = w.call("Undo", {{"as", "sa"}, {"connection", d}});
  CHECK(error_of(r) == "io.projlink.Connections.UndoWindowExpired");
  CHECK(params_of(r) == json{{"connection", d}});
  CHECK(w.state(d) == "active");
  r = w.call("Undo", {{"as", "mcm"}, {"connection", c}});
  CHECK(error_of(r) == "io.projlink.Connections.UndoWindowExpired");
  CHECK(w.state(c) == "active");
  // An undo is not a disconnect: d1 may connect again.
  CHECK(w.project("d1")["permanently_disconnected"] == false);
  CHECK(w.state(world::id(w.request("sa", "d1", "up"))) == "active");
}

TEST_CASE("R9 an undo removes the copies still unpublished downstream, a disconnect keeps them") {
  world w;
  auto undone = world::id(w.request("sa", "d1", "up"));
  auto kept = world::id(w.request("sa", "d2", "up"));
  // Two copies per connection, one of them published downstream.
  std::string insert = "INSERT INTO blobs VALUES ('aa', 1, '2026-01-01T00:00:00Z');\n";
  int n = 0;
  for (const auto& [conn, project] : {std::pair{undone, "d1"}, std::pair{kept, "d2"}}) {
    insert += "INSERT INTO drawings (project, number, title, connection) VALUES ('"
              + std::string{project} + "', 'A-1', 'Plan', '" + conn + "');\n";
    for (int published : {0, 1})
      insert += "INSERT INTO revisions (id, project, drawing, revision, published, sha256, size, "
                "created_at, connection, upstream_revision) VALUES ('r"
                + std::to_string(n++) + "', '" + project
                + "', last_insert_rowid() - 0, '1', " + std::to_string(published)
                + ", 'aa', 1, '2026-01-01T00:00:00Z', '" + conn + "', 'u"
                + std::to_string(published) + "');\n";
  }
  auto r = sql(w.d, insert);
  REQUIRE(r.status == 0);
  REQUIRE(error_of(w.call("Undo", {{"as", "sa"}, {"connection", undone}})).empty());
  REQUIRE(error_of(w.call("Disconnect", {{"as", "sa"},
                                          {"connection", kept},
                                          {"reason", "job done"},
                                          {"accept_terms", true}}))
            .empty());
  auto left = sql(w.d, "SELECT project, published FROM revisions ORDER BY project, published;");
  // R9: d1 keeps only its published copy. R12: d2 keeps both.
  CHECK(left.out == "d1|1\nd2|0\nd2|1\n");
}

TEST_CASE("R10 cancel a pending request at any time, expiry after request_ttl") {
  world w{"connections:\n  request_ttl: 1s\n"};
  auto a = world::id(w.request("sa", "d1", "upm"));
  auto r = w.call("Cancel", {{"as", "sa"}, {"connection", a}});
  CHECK(params_of(r)["connection"]["state"] == "cancelled");
  CHECK(params_of(r)["connection"]["ended_by"] == "sa");
  // Only pending requests: cancelling an active one is InvalidState.
  auto active = world::id(w.request("sa", "d2", "up"));
  r = w.call("Cancel", {{"as", "sa"}, {"connection", active}});
  CHECK(error_of(r) == "io.projlink.Connections.InvalidState");
  // The upstream cannot cancel.
  auto b = world::id(w.request("sa", "d3", "upm"));
  r = w.call("Cancel", {{"as", "mcm"}, {"connection", b}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  // Expiry: the daemon's timer moves it to expired without any call.
  for (int i = 0; i < 50 && w.state(b) != "expired"; ++i)
    std::this_thread::sleep_for(100ms);
  CHECK(w.state(b) == "expired");
  CHECK(w.history("d3").back()["kind"] == "expired");
  r = w.call("Approve", {{"as", "mcm"}, {"connection", b}});
  CHECK(error_of(r) == "io.projlink.Connections.InvalidState");
  // The downstream may request again.
  CHECK(w.state(world::id(w.request("sa", "d3", "upm"))) == "awaiting_approval");
}

TEST_CASE("R10 expiry timers survive a restart") {
  world w{"connections:\n  request_ttl: 1s\n"};
  auto a = world::id(w.request("sa", "d1", "upm"));
  w.c.reset();
  w.d.stop(SIGKILL);
  std::this_thread::sleep_for(1200ms);
  w.d.start();
  w.connect();
  for (int i = 0; i < 50 && w.state(a) != "expired"; ++i)
    std::this_thread::sleep_for(100ms);
  CHECK(w.state(a) == "expired");
}

TEST_CASE("R11 disconnect needs a reason and accepted terms and is permanent for the downstream") {
  world w;
  auto a = world::id(w.request("sa", "d1", "up"));
  auto b = world::id(w.request("sa", "d2", "up"));
  auto r = w.call("Disconnect", {{"as", "sa"}, {"connection", a}, {"accept_terms", true}});
  CHECK(error_of(r) == "io.projlink.Connections.ReasonRequired");
  r = w.call("Disconnect",
             {{"as", "sa"}, {"connection", a}, {"reason", "  "}, {"accept_terms", true}});
  CHECK(error_of(r) == "io.projlink.Connections.ReasonRequired");
  r = w.call("Disconnect", {{"as", "sa"}, {"connection", a}, {"reason", "done"}});
  CHECK(error_of(r) == "io.projlink.Connections.TermsNotAccepted");
  r = w.call("Disconnect",
             {{"as", "rita"}, {"connection", a}, {"reason", "done"}, {"accept_terms", true}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  CHECK(w.state(a) == "active");
  // The upstream's cm admin may disconnect too.
  r = w.call("Disconnect",
             {{"as", "ga"}, {"connection", a}, {"reason", "contract ended"}, {"accept_terms", true}});
  CHECK(params_of(r)["connection"]["state"] == "disconnected");
  CHECK(params_of(r)["connection"]["reason"] == "contract ended");
  CHECK(params_of(r)["connection"]["ended_by"] == "ga");
  CHECK(w.project("d1")["permanently_disconnected"] == true);
  // d1 can never connect again, to any upstream.
  r = w.request("sa", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.PermanentlyDisconnected");
  CHECK(params_of(r) == json{{"project", "d1"}});
  CHECK(error_of(w.request("sa", "d1", "upm")) == "io.projlink.Connections.PermanentlyDisconnected");
  // Other downstreams of the same upstream are unaffected.
  CHECK(w.state(b) == "active");
  CHECK(w.project("d2")["permanently_disconnected"] == false);
  // Disconnecting twice: InvalidState.
  r = w.call("Disconnect",
             {{"as", "sa"}, {"connection", a}, {"reason", "again"}, {"accept_terms", true}});
  CHECK(error_of(r) == "io.projlink.Connections.InvalidState");
}

TEST_CASE("R12 after a disconnect nothing new is queued for copying") {
  world w;
  auto a = world::id(w.request("sa", "d1", "up"));
  REQUIRE(sql(w.d, "INSERT INTO sync_jobs (connection, upstream_revision, kind, created_at) "
                   "VALUES ('" + a + "', 'u1', 'copy', '2026-01-01T00:00:00Z');")
            .status
          == 0);
  REQUIRE(error_of(w.call("Disconnect", {{"as", "sa"},
                                          {"connection", a},
                                          {"reason", "done"},
                                          {"accept_terms", true}}))
            .empty());
  // The queued job is dropped, or, if a sync worker had already claimed it,
  // it ends without copying (R12): nothing stays queued, nothing arrives.
  auto unfinished = "SELECT count(*) FROM sync_jobs WHERE connection = '" + a
                    + "' AND state IN ('pending', 'running', 'failed');";
  auto end = std::chrono::steady_clock::now() + 30s;
  while (sql(w.d, unfinished).out != "0\n" && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(20ms);
  CHECK(sql(w.d, unfinished).out == "0\n");
  CHECK(sql(w.d, "SELECT count(*) FROM revisions WHERE project = 'd1';").out == "0\n");
}

TEST_CASE("R13 a project with more than max_drawing_revisions cannot be connected") {
  world w{"connections:\n  max_drawing_revisions: 2\n"};
  std::string insert = "INSERT INTO blobs VALUES ('aa', 1, '2026-01-01T00:00:00Z');\n"
                       "INSERT INTO drawings (id, project, number, title) VALUES (1, 'up', 'A', 'A');\n";
  for (int i = 0; i < 3; ++i)
    insert += "INSERT INTO revisions (id, project, drawing, revision, sha256, size, created_at) "
              "VALUES ('r" + std::to_string(i) + "', 'up', 1, '" + std::to_string(i)
              + "', 'aa', 1, '2026-01-01T00:00:00Z');\n";
  // The count R13 uses is the one uploads, copies and deletes keep (projects.revisions).
  insert += "UPDATE projects SET revisions = 3 WHERE id = 'up';\n";
  REQUIRE(sql(w.d, insert).status == 0);
  auto r = w.request("sa", "d1", "up");
  CHECK(error_of(r) == "io.projlink.Connections.TooManyRevisions");
  CHECK(params_of(r) == json{{"project", "up"}, {"count", 3}, {"limit", 2}});
  CHECK(params_of(w.call("List", {{"as", "sa"}, {"project", "d1"}}))["as_downstream"].empty());
  // Counting what exists now: one deleted revision brings it to the limit.
  REQUIRE(sql(w.d, "UPDATE revisions SET deleted_at = '2026-01-02T00:00:00Z' WHERE id = 'r0';"
                   "UPDATE projects SET revisions = 2 WHERE id = 'up';")
            .status
          == 0);
  CHECK(w.state(world::id(w.request("sa", "d1", "up"))) == "active");
}

TEST_CASE("R14 removing the user who requested a connection does not affect it") {
  world w;
  auto a = world::id(w.request("dan", "d1", "upm"));
  auto r = w.c->call("io.projlink.Directory.RemoveAccess", {{"project", "d1"}, {"user", "dan"}});
  REQUIRE(error_of(r).empty());
  r = w.call("Approve", {{"as", "mcm"}, {"connection", a}});
  CHECK(params_of(r)["connection"]["state"] == "active");
  auto c = w.get(a);
  CHECK(c["requested_by"] == "dan");
  CHECK(c["state"] == "active");
  // dan himself can no longer act on it.
  r = w.call("Undo", {{"as", "dan"}, {"connection", a}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
}

TEST_CASE("R15 every state change is in the history of both projects, durable across a crash") {
  world w;
  auto a = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(error_of(w.call("Reject", {{"as", "mcm"}, {"connection", a}, {"reason", "no"}})).empty());
  auto b = world::id(w.request("sa", "d1", "upm"));
  REQUIRE(error_of(w.call("Approve", {{"as", "mcm"}, {"connection", b}})).empty());
  REQUIRE(error_of(w.call("Disconnect", {{"as", "mcm"},
                                          {"connection", b},
                                          {"reason", "finished"},
                                          {"accept_terms", true}}))
            .empty());
  auto expected = std::vector<std::string>{"requested", "rejected", "requested", "approved",
                                           "disconnected"};
  CHECK(w.kinds("d1") == expected);
  CHECK(w.kinds("upm", "mcm") == expected);
  auto h = w.history("d1");
  for (size_t i = 1; i < h.size(); ++i)
    CHECK(h[i]["seq"].get<int64_t>() > h[i - 1]["seq"].get<int64_t>());
  CHECK(h[4]["user"] == "mcm");
  CHECK(h[4]["reason"] == "finished");
  // Each project's history is its own: d1's row names d1, the other side is the peer.
  CHECK(h[4]["project"] == "d1");
  CHECK(h[4]["detail"]["peer"] == "upm");
  CHECK(w.history("upm", "mcm")[4]["project"] == "upm");
  CHECK(h[4]["connection"] == b);
  CHECK(h[4]["at"].get<std::string>().size() == 24);
  // Paging.
  auto page = w.call("History", {{"as", "sa"}, {"project", "d1"}, {"after", h[1]["seq"]}, {"limit", 2}});
  REQUIRE(params_of(page)["events"].size() == 2);
  CHECK(params_of(page)["events"][0]["seq"] == h[2]["seq"]);
  // Acknowledged = durable: SIGKILL, restart, same history.
  w.c.reset();
  w.d.stop(SIGKILL);
  w.d.start();
  w.connect();
  CHECK(w.kinds("d1") == expected);
  // Viewing history needs cm read_only.
  auto r = w.call("History", {{"as", "otto"}, {"project", "d1"}});
  CHECK(error_of(r) == "io.projlink.Connections.PermissionDenied");
  CHECK(params_of(r) == json{{"action", "view"}, {"project", "d1"}});
}

TEST_CASE("actors: a call naming a project that does not exist spawns no actor") {
  world w;
  auto live = [&] {
    auto r = w.c->call("io.projlink.Daemon.GetStatus", json::object());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["live_project_actors"].get<int64_t>();
  };
  auto before = live();
  for (int i = 0; i < 200; ++i) {
    auto r = w.request("sa", "nope-" + std::to_string(i), "up");
    REQUIRE(error_of(r) == "io.projlink.Connections.NotFound");
    CHECK(params_of(r) == json{{"kind", "project"}, {"id", "nope-" + std::to_string(i)}});
    r = w.call("Request", {{"as", "sa"}, {"downstream", "d1"}, {"upstream", "nope-x" + std::to_string(i)}});
    REQUIRE(error_of(r) == "io.projlink.Connections.NotFound");
  }
  // d1 itself exists and is live now (the second call reached it); the
  // made-up projects got nothing.
  CHECK(live() <= before + 1);
}

TEST_CASE("actors: live project actors stay within actors.max_live, least recently used first") {
  world w{"", "  max_live: 3\n"};
  auto live = [&] {
    auto r = w.c->call("io.projlink.Daemon.GetStatus", json::object());
    REQUIRE(error_of(r).empty());
    return r["parameters"]["live_project_actors"].get<int64_t>();
  };
  // Five downstreams and one upstream: six projects used.
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"})
    CHECK(w.state(world::id(w.request("sa", d, "up"))) == "active");
  auto end = std::chrono::steady_clock::now() + 30s;
  while (live() > 3 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(20ms);
  CHECK(live() <= 3);
  // Passivated actors lose nothing: their state is in the store.
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"}) {
    auto lists = params_of(w.call("List", {{"as", "sa"}, {"project", d}}));
    REQUIRE(lists["as_downstream"].size() == 1);
    CHECK(lists["as_downstream"][0]["state"] == "active");
  }
  // ...and they decide as before when used again.
  auto c1 = params_of(w.call("List", {{"as", "sa"}, {"project", "d1"}}))["as_downstream"][0]["id"];
  CHECK(params_of(w.call("Disconnect", {{"as", "sa"}, {"connection", c1}, {"reason", "done"},
                                        {"accept_terms", true}}))["connection"]["state"]
        == "disconnected");
}

TEST_CASE("paging: Connections.List and Notifications walk every item once, in their order") {
  world w;
  // up gets five downstreams; each connection notifies up's list (nobody: one
  // failed notification each, still listed).
  for (const char* d : {"d1", "d2", "d3", "d4", "d5"})
    world::id(w.request("sa", d, "up"));
  std::vector<std::string> ids;
  json after;
  for (int page = 0; page < 10; ++page) {
    json p{{"as", "ga"}, {"project", "up"}, {"limit", 2}};
    if (!after.is_null())
      p["after"] = after;
    auto r = params_of(w.call("List", p));
    CHECK(r["as_downstream"].empty());
    CHECK(r["as_upstream"].size() <= 2);
    for (const auto& c : r["as_upstream"])
      ids.push_back(c["id"]);
    if (!r.contains("next"))
      break;
    after = r["next"];
  }
  CHECK(ids.size() == 5);
  CHECK(std::is_sorted(ids.begin(), ids.end())); // ascending by connection id
  CHECK(std::set<std::string>(ids.begin(), ids.end()).size() == 5);
  // A token of another project or method, or nonsense, is InvalidParameter(after).
  auto token = params_of(w.call("List", {{"as", "ga"}, {"project", "up"}, {"limit", 1}}))["next"];
  auto bad = w.call("List", {{"as", "sa"}, {"project", "d1"}, {"after", token}});
  CHECK(error_of(bad) == "org.varlink.service.InvalidParameter");
  CHECK(bad["parameters"]["parameter"] == "after");
  bad = w.call("Notifications", {{"as", "ga"}, {"project", "up"}, {"after", token}});
  CHECK(bad["parameters"]["parameter"] == "after");
  // Notifications: newest first, each once.
  std::vector<json> seen;
  after = nullptr;
  for (int page = 0; page < 10; ++page) {
    json p{{"as", "ga"}, {"project", "up"}, {"limit", 2}};
    if (!after.is_null())
      p["after"] = after;
    auto r = params_of(w.call("Notifications", p));
    for (const auto& n : r["notifications"])
      seen.push_back(n);
    if (!r.contains("next"))
      break;
    after = r["next"];
  }
  REQUIRE(seen.size() == 5);
  for (size_t i = 1; i < seen.size(); ++i)
    CHECK(std::make_pair(seen[i - 1]["at"].get<std::string>(),
                         std::stoll(seen[i - 1]["id"].get<std::string>()))
          > std::make_pair(seen[i]["at"].get<std::string>(),
                           std::stoll(seen[i]["id"].get<std::string>())));
}
