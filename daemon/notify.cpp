#include "daemon/notify.hpp"

#include <systemd/sd-daemon.h>

#include <stdexcept>

namespace projlink::notify {

void ready(const std::string& status) {
  sd_notify(0, ("READY=1\nSTATUS=" + status).c_str());
}

void stopping() {
  sd_notify(0, "STOPPING=1\nSTATUS=draining");
}

void reloading() {
  sd_notify(0, "RELOADING=1");
}

void watchdog() {
  sd_notify(0, "WATCHDOG=1");
}

void status(const std::string& text) {
  sd_notify(0, ("STATUS=" + text).c_str());
}

std::chrono::microseconds watchdog_interval() {
  uint64_t usec = 0;
  if (sd_watchdog_enabled(0, &usec) > 0)
    return std::chrono::microseconds{usec};
  return std::chrono::microseconds{0};
}

int activation_socket() {
  int n = sd_listen_fds(1);
  if (n <= 0)
    return -1;
  if (n > 1)
    throw std::runtime_error("systemd passed " + std::to_string(n)
                             + " sockets; projlinkd uses exactly one");
  if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, nullptr, 0) <= 0)
    throw std::runtime_error("the socket systemd passed is not a listening Unix stream socket");
  return SD_LISTEN_FDS_START;
}

} // namespace projlink::notify
