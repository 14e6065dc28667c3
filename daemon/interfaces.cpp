#include "daemon/interfaces.hpp"

#include <sstream>

namespace projlink {

const interface_text* find_interface(std::string_view name) {
  for (const auto& i : embedded_interfaces())
    if (i.name == name)
      return &i;
  return nullptr;
}

bool declares_method(const interface_text& iface, std::string_view method) {
  std::istringstream in(iface.text);
  std::string line;
  while (std::getline(in, line)) {
    auto pos = line.find_first_not_of(" \t");
    if (pos == std::string::npos || line.compare(pos, 7, "method ") != 0)
      continue;
    pos = line.find_first_not_of(" \t", pos + 7);
    auto end = line.find_first_of(" \t(", pos);
    if (line.compare(pos, end - pos, method) == 0 && end - pos == method.size())
      return true;
  }
  return false;
}

bool split_method(std::string_view qualified, std::string_view& iface, std::string_view& method) {
  auto dot = qualified.rfind('.');
  if (dot == std::string_view::npos || dot == 0 || dot + 1 == qualified.size())
    return false;
  iface = qualified.substr(0, dot);
  method = qualified.substr(dot + 1);
  return true;
}

} // namespace projlink
