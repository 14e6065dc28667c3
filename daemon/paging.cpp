#include "daemon/paging.hpp"

namespace projlink::paging {

namespace {

std::string scope_hash(const std::string& scope) {
  uint64_t h = 1469598103934665603ULL; // FNV-1a, 64 bits
  for (unsigned char c : scope) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  static const char* hex = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i, h >>= 4)
    out[static_cast<size_t>(i)] = hex[h & 15];
  return out;
}

std::string to_hex(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string out;
  out.reserve(s.size() * 2);
  for (unsigned char c : s) {
    out += hex[c >> 4];
    out += hex[c & 15];
  }
  return out;
}

std::optional<std::string> from_hex(const std::string& s) {
  if (s.size() % 2 != 0)
    return std::nullopt;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < s.size(); i += 2) {
    int a = val(s[i]), b = val(s[i + 1]);
    if (a < 0 || b < 0)
      return std::nullopt;
    out += static_cast<char>(a * 16 + b);
  }
  return out;
}

} // namespace

std::string token(const std::string& scope, const std::string& key) {
  return "p1." + scope_hash(scope) + "." + to_hex(key);
}

std::optional<std::string> decode(const std::string& scope, const std::string& t) {
  auto prefix = "p1." + scope_hash(scope) + ".";
  if (t.size() > 4096 || t.compare(0, prefix.size(), prefix) != 0 || t.size() == prefix.size())
    return std::nullopt;
  return from_hex(t.substr(prefix.size()));
}

request read(varlink::params& p, const std::string& scope) {
  request r;
  if (auto a = p.opt_str("after")) {
    r.after = decode(scope, *a);
    if (!r.after)
      throw varlink::invalid_parameter("after");
  }
  r.limit = p.opt_int("limit").value_or(default_limit);
  if (r.limit < 1 || r.limit > max_limit)
    throw varlink::invalid_parameter("limit");
  return r;
}

void fill(varlink::json& reply, const char* list_key, std::vector<varlink::json> items,
          const std::vector<std::string>& keys, int64_t limit, const std::string& scope) {
  auto out = varlink::json::array();
  size_t bytes = 256; // the envelope and `next`
  size_t n = 0;
  bool more = false;
  for (; n < items.size(); ++n) {
    if (static_cast<int64_t>(n) == limit) {
      more = true;
      break;
    }
    auto size = items[n].dump().size() + 1;
    if (n > 0 && bytes + size > max_page_bytes) {
      more = true;
      break;
    }
    bytes += size;
    out.push_back(std::move(items[n]));
  }
  reply[list_key] = std::move(out);
  if (more && n > 0)
    reply["next"] = token(scope, keys[n - 1]);
}

} // namespace projlink::paging
