#include "actors/model.hpp"

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
