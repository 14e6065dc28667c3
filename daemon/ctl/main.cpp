// projlinkctl: the command-line client of projlinkd (SPEC §7).
//
// Exit status: 0 success, 1 the daemon answered with an error, 2 usage
// error, 3 the daemon cannot be reached.

#include "daemon/ctl/client.hpp"
#include "daemon/ctl/render.hpp"

#include <CLI/CLI.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <fstream>
#include <iostream>
#include <sstream>

using namespace projlink::ctl;

namespace {

constexpr int exit_ok = 0;
constexpr int exit_error = 1;
constexpr int exit_usage = 2;
constexpr int exit_unreachable = 3;

struct globals {
  std::string socket = "/run/projlink/projlink.sock";
  std::string as;
  bool json_output = false;
};

/// What a subcommand asks of the daemon and how to show the answer.
struct action {
  std::string method;
  json parameters = json::object();
  std::function<void(const json&)> show; ///< human output; JSON when unset
  bool needs_as = false;                 ///< Connections/Drawings: pass --as
  bool streaming = false;                ///< call with "more", print each reply
  std::vector<int> fds;                  ///< descriptors passed with the call
  std::string output_file;               ///< removed again if the call fails
  bool watch_sync = false;               ///< repeat SyncStatus until the sync settles
  bool tree = false;                     ///< connections --tree
};

/// `status`: one line a person reads at a glance, then the counts.
void print_status(const json& p) {
  std::ostringstream up;
  up << "up " << human_duration(p.value("uptime_s", 0.0));
  std::cout << "projlinkd " << p.value("version", "?") << ", " << up.str();
  if (p.contains("store") && p["store"].is_string())
    std::cout << ", store " << paint_state(p["store"].get<std::string>(), p["store"].get<std::string>());
  if (p.contains("node_id") && p["node_id"].is_string())
    std::cout << ", node " << p["node_id"].get<std::string>();
  std::cout << '\n';
  std::vector<std::pair<const char*, const char*>> rows{
    {"projects", "projects"},
    {"live project actors", "live_project_actors"},
    {"sync backlog", "sync_backlog"},
    {"notification backlog", "notification_backlog"}};
  for (const auto& [label, key] : rows) {
    std::string l = label;
    std::cout << l << ':' << std::string(22 - l.size(), ' ')
              << (p.contains(key) ? p[key].dump() : "-") << '\n';
  }
}

/// `connections P --tree`: the project's upstream above it, its downstreams
/// below with state and sync progress (one SyncStatus per active one).
int print_tree(client& c, const action& a, const json& list) {
  const auto project = a.parameters.value("project", "");
  auto progress = [&](const json& conn) -> std::string {
    if (conn.value("state", "") != "active")
      return {};
    auto r = c.call("io.projlink.Connections.SyncStatus",
                    {{"as", a.parameters.value("as", "")}, {"connection", conn.value("id", "")}});
    if (!r.error.empty())
      return "sync: ?";
    const auto& s = r.parameters.at("status");
    int64_t done = s.value("done", 0), pending = s.value("pending", 0), failed = s.value("failed", 0);
    std::string out = "sync " + paint_state(s.value("state", "?"), s.value("state", "?")) + " "
                      + std::to_string(done) + "/" + std::to_string(done + pending + failed);
    if (failed > 0)
      out += ", " + std::to_string(failed) + " failed";
    out += ", " + human_bytes(static_cast<double>(s.value("bytes_done", 0)));
    return out;
  };
  size_t name_w = 0, state_w = 0; // columns aligned across the downstreams
  for (const auto& x : list.value("as_upstream", json::array())) {
    name_w = std::max(name_w, x.value("downstream", "?").size());
    state_w = std::max(state_w, x.value("state", "?").size());
  }
  auto pad = [](const std::string& t, size_t w) {
    return t.size() < w ? t + std::string(w - t.size(), ' ') : t;
  };
  auto line = [&](const json& conn, const std::string& other, bool aligned) {
    std::string state = conn.value("state", "?");
    std::string out = (aligned ? pad(other, name_w) : other) + "  "
                      + paint_state(state, aligned ? pad(state, state_w) : state) + "  "
                      + conn.value("id", "");
    auto p = progress(conn);
    if (!p.empty())
      out += "  " + p;
    return out;
  };
  // Live first (active, then awaiting approval), then ended, newest last.
  auto rank = [](const json& x) {
    auto st = x.value("state", "");
    return st == "active" ? 0 : st == "awaiting_approval" ? 1 : 2;
  };
  auto sorted = [&](json xs) {
    std::stable_sort(xs.begin(), xs.end(),
                     [&](const json& l, const json& r) { return rank(l) < rank(r); });
    return xs;
  };
  json ups = json::array(); // the live upstream connection (R3: at most one)
  for (const auto& u : list.value("as_downstream", json::array()))
    if (rank(u) < 2)
      ups.push_back(u);
  auto downs = sorted(list.value("as_upstream", json::array()));
  for (const auto& u : ups)
    std::cout << line(u, u.value("upstream", "?") + " (upstream)", false) << '\n' << "└── ";
  std::cout << project << '\n';
  std::string indent = ups.empty() ? "" : "    ";
  for (size_t i = 0; i < downs.size(); ++i) {
    bool last = i + 1 == downs.size();
    std::cout << indent << (last ? "└── " : "├── ")
              << line(downs[i], downs[i].value("downstream", "?"), true) << '\n';
  }
  if (downs.empty())
    std::cout << indent << "└── (no downstream projects)\n";
  return exit_ok;
}

/// `sync status C --watch`: a progress bar on a terminal, a line per change
/// otherwise, until nothing is pending.
int watch_sync(client& c, const action& a, bool json_output) {
  bool tty = ::isatty(STDOUT_FILENO) != 0 && !json_output;
  auto start = std::chrono::steady_clock::now();
  int64_t start_bytes = -1;
  std::string last_line;
  for (;;) {
    auto r = c.call(a.method, a.parameters);
    if (!r.error.empty()) {
      if (tty)
        std::cout << '\n';
      std::cerr << "error: " << r.error.substr(r.error.rfind('.') + 1) << ": " << explain(r)
                << '\n';
      return exit_error;
    }
    const auto& s = r.parameters.at("status");
    int64_t done = s.value("done", 0), pending = s.value("pending", 0), failed = s.value("failed", 0);
    int64_t bytes = s.value("bytes_done", 0), total = s.value("bytes_total", 0);
    if (start_bytes < 0)
      start_bytes = bytes;
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    double rate = secs > 0.2 ? static_cast<double>(bytes - start_bytes) / secs : 0;
    int64_t all = done + pending + failed;
    std::ostringstream line;
    if (json_output) {
      line << s.dump();
    } else {
      line << s.value("state", "?") << "  " << done << "/" << all << " jobs";
      if (failed > 0)
        line << ", " << failed << " failed";
      line << ", " << human_bytes(static_cast<double>(bytes)) << " of "
           << human_bytes(static_cast<double>(total));
      if (rate > 0)
        line << ", " << human_bytes(rate) << "/s";
      if (s.contains("last_error") && failed > 0)
        line << "  (" << s["last_error"].get<std::string>() << ")";
    }
    if (tty) {
      const int width = 30;
      int filled = all > 0 ? static_cast<int>(width * done / all) : width;
      std::cout << "\r[" << std::string(static_cast<size_t>(filled), '#')
                << std::string(static_cast<size_t>(width - filled), '.') << "] " << line.str()
                << "\x1b[K" << std::flush;
    } else if (line.str() != last_line) {
      std::cout << line.str() << std::endl;
    }
    last_line = line.str();
    if (pending == 0) {
      if (tty)
        std::cout << '\n';
      return failed > 0 ? exit_error : exit_ok;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{tty ? 200 : 1000});
  }
}

const std::vector<column> company_cols{{"ID", "id"}, {"NAME", "name"}, {"AUTO-APPROVE", "auto_approve"}};
const std::vector<column> project_cols{{"ID", "id"},         {"COMPANY", "company"},
                                       {"NAME", "name"},     {"ACTIVE", "active"},
                                       {"ROLE", "role"},     {"DISCONNECTED", "permanently_disconnected"},
                                       {"REVISIONS", "revisions"}};
const std::vector<column> user_cols{{"ID", "id"},
                                    {"EMAIL", "email"},
                                    {"NAME", "name"},
                                    {"COMPANY", "company"},
                                    {"COMPANY-ADMIN", "company_admin"}};
// Reading order: identity, state, the two projects, who and when, the rest.
const std::vector<column> connection_cols{
  {"ID", "id"},          {"STATE", "state"},               {"UPSTREAM", "upstream"},
  {"DOWNSTREAM", "downstream"}, {"REQUESTED-BY", "requested_by"}, {"REQUESTED", "requested_at"},
  {"DECIDED-BY", "decided_by"}, {"ENDED-BY", "ended_by"},  {"UNDO-UNTIL", "undo_until"}};
const std::vector<column> event_cols{{"SEQ", "seq"},   {"AT", "at"},
                                     {"KIND", "kind"}, {"PROJECT", "project"},
                                     {"CONNECTION", "connection"}, {"USER", "user"},
                                     {"REASON", "reason"}};
const std::vector<column> notification_cols{
  {"ID", "id"},          {"EVENT", "event"},   {"STATE", "state"},     {"CONNECTION", "connection"},
  {"TO", "recipients"},  {"AT", "at"},       {"ATTEMPTS", "attempts"}, {"LAST-ERROR", "last_error"}};
const std::vector<column> revision_cols{
  {"ID", "id"},       {"NUMBER", "number"},       {"TITLE", "title"},
  {"REV", "revision"}, {"STATUS", "status"},       {"SET", "set"},
  {"PUBLISHED", "published"}, {"OBSOLETE", "obsolete"}, {"CONNECTED", "connected"},
  {"SIZE", "size"}};
const std::vector<column> access_cols{{"PROJECT", "project"}, {"USER", "user"}, {"CM", "cm"},
                                      {"DRAWINGS", "drawings"}};

std::function<void(const json&)> table(const char* key, const std::vector<column>& cols) {
  return [key, &cols](const json& p) { print_table(std::cout, p.at(key), cols); };
}

std::function<void(const json&)> object(const char* key) {
  return [key](const json& p) { print_object(std::cout, p.at(key)); };
}

std::function<void(const json&)> done(std::string text) {
  return [text](const json&) { std::cout << text << '\n'; };
}

/// Adds `--NAME VALUE` mapped to parameter `param` when given.
template <class T>
CLI::Option* opt(CLI::App* app, action& a, const std::string& flag, const char* param,
         const std::string& help) {
  auto* o = app->add_option_function<T>(flag, [&a, param](const T& v) { a.parameters[param] = v; },
                                        help);
  if constexpr (std::is_same_v<T, std::string>)
    o->type_name("TEXT");
  return o;
}

/// Adds a positional argument stored in parameter `param`.
void pos(CLI::App* app, action& a, const std::string& name, const char* param,
         const std::string& help) {
  app->add_option_function<std::string>(name, [&a, param](const std::string& v) { a.parameters[param] = v; },
                                        help)
    ->required();
}

std::string read_file(const std::string& path) {
  std::stringstream ss;
  if (path == "-") {
    ss << std::cin.rdbuf();
  } else {
    std::ifstream in(path);
    if (!in)
      throw CLI::ValidationError("cannot read " + path);
    ss << in.rdbuf();
  }
  return ss.str();
}

/// `--limit N` (one page of at most N) and `--after TOKEN` (the page after
/// TOKEN) of a paged list (SPEC §6.2); without --limit every page is shown.
void add_paging(CLI::App* s, action& a) {
  opt<int64_t>(s, a, "--limit", "limit", "one page of at most this many (default: every page)");
  opt<std::string>(s, a, "--after", "after", "the page after this token (a reply's next)");
}

void define_commands(CLI::App& app, action& a) {
  auto sub = [&](CLI::App* parent, const std::string& name, const std::string& help,
                 const std::string& method, std::function<void(const json&)> show) {
    auto* s = parent->add_subcommand(name, help);
    s->callback([&a, method, show] {
      a.method = method;
      a.show = show;
    });
    return s;
  };
  const std::string dir = "io.projlink.Directory.";

  // --- daemon
  sub(&app, "status", "show the daemon's status", "io.projlink.Daemon.GetStatus", print_status);
  sub(&app, "metrics", "show the daemon's metrics", "io.projlink.Daemon.GetMetrics",
      [](const json& p) { print_object(std::cout, p.at("metrics")); });
  sub(&app, "reload", "re-read the configuration file (operators); lists changed keys that "
      "only a restart applies", "io.projlink.Daemon.Reload", [](const json& p) {
        std::cout << "configuration reloaded\n";
        const auto& keys = p.value("restart_needed", json::array());
        if (!keys.empty()) {
          std::cout << "restart needed for:";
          for (const auto& k : keys)
            std::cout << ' ' << k.get<std::string>();
          std::cout << " (changed in the file; they keep their running values)\n";
        }
      });
  sub(&app, "info", "show the service's varlink description", "org.varlink.service.GetInfo",
      [](const json& p) { print_object(std::cout, p); });

  // --- companies
  auto* company = app.add_subcommand("company", "companies (operators)")->require_subcommand(1);
  auto* s = sub(company, "add", "create a company", dir + "CreateCompany", object("company"));
  pos(s, a, "id", "id", "company id ([a-z0-9][a-z0-9._-]*)");
  opt<std::string>(s, a, "--name", "name", "display name")->required();
  opt<bool>(s, a, "--auto-approve", "auto_approve", "approve requests at once (default true)");
  s = sub(company, "set", "change a company", dir + "UpdateCompany", object("company"));
  pos(s, a, "id", "id", "company id");
  opt<std::string>(s, a, "--name", "name", "display name");
  opt<bool>(s, a, "--auto-approve", "auto_approve", "approve requests at once");
  s = sub(company, "list", "list companies", dir + "ListCompanies", table("companies", company_cols));
  add_paging(s, a);

  // --- projects
  auto* project = app.add_subcommand("project", "projects (operators)")->require_subcommand(1);
  s = sub(project, "add", "create a project", dir + "CreateProject", object("project"));
  pos(s, a, "id", "id", "project id");
  opt<std::string>(s, a, "--company", "company", "owning company")->required();
  opt<std::string>(s, a, "--name", "name", "display name")->required();
  opt<bool>(s, a, "--active", "active", "active (default true)");
  s = sub(project, "set", "change a project", dir + "UpdateProject", object("project"));
  pos(s, a, "id", "id", "project id");
  opt<std::string>(s, a, "--name", "name", "display name");
  opt<bool>(s, a, "--active", "active", "active");
  s = sub(project, "show", "show one project", dir + "GetProject", object("project"));
  pos(s, a, "id", "id", "project id");
  s = sub(project, "list", "list projects", dir + "ListProjects", table("projects", project_cols));
  opt<std::string>(s, a, "--company", "company", "only this company's");
  add_paging(s, a);

  // --- users
  auto* user = app.add_subcommand("user", "users (operators)")->require_subcommand(1);
  s = sub(user, "add", "create a user", dir + "CreateUser", object("user"));
  pos(s, a, "id", "id", "user id");
  opt<std::string>(s, a, "--email", "email", "mail address (unique)")->required();
  opt<std::string>(s, a, "--name", "name", "display name")->required();
  opt<std::string>(s, a, "--company", "company", "the user's company")->required();
  opt<bool>(s, a, "--company-admin", "company_admin", "company admin (default false)");
  s = sub(user, "set", "change a user", dir + "UpdateUser", object("user"));
  pos(s, a, "id", "id", "user id");
  opt<std::string>(s, a, "--email", "email", "mail address");
  opt<std::string>(s, a, "--name", "name", "display name");
  opt<bool>(s, a, "--company-admin", "company_admin", "company admin");
  s = sub(user, "list", "list users", dir + "ListUsers", table("users", user_cols));
  opt<std::string>(s, a, "--company", "company", "only this company's");
  add_paging(s, a);

  // --- access
  auto* access = app.add_subcommand("access", "project directories (operators)")->require_subcommand(1);
  s = sub(access, "set", "give a user levels in a project", dir + "SetAccess", object("access"));
  pos(s, a, "project", "project", "project id");
  pos(s, a, "user", "user", "user id or email");
  const std::string levels = "none | read_only | standard | admin";
  opt<std::string>(s, a, "--cm", "cm", "Connection Manager level: " + levels);
  opt<std::string>(s, a, "--drawings", "drawings", "Drawings level: " + levels);
  s = sub(access, "rm", "remove a user from a project's directory", dir + "RemoveAccess",
          done("removed"));
  pos(s, a, "project", "project", "project id");
  pos(s, a, "user", "user", "user id or email");
  s = sub(access, "list", "list a project's directory", dir + "ListAccess",
          table("access", access_cols));
  pos(s, a, "project", "project", "project id");
  add_paging(s, a);

  // --- import
  s = sub(&app, "import", "import a YAML directory (all or nothing)", dir + "Import",
          [](const json& p) {
            std::cout << "imported " << p.value("companies", 0) << " companies, "
                      << p.value("projects", 0) << " projects, " << p.value("users", 0)
                      << " users, " << p.value("access", 0) << " access entries\n";
          });
  s->add_option_function<std::string>(
     "file", [&a](const std::string& f) { a.parameters["document"] = read_file(f); },
     "YAML file with lists companies, projects, users, access (- for stdin)")
    ->required();

  // --- connections (SPEC §2-§4; every call on behalf of --as)
  const std::string con = "io.projlink.Connections.";
  auto csub = [&](CLI::App* parent, const std::string& name, const std::string& help,
                  const std::string& method, std::function<void(const json&)> show,
                  std::function<void()> then = nullptr) {
    auto* c = parent->add_subcommand(name, help);
    c->callback([&a, method, show, then] {
      a.method = method;
      a.show = show;
      a.needs_as = true;
      if (then)
        then();
    });
    return c;
  };
  s = csub(&app, "connect", "request a connection (run by the downstream's cm admin)",
           con + "Request", object("connection"));
  opt<std::string>(s, a, "--downstream", "downstream", "the requesting project")->required();
  opt<std::string>(s, a, "--upstream", "upstream", "the project whose drawings to receive")
    ->required();
  s = csub(&app, "approve", "approve a pending request (upstream cm admin)", con + "Approve",
           object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  s = csub(&app, "reject", "reject a pending request (upstream cm admin)", con + "Reject",
           object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  opt<std::string>(s, a, "--reason", "reason", "why (kept in history)");
  s = csub(&app, "undo", "undo a request or an approval within the undo window", con + "Undo",
           object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  s = csub(&app, "cancel", "cancel a pending request (downstream cm admin)", con + "Cancel",
           object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  s = csub(&app, "disconnect", "disconnect for good (the downstream can never reconnect)",
           con + "Disconnect", object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  opt<std::string>(s, a, "--reason", "reason", "why (required)");
  s->add_flag_function(
    "--accept-terms", [&a](int64_t n) { a.parameters["accept_terms"] = n > 0; },
    "accept that the disconnect is permanent (required)");
  s = csub(&app, "connection", "show one connection", con + "Get", object("connection"));
  pos(s, a, "connection", "connection", "connection id");
  s = csub(&app, "connections", "list a project's connections", con + "List",
           [](const json& p) {
             std::cout << "As downstream (requested by this project):\n";
             print_table(std::cout, p.at("as_downstream"), connection_cols);
             std::cout << "\nAs upstream (received by this project):\n";
             print_table(std::cout, p.at("as_upstream"), connection_cols);
           });
  pos(s, a, "project", "project", "project id");
  s->add_flag("--tree", a.tree,
              "as a tree: the project's upstream, then its downstreams with their states and "
              "sync progress");
  s = csub(&app, "history", "show a project's connection history", con + "History",
           table("events", event_cols));
  pos(s, a, "project", "project", "project id");
  opt<int64_t>(s, a, "--after", "after", "only events after this seq");
  opt<int64_t>(s, a, "--limit", "limit", "one page of at most this many (default: every page)");
  s = csub(&app, "settings",
           "show a project's notification distribution list; with --mode, set it",
           con + "GetSettings", object("settings"), [&a] {
             if (a.parameters.contains("users") && !a.parameters.contains("mode"))
               throw CLI::ValidationError("--user", "needs --mode specific_users");
             if (a.parameters.contains("mode"))
               a.method = "io.projlink.Connections.SetDistribution";
           });
  pos(s, a, "project", "project", "project id");
  s->add_option_function<std::string>(
     "--mode",
     [&a](const std::string& m) { a.parameters["mode"] = m; },
     "all_admins | specific_users")
    ->check(CLI::IsMember({"all_admins", "specific_users"}));
  s->add_option_function<std::vector<std::string>>(
     "--user", [&a](const std::vector<std::string>& us) { a.parameters["users"] = us; },
     "a recipient (with --mode specific_users; repeat)")
    ->type_name("USER");
  s = csub(&app, "approval-mode", "set whether a company auto-approves requests (company admin)",
           con + "SetApprovalMode", [](const json& p) {
             std::cout << "auto_approve: " << (p.value("auto_approve", false) ? "on" : "off")
                       << '\n';
           });
  pos(s, a, "company", "company", "company id");
  s->add_option_function<std::string>(
     "mode", [&a](const std::string& v) { a.parameters["auto_approve"] = v == "on"; },
     "on (approve at once) | off (wait for an upstream cm admin)")
    ->required()
    ->check(CLI::IsMember({"on", "off"}));
  s = csub(&app, "notifications", "list a project's notifications and their delivery",
           con + "Notifications", table("notifications", notification_cols));
  pos(s, a, "project", "project", "project id");
  opt<int64_t>(s, a, "--limit", "limit", "one page of at most this many, newest first (default: all)");
  s = csub(&app, "watch", "print connection events as they happen (Ctrl-C to stop)",
           con + "Watch", [](const json& p) {
             const auto& e = p.at("event");
             std::cout << e.value("at", "") << "  " << e.value("kind", "") << "  "
                       << e.value("project", "");
             for (const char* k : {"connection", "user", "reason"})
               if (e.contains(k))
                 std::cout << "  " << k << "=" << e[k].get<std::string>();
             std::cout << std::endl;
           },
           [&a] { a.streaming = true; });
  s->add_option_function<std::string>(
    "project", [&a](const std::string& v) { a.parameters["project"] = v; },
    "only this project (default: every project you may view)");

  // --- drawings (SPEC §5)
  const std::string drw = "io.projlink.Drawings.";
  auto* drawing = app.add_subcommand("drawing", "drawings and their revisions")->require_subcommand(1);
  auto add_fields = [&](CLI::App* c, bool with_title) {
    if (with_title)
      opt<std::string>(c, a, "--title", "title", "drawing title");
    opt<std::string>(c, a, "--status", "status", "revision status text");
    opt<std::string>(c, a, "--drawing-date", "drawing_date", "drawing date (YYYY-MM-DD)");
    opt<std::string>(c, a, "--received-date", "received_date", "received date (YYYY-MM-DD)");
    opt<std::string>(c, a, "--discipline", "discipline", "discipline name");
    opt<int64_t>(c, a, "--discipline-position", "discipline_position", "discipline order");
    opt<std::string>(c, a, "--area", "area", "area name");
    opt<std::string>(c, a, "--area-description", "area_description", "area description");
    opt<std::string>(c, a, "--set", "set", "drawing set name");
    opt<std::string>(c, a, "--set-date", "set_date", "drawing set date (YYYY-MM-DD)");
  };
  s = csub(drawing, "upload", "upload a revision (unpublished); the file is passed as a descriptor",
           drw + "Upload", object("revision"));
  pos(s, a, "project", "project", "project id");
  s->add_option_function<std::string>(
    "file",
    [&a](const std::string& f) {
      int fd = ::open(f.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0)
        throw CLI::ValidationError("file", "cannot read " + f);
      a.fds.push_back(fd);
      a.parameters["file_fd"] = 0;
    },
    "the file to upload (read by projlinkctl, so any file you can read)");
  opt<std::string>(s, a, "--path,--server-path", "path",
                   "instead of FILE: a file inside the daemon's storage.import_dirs "
                   "(--server-path is an alias)");
  opt<std::string>(s, a, "--number", "number", "drawing number, e.g. A-101")->required();
  opt<std::string>(s, a, "--title", "title", "drawing title")->required();
  opt<std::string>(s, a, "--revision", "revision", "revision label, e.g. B")->required();
  add_fields(s, false);
  s = csub(drawing, "publish", "publish revisions (drawings admin)", drw + "Publish",
           table("revisions", revision_cols));
  pos(s, a, "project", "project", "project id");
  s->add_option_function<std::vector<std::string>>(
     "revisions", [&a](const std::vector<std::string>& v) { a.parameters["revisions"] = v; },
     "revision ids")
    ->required();
  s = csub(drawing, "update", "change a revision's metadata", drw + "Update", object("revision"));
  pos(s, a, "revision", "revision", "revision id");
  add_fields(s, true);
  s = csub(drawing, "obsolete", "mark a revision obsolete or current", drw + "SetObsolete",
           object("revision"));
  pos(s, a, "revision", "revision", "revision id");
  s->add_option_function<std::string>(
     "state", [&a](const std::string& v) { a.parameters["obsolete"] = v == "on"; },
     "on | off")
    ->required()
    ->check(CLI::IsMember({"on", "off"}));
  s = csub(drawing, "delete", "delete a revision (drawings admin)", drw + "Delete",
           done("deleted"));
  pos(s, a, "revision", "revision", "revision id");
  s = csub(drawing, "show", "show one revision", drw + "Get", object("revision"));
  pos(s, a, "revision", "revision", "revision id");
  s = csub(drawing, "list", "list a project's revisions", drw + "List",
           table("revisions", revision_cols));
  pos(s, a, "project", "project", "project id");
  add_paging(s, a);
  s->add_flag_function(
    "--include-unpublished,--all", [&a](int64_t n) { a.parameters["include_unpublished"] = n > 0; },
    "include unpublished revisions (drawings admin); --all is an alias");
  s = csub(drawing, "deleted", "the deleted-revisions report", drw + "DeletedRevisions",
           table("revisions", revision_cols));
  pos(s, a, "project", "project", "project id");
  add_paging(s, a);
  s = csub(drawing, "export", "write a revision's file to FILE", drw + "Export",
           [](const json& p) {
             std::cout << "exported " << p.value("size", 0) << " bytes, sha256 "
                       << p.value("sha256", "") << '\n';
           });
  pos(s, a, "revision", "revision", "revision id");
  s->add_option_function<std::string>(
     "file",
     [&a](const std::string& f) {
       int fd = ::open(f.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
       if (fd < 0)
         throw CLI::ValidationError("file", "cannot write " + f);
       a.fds.push_back(fd);
       a.parameters["file_fd"] = 0;
       a.output_file = f;
     },
     "where to write the file")
    ->required();

  // --- sync
  auto* syncc = app.add_subcommand("sync", "drawing sync of a connection")->require_subcommand(1);
  s = csub(syncc, "status", "counts, bytes and last error of a connection's sync",
           con + "SyncStatus", object("status"));
  pos(s, a, "connection", "connection", "connection id");
  s->add_flag("--watch", a.watch_sync, "follow until nothing is pending (progress bar on a terminal)");
  s = csub(syncc, "retry", "retry the copies that failed", con + "RetrySync", object("status"));
  pos(s, a, "connection", "connection", "connection id");

  // --- raw
  s = sub(&app, "call", "call any method with JSON parameters", "", nullptr);
  s->add_option_function<std::string>("method", [&a](const std::string& m) { a.method = m; },
                                      "fully qualified method name")
    ->required();
  s->add_option_function<std::string>(
    "parameters",
    [&a](const std::string& text) {
      auto j = json::parse(text, nullptr, false);
      if (j.is_discarded() || !j.is_object())
        throw CLI::ValidationError("parameters", "not a JSON object");
      a.parameters = j;
    },
    "JSON object (default {})");
  s->callback([&a] { a.show = nullptr; });
}

} // namespace

int main(int argc, char** argv) {
  globals g;
  if (const char* env = std::getenv("PROJLINK_SOCKET"))
    g.socket = env;
  if (const char* env = std::getenv("PROJLINK_AS"))
    g.as = env;
  CLI::App app{"projlinkctl: control projlinkd (projects, connections, drawings)"};
  app.set_version_flag("-V,--version", std::string("projlinkctl ") + PROJLINK_VERSION);
  app.add_option("--socket", g.socket, "daemon socket (env PROJLINK_SOCKET)");
  app.add_option("--as", g.as, "act on behalf of this user id or email (env PROJLINK_AS)");
  app.add_flag("--json", g.json_output, "print the daemon's JSON reply");
  app.footer("Environment: PROJLINK_SOCKET, PROJLINK_AS; NO_COLOR (not empty) turns colour "
             "off, which is only used on a terminal anyway. Exit status: 0 success, 1 the "
             "daemon answered with an error, 2 usage error, 3 the daemon cannot be reached.");
  app.require_subcommand(1);
  app.fallthrough(); // global options may follow the subcommand
  action a;
  define_commands(app, a);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? exit_ok : exit_usage;
  }
  // Without --as the daemon decides (SPEC §6.3): a uid mapped in
  // control.identities acts as its user; anyone else is told to give it.
  if (a.needs_as && !g.as.empty())
    a.parameters["as"] = g.as;
  try {
    client c{g.socket};
    if (a.watch_sync)
      return watch_sync(c, a, g.json_output);
    if (a.streaming) {
      reply last;
      c.stream(a.method, a.parameters, [&](const reply& r) {
        last = r;
        if (!r.error.empty())
          return false;
        if (g.json_output)
          std::cout << r.parameters.dump() << std::endl;
        else
          a.show(r.parameters);
        return true;
      });
      if (!last.error.empty()) {
        std::cerr << "error: " << last.error.substr(last.error.rfind('.') + 1) << ": "
                  << explain(last) << '\n';
        return exit_error;
      }
      return exit_ok;
    }
    auto r = c.call(a.method, a.parameters, a.fds);
    // A paged list is followed to its end unless --limit was given (SPEC
    // §7): each page's arrays are appended to the first page's.
    bool follow = !a.parameters.contains("limit");
    for (int pages = 0; follow && r.error.empty() && r.parameters.contains("next")
                        && !r.parameters["next"].is_null() && pages < 1'000'000;
         ++pages) {
      auto params = a.parameters;
      params["after"] = r.parameters["next"];
      auto more = c.call(a.method, params);
      if (!more.error.empty()) {
        r = std::move(more);
        break;
      }
      for (auto& [key, value] : more.parameters.items())
        if (value.is_array() && r.parameters.contains(key) && r.parameters[key].is_array())
          for (auto& item : value)
            r.parameters[key].push_back(std::move(item));
      if (more.parameters.contains("next"))
        r.parameters["next"] = more.parameters["next"];
      else
        r.parameters.erase("next");
    }
    if (!r.error.empty()) {
      if (g.json_output)
        std::cout << json{{"error", r.error}, {"parameters", r.parameters}}.dump(2) << '\n';
      std::cerr << "error: " << r.error.substr(r.error.rfind('.') + 1) << ": " << explain(r)
                << '\n';
      if (!a.output_file.empty())
        ::unlink(a.output_file.c_str());
      return exit_error;
    }
    if (a.tree && !g.json_output)
      return print_tree(c, a, r.parameters);
    if (g.json_output || !a.show)
      std::cout << r.parameters.dump(2) << '\n';
    else
      a.show(r.parameters);
    if (!follow && !g.json_output && r.parameters.contains("next") && !r.parameters["next"].is_null())
      std::cerr << "more: --after " << r.parameters["next"].dump() << '\n';
    return exit_ok;
  } catch (const unreachable& e) {
    std::cerr << "projlinkctl: " << e.what() << '\n';
    return exit_unreachable;
  }
}
