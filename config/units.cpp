#include "config/units.hpp"

#include <charconv>
#include <limits>

namespace projlink {

namespace {

struct unit {
  std::string_view suffix;
  uint64_t factor;
};

// Longest suffixes first so that "ms" is not read as "m" followed by junk.
constexpr unit duration_units[] = {
  {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000},
};

constexpr unit size_units[] = {
  {"GiB", uint64_t{1} << 30}, {"MiB", uint64_t{1} << 20}, {"KiB", uint64_t{1} << 10},
  {"B", 1}, {"", 1},
};

template <size_t N>
std::optional<uint64_t> parse_with_units(std::string_view text, const unit (&units)[N]) {
  uint64_t value = 0;
  auto [rest, err] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (err != std::errc{} || rest == text.data())
    return std::nullopt;
  std::string_view suffix(rest, text.data() + text.size() - rest);
  for (const auto& u : units) {
    if (suffix != u.suffix)
      continue;
    if (value > std::numeric_limits<uint64_t>::max() / u.factor)
      return std::nullopt;
    return value * u.factor;
  }
  return std::nullopt;
}

} // namespace

std::optional<duration> parse_duration(std::string_view text) {
  auto ms = parse_with_units(text, duration_units);
  if (!ms || *ms > static_cast<uint64_t>(std::numeric_limits<int64_t>::max() / 1000))
    return std::nullopt;
  return duration{static_cast<int64_t>(*ms)};
}

std::optional<uint64_t> parse_size(std::string_view text) {
  return parse_with_units(text, size_units);
}

std::string format_duration(duration d) {
  auto ms = static_cast<uint64_t>(d.count());
  for (auto it = std::rbegin(duration_units); it != std::rend(duration_units); ++it)
    if (ms != 0 && ms % it->factor == 0)
      return std::to_string(ms / it->factor) + std::string(it->suffix);
  return std::to_string(ms) + "ms";
}

std::string format_size(uint64_t bytes) {
  for (const auto& u : size_units)
    if (u.factor > 1 && bytes != 0 && bytes % u.factor == 0)
      return std::to_string(bytes / u.factor) + std::string(u.suffix);
  return std::to_string(bytes) + "B";
}

} // namespace projlink
