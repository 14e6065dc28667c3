// Unit tests: the outbox's retry bookkeeping and the message format.

#include "actors/mail_text.hpp"
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

TEST_CASE("mail text: reasons by SPEC §6.2, nothing that smuggles SMTP, no line past 998") {
  using namespace projlink::mail_text;
  CHECK(check_reason("  too late \n") == std::optional<std::string>{"too late"});
  CHECK(check_reason("two\nlines") == std::optional<std::string>{"two\nlines"});
  CHECK_FALSE(check_reason(""));
  CHECK_FALSE(check_reason("   \n "));
  CHECK_FALSE(check_reason("bare\rcr"));
  CHECK_FALSE(check_reason("smuggle\r.\r\nMAIL FROM:<x@y>"));
  CHECK_FALSE(check_reason(std::string("nul\0byte", 8)));
  CHECK_FALSE(check_reason("bad utf8 \xff"));
  CHECK_FALSE(check_reason("c1 \xc2\x85 control"));
  CHECK(check_reason(std::string(1000, 'a')));
  CHECK_FALSE(check_reason(std::string(1001, 'a')));
  std::string thousand_euros;
  for (int i = 0; i < 1000; ++i)
    thousand_euros += "\xe2\x82\xac"; // 1,000 code points, 3,000 bytes
  CHECK(check_reason(thousand_euros));

  CHECK(header_safe(std::string("a\r\nBcc: x@y\0z", 14)) == "aBcc: x@yz");

  // A short ASCII subject stays plain; a long one is encoded words on
  // folded lines, none longer than 78 characters.
  CHECK(encode_subject("Connection approved") == "Connection approved");
  auto long_subject = encode_subject(std::string(1101, 'x') + "\r\n.\r\n");
  size_t start = 0;
  while (start < long_subject.size()) {
    auto end = long_subject.find("\r\n", start);
    auto line = long_subject.substr(start, end == std::string::npos ? std::string::npos : end - start);
    CHECK(line.size() + 9 <= 78);
    CHECK(line.find('\r') == std::string::npos);
    if (end == std::string::npos)
      break;
    CHECK(long_subject[end + 2] == ' '); // folded
    start = end + 2;
  }

  // Body: CRLF only, no NUL or bare CR, no line over 998 octets.
  auto body = body_lines(std::string("a\r.\r\nb\0c\n", 9) + std::string(1641, 'y') + "\nend");
  CHECK(body.find('\0') == std::string::npos);
  for (size_t i = 0; i < body.size(); ++i) {
    if (body[i] == '\r')
      CHECK((i + 1 < body.size() && body[i + 1] == '\n'));
    if (body[i] == '\n')
      CHECK((i > 0 && body[i - 1] == '\r'));
  }
  size_t longest = 0, pos = 0;
  while (pos < body.size()) {
    auto end = body.find("\r\n", pos);
    longest = std::max(longest, end - pos);
    pos = end + 2;
  }
  CHECK(longest <= 998);
  CHECK(body.rfind("end\r\n") == body.size() - 5);
}
