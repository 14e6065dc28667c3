// How a notification leaves the daemon: RFC 5322 rendering, Maildir, SMTP
// (libcurl) and log delivery. Everything here blocks; only the notifier's
// thread calls it.

#include "actors/mail_text.hpp"
#include "actors/notifier.hpp"
#include "daemon/logging.hpp"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ctime>
#include <fstream>
#include <sstream>

namespace projlink {

namespace {

std::string rfc5322_date(const std::string& rfc3339) {
  auto t = parse_time(rfc3339).value_or(std::chrono::system_clock::now());
  auto secs = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S +0000", &tm);
  return buf;
}

std::string hostname() {
  char buf[256] = {};
  if (::gethostname(buf, sizeof(buf) - 1) != 0)
    return "localhost";
  std::string h = buf;
  for (auto& c : h)
    if (c == '/' || c == ':')
      c = '-';
  return h;
}

int fsync_path(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0)
    return -1;
  int r = ::fsync(fd);
  ::close(fd);
  return r;
}

/// Maildir: write to tmp/, fsync, rename into new/, fsync new/. The name
/// is fixed by the outbox id, so a re-delivery replaces the same message.
delivery_result to_maildir(const notifier_settings& s, const outbox_item& x,
                           const std::string& text) {
  delivery_result r{x.id, false, false, {}};
  auto secs = std::chrono::system_clock::to_time_t(
    parse_time(x.at).value_or(std::chrono::system_clock::now()));
  auto name = std::to_string(secs) + ".Q" + std::to_string(x.id) + ".projlink." + hostname();
  auto tmp = s.maildir + "/tmp/" + name;
  auto dst = s.maildir + "/new/" + name;
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    r.error = "maildir: cannot create " + tmp + ": " + std::strerror(errno);
    return r;
  }
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      r.error = "maildir: cannot write " + tmp + ": " + std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      return r;
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    r.error = "maildir: cannot sync " + tmp + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return r;
  }
  if (::rename(tmp.c_str(), dst.c_str()) != 0) {
    r.error = "maildir: cannot move into " + dst + ": " + std::strerror(errno);
    ::unlink(tmp.c_str());
    return r;
  }
  fsync_path(s.maildir + "/new", O_RDONLY | O_DIRECTORY);
  r.delivered = true;
  return r;
}

struct upload {
  const std::string* text;
  size_t pos = 0;
};

size_t read_cb(char* out, size_t size, size_t n, void* user) {
  auto* u = static_cast<upload*>(user);
  size_t left = u->text->size() - u->pos;
  size_t len = std::min(left, size * n);
  std::memcpy(out, u->text->data() + u->pos, len);
  u->pos += len;
  return len;
}

std::string read_password(const std::string& path) {
  if (path.empty())
    return {};
  std::ifstream in(path);
  std::string pw;
  std::getline(in, pw);
  while (!pw.empty() && (pw.back() == '\r' || pw.back() == '\n'))
    pw.pop_back();
  return pw;
}

/// SMTP through one curl handle for the whole batch: libcurl keeps the
/// connection open between messages to the same server.
std::vector<delivery_result> over_smtp(const notifier_settings& s,
                                       const std::vector<outbox_item>& items) {
  std::vector<delivery_result> out;
  CURL* curl = curl_easy_init();
  if (curl == nullptr) {
    for (const auto& x : items)
      out.push_back({x.id, false, false, "smtp: curl_easy_init failed"});
    return out;
  }
  auto password = read_password(s.smtp_password_file);
  for (const auto& x : items) {
    auto text = render_message(x, s.from);
    upload u{&text};
    char err[CURL_ERROR_SIZE] = {};
    // Envelope addresses go into SMTP commands: no CR, LF or NUL.
    curl_slist* rcpt =
      curl_slist_append(nullptr, ("<" + mail_text::header_safe(x.recipient) + ">").c_str());
    curl_easy_setopt(curl, CURLOPT_URL, s.smtp_url.c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_FROM, ("<" + mail_text::header_safe(s.from) + ">").c_str());
    curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(curl, CURLOPT_READDATA, &u);
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, err);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    // starttls: require it (smtp:// upgraded, or smtps://); off: plain.
    curl_easy_setopt(curl, CURLOPT_USE_SSL,
                     static_cast<long>(s.smtp_starttls ? CURLUSESSL_ALL : CURLUSESSL_NONE));
    if (!s.smtp_username.empty()) {
      curl_easy_setopt(curl, CURLOPT_USERNAME, s.smtp_username.c_str());
      curl_easy_setopt(curl, CURLOPT_PASSWORD, password.c_str());
    }
    auto rc = curl_easy_perform(curl);
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(rcpt);
    if (rc == CURLE_OK) {
      out.push_back({x.id, true, false, {}});
      continue;
    }
    std::string why = err[0] != '\0' ? err : curl_easy_strerror(rc);
    if (code > 0)
      why += " (server said " + std::to_string(code) + ")";
    // 5xx: the server refused this message or recipient for good.
    out.push_back({x.id, false, code >= 500 && code < 600, "smtp: " + why});
  }
  curl_easy_cleanup(curl);
  return out;
}

} // namespace

std::string render_message(const outbox_item& x, const std::string& from) {
  // Every header value and the body pass through mail_text: no control
  // character reaches a header, no bare CR or NUL the SMTP session, no
  // line passes RFC 5322's 998 octets.
  using mail_text::header_safe;
  std::ostringstream m;
  m << "Date: " << rfc5322_date(x.at) << "\r\n"
    << "From: projlink <" << header_safe(from) << ">\r\n"
    << "To: <" << header_safe(x.recipient) << ">\r\n"
    << "Subject: " << mail_text::encode_subject(x.subject) << "\r\n"
    << "Message-ID: <projlink." << x.id << "."
    << parse_time(x.at).value_or(std::chrono::system_clock::now()).time_since_epoch().count()
    << "@" << header_safe(hostname()) << ">\r\n"
    << "MIME-Version: 1.0\r\n"
    << "Content-Type: text/plain; charset=utf-8\r\n"
    << "Content-Transfer-Encoding: 8bit\r\n"
    << "Auto-Submitted: auto-generated\r\n"
    << "X-Projlink-Event: " << header_safe(x.event) << "\r\n"
    << "X-Projlink-Project: " << header_safe(x.project) << "\r\n";
  if (x.connection)
    m << "X-Projlink-Connection: " << header_safe(*x.connection) << "\r\n";
  m << "X-Projlink-Notification: " << x.id << "\r\n"
    << "\r\n"
    << mail_text::body_lines(x.body);
  return m.str();
}

std::vector<delivery_result> deliver(const notifier_settings& s,
                                     const std::vector<outbox_item>& items) {
  if (s.delivery == delivery_kind::smtp)
    return over_smtp(s, items);
  std::vector<delivery_result> out;
  if (s.delivery == delivery_kind::maildir) {
    // A reload may point notifications.maildir somewhere new.
    std::error_code ec;
    for (const char* sub : {"tmp", "new", "cur"})
      std::filesystem::create_directories(s.maildir + "/" + sub, ec);
  }
  for (const auto& x : items) {
    if (s.delivery == delivery_kind::log) {
      log_about(spdlog::level::info, {x.project, x.connection.value_or("")},
                fmt::format("notification {} ({}) to {}: {}", x.id, x.event, x.recipient,
                            x.subject));
      out.push_back({x.id, true, false, {}});
    } else {
      out.push_back(to_maildir(s, x, render_message(x, s.from)));
    }
  }
  return out;
}

} // namespace projlink
