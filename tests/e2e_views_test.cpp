// End to end: projlinkctl's views as a person reads them (SPEC §7): status
// at a glance, fields in reading order, relative times, colour only on a
// terminal, connections as a tree, flags named like SPEC's parameters, bash
// completion.

#include "e2e_connections_support.hpp"

#include <regex>

using namespace e2e;

namespace {

/// projlinkctl on a pseudo-terminal (util-linux script), as a person runs it.
run_result ctl_on_terminal(const daemon_process& d, const std::string& args,
                           const std::map<std::string, std::string>& env) {
  auto all = env;
  all["PROJLINK_SOCKET"] = d.socket.string();
  all["TERM"] = "xterm";
  return run({"script", "-qec", std::string(PROJLINKCTL) + " " + args, "/dev/null"}, all);
}

} // namespace

TEST_CASE("status reads at a glance: version, uptime in human units, then the counts") {
  world w;
  auto r = ctl(w.d.socket, {"status"});
  REQUIRE(r.status == 0);
  INFO(r.out);
  CHECK(std::regex_search(r.out, std::regex(R"(^projlinkd [0-9.]+, up [0-9]+ (s|min))")));
  CHECK(r.out.find("projects:") != std::string::npos);
  CHECK(r.out.find("uptime_s") == std::string::npos);
  // --json keeps the machine's form.
  auto j = json::parse(ctl(w.d.socket, {"status", "--json"}).out);
  CHECK(j["uptime_s"].is_number());
}

TEST_CASE("a connection reads in order: identity, state, the two projects, who and when") {
  world w;
  auto id = world::id(w.request("sa", "d1", "up"));
  auto r = ctl(w.d.socket, {"--as", "sa", "connection", id});
  REQUIRE(r.status == 0);
  INFO(r.out);
  auto at = [&](const std::string& key) { return r.out.find("\n" + key + ":"); };
  CHECK(r.out.rfind("id:", 0) == 0);
  CHECK(at("state") < at("upstream"));
  CHECK(at("upstream") < at("downstream"));
  CHECK(at("downstream") < at("requested_by"));
  CHECK(at("requested_by") < at("requested_at"));
  CHECK(at("decided_at") != std::string::npos);
  // Relative time first, the absolute one beside it; no colour in a pipe.
  CHECK(std::regex_search(r.out, std::regex(R"(requested_at: +(just now|[0-9]+s ago) \(20[0-9-]+T)")));
  CHECK(r.out.find("\x1b[") == std::string::npos);
}

TEST_CASE("colour only on a terminal, and never with NO_COLOR") {
  world w;
  auto id = world::id(w.request("sa", "d1", "up"));
  auto tty = ctl_on_terminal(w.d, "--as sa connection " + id, {{"NO_COLOR", ""}});
  INFO(tty.out);
  REQUIRE(tty.status == 0);
  CHECK(tty.out.find("\x1b[32mactive") != std::string::npos);
  auto plain = ctl_on_terminal(w.d, "--as sa connection " + id, {{"NO_COLOR", "1"}});
  CHECK(plain.out.find("active") != std::string::npos);
  CHECK(plain.out.find("\x1b[") == std::string::npos);
}

TEST_CASE("connections --tree: the upstream with its downstreams, states and sync progress") {
  world w;
  auto a = world::id(w.request("sa", "d1", "up"));
  auto b = world::id(w.request("sa", "d2", "up"));
  REQUIRE(error_of(w.call("Disconnect", {{"as", "ga"}, {"connection", b}, {"reason", "done"},
                                          {"accept_terms", true}}))
          .empty());
  auto r = ctl(w.d.socket, {"--as", "ga", "connections", "up", "--tree"});
  INFO(r.out << r.err);
  REQUIRE(r.status == 0);
  CHECK(r.out.rfind("up\n", 0) == 0);
  CHECK(std::regex_search(r.out, std::regex("├── d1  active +" + a + "  sync [a-z]+ [0-9]+/[0-9]+")));
  CHECK(r.out.find("└── d2  disconnected  " + b) != std::string::npos);
  // From the downstream's side: its upstream above it.
  auto down = ctl(w.d.socket, {"--as", "sa", "connections", "d1", "--tree"});
  INFO(down.out);
  CHECK(down.out.rfind("up (upstream)  active  " + a, 0) == 0);
  CHECK(down.out.find("└── d1\n") != std::string::npos);
}

TEST_CASE("flags are named like SPEC's parameters, old names kept as aliases") {
  world w;
  for (const char* flag : {"--include-unpublished", "--all"}) {
    auto r = ctl(w.d.socket, {"--as", "ga", "drawing", "list", "up", flag, "--json"});
    INFO(r.out << r.err);
    CHECK(r.status == 0);
    CHECK(json::parse(r.out)["revisions"].is_array());
  }
  auto help = ctl(w.d.socket, {"drawing", "upload", "--help"});
  CHECK(help.out.find("--path") != std::string::npos);
}

TEST_CASE("bash completion offers the subcommands and options of the installed projlinkctl") {
  auto script = std::string(PROJLINK_SOURCE_DIR) + "/daemon/ctl/projlinkctl.bash-completion";
  auto complete = [&](const std::string& words, int cword) {
    auto r = run({"bash", "-c",
                  "source '" + script + "'; COMP_WORDS=(" + PROJLINKCTL + " " + words
                    + "); COMP_CWORD=" + std::to_string(cword)
                    + "; _projlinkctl; echo \"${COMPREPLY[*]}\""});
    INFO(r.err);
    return r.out;
  };
  CHECK(complete("sy", 1) == "sync\n");
  CHECK(complete("sync st", 2) == "status\n");
  CHECK(complete("drawing list p --include", 4) == "--include-unpublished\n");
  CHECK(complete("connections p --tr", 3) == "--tree\n");
}
