#pragma once

// The daemon's side of systemd: readiness and watchdog notifications
// (sd_notify; no-ops when NOTIFY_SOCKET is unset) and socket activation.

#include <chrono>
#include <string>

namespace projlink::notify {

void ready(const std::string& status);
void stopping();
void reloading();
void watchdog();
void status(const std::string& text);

/// The watchdog interval systemd asked for (WATCHDOG_USEC), or zero.
std::chrono::microseconds watchdog_interval();

/// The listening socket systemd passed (LISTEN_FDS), or -1. Fails (throws)
/// when more than one descriptor was passed.
int activation_socket();

} // namespace projlink::notify
