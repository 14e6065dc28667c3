// End to end: Connections.Watch over the socket, and the projlinkctl
// commands for every Connections method.

#include "e2e_connections_support.hpp"

#include <thread>

using namespace e2e;
using namespace std::chrono_literals;

TEST_CASE("Watch streams live events of a project until the client hangs up") {
  world w;
  auto watcher = std::make_unique<conn>(w.d.socket);
  watcher->send_call("io.projlink.Connections.Watch", {{"as", "ga"}, {"project", "up"}}, false,
                     true);
  // Nothing has happened yet: no reply.
  CHECK_FALSE(watcher->read(300));
  auto id = world::id(w.request("sa", "d1", "up"));
  auto first = watcher->read();
  REQUIRE(first);
  CHECK((*first)["continues"] == true);
  CHECK((*first)["parameters"]["event"]["kind"] == "requested");
  CHECK((*first)["parameters"]["event"]["connection"] == id);
  // The watched project's own history row; the requesting side is its peer.
  CHECK((*first)["parameters"]["event"]["project"] == "up");
  CHECK((*first)["parameters"]["event"]["detail"]["peer"] == "d1");
  auto second = watcher->read();
  REQUIRE(second);
  CHECK((*second)["parameters"]["event"]["kind"] == "auto_approved");
  // Events of projects the watch does not cover do not arrive.
  world::id(w.request("sa", "d2", "upm"));
  CHECK_FALSE(watcher->read(300));
  // Hanging up ends the stream; the daemon carries on.
  watcher.reset();
  world::id(w.request("sa", "d3", "up"));
  auto status = w.c->call("io.projlink.Daemon.GetStatus", json::object());
  CHECK(error_of(status).empty());
}

TEST_CASE("Watch without a project covers every project the user may view") {
  world w;
  conn watcher{w.d.socket};
  watcher.send_call("io.projlink.Connections.Watch", {{"as", "rita"}}, false, true);
  std::this_thread::sleep_for(200ms);
  world::id(w.request("sa", "d2", "up")); // rita cannot view d2 or up
  world::id(w.request("sa", "d1", "up")); // rita views d1
  auto e = watcher.read();
  REQUIRE(e);
  CHECK((*e)["parameters"]["event"]["kind"] == "requested");
  CHECK((*e)["parameters"]["event"]["project"] == "d1");
}

TEST_CASE("Watch refuses a call without more and a user who may not view") {
  world w;
  auto r = w.call("Watch", {{"as", "ga"}, {"project", "up"}});
  CHECK(error_of(r) == "org.varlink.service.ExpectedMore");
  conn watcher{w.d.socket};
  watcher.send_call("io.projlink.Connections.Watch", {{"as", "otto"}, {"project", "up"}}, false,
                    true);
  auto e = watcher.read();
  REQUIRE(e);
  CHECK(error_of(*e) == "io.projlink.Connections.PermissionDenied");
}

TEST_CASE("projlinkctl drives a connection through its whole life") {
  world w;
  auto as = [&](const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), {"--as", user});
    return ctl(w.d.socket, args);
  };
  // Without --as the daemon decides (only a uid in control.identities may
  // leave it out): an operator is answered InvalidParameter(as), exit 1.
  auto r = ctl(w.d.socket, {"connect", "--downstream", "d1", "--upstream", "upm"});
  CHECK(r.status == 1);
  CHECK(r.err.find("--as") != std::string::npos);
  r = as("sa", {"connect", "--downstream", "d1", "--upstream", "upm", "--json"});
  REQUIRE(r.status == 0);
  auto id = json::parse(r.out)["connection"]["id"].get<std::string>();
  r = as("sa", {"connections", "d1"});
  CHECK(r.status == 0);
  CHECK(r.out.find(id + "  awaiting_approval  upm       d1          sa") != std::string::npos);
  r = as("rita", {"approve", id});
  CHECK(r.status == 1);
  CHECK(r.err == "error: PermissionDenied: not allowed to approve in project 'upm'\n");
  r = as("mcm", {"approve", id});
  CHECK(r.status == 0);
  CHECK(r.out.find("state:        active") != std::string::npos);
  r = as("sa", {"disconnect", id, "--reason", "job done"});
  CHECK(r.status == 1);
  CHECK(r.err.find("error: TermsNotAccepted:") == 0);
  r = as("sa", {"disconnect", id, "--reason", "job done", "--accept-terms"});
  CHECK(r.status == 0);
  CHECK(r.out.find("disconnected") != std::string::npos);
  r = as("sa", {"connect", "--downstream", "d1", "--upstream", "up"});
  CHECK(r.status == 1);
  CHECK(r.err
        == "error: PermanentlyDisconnected: project 'd1' was disconnected once and can never "
           "connect again (R11)\n");
  r = as("sa", {"history", "d1"});
  CHECK(r.status == 0);
  for (const char* kind : {"requested", "approved", "disconnected", "job done"})
    CHECK(r.out.find(kind) != std::string::npos);
  r = as("sa", {"connection", id, "--json"});
  CHECK(json::parse(r.out)["connection"]["reason"] == "job done");
}

TEST_CASE("projlinkctl reject, cancel, undo, settings and approval-mode") {
  world w;
  auto as = [&](const std::string& user, std::vector<std::string> args) {
    args.insert(args.begin(), {"--as", user});
    return ctl(w.d.socket, args);
  };
  auto id_of = [](const run_result& r) {
    return json::parse(r.out)["connection"]["id"].get<std::string>();
  };
  auto a = id_of(as("sa", {"connect", "--downstream", "d1", "--upstream", "upm", "--json"}));
  auto r = as("mcm", {"reject", a, "--reason", "not ours", "--json"});
  CHECK(json::parse(r.out)["connection"]["state"] == "rejected");
  auto b = id_of(as("sa", {"connect", "--downstream", "d1", "--upstream", "upm", "--json"}));
  r = as("sa", {"cancel", b, "--json"});
  CHECK(json::parse(r.out)["connection"]["state"] == "cancelled");
  auto c = id_of(as("sa", {"connect", "--downstream", "d1", "--upstream", "up", "--json"}));
  r = as("sa", {"undo", c, "--json"});
  CHECK(json::parse(r.out)["connection"]["state"] == "cancelled");
  r = as("sa", {"settings", "d1", "--mode", "specific_users", "--user", "sa@sub.test"});
  CHECK(r.status == 0);
  CHECK(r.out.find("recipients: sa@sub.test") != std::string::npos);
  r = as("sa", {"settings", "d1", "--user", "sa"});
  CHECK(r.status == 2);
  r = as("sa", {"settings", "d1", "--json"});
  CHECK(json::parse(r.out)["settings"]["users"] == json{"sa"});
  r = as("mcm", {"approval-mode", "gcm", "on"});
  CHECK(r.status == 1);
  r = as("ma", {"approval-mode", "gcm", "on"});
  CHECK(r.status == 0);
  CHECK(r.out == "auto_approve: on\n");
  r = as("ma", {"approval-mode", "gcm", "maybe"});
  CHECK(r.status == 2);
}

TEST_CASE("projlinkctl watch prints one line per event") {
  world w;
  auto bin = std::string{PROJLINKCTL};
  // A watch for one second, in the background, while a request is made.
  std::thread t([&] {
    std::this_thread::sleep_for(400ms);
    w.request("sa", "d1", "up");
  });
  auto r = run({"timeout", "1.5", bin, "--as", "ga", "watch", "up"},
               {{"PROJLINK_SOCKET", w.d.socket.string()}});
  t.join();
  CHECK(r.out.find("requested  up  connection=c-") != std::string::npos);
  CHECK(r.out.find("auto_approved  up") != std::string::npos);
}
