// libFuzzer target: the YAML configuration loader (SPEC §8).
// Any text must give either a configuration that validates or named errors;
// never a crash, a hang or an exception.

#include "config/config.hpp"

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  auto r = projlink::parse_config(text);
  // Exactly one of: a configuration, or at least one error.
  if (r.cfg.has_value() == !r.errors.empty())
    std::abort();
  for (const auto& e : r.errors)
    if (e.to_string().empty())
      std::abort();
  if (r.cfg && !projlink::validate(*r.cfg).empty())
    std::abort(); // what parse_config accepted must validate
  return 0;
}
