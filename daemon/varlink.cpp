#include "daemon/varlink.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace projlink::varlink {

void frame_reader::feed(const char* data, size_t size) {
  if (overflowed_)
    return;
  // Compact once the consumed prefix dominates, so the buffer stays small.
  if (pos_ > 0 && pos_ * 2 >= buf_.size()) {
    buf_.erase(0, pos_);
    scan_ -= pos_;
    pos_ = 0;
  }
  buf_.append(data, size);
}

std::optional<std::string> frame_reader::next() {
  if (overflowed_)
    return std::nullopt;
  auto start = std::max(scan_, pos_);
  auto* base = buf_.data();
  auto* nul = static_cast<const char*>(std::memchr(base + start, '\0', buf_.size() - start));
  if (nul == nullptr) {
    scan_ = buf_.size();
    if (buf_.size() - pos_ > max_)
      overflowed_ = true;
    return std::nullopt;
  }
  auto end = static_cast<size_t>(nul - base);
  if (end - pos_ > max_) {
    overflowed_ = true;
    return std::nullopt;
  }
  std::string msg(base + pos_, end - pos_);
  pos_ = end + 1;
  scan_ = pos_;
  return msg;
}

std::optional<call> parse_call(std::string_view text, std::string& why) {
  json j = json::parse(text.begin(), text.end(), nullptr, false);
  if (j.is_discarded()) {
    why = "message is not valid JSON";
    return std::nullopt;
  }
  if (!j.is_object()) {
    why = "message is not a JSON object";
    return std::nullopt;
  }
  call c;
  auto m = j.find("method");
  if (m == j.end() || !m->is_string() || m->get_ref<const std::string&>().empty()) {
    why = "message has no \"method\" string";
    return std::nullopt;
  }
  c.method = m->get<std::string>();
  if (auto p = j.find("parameters"); p != j.end() && !p->is_null()) {
    if (!p->is_object()) {
      why = "\"parameters\" is not an object";
      return std::nullopt;
    }
    c.parameters = std::move(*p);
  }
  for (auto [key, dst] : {std::pair{"more", &c.more}, std::pair{"oneway", &c.oneway}}) {
    if (auto f = j.find(key); f != j.end() && !f->is_null()) {
      if (!f->is_boolean()) {
        why = std::string("\"") + key + "\" is not a boolean";
        return std::nullopt;
      }
      *dst = f->get<bool>();
    }
  }
  if (auto f = j.find("upgrade"); f != j.end() && f->is_boolean() && f->get<bool>()) {
    why = "protocol upgrades are not supported";
    return std::nullopt;
  }
  return c;
}

namespace {
std::string finish(const json& j) {
  auto s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  s.push_back('\0');
  return s;
}
} // namespace

std::string encode_reply(const json& parameters, bool continues) {
  json j{{"parameters", parameters}};
  if (continues)
    j["continues"] = true;
  return finish(j);
}

std::string encode_error(std::string_view name, const json& parameters) {
  return finish(json{{"error", name}, {"parameters", parameters}});
}

std::string encode_call(std::string_view method, const json& parameters, bool more, bool oneway) {
  json j{{"method", method}, {"parameters", parameters}};
  if (more)
    j["more"] = true;
  if (oneway)
    j["oneway"] = true;
  return finish(j);
}

params::params(const json& p) : p_(p) {
}

const json* params::find(const char* name) {
  used_.emplace_back(name);
  auto it = p_.find(name);
  if (it == p_.end() || it->is_null())
    return nullptr;
  return &*it;
}

std::string params::str(const char* name) {
  if (auto v = opt_str(name))
    return *v;
  throw invalid_parameter(name);
}

std::optional<std::string> params::opt_str(const char* name) {
  auto* v = find(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_string())
    throw invalid_parameter(name);
  return v->get<std::string>();
}

bool params::boolean(const char* name) {
  if (auto v = opt_bool(name))
    return *v;
  throw invalid_parameter(name);
}

std::optional<bool> params::opt_bool(const char* name) {
  auto* v = find(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_boolean())
    throw invalid_parameter(name);
  return v->get<bool>();
}

int64_t params::integer(const char* name) {
  if (auto v = opt_int(name))
    return *v;
  throw invalid_parameter(name);
}

std::optional<int64_t> params::opt_int(const char* name) {
  auto* v = find(name);
  if (v == nullptr)
    return std::nullopt;
  if (v->is_number_unsigned()) {
    if (v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw invalid_parameter(name);
    return static_cast<int64_t>(v->get<uint64_t>());
  }
  if (v->is_number_integer())
    return v->get<int64_t>();
  // varlink's int is a JSON number; accept 3.0 but not 3.5. The range check
  // comes first: casting a double outside int64's range is undefined.
  if (v->is_number_float()) {
    auto d = v->get<double>();
    if (std::isfinite(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0
        && d == std::trunc(d))
      return static_cast<int64_t>(d);
  }
  throw invalid_parameter(name);
}

std::optional<std::vector<std::string>> params::opt_str_list(const char* name) {
  auto* v = find(name);
  if (v == nullptr)
    return std::nullopt;
  if (!v->is_array())
    throw invalid_parameter(name);
  std::vector<std::string> out;
  for (const auto& x : *v) {
    if (!x.is_string())
      throw invalid_parameter(name);
    out.push_back(x.get<std::string>());
  }
  return out;
}

std::vector<std::string> params::str_list(const char* name) {
  if (auto v = opt_str_list(name))
    return *v;
  throw invalid_parameter(name);
}

std::string params::one_of(const char* name, std::initializer_list<const char*> allowed) {
  if (auto v = opt_one_of(name, allowed))
    return *v;
  throw invalid_parameter(name);
}

std::optional<std::string> params::opt_one_of(const char* name,
                                              std::initializer_list<const char*> allowed) {
  auto v = opt_str(name);
  if (v && std::none_of(allowed.begin(), allowed.end(), [&](const char* a) { return *v == a; }))
    throw invalid_parameter(name);
  return v;
}

void params::finish() const {
  for (const auto& kv : p_.items())
    if (std::find(used_.begin(), used_.end(), kv.key()) == used_.end())
      throw invalid_parameter(kv.key());
}

} // namespace projlink::varlink
