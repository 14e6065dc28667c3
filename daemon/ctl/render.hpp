#pragma once

// Human output for projlinkctl: aligned tables and key/value blocks, fields
// in the order a person reads them, times relative (the absolute time is in
// --json), sizes and durations in human units, colour only on a terminal
// (NO_COLOR honoured).

#include <nlohmann/json.hpp>

#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace projlink::ctl {

/// A column: header and the JSON key of each row it shows.
using column = std::pair<std::string, std::string>;

/// Prints `rows` (an array of objects) as an aligned table; booleans as
/// yes/no, missing values as `-`.
void print_table(std::ostream& out, const nlohmann::json& rows, const std::vector<column>& cols);

/// Prints one object as `key: value` lines, aligned: identity, state, the
/// two projects, who and when, then the rest (alphabetically).
void print_object(std::ostream& out, const nlohmann::json& obj);

/// The keys of `obj` in reading order (see print_object).
std::vector<std::string> reading_order(const nlohmann::json& obj);

/// "512 B", "1.5 KiB", "3.2 GiB".
std::string human_bytes(double bytes);
/// "3 s", "4 min 5 s", "2 h 3 min", "3 d 4 h".
std::string human_duration(double seconds);
/// "3m ago" / "in 4m" / "just now" for an RFC 3339 UTC time; empty if `s`
/// is not one.
std::string relative_time(const std::string& s);

/// Whether to colour standard output: a terminal, NO_COLOR unset or empty,
/// TERM not `dumb`.
bool use_colour();
/// `text` coloured by what the state `value` means (active green, waiting
/// yellow, refused or failed red); `text` alone when colour is off.
std::string paint_state(const std::string& value, const std::string& text);

} // namespace projlink::ctl
