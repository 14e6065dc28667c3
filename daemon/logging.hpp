#pragma once

#include "config/config.hpp"

namespace projlink {

/// Points spdlog's default logger at stderr with the configured level and
/// format (`text`: one readable line; `json`: one JSON object per line).
/// Safe to call again on reload.
void setup_logging(const config& cfg);

} // namespace projlink
