#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace projlink {

/// One varlink interface definition as kept in `varlink/NAME.varlink`.
struct interface_text {
  std::string name; ///< e.g. `io.projlink.Directory`
  std::string text; ///< the file's contents, served by GetInterfaceDescription
};

/// Every interface the daemon implements, embedded at build time.
const std::vector<interface_text>& embedded_interfaces();

/// The definition of `name`, or nullptr.
const interface_text* find_interface(std::string_view name);

/// True if interface `iface` declares `method` (a bare method name).
bool declares_method(const interface_text& iface, std::string_view method);

/// Splits `io.projlink.Directory.ListProjects` into interface and method name.
/// Returns false if there is no dot.
bool split_method(std::string_view qualified, std::string_view& iface, std::string_view& method);

} // namespace projlink
