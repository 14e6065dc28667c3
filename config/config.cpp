#include "config/config.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <cstring>
#include <algorithm>

namespace projlink {

namespace fs = std::filesystem;

std::string config::path(const std::string& p) const {
  if (p.empty() || p.front() == '/')
    return p;
  return (fs::path{storage.state_dir} / p).string();
}

std::string config_error::to_string() const {
  std::string out = key.empty() ? "configuration" : key;
  if (line > 0)
    out += " (line " + std::to_string(line) + ", column " + std::to_string(column) + ")";
  return out + ": " + message;
}

namespace {

using marks = std::map<std::string, YAML::Mark>;

/// Walks a YAML tree against the known keys, collecting every error with the
/// key's place in the file.
class reader {
public:
  config_result& out;
  marks& seen;

  using field = std::function<void(const YAML::Node&, const std::string&)>;

  void error(const std::string& key, const YAML::Mark& m, std::string msg) {
    config_error e{key, m.line >= 0 ? m.line + 1 : 0, m.column >= 0 ? m.column + 1 : 0,
                   std::move(msg)};
    out.errors.push_back(std::move(e));
  }

  /// Reads a mapping whose keys must all be in `fields`. A null node (key
  /// present but empty) keeps every default.
  void map(const YAML::Node& node, const std::string& path,
           const std::vector<std::pair<std::string, field>>& fields) {
    if (node.IsNull())
      return;
    if (!node.IsMap()) {
      error(path, node.Mark(), "expected a mapping of keys");
      return;
    }
    std::set<std::string> done;
    for (const auto& kv : node) {
      const auto& k = kv.first;
      if (!k.IsScalar()) {
        error(path, k.Mark(), "keys must be plain names");
        continue;
      }
      auto name = k.Scalar();
      auto full = path.empty() ? name : path + "." + name;
      if (!done.insert(name).second) {
        error(full, k.Mark(), "duplicate key");
        continue;
      }
      auto it = std::find_if(fields.begin(), fields.end(),
                             [&](const auto& f) { return f.first == name; });
      if (it == fields.end()) {
        std::string known;
        for (const auto& f : fields)
          known += (known.empty() ? "" : ", ") + f.first;
        error(full, k.Mark(), "unknown key (known here: " + known + ")");
        continue;
      }
      seen[full] = kv.second.Mark();
      it->second(kv.second, full);
    }
  }

  bool scalar(const YAML::Node& n, const std::string& key, const char* what) {
    if (n.IsScalar())
      return true;
    error(key, n.Mark(), std::string("expected ") + what);
    return false;
  }

  field string(std::string& dst) {
    return [this, &dst](const YAML::Node& n, const std::string& key) {
      if (scalar(n, key, "a string"))
        dst = n.Scalar();
    };
  }

  field boolean(bool& dst) {
    return [this, &dst](const YAML::Node& n, const std::string& key) {
      bool v = false;
      if (scalar(n, key, "true or false") && YAML::convert<bool>::decode(n, v))
        dst = v;
      else if (n.IsScalar())
        error(key, n.Mark(), "expected true or false, got '" + n.Scalar() + "'");
    };
  }

  template <class T>
  field integer(T& dst, uint64_t min, uint64_t max) {
    return [this, &dst, min, max](const YAML::Node& n, const std::string& key) {
      if (!scalar(n, key, "a whole number"))
        return;
      static const std::regex digits("[0-9]+");
      uint64_t v = 0;
      if (!std::regex_match(n.Scalar(), digits) || !YAML::convert<uint64_t>::decode(n, v)) {
        error(key, n.Mark(), "expected a whole number, got '" + n.Scalar() + "'");
        return;
      }
      if (v < min || v > max) {
        error(key, n.Mark(),
              "must be between " + std::to_string(min) + " and " + std::to_string(max));
        return;
      }
      dst = static_cast<T>(v);
    };
  }

  /// Every duration has a range (SPEC §8): by default 1ms to 3650d; a value
  /// outside it is an error, never a silent wrap.
  field dur(duration& dst, duration min = duration{1},
            duration max = std::chrono::hours{24 * 3650}) {
    return [this, &dst, min, max](const YAML::Node& n, const std::string& key) {
      if (!scalar(n, key, "a duration such as 500ms, 5m or 30d"))
        return;
      if (auto d = parse_duration(n.Scalar())) {
        if (*d < min || *d > max)
          error(key, n.Mark(),
                "must be between " + format_duration(min) + " and " + format_duration(max));
        else
          dst = *d;
      } else
        error(key, n.Mark(),
              "bad duration '" + n.Scalar() + "' (write e.g. 500ms, 30s, 5m, 2h, 30d)");
    };
  }

  /// Every size has a range too: by default 1B to 1TiB.
  field size(uint64_t& dst, uint64_t min = 1, uint64_t max = uint64_t{1} << 40) {
    return [this, &dst, min, max](const YAML::Node& n, const std::string& key) {
      if (!scalar(n, key, "a size such as 64KiB or 1MiB"))
        return;
      if (auto s = parse_size(n.Scalar())) {
        if (*s < min || *s > max)
          error(key, n.Mark(),
                "must be between " + format_size(min) + " and " + format_size(max));
        else
          dst = *s;
      } else
        error(key, n.Mark(), "bad size '" + n.Scalar() + "' (write e.g. 4096, 64KiB, 1MiB)");
    };
  }

  template <class E>
  field choice(E& dst, std::vector<std::pair<std::string, E>> options) {
    return [this, &dst, options](const YAML::Node& n, const std::string& key) {
      std::string names;
      for (const auto& o : options)
        names += (names.empty() ? "" : " | ") + o.first;
      if (!scalar(n, key, names.c_str()))
        return;
      for (const auto& o : options)
        if (o.first == n.Scalar()) {
          dst = o.second;
          return;
        }
      error(key, n.Mark(), "bad value '" + n.Scalar() + "' (one of: " + names + ")");
    };
  }

  void list(const YAML::Node& n, const std::string& key,
            const std::function<void(const YAML::Node&, const std::string&)>& item) {
    if (n.IsNull())
      return;
    if (!n.IsSequence()) {
      error(key, n.Mark(), "expected a list, e.g. [a, b]");
      return;
    }
    for (size_t i = 0; i < n.size(); ++i)
      item(n[i], key + "[" + std::to_string(i) + "]");
  }

  field strings(std::vector<std::string>& dst) {
    return [this, &dst](const YAML::Node& n, const std::string& key) {
      dst.clear();
      list(n, key, [&](const YAML::Node& item, const std::string& k) {
        if (scalar(item, k, "a string"))
          dst.push_back(item.Scalar());
      });
    };
  }

  /// A list of numeric ids or names; `users` selects passwd or group lookup.
  template <class Id>
  field ids(std::vector<Id>& dst, std::vector<std::string>& unresolved, bool users) {
    return [this, &dst, &unresolved, users](const YAML::Node& n, const std::string& key) {
      dst.clear();
      unresolved.clear();
      list(n, key, [&](const YAML::Node& item, const std::string& k) {
        if (!scalar(item, k, users ? "a uid or user name" : "a gid or group name"))
          return;
        const auto& s = item.Scalar();
        static const std::regex digits("[0-9]{1,10}");
        if (std::regex_match(s, digits)) {
          dst.push_back(static_cast<Id>(std::stoull(s)));
          return;
        }
        if (users) {
          if (auto* pw = getpwnam(s.c_str())) {
            dst.push_back(static_cast<Id>(pw->pw_uid));
            return;
          }
        } else if (auto* gr = getgrnam(s.c_str())) {
          dst.push_back(static_cast<Id>(gr->gr_gid));
          return;
        }
        unresolved.push_back(s);
        out.warnings.push_back(k + ": no " + (users ? "user" : "group") + " named '" + s
                               + "' on this system; ignored");
      });
    };
  }

  field peers(peer_set& dst) {
    return [this, &dst](const YAML::Node& n, const std::string& key) {
      map(n, key,
          {{"uids", ids(dst.uids, dst.unresolved, true)},
           {"groups", ids(dst.groups, dst.unresolved, false)}});
    };
  }

  field retry(retry_policy& dst) {
    return [this, &dst](const YAML::Node& n, const std::string& key) {
      map(n, key,
          {{"initial", dur(dst.initial)},
           {"max", dur(dst.max)},
           {"attempts", integer(dst.attempts, 1, 1'000'000)}});
    };
  }

  void root(const YAML::Node& doc, config& c) {
    // peer_set defaults are replaced key by key: keep unresolved names of a
    // default list only while that list is not overridden.
    map(doc, "",
        {{"control",
          [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"socket", string(c.control.socket)},
                 {"socket_mode",
                  [&](const YAML::Node& m, const std::string& key) {
                    if (!scalar(m, key, "an octal mode such as \"0660\""))
                      return;
                    static const std::regex octal("0?[0-7]{3}");
                    if (!std::regex_match(m.Scalar(), octal)) {
                      error(key, m.Mark(),
                            "bad mode '" + m.Scalar() + "' (write an octal mode such as \"0660\")");
                      return;
                    }
                    c.control.socket_mode = static_cast<mode_t>(std::stoul(m.Scalar(), nullptr, 8));
                  }},
                 {"operators", peers(c.control.operators)},
                 {"clients", peers(c.control.clients)},
                 {"delegates", peers(c.control.delegates)},
                 {"identities",
                  [&](const YAML::Node& m, const std::string& key) {
                    c.control.identities.clear();
                    list(m, key, [&](const YAML::Node& item, const std::string& ik) {
                      identity_entry e;
                      bool has_uid = false, has_user = false;
                      map(item, ik,
                          {{"uid",
                            [&](const YAML::Node& u, const std::string& uk) {
                              integer(e.uid, 0, 4'294'967'294)(u, uk);
                              has_uid = true;
                            }},
                           {"user", [&](const YAML::Node& u, const std::string& uk) {
                              string(e.user)(u, uk);
                              has_user = true;
                            }}});
                      if (item.IsMap() && (!has_uid || !has_user || e.user.empty())) {
                        error(ik, item.Mark(), "needs uid and user, e.g. { uid: 1001, user: alice }");
                        return;
                      }
                      if (item.IsMap())
                        c.control.identities.push_back(std::move(e));
                    });
                  }},
                 {"max_clients_per_uid", integer(c.control.max_clients_per_uid, 1, 1'000'000)},
                 {"max_clients", integer(c.control.max_clients, 1, 1'000'000)},
                 {"operator_slots", integer(c.control.operator_slots, 0, 1'000)},
                 {"max_calls_in_flight", integer(c.control.max_calls_in_flight, 1, 100'000)},
                 {"max_unread_reply_bytes",
                  size(c.control.max_unread_reply_bytes, uint64_t{4} << 20, uint64_t{64} << 30)},
                 {"reply_memory", size(c.control.reply_memory, uint64_t{4} << 20, uint64_t{1} << 40)},
                 {"max_message_bytes",
                  size(c.control.max_message_bytes, 1024, uint64_t{1} << 30)},
                 {"fd_timeout", dur(c.control.fd_timeout, duration{100}, std::chrono::hours{24})},
                 {"idle_timeout",
                  dur(c.control.idle_timeout, duration{100}, std::chrono::hours{24 * 365})}});
          }},
         {"storage",
          [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"state_dir", string(c.storage.state_dir)},
                 {"database", string(c.storage.database)},
                 {"blobs", string(c.storage.blobs)},
                 {"import_dirs", strings(c.storage.import_dirs)},
                 {"max_upload_bytes", size(c.storage.max_upload_bytes, 1, uint64_t{1} << 44)}});
          }},
         {"connections",
          [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"undo_window", dur(c.connections.undo_window)},
                 {"request_ttl", dur(c.connections.request_ttl)},
                 {"max_drawing_revisions",
                  integer(c.connections.max_drawing_revisions, 0, uint64_t{1} << 40)}});
          }},
         {"sync",
          [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"workers", integer(c.sync.workers, 1, 256)},
                 {"retry", retry(c.sync.retry)}});
          }},
         {"notifications",
          [&](const YAML::Node& n, const std::string& k) {
            auto& nt = c.notifications;
            map(n, k,
                {{"delivery", choice(nt.delivery, {{"maildir", delivery_kind::maildir},
                                                   {"smtp", delivery_kind::smtp},
                                                   {"log", delivery_kind::log}})},
                 {"from", string(nt.from)},
                 {"maildir", string(nt.maildir)},
                 {"smtp",
                  [&](const YAML::Node& m, const std::string& key) {
                    map(m, key,
                        {{"url", string(nt.smtp.url)},
                         {"username", string(nt.smtp.username)},
                         {"password_file", string(nt.smtp.password_file)},
                         {"starttls", boolean(nt.smtp.starttls)}});
                  }},
                 {"retry", retry(nt.retry)}});
          }},
         {"actors",
          [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"scheduler_threads", integer(c.actors.scheduler_threads, 0, 512)},
                 {"passivate_after", dur(c.actors.passivate_after)},
                 {"max_live", integer(c.actors.max_live, 1, 100'000'000)}});
          }},
         {"logging", [&](const YAML::Node& n, const std::string& k) {
            map(n, k,
                {{"level", choice(c.logging.level, {{"trace", std::string("trace")},
                                                    {"debug", std::string("debug")},
                                                    {"info", std::string("info")},
                                                    {"warn", std::string("warn")},
                                                    {"error", std::string("error")}})},
                 {"format", choice(c.logging.format,
                                   {{"text", log_format::text}, {"json", log_format::json}})}});
          }},
         {"metrics", [&](const YAML::Node& n, const std::string& k) {
            map(n, k, {{"listen", string(c.metrics.listen)}});
          }}});
  }
};

std::vector<config_error> validate_with(const config& c, const marks& seen) {
  std::vector<config_error> errs;
  auto fail = [&](const std::string& key, std::string msg) {
    config_error e{key, 0, 0, std::move(msg)};
    if (auto it = seen.find(key); it != seen.end()) {
      e.line = it->second.line + 1;
      e.column = it->second.column + 1;
    }
    errs.push_back(std::move(e));
  };
  if (c.storage.state_dir.empty())
    fail("storage.state_dir", "must not be empty");
  if (c.control.socket.empty())
    fail("control.socket", "must not be empty");
  if (c.storage.database.empty())
    fail("storage.database", "must not be empty");
  if (c.storage.blobs.empty())
    fail("storage.blobs", "must not be empty");
  if (c.control.max_message_bytes < 1024)
    fail("control.max_message_bytes", "must be at least 1KiB");
  if (c.control.idle_timeout.count() < 100)
    fail("control.idle_timeout", "must be at least 100ms");
  // §6.3: a delegate or identity must also be admitted (operators or
  // clients); a uid listed twice in identities, or also matched by
  // operators or delegates, is an error.
  auto has = [](const auto& v, auto x) { return std::find(v.begin(), v.end(), x) != v.end(); };
  auto admitted_uid = [&](uid_t uid) {
    if (has(c.control.operators.uids, uid) || has(c.control.clients.uids, uid))
      return true;
    // Through a group: the uid's groups as the system knows them now.
    auto* pw = ::getpwuid(uid);
    if (pw == nullptr)
      return false;
    int n = 64;
    std::vector<gid_t> groups(static_cast<size_t>(n));
    if (::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n) < 0) {
      groups.resize(static_cast<size_t>(n));
      ::getgrouplist(pw->pw_name, pw->pw_gid, groups.data(), &n);
    }
    groups.resize(static_cast<size_t>(std::max(n, 0)));
    for (auto g : groups)
      if (has(c.control.operators.groups, g) || has(c.control.clients.groups, g))
        return true;
    return false;
  };
  for (auto uid : c.control.delegates.uids)
    if (!admitted_uid(uid))
      fail("control.delegates.uids",
           "uid " + std::to_string(uid) + " must also be under control.operators or control.clients");
  for (auto g : c.control.delegates.groups)
    if (!has(c.control.operators.groups, g) && !has(c.control.clients.groups, g))
      fail("control.delegates.groups",
           "group " + std::to_string(g) + " must also be under control.operators or control.clients");
  for (size_t i = 0; i < c.control.identities.size(); ++i) {
    auto uid = c.control.identities[i].uid;
    auto key = "control.identities[" + std::to_string(i) + "].uid";
    bool twice = false;
    for (size_t j = 0; j < i; ++j)
      twice = twice || c.control.identities[j].uid == uid;
    if (twice)
      fail(key, "uid " + std::to_string(uid) + " is listed twice");
    else if (has(c.control.operators.uids, uid) || has(c.control.delegates.uids, uid))
      fail(key, "uid " + std::to_string(uid)
                  + " is also under control.operators or control.delegates, which act as anyone");
    else if (!admitted_uid(uid))
      fail(key, "uid " + std::to_string(uid) + " must also be under control.operators or control.clients");
  }
  for (const auto& d : c.storage.import_dirs)
    if (d.empty() || d.front() != '/')
      fail("storage.import_dirs", "'" + d + "' must be an absolute path");
  if (c.connections.undo_window.count() <= 0)
    fail("connections.undo_window", "must be longer than 0");
  if (c.connections.request_ttl.count() <= 0)
    fail("connections.request_ttl", "must be longer than 0");
  if (c.actors.passivate_after.count() <= 0)
    fail("actors.passivate_after", "must be longer than 0");
  for (auto [key, r] : {std::pair{"sync.retry", c.sync.retry},
                        std::pair{"notifications.retry", c.notifications.retry}}) {
    if (r.initial.count() <= 0)
      fail(std::string(key) + ".initial", "must be longer than 0");
    if (r.max < r.initial)
      fail(std::string(key) + ".max", "must not be shorter than " + std::string(key) + ".initial");
  }
  if (!c.metrics.listen.empty() && !parse_listen_address(c.metrics.listen))
    fail("metrics.listen", "'" + c.metrics.listen
                             + "' is not HOST:PORT with a numeric address, e.g. 127.0.0.1:9464 "
                               "or [::1]:9464");
  if (c.notifications.from.find('@') == std::string::npos)
    fail("notifications.from", "'" + c.notifications.from + "' is not a mail address");
  if (c.notifications.delivery == delivery_kind::maildir && c.notifications.maildir.empty())
    fail("notifications.maildir", "must not be empty when delivery is maildir");
  if (c.notifications.delivery == delivery_kind::smtp) {
    const auto& url = c.notifications.smtp.url;
    if (url.rfind("smtp://", 0) != 0 && url.rfind("smtps://", 0) != 0)
      fail("notifications.smtp.url", "'" + url + "' must start with smtp:// or smtps://");
  }
  return errs;
}

} // namespace

std::optional<listen_address> parse_listen_address(const std::string& s) {
  auto colon = s.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 >= s.size() || s.size() - colon > 6)
    return std::nullopt;
  listen_address a;
  a.host = s.substr(0, colon);
  auto port = s.substr(colon + 1);
  if (!std::all_of(port.begin(), port.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return std::nullopt;
  auto p = std::stoul(port);
  if (p > 65535)
    return std::nullopt;
  a.port = static_cast<uint16_t>(p);
  unsigned char buf[16];
  if (a.host.size() > 2 && a.host.front() == '[' && a.host.back() == ']') {
    a.host = a.host.substr(1, a.host.size() - 2);
    a.v6 = true;
    if (::inet_pton(AF_INET6, a.host.c_str(), buf) != 1)
      return std::nullopt;
  } else if (::inet_pton(AF_INET, a.host.c_str(), buf) != 1) {
    return std::nullopt;
  }
  return a;
}

std::vector<config_error> validate(const config& cfg) {
  return validate_with(cfg, {});
}

config_result parse_config(const std::string& text) {
  config_result result;
  config c;
  marks seen;
  YAML::Node doc;
  try {
    doc = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    result.errors.push_back(
      {"", e.mark.line + 1, e.mark.column + 1, "not valid YAML: " + e.msg});
    return result;
  }
  if (doc.IsDefined() && !doc.IsNull()) {
    reader r{result, seen};
    r.root(doc, c);
  }
  // A default "clients.groups: [projlink]" that does not resolve is expected
  // on machines without the service's group: say so once, quietly.
  if (!seen.count("control.clients") && !c.control.clients.unresolved.empty()
      && getgrnam("projlink") != nullptr) {
    c.control.clients.groups.push_back(getgrnam("projlink")->gr_gid);
    c.control.clients.unresolved.clear();
  }
  auto more = validate_with(c, seen);
  result.errors.insert(result.errors.end(), more.begin(), more.end());
  if (result.errors.empty())
    result.cfg = std::move(c);
  return result;
}

config_result load_config(const std::string& file) {
  std::ifstream in(file);
  if (!in) {
    config_result r;
    r.errors.push_back({"", 0, 0, "cannot read " + file + ": " + std::strerror(errno)});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto r = parse_config(ss.str());
  if (r.cfg)
    r.cfg->source = file;
  return r;
}

config local_config(const std::string& dir) {
  config c;
  std::error_code ec;
  auto abs = fs::absolute(dir, ec);
  c.storage.state_dir = (ec ? fs::path{dir} : abs).lexically_normal().string();
  if (c.storage.state_dir.size() > 1 && c.storage.state_dir.back() == '/')
    c.storage.state_dir.pop_back();
  c.control.socket = "projlink.sock";
  c.control.operators.uids = {0, getuid()};
  c.control.clients = peer_set{{}, {getgid()}, {}};
  return c;
}

} // namespace projlink
