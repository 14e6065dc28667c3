#pragma once

// The control socket (SPEC §6): one thread, one epoll loop, every client
// connection. It frames and decodes varlink messages, checks the caller's
// credentials, answers org.varlink.service and Daemon.Reload itself and
// hands every other call to the connection's session actor. Replies come
// back through the reply_queue and are written in call order.
//
// Nothing here blocks on an actor: the loop only waits in epoll_wait.

#include "config/config.hpp"
#include "daemon/session.hpp"

#include <caf/actor_system.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace projlink {

/// The parts of the configuration the control socket uses; reloadable.
struct control_limits {
  uint32_t max_clients = 256;
  uint32_t max_clients_per_uid = 32;
  uint32_t operator_slots = 4;
  uint32_t max_calls_in_flight = 64;
  uint64_t max_unread_reply_bytes = uint64_t{64} << 20;
  uint64_t reply_memory = uint64_t{1} << 30;
  uint64_t max_message_bytes = 1 << 20;
  duration idle_timeout = std::chrono::minutes{5};
  peer_set operators;
  peer_set clients;
  peer_set delegates;
  std::vector<identity_entry> identities;

  static control_limits from(const config& cfg);
};

class control_server {
public:
  control_server(caf::actor_system& sys, const services* svc, control_limits limits);
  ~control_server();

  control_server(const control_server&) = delete;
  control_server& operator=(const control_server&) = delete;

  /// Creates a Unix stream socket at `path` with `mode`, refusing to steal
  /// the path from a daemon that still answers on it. Throws
  /// std::runtime_error with a message for the log.
  static int bind_unix(const std::string& path, mode_t mode);

  /// Serves the listening socket `fd` (ours or passed by systemd). The
  /// server closes it; `unlink_path` (if set) is removed at the end.
  void listen(int fd, std::string unlink_path = {});

  /// Applies new limits to current and future clients.
  void set_limits(control_limits limits);

  /// Watches another descriptor (signalfd, timerfd); `on_readable` runs on
  /// the loop's thread.
  void watch(int fd, std::function<void()> on_readable);

  /// What a reload did: `error` empty on success, else why the file was
  /// refused; `restart_needed`: changed keys that only a restart applies.
  struct reload_result {
    std::string error;
    std::vector<std::string> restart_needed;
  };
  /// Daemon.Reload (and SIGHUP).
  std::function<reload_result()> on_reload;

  /// Replies posted with session 0 (internal requests such as the watchdog).
  std::function<void(const outgoing_reply&)> on_internal_reply;

  /// Runs the loop until `stop` was called and the drain ended.
  void run();

  /// Starts the drain: no new clients, no new calls; `run` returns once
  /// every call in flight was answered and written, or after `grace`.
  void stop(duration grace);

  size_t client_count() const {
    return clients_.size() - dead_.size();
  }

  /// Unread reply bytes held for all clients together (control.reply_memory).
  uint64_t reply_bytes() const {
    return reply_bytes_;
  }

private:
  struct client;
  struct watcher {
    int fd;
    std::function<void()> fn;
  };

  void accept_clients();
  void on_client_event(client& c, uint32_t events);
  void read_from(client& c);
  void handle_message(client& c, const std::string& text, std::vector<int> fds);
  void dispatch(client& c);
  void account(client& c, int64_t delta);
  void enforce_reply_memory();
  bool admitted(const peer_info& p, bool& is_operator) const;
  void classify(peer_info& p) const;
  void answer_locally(client& c, uint64_t seq, const varlink::call& call);
  void deliver(const outgoing_reply& r);
  void put(client& c, uint64_t seq, std::string bytes, bool done);
  void flush(client& c);
  void update_interest(client& c);
  void close_client(client& c, const char* why);
  void sweep_idle();
  bool drained() const;
  peer_info identify(int fd) const;

  caf::actor_system& sys_;
  const services* svc_;
  control_limits limits_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  int spare_fd_ = -1; ///< closed to accept-and-drop when out of descriptors
  std::string unlink_path_;
  std::vector<watcher> watchers_;
  std::unordered_map<uint64_t, std::unique_ptr<client>> clients_;
  std::vector<uint64_t> dead_; ///< closed clients to erase after this loop turn
  uint64_t next_client_id_ = 1;
  std::unordered_map<uid_t, size_t> per_uid_; ///< live connections by uid
  uint64_t reply_bytes_ = 0;                  ///< unread replies of all clients
  bool stopping_ = false;
  std::chrono::steady_clock::time_point deadline_;
};

} // namespace projlink
