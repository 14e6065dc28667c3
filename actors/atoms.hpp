#pragma once

// Every atom of the daemon's actor protocols, in one place (CAF 0.17 atoms
// are at most 10 characters). `atom::x` is the type, `atom::x_v` its value.

#include <caf/atom.hpp>

namespace projlink::atom {

#define PROJLINK_ATOM(name, text)                                                                  \
  using name = caf::atom_constant<caf::atom(text)>;                                                \
  constexpr auto name##_v = name::value

PROJLINK_ATOM(read, "read");
PROJLINK_ATOM(write, "write");
PROJLINK_ATOM(flush, "flush");
PROJLINK_ATOM(ping, "ping");
PROJLINK_ATOM(pong, "pong");
PROJLINK_ATOM(shutdown, "shutdown");
PROJLINK_ATOM(status, "status");

#undef PROJLINK_ATOM

} // namespace projlink::atom
