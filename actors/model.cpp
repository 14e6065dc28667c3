#include "actors/model.hpp"

#include <cstdio>
#include <cstdlib>
#include <ctime>

namespace projlink {

namespace {
constexpr const char* level_names[] = {"none", "read_only", "standard", "admin"};
}

const char* to_string(level x) {
  return level_names[static_cast<size_t>(x)];
}

std::optional<level> parse_level(const std::string& s) {
  for (size_t i = 0; i < std::size(level_names); ++i)
    if (s == level_names[i])
      return static_cast<level>(i);
  return std::nullopt;
}

namespace {

constexpr const char* role_names[] = {"none", "upstream", "downstream"};

} // namespace

const char* to_string(project_role x) {
  return role_names[static_cast<size_t>(x)];
}

std::optional<project_role> parse_project_role(const std::string& s) {
  for (size_t i = 0; i < std::size(role_names); ++i)
    if (s == role_names[i])
      return static_cast<project_role>(i);
  return std::nullopt;
}

namespace {

constexpr const char* conn_state_names[] = {"requesting", "awaiting_approval", "active",
                                            "rejected",   "refused",           "cancelled",
                                            "expired",    "disconnected"};

} // namespace

const char* to_string(conn_state x) {
  return conn_state_names[static_cast<size_t>(x)];
}

std::optional<conn_state> parse_conn_state(const std::string& s) {
  for (size_t i = 0; i < std::size(conn_state_names); ++i)
    if (s == conn_state_names[i])
      return static_cast<conn_state>(i);
  return std::nullopt;
}

bool is_live(conn_state x) {
  return x == conn_state::requesting || x == conn_state::awaiting_approval
         || x == conn_state::active;
}

std::string format_time(std::chrono::system_clock::time_point t) {
  using namespace std::chrono;
  auto ms = duration_cast<milliseconds>(t.time_since_epoch()).count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  if (ms % 1000 < 0)
    --secs;
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ", static_cast<int>(((ms % 1000) + 1000) % 1000));
  return buf;
}

std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& s) {
  std::tm tm{};
  int ms = 0;
  int used = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                  &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &used)
      != 6)
    return std::nullopt;
  auto rest = s.substr(static_cast<size_t>(used));
  if (rest.size() == 5 && rest[0] == '.' && rest[4] == 'Z')
    ms = std::atoi(rest.substr(1, 3).c_str());
  else if (rest != "Z")
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto secs = ::timegm(&tm);
  return std::chrono::system_clock::time_point{std::chrono::seconds{secs}}
         + std::chrono::milliseconds{ms};
}

std::string now_string() {
  return format_time(std::chrono::system_clock::now());
}

bool valid_id(const std::string& id) {
  if (id.empty() || id.size() > 128)
    return false;
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!lower_or_digit(id.front()))
    return false;
  for (char c : id)
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '-')
      return false;
  return true;
}

} // namespace projlink
