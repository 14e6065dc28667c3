#include "daemon/ctl/render.hpp"

#include <algorithm>

namespace projlink::ctl {

namespace {

std::string cell(const nlohmann::json& v) {
  if (v.is_null())
    return "-";
  if (v.is_boolean())
    return v.get<bool>() ? "yes" : "no";
  if (v.is_string())
    return v.get<std::string>();
  return v.dump();
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
    out << k << ':' << std::string(w - k.size() + 1, ' ') << cell(v) << '\n';
}

} // namespace projlink::ctl
