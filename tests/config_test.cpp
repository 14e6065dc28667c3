#include "config/config.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

using namespace projlink;
using namespace std::chrono_literals;

namespace {

config_result parse(const std::string& text) {
  return parse_config(text);
}

/// The single error of a file that must have exactly one.
config_error only_error(const std::string& text) {
  auto r = parse(text);
  REQUIRE_FALSE(r.cfg);
  REQUIRE(r.errors.size() == 1);
  return r.errors.front();
}

} // namespace

TEST_CASE("an empty file gives every default of SPEC §8") {
  auto r = parse("");
  REQUIRE(r.cfg);
  const auto& c = *r.cfg;
  CHECK(c.control.socket == "/run/projlink/projlink.sock");
  CHECK(c.control.socket_mode == 0660);
  CHECK(c.control.operators.uids == std::vector<uid_t>{0});
  CHECK(c.control.max_clients == 256);
  CHECK(c.control.max_message_bytes == 1024 * 1024);
  CHECK(c.control.idle_timeout == 5min);
  CHECK(c.storage.state_dir == "/var/lib/projlink");
  CHECK(c.storage.database == "projlink.db");
  CHECK(c.storage.blobs == "blobs");
  CHECK(c.storage.import_dirs.empty());
  CHECK(c.connections.undo_window == 5min);
  CHECK(c.connections.request_ttl == std::chrono::hours{24 * 30});
  CHECK(c.connections.max_drawing_revisions == 100000);
  CHECK(c.sync.workers == 4);
  CHECK(c.sync.retry.initial == 1s);
  CHECK(c.sync.retry.max == 5min);
  CHECK(c.sync.retry.attempts == 10);
  CHECK(c.notifications.delivery == delivery_kind::maildir);
  CHECK(c.notifications.from == "projlink@localhost");
  CHECK(c.notifications.maildir == "outbox");
  CHECK(c.notifications.smtp.url == "smtp://127.0.0.1:25");
  CHECK(c.notifications.smtp.starttls);
  CHECK(c.notifications.retry.initial == 5s);
  CHECK(c.notifications.retry.max == 1h);
  CHECK(c.notifications.retry.attempts == 20);
  CHECK(c.actors.scheduler_threads == 0);
  CHECK(c.actors.passivate_after == 10min);
  CHECK(c.logging.level == "info");
  CHECK(c.logging.format == log_format::text);
  CHECK(c.metrics.listen.empty());
}

TEST_CASE("the shipped example configuration is valid and sets every key") {
  std::ifstream in(PROJLINK_SOURCE_DIR "/config/projlink.yaml");
  REQUIRE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = parse(ss.str());
  for (const auto& e : r.errors)
    FAIL_CHECK(e.to_string());
  REQUIRE(r.cfg);
  // Every documented key appears in the example (uncommented).
  for (const char* key : {"socket:", "socket_mode:", "operators:", "clients:", "max_clients:",
                          "max_message_bytes:", "idle_timeout:", "state_dir:", "database:",
                          "blobs:", "import_dirs:", "undo_window:", "request_ttl:",
                          "max_drawing_revisions:", "workers:", "retry:", "delivery:", "from:",
                          "maildir:", "smtp:", "scheduler_threads:", "passivate_after:",
                          "level:", "format:"})
    CHECK(ss.str().find(key) != std::string::npos);
}

TEST_CASE("values override the defaults") {
  auto r = parse(R"(
control:
  socket: /tmp/x.sock
  socket_mode: "0600"
  operators: { uids: [0, 1000], groups: [] }
  max_message_bytes: 64KiB
  idle_timeout: 500ms
connections: { undo_window: 2s, request_ttl: 30d, max_drawing_revisions: 7 }
sync: { workers: 2, retry: { initial: 10ms, max: 1s, attempts: 3 } }
notifications: { delivery: log }
logging: { level: debug, format: json }
)");
  REQUIRE(r.cfg);
  CHECK(r.cfg->control.socket_mode == 0600);
  CHECK(r.cfg->control.operators.uids == std::vector<uid_t>{0, 1000});
  CHECK(r.cfg->control.max_message_bytes == 65536);
  CHECK(r.cfg->control.idle_timeout == 500ms);
  CHECK(r.cfg->connections.undo_window == 2s);
  CHECK(r.cfg->connections.request_ttl == std::chrono::hours{720});
  CHECK(r.cfg->connections.max_drawing_revisions == 7);
  CHECK(r.cfg->sync.retry.attempts == 3);
  CHECK(r.cfg->notifications.delivery == delivery_kind::log);
  CHECK(r.cfg->logging.format == log_format::json);
}

TEST_CASE("an unknown key is an error naming key, line and column") {
  auto e = only_error("control:\n  max_clients: 3\n  max_clinets: 4\n");
  CHECK(e.key == "control.max_clinets");
  CHECK(e.line == 3);
  CHECK(e.column == 3);
  CHECK(e.message.find("unknown key") != std::string::npos);
  CHECK(e.to_string().find("line 3, column 3") != std::string::npos);
}

TEST_CASE("an unknown top-level section is an error") {
  auto e = only_error("contrl: {}\n");
  CHECK(e.key == "contrl");
  CHECK(e.line == 1);
}

TEST_CASE("a wrong type is an error naming the key and line") {
  SECTION("string for a number") {
    auto e = only_error("sync:\n  workers: many\n");
    CHECK(e.key == "sync.workers");
    CHECK(e.line == 2);
    CHECK(e.column == 12);
  }
  SECTION("mapping for a scalar") {
    auto e = only_error("logging:\n  level: {a: b}\n");
    CHECK(e.key == "logging.level");
    CHECK(e.line == 2);
  }
  SECTION("scalar for a list") {
    auto e = only_error("storage:\n  import_dirs: /srv\n");
    CHECK(e.key == "storage.import_dirs");
  }
  SECTION("not a boolean") {
    auto e = only_error("notifications:\n  smtp: { starttls: maybe }\n");
    CHECK(e.key == "notifications.smtp.starttls");
  }
  SECTION("negative number") {
    auto e = only_error("control:\n  max_clients: -1\n");
    CHECK(e.key == "control.max_clients");
  }
}

TEST_CASE("bad durations, sizes and modes are errors") {
  CHECK(only_error("connections:\n  undo_window: 5 minutes\n").key == "connections.undo_window");
  CHECK(only_error("connections:\n  undo_window: 5M\n").line == 2);
  CHECK(only_error("control:\n  max_message_bytes: 1MB\n").key == "control.max_message_bytes");
  CHECK(only_error("control:\n  socket_mode: \"0999\"\n").key == "control.socket_mode");
  CHECK(only_error("notifications:\n  delivery: pigeon\n").key == "notifications.delivery");
  CHECK(only_error("logging:\n  level: loud\n").key == "logging.level");
}

TEST_CASE("values that disagree are caught by validate with their place") {
  auto e = only_error("sync:\n  retry:\n    initial: 10s\n    max: 1s\n");
  CHECK(e.key == "sync.retry.max");
  CHECK(e.line == 4);
  CHECK(only_error("storage:\n  import_dirs: [relative/dir]\n").key == "storage.import_dirs");
  CHECK(only_error("sync:\n  workers: 0\n").key == "sync.workers");
  CHECK(only_error("notifications:\n  from: nobody\n").key == "notifications.from");
}

TEST_CASE("several errors are all reported") {
  auto r = parse("sync:\n  workers: x\nlogging:\n  level: y\n");
  CHECK_FALSE(r.cfg);
  CHECK(r.errors.size() == 2);
}

TEST_CASE("broken YAML is an error with its place") {
  auto e = only_error("control:\n  socket: [unclosed\n");
  CHECK(e.line >= 2);
  CHECK(e.message.find("YAML") != std::string::npos);
}

TEST_CASE("duplicate keys are errors") {
  auto e = only_error("sync:\n  workers: 1\n  workers: 2\n");
  CHECK(e.key == "sync.workers");
  CHECK(e.line == 3);
}

TEST_CASE("relative paths resolve against the state directory") {
  auto r = parse("storage:\n  state_dir: /srv/pl\n  database: db/x.db\n  blobs: /abs/blobs\n");
  REQUIRE(r.cfg);
  CHECK(r.cfg->path(r.cfg->storage.database) == "/srv/pl/db/x.db");
  CHECK(r.cfg->path(r.cfg->storage.blobs) == "/abs/blobs");
}

TEST_CASE("load_config names a missing file") {
  auto r = load_config("/nonexistent/projlink.yaml");
  REQUIRE_FALSE(r.cfg);
  CHECK(r.errors.front().message.find("/nonexistent/projlink.yaml") != std::string::npos);
}

TEST_CASE("durations and sizes parse and print") {
  CHECK(parse_duration("500ms") == 500ms);
  CHECK(parse_duration("30d") == std::chrono::hours{720});
  CHECK_FALSE(parse_duration("5"));
  CHECK_FALSE(parse_duration(""));
  CHECK_FALSE(parse_duration("-5s"));
  CHECK_FALSE(parse_duration("99999999999999999999d"));
  CHECK(parse_size("64KiB") == 65536u);
  CHECK(parse_size("4096") == 4096u);
  CHECK_FALSE(parse_size("1.5MiB"));
  CHECK(format_duration(300s) == "5m");
  CHECK(format_duration(1500ms) == "1500ms");
  CHECK(format_size(1 << 20) == "1MiB");
}

TEST_CASE("the local configuration keeps everything under one directory") {
  auto c = local_config("rel/dir");
  CHECK(c.storage.state_dir.front() == '/');
  CHECK(c.path(c.control.socket) == c.storage.state_dir + "/projlink.sock");
  CHECK(validate(c).empty());
}

TEST_CASE("metrics.listen: a numeric HOST:PORT, or an error that names the key and place") {
  auto ok = parse("metrics:\n  listen: \"127.0.0.1:9464\"\n");
  REQUIRE(ok.cfg);
  CHECK(ok.cfg->metrics.listen == "127.0.0.1:9464");
  REQUIRE(parse_listen_address("[::1]:0"));
  CHECK(parse_listen_address("[::1]:0")->v6);
  CHECK(parse_listen_address("127.0.0.1:9464")->port == 9464);
  for (const char* bad : {"localhost:9464", "127.0.0.1", "127.0.0.1:65536", ":9464",
                          "127.0.0.1:-1", "[::1]", "1.2.3.4:12x"})
    CHECK_FALSE(parse_listen_address(bad));
  auto e = only_error("metrics:\n  listen: \"example.com:9464\"\n");
  CHECK(e.key == "metrics.listen");
  CHECK(e.line == 2);
}

TEST_CASE("durations and sizes have ranges; the bounds of issue 15 are keys of their own") {
  // 200000d passed --check-config once and expired every request at once.
  auto e = only_error("connections:\n  request_ttl: 200000d\n");
  CHECK(e.key == "connections.request_ttl");
  CHECK(e.line == 2);
  CHECK(e.message.find("between") != std::string::npos);
  CHECK(only_error("control:\n  idle_timeout: 200000d\n").key == "control.idle_timeout");
  CHECK(only_error("control:\n  fd_timeout: 0ms\n").key == "control.fd_timeout");
  CHECK(only_error("control:\n  max_unread_reply_bytes: 1MiB\n").key
        == "control.max_unread_reply_bytes");
  CHECK(only_error("control:\n  max_calls_in_flight: 0\n").key == "control.max_calls_in_flight");
  CHECK(only_error("storage:\n  max_upload_bytes: 0\n").key == "storage.max_upload_bytes");
  CHECK(only_error("actors:\n  passivate_after: 0ms\n").key == "actors.passivate_after");
  auto r = parse("control:\n  max_clients_per_uid: 8\n  operator_slots: 0\n"
                 "  max_calls_in_flight: 16\n  max_unread_reply_bytes: 8MiB\n"
                 "  reply_memory: 256MiB\n  fd_timeout: 5s\nstorage:\n  max_upload_bytes: 10MiB\n"
                 "connections:\n  request_ttl: 3650d\n");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.cfg);
  CHECK(r.cfg->control.max_clients_per_uid == 8);
  CHECK(r.cfg->control.operator_slots == 0);
  CHECK(r.cfg->control.max_calls_in_flight == 16);
  CHECK(r.cfg->control.max_unread_reply_bytes == 8u << 20);
  CHECK(r.cfg->control.reply_memory == 256u << 20);
  CHECK(r.cfg->control.fd_timeout == std::chrono::seconds{5});
  CHECK(r.cfg->storage.max_upload_bytes == 10u << 20);
}

TEST_CASE("delegates and identities: precedence conflicts are configuration errors with their place") {
  auto e = only_error("control:\n  clients: { uids: [1001] }\n"
                      "  identities: [{ uid: 1001, user: alice }, { uid: 1001, user: bob }]\n");
  CHECK(e.key == "control.identities[1].uid");
  CHECK(e.line == 3);
  CHECK(only_error("control:\n  operators: { uids: [0, 1001] }\n"
                   "  identities: [{ uid: 1001, user: alice }]\n")
          .key
        == "control.identities[0].uid");
  CHECK(only_error("control:\n  clients: { uids: [] , groups: [] }\n"
                   "  identities: [{ uid: 1001, user: alice }]\n")
          .key
        == "control.identities[0].uid");
  CHECK(only_error("control:\n  clients: { uids: [], groups: [] }\n  delegates: { uids: [1002] }\n")
          .key
        == "control.delegates.uids");
  CHECK(only_error("control:\n  identities: [{ uid: 1001 }]\n").key == "control.identities[0]");
  auto r = parse("control:\n  clients: { uids: [1001, 1002], groups: [] }\n"
                 "  delegates: { uids: [1002] }\n  identities: [{ uid: 1001, user: alice }]\n");
  INFO((r.errors.empty() ? "" : r.errors[0].to_string()));
  REQUIRE(r.cfg);
  CHECK(r.cfg->control.identities.size() == 1);
  CHECK(r.cfg->control.identities[0].user == "alice");
  CHECK(r.cfg->control.delegates.uids == std::vector<uid_t>{1002});
}
