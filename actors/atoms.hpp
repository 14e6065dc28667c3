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
// The connection protocol between project actors (SPEC §11).
PROJLINK_ATOM(request, "request");
PROJLINK_ATOM(approve, "approve");
PROJLINK_ATOM(reject, "reject");
PROJLINK_ATOM(undo, "undo");
PROJLINK_ATOM(cancel, "cancel");
PROJLINK_ATOM(disconnect, "disconnect");
PROJLINK_ATOM(expire, "expire");
PROJLINK_ATOM(update, "update");
PROJLINK_ATOM(ack, "ack");
// Registry and supervision.
PROJLINK_ATOM(route, "route");
PROJLINK_ATOM(idle, "idle");
PROJLINK_ATOM(passivate, "passivate");
PROJLINK_ATOM(tick, "tick");
PROJLINK_ATOM(schedule, "schedule");
PROJLINK_ATOM(recover, "recover");
// Notifier.
PROJLINK_ATOM(notify, "notify");
PROJLINK_ATOM(configure, "configure");
// Event hub.
PROJLINK_ATOM(subscribe, "subscribe");
PROJLINK_ATOM(publish, "publish");

#undef PROJLINK_ATOM

} // namespace projlink::atom
