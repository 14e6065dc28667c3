#pragma once

#include "config/units.hpp"

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace projlink {

/// Who may use the control socket: numeric uids and gids. Names in the file
/// are resolved when it is loaded; a name that does not resolve is kept in
/// `unresolved` and only warned about (the default group `projlink` need not
/// exist on a developer's machine).
struct peer_set {
  std::vector<uid_t> uids;
  std::vector<gid_t> groups;
  std::vector<std::string> unresolved;
};

struct retry_policy {
  duration initial;
  duration max;
  uint32_t attempts;
};

/// One `control.identities` entry: a uid that acts only as one user (§6.3).
struct identity_entry {
  uid_t uid = 0;
  std::string user; ///< an id or an email, resolved at each call
};

enum class delivery_kind { maildir, smtp, log };
enum class log_format { text, json };

/// The daemon's whole configuration (SPEC §8). Every member has the default
/// of SPEC §8; `load_config` overrides what a file sets. Paths are stored as
/// written; use `config::path()` to resolve them against the state directory.
struct config {
  struct {
    std::string socket = "/run/projlink/projlink.sock";
    mode_t socket_mode = 0660;
    peer_set operators{{0}, {}, {}};
    peer_set clients{{}, {}, {"projlink"}};
    peer_set delegates;                    ///< may act as any user (§6.3)
    std::vector<identity_entry> identities; ///< each uid acts only as its user
    uint32_t max_clients_per_uid = 32; ///< operators are not bound by it
    uint32_t max_clients = 256;
    uint32_t operator_slots = 4;        ///< kept beyond max_clients for operators
    uint32_t max_calls_in_flight = 64;  ///< per connection, oneway included
    uint64_t max_unread_reply_bytes = uint64_t{64} << 20; ///< per connection
    uint64_t reply_memory = uint64_t{1} << 30;            ///< all connections together
    uint64_t max_message_bytes = 1 << 20;
    duration fd_timeout = std::chrono::seconds{30};
    duration idle_timeout = std::chrono::minutes{5};
  } control;
  struct {
    std::string state_dir = "/var/lib/projlink";
    std::string database = "projlink.db";
    std::string blobs = "blobs";
    std::vector<std::string> import_dirs;
    uint64_t max_upload_bytes = uint64_t{2} << 30;
  } storage;
  struct {
    duration undo_window = std::chrono::minutes{5};
    duration request_ttl = std::chrono::hours{24 * 30};
    uint64_t max_drawing_revisions = 100'000;
  } connections;
  struct {
    uint32_t workers = 4;
    retry_policy retry{std::chrono::seconds{1}, std::chrono::minutes{5}, 10};
  } sync;
  struct {
    delivery_kind delivery = delivery_kind::maildir;
    std::string from = "projlink@localhost";
    std::string maildir = "outbox";
    struct {
      std::string url = "smtp://127.0.0.1:25";
      std::string username;
      std::string password_file;
      bool starttls = true;
    } smtp;
    retry_policy retry{std::chrono::seconds{5}, std::chrono::hours{1}, 20};
  } notifications;
  struct {
    uint32_t scheduler_threads = 0;
    duration passivate_after = std::chrono::minutes{10};
    uint64_t max_live = 1'000'000; ///< live project actors; least recently used passivated first
  } actors;
  struct {
    std::string level = "info";
    log_format format = log_format::text;
  } logging;
  struct {
    /// `HOST:PORT` (an IPv4 address or a bracketed IPv6 one) where /metrics
    /// is served in Prometheus' text format; empty = off. Port 0 picks a free
    /// port (logged at start).
    std::string listen;
  } metrics;

  /// The file this configuration was read from; empty for a built-in one.
  std::string source;

  /// Resolves `p` against `storage.state_dir` unless it is absolute.
  std::string path(const std::string& p) const;
};

/// One problem in a configuration file. `line` and `column` are 1-based; 0
/// when the problem is not tied to a place in the file.
struct config_error {
  std::string key; ///< dotted key, e.g. `control.max_clients`
  int line = 0;
  int column = 0;
  std::string message;

  /// `KEY (line L, column C): MESSAGE`
  std::string to_string() const;
};

struct config_result {
  std::optional<config> cfg; ///< set when there are no errors
  std::vector<config_error> errors;
  std::vector<std::string> warnings;
};

/// Parses YAML text on top of the defaults, then validates the result.
config_result parse_config(const std::string& text);

/// Reads and parses a file. A missing or unreadable file is an error.
config_result load_config(const std::string& file);

/// The built-in configuration for running without root: state, socket and
/// Maildir under `dir` (made absolute), and the calling user as operator.
config local_config(const std::string& dir);

/// Splits `metrics.listen` into a numeric host and a port; nothing if it
/// is not `IPV4:PORT` or `[IPV6]:PORT`.
struct listen_address {
  std::string host;
  uint16_t port = 0;
  bool v6 = false;
};
std::optional<listen_address> parse_listen_address(const std::string& s);

/// Checks values that must agree with each other or with the system; returns
/// one error per problem. `parse_config` calls it; call it again after
/// changing a config by hand.
std::vector<config_error> validate(const config& cfg);

} // namespace projlink
