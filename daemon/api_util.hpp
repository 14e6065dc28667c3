#pragma once

// Helpers shared by the interface implementations (daemon/api_*.cpp).

#include "daemon/varlink.hpp"

#include <optional>
#include <string>

namespace projlink::api {

/// Sets `j[key]` when `v` is present (optional varlink fields are omitted).
inline void put(varlink::json& j, const char* key, const std::optional<std::string>& v) {
  if (v)
    j[key] = *v;
}

/// A non-empty string of at most 256 bytes: an id the daemon looks up
/// (it need not match the caller-chosen id syntax, e.g. an e-mail).
inline std::string ref_param(varlink::params& p, const char* name) {
  auto id = p.str(name);
  if (id.empty() || id.size() > 256)
    throw varlink::invalid_parameter(name);
  return id;
}

} // namespace projlink::api
