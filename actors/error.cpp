#include "actors/error.hpp"

#include <caf/message.hpp>

namespace projlink {

namespace {

const varlink_error_shape shapes[] = {
  {"", {}, nullptr},
  {"NotFound", {"kind", "id"}, nullptr},
  {"AlreadyExists", {"kind", "id"}, nullptr},
  {"PermissionDenied", {"action", "project"}, nullptr},
  {"ProjectInactive", {"project"}, nullptr},
  {"SelfConnection", {"project"}, nullptr},
  {"AlreadyConnected", {"project", "connection"}, nullptr},
  {"RoleConflict", {"project", "role"}, nullptr},
  {"PermanentlyDisconnected", {"project"}, nullptr},
  {"InvalidState", {"connection", "state"}, nullptr},
  {"UndoWindowExpired", {"connection"}, nullptr},
  {"ReasonRequired", {}, nullptr},
  {"TermsNotAccepted", {}, nullptr},
  {"TooManyRevisions", {"project", "count", "limit"}, nullptr},
  {"ConnectedReadOnly", {"revision"}, nullptr},
  {"PathNotAllowed", {"path"}, nullptr},
  {"FileTooLarge", {"limit"}, "io.projlink.Drawings"},
  {"InvalidDocument", {"line", "column", "message"}, nullptr},
  {"InvalidParameter", {"parameter"}, "org.varlink.service"},
  {"InvalidConfiguration", {"message"}, "io.projlink.Daemon"},
  {"InternalError", {"message"}, "io.projlink.Daemon"},
};

const char* names[] = {
  "none",
  "not_found",
  "already_exists",
  "permission_denied",
  "project_inactive",
  "self_connection",
  "already_connected",
  "role_conflict",
  "permanently_disconnected",
  "invalid_state",
  "undo_window_expired",
  "reason_required",
  "terms_not_accepted",
  "too_many_revisions",
  "connected_read_only",
  "path_not_allowed",
  "file_too_large",
  "invalid_document",
  "invalid_parameter",
  "invalid_configuration",
  "internal",
};

static_assert(std::size(shapes) == static_cast<size_t>(ec::internal) + 1);
static_assert(std::size(names) == static_cast<size_t>(ec::internal) + 1);

} // namespace

const char* to_string(ec code) {
  return names[static_cast<size_t>(code)];
}

const varlink_error_shape& shape_of(ec code) {
  return shapes[static_cast<size_t>(code)];
}

ec code_of(const caf::error& err) {
  if (err.category() != ec_category || err.code() == 0
      || err.code() > static_cast<uint8_t>(ec::internal))
    return ec::internal;
  return static_cast<ec>(err.code());
}

std::string describe(const caf::error& err) {
  if (err.category() != ec_category)
    return caf::to_string(err);
  std::string out = to_string(code_of(err));
  const auto& ctx = err.context();
  for (size_t i = 0; i < ctx.size(); ++i) {
    out += i == 0 ? ": " : " ";
    if (ctx.match_element<std::string>(i))
      out += ctx.get_as<std::string>(i);
    else if (ctx.match_element<int64_t>(i))
      out += std::to_string(ctx.get_as<int64_t>(i));
    else
      out += "?";
  }
  return out;
}

} // namespace projlink
