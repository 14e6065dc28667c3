#pragma once

// Human output for projlinkctl: aligned tables and key/value blocks.

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

/// Prints one object as `key: value` lines, aligned.
void print_object(std::ostream& out, const nlohmann::json& obj);

} // namespace projlink::ctl
