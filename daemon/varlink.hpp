#pragma once

// The varlink wire format (https://varlink.org, SPEC §6.1): each message is
// one JSON object followed by a NUL byte. Pure functions and value types,
// shared by the daemon, projlinkctl and the tests; no I/O here.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace projlink::varlink {

using json = nlohmann::json;

/// Splits a byte stream into NUL-terminated messages.
class frame_reader {
public:
  explicit frame_reader(size_t max_message_bytes) : max_(max_message_bytes) {
  }

  /// Appends received bytes. Afterwards call `next` until it returns nothing.
  void feed(const char* data, size_t size);

  /// The next complete message (without its NUL), if there is one.
  std::optional<std::string> next();

  /// True once a message grew past the limit; the stream cannot be trusted
  /// any more and the connection should be closed after an error reply.
  bool overflowed() const {
    return overflowed_;
  }

  /// True if part of a message has been received but not its NUL.
  bool partial() const {
    return buf_.size() > pos_;
  }

private:
  std::string buf_;
  size_t pos_ = 0;  ///< start of the first unconsumed byte
  size_t scan_ = 0; ///< bytes before this offset hold no NUL
  size_t max_;
  bool overflowed_ = false;
};

/// A decoded method call.
struct call {
  std::string method; ///< fully qualified, e.g. `io.projlink.Directory.GetProject`
  json parameters = json::object();
  bool more = false;
  bool oneway = false;
};

/// Decodes one message into a call, or returns why it is not one (the text
/// of a ProtocolError).
std::optional<call> parse_call(std::string_view text, std::string& why);

/// `{"parameters": params}` (+ `"continues": true`).
std::string encode_reply(const json& parameters, bool continues = false);

/// `{"error": name, "parameters": params}`.
std::string encode_error(std::string_view name, const json& parameters = json::object());

/// `{"method": m, "parameters": p}` (+ more / oneway).
std::string encode_call(std::string_view method, const json& parameters, bool more = false,
                        bool oneway = false);

/// A parameter is missing, of the wrong type or has a bad value. Carries the
/// parameter's name for `org.varlink.service.InvalidParameter`.
struct invalid_parameter : std::runtime_error {
  explicit invalid_parameter(std::string name)
    : std::runtime_error("invalid parameter: " + name), parameter(std::move(name)) {
  }
  std::string parameter;
};

/// Typed, strict access to a call's parameters. Every accessor throws
/// `invalid_parameter` on a missing required field or a wrong type, and
/// `finish()` throws on a field nobody asked for (a typo must not be ignored).
class params {
public:
  explicit params(const json& p);

  std::string str(const char* name);
  std::optional<std::string> opt_str(const char* name);
  bool boolean(const char* name);
  std::optional<bool> opt_bool(const char* name);
  int64_t integer(const char* name);
  std::optional<int64_t> opt_int(const char* name);
  std::optional<std::vector<std::string>> opt_str_list(const char* name);
  std::vector<std::string> str_list(const char* name);
  /// A string that must be one of `allowed`.
  std::string one_of(const char* name, std::initializer_list<const char*> allowed);
  std::optional<std::string> opt_one_of(const char* name,
                                        std::initializer_list<const char*> allowed);

  /// Throws `invalid_parameter` naming the first field that was not read.
  void finish() const;

private:
  const json* find(const char* name);
  const json& p_;
  std::vector<std::string> used_;
};

} // namespace projlink::varlink
