#include "daemon/ctl/render.hpp"

#include <algorithm>
#include <chrono>
#include <ctime>

namespace projlink::ctl {

namespace {

/// "3m ago" / "in 4m" for an RFC 3339 UTC time; empty if `s` is not one.
std::string relative(const std::string& s) {
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

std::string cell(const nlohmann::json& v) {
  if (v.is_null())
    return "-";
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v)
      out += (out.empty() ? "" : ",") + (x.is_string() ? x.get<std::string>() : x.dump());
    return out.empty() ? "-" : out;
  }
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  if (v.is_string()) {
    auto r = relative(v.get<std::string>());
    return r.empty() ? v.get<std::string>() : r;
  }
  return v.dump();
}

std::string long_cell(const nlohmann::json& v) {
  if (v.is_string()) {
    auto r = relative(v.get<std::string>());
    return r.empty() ? v.get<std::string>() : v.get<std::string>() + " (" + r + ")";
  }
  if (v.is_array()) {
    std::string out;
    for (const auto& x : v)
      out += (out.empty() ? "" : ", ") + (x.is_string() ? x.get<std::string>() : x.dump());
    return out.empty() ? "-" : out;
  }
  return cell(v);
}

} // namespace

void print_table(std::ostream& out, const nlohmann::json& rows, const std::vector<column>& cols) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> width;
  for (const auto& c : cols)
    width.push_back(c.first.size());
  for (const auto& row : rows) {
    std::vector<std::string> line;
    for (size_t i = 0; i < cols.size(); ++i) {
      auto it = row.find(cols[i].second);
      line.push_back(it == row.end() ? "-" : cell(*it));
      width[i] = std::max(width[i], line.back().size());
    }
    cells.push_back(std::move(line));
  }
  auto emit = [&](const std::vector<std::string>& line) {
    for (size_t i = 0; i < line.size(); ++i) {
      out << line[i];
      if (i + 1 < line.size())
        out << std::string(width[i] - line[i].size() + 2, ' ');
    }
    out << '\n';
  };
  std::vector<std::string> header;
  for (const auto& c : cols)
    header.push_back(c.first);
  emit(header);
  for (const auto& line : cells)
    emit(line);
  if (cells.empty())
    out << "(none)\n";
}

void print_object(std::ostream& out, const nlohmann::json& obj) {
  size_t w = 0;
  for (const auto& [k, v] : obj.items())
    w = std::max(w, k.size());
  for (const auto& [k, v] : obj.items())
    out << k << ':' << std::string(w - k.size() + 1, ' ') << long_cell(v) << '\n';
}

} // namespace projlink::ctl
