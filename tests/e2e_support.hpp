#pragma once

// Helpers for end-to-end tests: a real projlinkd on a temporary directory,
// raw varlink connections to it, and projlinkctl runs.

#include "daemon/varlink.hpp"

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace e2e {

namespace fs = std::filesystem;
using json = nlohmann::json;

/// A projlinkd process with its own state directory, removed at the end.
class daemon_process {
public:
  /// `control_extra` is YAML appended inside the `control:` section,
  /// `extra` is YAML appended at the top level (other sections),
  /// `actors_extra` inside the `actors:` section.
  explicit daemon_process(std::string control_extra = "", std::string extra = "",
                          std::string actors_extra = "", std::string storage_extra = "");
  ~daemon_process();

  /// Starts the process and waits until its socket answers.
  void start(const std::map<std::string, std::string>& env = {});
  /// Sends `sig` and waits for exit; returns the exit status (or 128+signal).
  int stop(int sig = 15);
  /// Sends a signal without waiting.
  void signal(int sig);
  bool running() const {
    return pid_ > 0;
  }
  pid_t pid() const {
    return pid_;
  }
  /// Rewrites the configuration file.
  void write_config(const std::string& control_extra, const std::string& extra);
  std::string log() const;
  /// Descriptors the daemon has open (from /proc).
  size_t open_fds() const;

  fs::path dir;
  fs::path socket;
  fs::path config_file;
  std::string actors_extra;
  std::string storage_extra; ///< YAML inside the `storage:` section

private:
  pid_t pid_ = -1;
};

/// A raw client connection speaking varlink.
class conn {
public:
  explicit conn(const fs::path& socket);
  ~conn();
  conn(const conn&) = delete;
  conn& operator=(const conn&) = delete;

  /// Sends bytes as they are, with descriptors as SCM_RIGHTS.
  void send_raw(const std::string& bytes, const std::vector<int>& fds = {});
  void send_call(const std::string& method, const json& params = json::object(),
                 bool oneway = false, bool more = false);
  /// The next reply object, or nothing within `timeout_ms` / on close.
  std::optional<json> read(int timeout_ms = 5000);
  /// A call and its reply (fails the test if none comes).
  json call(const std::string& method, const json& params = json::object());
  /// True if the daemon closes the connection within `timeout_ms`.
  bool closed_within(int timeout_ms);
  int fd() const {
    return fd_;
  }

private:
  int fd_ = -1;
  projlink::varlink::frame_reader reader_{size_t{64} << 20};
  bool eof_ = false;
};

struct run_result {
  int status = -1;
  std::string out;
  std::string err;
};

/// Runs projlinkctl with `args` against `socket` (PROJLINK_SOCKET).
run_result ctl(const fs::path& socket, const std::vector<std::string>& args,
               const std::string& stdin_text = "");

/// Runs a command line; captures stdout and stderr.
run_result run(const std::vector<std::string>& argv, const std::map<std::string, std::string>& env = {},
               const std::string& stdin_text = "");

/// The name of an error reply, or "" for a success.
std::string error_of(const json& reply);

} // namespace e2e
