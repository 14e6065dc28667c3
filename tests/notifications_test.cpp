// Unit tests: the outbox's retry bookkeeping and the message format.

#include "actors/notifications_db.hpp"
#include "actors/notifier.hpp"
#include "actors/schema.hpp"

#include <SQLiteCpp/Database.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <unistd.h>

using namespace projlink;
namespace fs = std::filesystem;

namespace {

struct outbox_db {
  std::string path = (fs::temp_directory_path()
                      / ("projlink-outbox-" + std::to_string(::getpid()) + ".db"))
                       .string();
  std::shared_ptr<SQLite::Database> db;
  outbox_db() {
    fs::remove(path);
    db = open_database(path, false);
    db->exec("INSERT INTO outbox (at, event, project, recipients, subject, body) VALUES "
             "('2026-01-01T00:00:00.000Z', 'connection_created', 'p', '[\"a@x\"]', 's', 'b'), "
             "('2026-01-01T00:00:00.000Z', 'connection_created', 'p', '[\"b@x\"]', 's', 'b')");
  }
  ~outbox_db() {
    db.reset();
    for (const char* ext : {"", "-wal", "-shm"})
      fs::remove(path + ext);
  }
  std::string col(const std::string& q) {
    auto v = db->execAndGet(q);
    return v.isNull() ? "NULL" : v.getString();
  }
};

using std::chrono::milliseconds;

} // namespace

TEST_CASE("outbox: failures back off exponentially up to max, then fail after the attempts") {
  outbox_db o;
  auto fail = std::vector<delivery_result>{{1, false, false, "down"}};
  for (int i = 1; i <= 3; ++i) {
    auto before = std::chrono::system_clock::now();
    auto next = notifications::record(*o.db, fail, milliseconds{1000}, milliseconds{3000}, 4);
    REQUIRE(next);
    auto at = parse_time(o.col("SELECT next_attempt_at FROM outbox WHERE id = 1"));
    REQUIRE(at);
    // 1 s, 2 s, then capped at 3 s.
    auto expected = milliseconds{i == 1 ? 1000 : i == 2 ? 2000 : 3000};
    auto delay = std::chrono::duration_cast<milliseconds>(*at - before);
    CHECK(delay >= expected - milliseconds{50});
    CHECK(delay <= expected + milliseconds{1000});
    CHECK(o.col("SELECT state FROM outbox WHERE id = 1") == "pending");
    CHECK(o.col("SELECT attempts FROM outbox WHERE id = 1") == std::to_string(i));
  }
  notifications::record(*o.db, fail, milliseconds{1000}, milliseconds{3000}, 4);
  CHECK(o.col("SELECT state FROM outbox WHERE id = 1") == "failed");
  CHECK(o.col("SELECT last_error FROM outbox WHERE id = 1") == "down");
}

TEST_CASE("outbox: a permanent refusal fails at once, a delivery records its time") {
  outbox_db o;
  auto next = notifications::record(
    *o.db, {{1, false, true, "550 no such user"}, {2, true, false, ""}}, milliseconds{1000},
    milliseconds{3000}, 20);
  REQUIRE(next);
  CHECK(next->empty()); // nothing left pending
  CHECK(o.col("SELECT state || attempts FROM outbox WHERE id = 1") == "failed1");
  CHECK(o.col("SELECT state || attempts FROM outbox WHERE id = 2") == "delivered1");
  CHECK(o.col("SELECT delivered_at IS NOT NULL FROM outbox WHERE id = 2") == "1");
  auto due = notifications::due(*o.db, "2100-01-01T00:00:00.000Z", 10);
  REQUIRE(due);
  CHECK(due->empty());
}

TEST_CASE("message: RFC 5322 with CRLF, encoded non-ASCII subject and the X-Projlink headers") {
  outbox_item x;
  x.id = 7;
  x.at = "2026-11-23T10:00:00.000Z";
  x.event = "connection_created";
  x.project = "d1";
  x.connection = "c-1";
  x.recipient = "dan@sub.test";
  x.subject = "[projlink] Connection active: Straße";
  x.body = "line one\nline two\n";
  auto text = render_message(x, "projlink@gc.test");
  CHECK(text.find("Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n") != std::string::npos);
  CHECK(text.find("To: <dan@sub.test>\r\n") != std::string::npos);
  CHECK(text.find("Subject: =?UTF-8?B?") != std::string::npos);
  CHECK(text.find("X-Projlink-Event: connection_created\r\n") != std::string::npos);
  CHECK(text.find("X-Projlink-Project: d1\r\n") != std::string::npos);
  CHECK(text.find("X-Projlink-Connection: c-1\r\n") != std::string::npos);
  CHECK(text.find("\r\n\r\nline one\r\nline two\r\n") != std::string::npos);
  // No bare LF anywhere.
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\n')
      REQUIRE((i > 0 && text[i - 1] == '\r'));
}
