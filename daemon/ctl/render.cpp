#include "daemon/ctl/render.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>

namespace projlink::ctl {

namespace {

/// Reading order: identity, state, the two projects, who and when, then
/// the rest alphabetically.
const std::vector<std::string>& preferred_keys() {
  static const std::vector<std::string> keys{
    // identity
    "id", "seq", "connection", "number", "title", "revision", "name", "email", "version",
    // state
    "state", "status", "kind", "event", "store", "mode", "active", "published", "obsolete",
    // the two projects (upstream first: drawings flow from it)
    "upstream", "downstream", "project", "company", "user",
    // who and when
    "requested_by", "requested_at", "decided_by", "decided_at", "ended_by", "ended_at",
    "undo_until", "at", "uptime_s", "reason"};
  return keys;
}

bool is_size_key(const std::string& k) {
  return k == "size" || k == "bytes" || k == "bytes_done" || k == "bytes_total"
         || (k.size() > 6 && k.compare(k.size() - 6, 6, "_bytes") == 0);
}

bool is_duration_key(const std::string& k) {
  return k.size() > 2 && k.compare(k.size() - 2, 2, "_s") == 0;
}

std::string list_text(const nlohmann::json& v, const char* sep) {
  std::string out;
  for (const auto& x : v)
    out += (out.empty() ? "" : sep) + (x.is_string() ? x.get<std::string>() : x.dump());
  return out.empty() ? "-" : out;
}

std::string cell(const std::string& key, const nlohmann::json& v) {
  if (v.is_null())
    return "-";
  if (v.is_array())
    return list_text(v, ",");
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  if (v.is_number() && is_size_key(key))
    return human_bytes(v.get<double>());
  if (v.is_number() && is_duration_key(key))
    return human_duration(v.get<double>());
  if (v.is_string()) {
    auto r = relative_time(v.get<std::string>());
    return r.empty() ? v.get<std::string>() : r;
  }
  return v.dump();
}

std::string long_cell(const std::string& key, const nlohmann::json& v) {
  if (v.is_string()) {
    auto r = relative_time(v.get<std::string>());
    return r.empty() ? v.get<std::string>() : r + " (" + v.get<std::string>() + ")";
  }
  if (v.is_array())
    return list_text(v, ", ");
  if (v.is_object())
    return v.dump();
  return cell(key, v);
}

bool is_state_key(const std::string& k) {
  return k == "state" || k == "store";
}

} // namespace

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

std::string human_duration(double seconds) {
  auto s = static_cast<long long>(std::floor(seconds < 0 ? 0 : seconds));
  auto two = [](long long a, const char* ua, long long b, const char* ub) {
    std::string out = std::to_string(a) + " " + ua;
    if (b > 0)
      out += " " + std::to_string(b) + " " + ub;
    return out;
  };
  if (s < 60)
    return std::to_string(s) + " s";
  if (s < 3600)
    return two(s / 60, "min", s % 60, "s");
  if (s < 86400)
    return two(s / 3600, "h", s % 3600 / 60, "min");
  return two(s / 86400, "d", s % 86400 / 3600, "h");
}

std::string relative_time(const std::string& s) {
  std::tm tm{};
  if (s.size() < 20 || s[4] != '-' || s[10] != 'T' || s.back() != 'Z'
      || std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec)
           != 6)
    return {};
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  auto t = static_cast<long long>(::timegm(&tm));
  auto now = static_cast<long long>(std::time(nullptr));
  auto d = now - t;
  bool past = d >= 0;
  auto a = past ? d : -d;
  std::string n;
  if (a < 5)
    return "just now";
  if (a < 120)
    n = std::to_string(a) + "s";
  else if (a < 2 * 3600)
    n = std::to_string(a / 60) + "m";
  else if (a < 2 * 86400)
    n = std::to_string(a / 3600) + "h";
  else
    n = std::to_string(a / 86400) + "d";
  return past ? n + " ago" : "in " + n;
}

bool use_colour() {
  static const bool yes = [] {
    const char* no = std::getenv("NO_COLOR");
    if (no != nullptr && *no != '\0')
      return false;
    const char* term = std::getenv("TERM");
    if (term != nullptr && std::strcmp(term, "dumb") == 0)
      return false;
    return ::isatty(STDOUT_FILENO) != 0;
  }();
  return yes;
}

std::string paint_state(const std::string& value, const std::string& text) {
  if (!use_colour())
    return text;
  static const std::map<std::string, const char*> colours{
    {"active", "32"},        {"ok", "32"},         {"delivered", "32"},   {"idle", "32"},
    {"awaiting_approval", "33"}, {"pending", "33"}, {"syncing", "33"},    {"paused", "33"},
    {"rejected", "31"},      {"disconnected", "31"}, {"failed", "31"},    {"corrupt", "31"},
    {"io_error", "31"},      {"full", "31"},       {"cancelled", "2"},    {"expired", "2"}};
  auto it = colours.find(value);
  if (it == colours.end())
    return text;
  return std::string("\x1b[") + it->second + "m" + text + "\x1b[0m";
}

std::vector<std::string> reading_order(const nlohmann::json& obj) {
  std::vector<std::string> keys;
  for (const auto& k : preferred_keys())
    if (obj.contains(k))
      keys.push_back(k);
  for (const auto& [k, v] : obj.items()) // alphabetical (nlohmann's map)
    if (std::find(keys.begin(), keys.end(), k) == keys.end())
      keys.push_back(k);
  return keys;
}

void print_table(std::ostream& out, const nlohmann::json& rows, const std::vector<column>& cols) {
  std::vector<std::vector<std::string>> cells;
  std::vector<std::vector<std::string>> raw; // the JSON string value, for colour
  std::vector<size_t> width;
  for (const auto& c : cols)
    width.push_back(c.first.size());
  for (const auto& row : rows) {
    std::vector<std::string> line, values;
    for (size_t i = 0; i < cols.size(); ++i) {
      auto it = row.find(cols[i].second);
      line.push_back(it == row.end() ? "-" : cell(cols[i].second, *it));
      values.push_back(it != row.end() && it->is_string() ? it->get<std::string>() : "");
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
    raw.push_back(std::move(values));
  }
  auto emit = [&](const std::vector<std::string>& line, const std::vector<std::string>* values) {
    for (size_t i = 0; i < line.size(); ++i) {
      bool state = values != nullptr && is_state_key(cols[i].second);
      out << (state ? paint_state((*values)[i], line[i]) : line[i]);
      if (i + 1 < line.size())
        out << std::string(width[i] - line[i].size() + 2, ' ');
    }
    out << '\n';
  };
  std::vector<std::string> header;
  for (const auto& c : cols)
    header.push_back(c.first);
  emit(header, nullptr);
  for (size_t r = 0; r < cells.size(); ++r)
    emit(cells[r], &raw[r]);
  if (cells.empty())
    out << "(none)\n";
}

void print_object(std::ostream& out, const nlohmann::json& obj) {
  size_t w = 0;
  auto keys = reading_order(obj);
  for (const auto& k : keys)
    w = std::max(w, k.size());
  for (const auto& k : keys) {
    const auto& v = obj.at(k);
    auto text = long_cell(k, v);
    if (is_state_key(k) && v.is_string())
      text = paint_state(v.get<std::string>(), text);
    out << k << ':' << std::string(w - k.size() + 1, ' ') << text << '\n';
  }
}

} // namespace projlink::ctl
