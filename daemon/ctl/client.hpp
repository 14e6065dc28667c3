#pragma once

// projlinkctl's connection to the daemon: one Unix socket, varlink calls.

#include "daemon/varlink.hpp"

#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace projlink::ctl {

using varlink::json;

/// The daemon cannot be reached (exit status 3).
struct unreachable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// A reply: parameters, or an error name with its parameters.
struct reply {
  std::string error; ///< empty on success
  json parameters = json::object();
  bool continues = false;
};

class client {
public:
  /// Connects to `socket_path`; throws `unreachable`.
  explicit client(const std::string& socket_path);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// Sends one call (with descriptors `fds` as SCM_RIGHTS) and returns its
  /// reply; throws `unreachable` when the connection fails.
  reply call(const std::string& method, const json& parameters, const std::vector<int>& fds = {});

  /// Sends a call with "more" and hands each reply to `on_reply` until the
  /// last one or until `on_reply` returns false.
  void stream(const std::string& method, const json& parameters,
              const std::function<bool(const reply&)>& on_reply);

private:
  void send_all(const std::string& bytes, const std::vector<int>& fds);
  reply receive();

  int fd_ = -1;
  std::string path_;
  varlink::frame_reader reader_{size_t{256} << 20};
};

/// A one-line explanation of an error reply, e.g. `no project 'p9'`.
std::string explain(const reply& r);

} // namespace projlink::ctl
