#pragma once

// Errors are values (STYLE.md): every failure the daemon reports is one `ec`
// code plus context naming what failed, carried in a caf::error. The control
// socket maps each code to one varlink error (`varlink_error_name`) whose
// parameters are the context values in order (`varlink_error_params`).

#include <caf/error.hpp>
#include <caf/make_message.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace projlink {

enum class ec : uint8_t {
  /// Not an error.
  none = 0,
  /// (kind, id): no company/project/user/access/connection/revision by that id.
  not_found,
  /// (kind, id): the id (or email) is taken.
  already_exists,
  /// (action, project): the `as` user lacks the level SPEC §4 requires.
  permission_denied,
  /// (project): R1, an end of the connection is inactive.
  project_inactive,
  /// (project): R1, a project cannot connect to itself.
  self_connection,
  /// (project, connection): R3, the downstream already has an upstream.
  already_connected,
  /// (project, role): R5/R6, the project's role forbids this.
  role_conflict,
  /// (project): R11, the downstream was disconnected once.
  permanently_disconnected,
  /// (connection, state): the transition is not allowed from this state.
  invalid_state,
  /// (connection): R9, the undo window has passed.
  undo_window_expired,
  /// (): R11, a disconnect needs a reason.
  reason_required,
  /// (): R11, a disconnect needs accept_terms: true.
  terms_not_accepted,
  /// (project, count, limit): R13.
  too_many_revisions,
  /// (revision): §5, the downstream side cannot change a connected copy.
  connected_read_only,
  /// (path): the upload path is outside storage.import_dirs.
  path_not_allowed,
  /// (limit): an upload is larger than storage.max_upload_bytes.
  file_too_large,
  /// (line, column, message): Directory.Import could not use the document.
  invalid_document,
  /// (parameter): a parameter has a bad value.
  invalid_parameter,
  /// (message): the configuration file did not validate.
  invalid_configuration,
  /// (message): storage or another internal failure; nothing changed.
  internal,
};

/// The error category of `ec` in caf::error.
constexpr caf::atom_value ec_category = caf::atom("projlink");

/// The symbolic name, e.g. `not_found`.
const char* to_string(ec code);

/// Builds a caf::error with `code` and its context values.
template <class... Ts>
caf::error make_error(ec code, Ts&&... context) {
  return caf::error{static_cast<uint8_t>(code), ec_category,
                    caf::make_message(std::forward<Ts>(context)...)};
}

/// The varlink error name without interface, e.g. `NotFound`, and the names
/// of its parameters in context order.
struct varlink_error_shape {
  const char* name;
  std::vector<const char*> params;
  /// The interface declaring it when it is not the caller's (e.g.
  /// `org.varlink.service` for InvalidParameter); nullptr = caller's.
  const char* interface;
};

const varlink_error_shape& shape_of(ec code);

/// The code of `err` if it is one of ours, else ec::internal.
ec code_of(const caf::error& err);

/// Human-readable text: `not_found: project p1`.
std::string describe(const caf::error& err);

} // namespace projlink
