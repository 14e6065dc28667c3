#pragma once

#include "config/config.hpp"

#include <caf/actor_system_config.hpp>

#include <memory>
#include <string>

namespace projlink {

/// CAF's configuration built from ours (never from caf-application.ini):
/// the `sharing` scheduler with `actors.scheduler_threads` threads (0 = one
/// per core). Throws std::runtime_error if CAF refuses a value.
std::unique_ptr<caf::actor_system_config> make_caf_config(const config& cfg);

} // namespace projlink
