#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace projlink {

using duration = std::chrono::milliseconds;

/// Parses a duration written as a whole number and a unit: `ms`, `s`, `m`,
/// `h`, `d` (e.g. `500ms`, `5m`, `30d`). Returns nothing on any other text.
std::optional<duration> parse_duration(std::string_view text);

/// Parses a size written as a whole number and an optional unit: `B`, `KiB`,
/// `MiB`, `GiB` (e.g. `64KiB`, `1MiB`). Returns nothing on any other text.
std::optional<uint64_t> parse_size(std::string_view text);

/// Renders a duration in the largest unit that divides it (`5m`, `1500ms`).
std::string format_duration(duration d);

/// Renders a size in the largest binary unit that divides it (`1MiB`).
std::string format_size(uint64_t bytes);

} // namespace projlink
