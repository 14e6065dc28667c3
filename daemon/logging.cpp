#include "daemon/logging.hpp"

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <systemd/sd-journal.h>

#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace projlink {

namespace {

/// `%*`: the message as a JSON string body (escaped, without quotes).
class json_message_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    static const char* hex = "0123456789abcdef";
    for (char ch : std::string_view(msg.payload.data(), msg.payload.size())) {
      auto c = static_cast<unsigned char>(ch);
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        case '\r': dest.append(std::string_view("\\r")); break;
        default:
          if (c < 0x20) {
            char esc[] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            dest.append(esc, esc + 6);
          } else {
            dest.push_back(ch);
          }
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<json_message_flag>();
  }
};

/// syslog priority of a level (sd-daemon(3) prefixes).
int priority_of(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical: return 2;
    case spdlog::level::err: return 3;
    case spdlog::level::warn: return 4;
    case spdlog::level::info: return 6;
    default: return 7;
  }
}

/// `%&`: `<N>`, the line's syslog priority, for journald.
class priority_flag : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    char buf[8];
    int n = std::snprintf(buf, sizeof(buf), "<%d>", priority_of(msg.level));
    dest.append(buf, buf + n);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<priority_flag>();
  }
};

bool journal_socket_exists() {
  return ::access("/run/systemd/journal/socket", W_OK) == 0;
}

} // namespace

bool stderr_is_journal() {
  static const bool yes = [] {
    const char* env = std::getenv("JOURNAL_STREAM");
    if (env == nullptr)
      return false;
    unsigned long long dev = 0, ino = 0;
    if (std::sscanf(env, "%llu:%llu", &dev, &ino) != 2)
      return false;
    struct stat st {};
    if (::fstat(STDERR_FILENO, &st) != 0)
      return false;
    return static_cast<unsigned long long>(st.st_dev) == dev
           && static_cast<unsigned long long>(st.st_ino) == ino;
  }();
  return yes;
}

void log_about(spdlog::level::level_enum level, const log_fields& about,
               const std::string& message) {
  auto logger = spdlog::default_logger();
  if (!logger->should_log(level))
    return;
  if (stderr_is_journal() && journal_socket_exists()) {
    std::vector<std::string> fields{"MESSAGE=" + message,
                                    "PRIORITY=" + std::to_string(priority_of(level)),
                                    "SYSLOG_IDENTIFIER=projlinkd"};
    if (!about.project.empty())
      fields.push_back("PROJLINK_PROJECT=" + about.project);
    if (!about.connection.empty())
      fields.push_back("PROJLINK_CONNECTION=" + about.connection);
    std::vector<iovec> iov;
    for (auto& f : fields)
      iov.push_back({f.data(), f.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) >= 0)
      return;
  }
  std::string line = message;
  if (!about.project.empty())
    line += " project=" + about.project;
  if (!about.connection.empty())
    line += " connection=" + about.connection;
  logger->log(level, "{}", line);
}

void setup_logging(const config& cfg) {
  static auto logger = [] {
    auto l = std::make_shared<spdlog::logger>(
      "projlinkd", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    spdlog::set_default_logger(l);
    return l;
  }();
  logger->set_level(spdlog::level::from_str(cfg.logging.level));
  logger->flush_on(spdlog::level::trace);
  // Under journald: the priority first, no time (the journal keeps one).
  bool journal = stderr_is_journal();
  auto f = std::make_unique<spdlog::pattern_formatter>(cfg.logging.format == log_format::json
                                                         ? spdlog::pattern_time_type::utc
                                                         : spdlog::pattern_time_type::local);
  f->add_flag<json_message_flag>('*');
  f->add_flag<priority_flag>('&');
  if (cfg.logging.format == log_format::json)
    f->set_pattern(journal ? R"(%&{"level":"%l","msg":"%*"})"
                           : R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%*"})");
  else
    f->set_pattern(journal ? "%&%-5l %v" : "%Y-%m-%d %H:%M:%S.%e %-5l %v");
  logger->set_formatter(std::move(f));
}

} // namespace projlink
