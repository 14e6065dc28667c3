#include "actors/directory_db.hpp"
#include "actors/sql_util.hpp"

#include "actors/error.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <functional>
#include <set>

namespace projlink::directory {

namespace {

using SQLite::Statement;

bool valid_name(const std::string& s) {
  return !s.empty() && s.size() <= 256
         && std::none_of(s.begin(), s.end(), [](unsigned char c) { return c < 0x20; });
}

bool valid_email(const std::string& s) {
  auto at = s.find('@');
  return s.size() <= 254 && at != std::string::npos && at > 0 && at + 1 < s.size()
         && s.find('@', at + 1) == std::string::npos
         && std::none_of(s.begin(), s.end(),
                         [](unsigned char c) { return c <= 0x20 || c == '<' || c == '>'; });
}

caf::error bad(const char* parameter) {
  return make_error(ec::invalid_parameter, std::string{parameter});
}

caf::error missing(const char* kind, const std::string& id) {
  return make_error(ec::not_found, std::string{kind}, id);
}

company read_company(Statement& q) {
  return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getInt() != 0};
}

project read_project(Statement& q) {
  return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
          q.getColumn(3).getInt() != 0,
          parse_project_role(q.getColumn(4).getString()).value_or(project_role::none),
          q.getColumn(5).getInt() != 0, q.getColumn(6).getInt64()};
}

user read_user(Statement& q) {
  return {q.getColumn(0).getString(), q.getColumn(1).getString(), q.getColumn(2).getString(),
          q.getColumn(3).getString(), q.getColumn(4).getInt() != 0};
}

access read_access(Statement& q) {
  return {q.getColumn(0).getString(), q.getColumn(1).getString(),
          static_cast<level>(q.getColumn(2).getInt()), static_cast<level>(q.getColumn(3).getInt())};
}

constexpr const char* company_cols = "id, name, auto_approve";
constexpr const char* project_cols
  = "id, company, name, active, role, permanently_disconnected, revisions";
constexpr const char* user_cols = "id, email, name, company, company_admin";

bool exists(db& d, const char* sql, const std::string& key) {
  sql::stmt q(d, sql);
  q.bind(1, key);
  return q.executeStep();
}

} // namespace

// --- companies --------------------------------------------------------------

caf::expected<company> get_company(db& d, const std::string& id) {
  sql::stmt q(d, std::string("SELECT ") + company_cols + " FROM companies WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return missing("company", id);
  return read_company(q);
}

caf::expected<company> create_company(db& d, const company& c) {
  if (!valid_id(c.id))
    return bad("id");
  if (!valid_name(c.name))
    return bad("name");
  if (exists(d, "SELECT 1 FROM companies WHERE id = ?", c.id))
    return make_error(ec::already_exists, std::string{"company"}, c.id);
  sql::stmt q(d, "INSERT INTO companies (id, name, auto_approve) VALUES (?, ?, ?)");
  q.bind(1, c.id);
  q.bind(2, c.name);
  q.bind(3, c.auto_approve ? 1 : 0);
  q.exec();
  return c;
}

caf::expected<company> update_company(db& d, const std::string& id,
                                      const std::optional<std::string>& name,
                                      std::optional<bool> auto_approve) {
  auto c = get_company(d, id);
  if (!c)
    return c;
  if (name && !valid_name(*name))
    return bad("name");
  if (name)
    c->name = *name;
  if (auto_approve)
    c->auto_approve = *auto_approve;
  sql::stmt q(d, "UPDATE companies SET name = ?, auto_approve = ? WHERE id = ?");
  q.bind(1, c->name);
  q.bind(2, c->auto_approve ? 1 : 0);
  q.bind(3, id);
  q.exec();
  return c;
}

caf::expected<std::vector<company>> list_companies(db& d, const std::optional<std::string>& after,
                                                   int64_t limit) {
  sql::stmt q(d, std::string("SELECT ") + company_cols
                   + " FROM companies WHERE (?1 IS NULL OR id > ?1) ORDER BY id LIMIT ?2");
  sql::bind_opt(q, 1, after);
  q.bind(2, limit);
  std::vector<company> out;
  while (q.executeStep())
    out.push_back(read_company(q));
  return out;
}

// --- projects ---------------------------------------------------------------

caf::expected<rules::levels> levels_in(db& d, const user& u, const std::string& project) {
  sql::stmt q(d, "SELECT p.company, a.cm, a.drawings FROM projects p "
                 "LEFT JOIN access a ON a.project = p.id AND a.user = ?2 WHERE p.id = ?1");
  q.bind(1, project);
  q.bind(2, u.id);
  if (!q.executeStep())
    return missing("project", project);
  rules::levels entry;
  if (!q.getColumn(1).isNull())
    entry = {static_cast<level>(q.getColumn(1).getInt()),
             static_cast<level>(q.getColumn(2).getInt())};
  return rules::effective({u.id, u.company, u.company_admin}, q.getColumn(0).getString(), entry);
}

caf::expected<bool> project_exists(db& d, const std::string& id) {
  return exists(d, "SELECT 1 FROM projects WHERE id = ?", id);
}

caf::expected<project> get_project(db& d, const std::string& id) {
  sql::stmt q(d, std::string("SELECT ") + project_cols + " FROM projects WHERE id = ?");
  q.bind(1, id);
  if (!q.executeStep())
    return missing("project", id);
  return read_project(q);
}

caf::expected<project> create_project(db& d, const project& p) {
  if (!valid_id(p.id))
    return bad("id");
  if (!valid_name(p.name))
    return bad("name");
  if (!exists(d, "SELECT 1 FROM companies WHERE id = ?", p.company))
    return missing("company", p.company);
  if (exists(d, "SELECT 1 FROM projects WHERE id = ?", p.id))
    return make_error(ec::already_exists, std::string{"project"}, p.id);
  sql::stmt q(d, "INSERT INTO projects (id, company, name, active) VALUES (?, ?, ?, ?)");
  q.bind(1, p.id);
  q.bind(2, p.company);
  q.bind(3, p.name);
  q.bind(4, p.active ? 1 : 0);
  q.exec();
  return get_project(d, p.id);
}

caf::expected<project> update_project(db& d, const std::string& id,
                                      const std::optional<std::string>& name,
                                      std::optional<bool> active) {
  auto p = get_project(d, id);
  if (!p)
    return p;
  if (name && !valid_name(*name))
    return bad("name");
  if (name)
    p->name = *name;
  if (active)
    p->active = *active;
  sql::stmt q(d, "UPDATE projects SET name = ?, active = ? WHERE id = ?");
  q.bind(1, p->name);
  q.bind(2, p->active ? 1 : 0);
  q.bind(3, id);
  q.exec();
  return p;
}

caf::expected<std::vector<project>> list_projects(db& d,
                                                  const std::optional<std::string>& company,
                                                  const std::optional<std::string>& after,
                                                  int64_t limit) {
  if (company && !exists(d, "SELECT 1 FROM companies WHERE id = ?", *company))
    return missing("company", *company);
  sql::stmt q(d, std::string("SELECT ") + project_cols
                   + " FROM projects WHERE (?1 IS NULL OR company = ?1) AND (?2 IS NULL OR id > ?2)"
                     " ORDER BY id LIMIT ?3");
  sql::bind_opt(q, 1, company);
  sql::bind_opt(q, 2, after);
  q.bind(3, limit);
  std::vector<project> out;
  while (q.executeStep())
    out.push_back(read_project(q));
  return out;
}

// --- users ------------------------------------------------------------------

caf::expected<user> find_user(db& d, const std::string& id_or_email) {
  bool by_email = id_or_email.find('@') != std::string::npos;
  sql::stmt q(d, std::string("SELECT ") + user_cols + " FROM users WHERE "
                   + (by_email ? "email = ?" : "id = ?"));
  q.bind(1, id_or_email);
  if (!q.executeStep())
    return missing("user", id_or_email);
  return read_user(q);
}

caf::expected<user> create_user(db& d, const user& u) {
  if (!valid_id(u.id))
    return bad("id");
  if (!valid_email(u.email))
    return bad("email");
  if (!valid_name(u.name))
    return bad("name");
  if (!exists(d, "SELECT 1 FROM companies WHERE id = ?", u.company))
    return missing("company", u.company);
  if (exists(d, "SELECT 1 FROM users WHERE id = ?", u.id))
    return make_error(ec::already_exists, std::string{"user"}, u.id);
  if (exists(d, "SELECT 1 FROM users WHERE email = ?", u.email))
    return make_error(ec::already_exists, std::string{"email"}, u.email);
  sql::stmt q(d, "INSERT INTO users (id, email, name, company, company_admin) VALUES (?, ?, ?, ?, ?)");
  q.bind(1, u.id);
  q.bind(2, u.email);
  q.bind(3, u.name);
  q.bind(4, u.company);
  q.bind(5, u.company_admin ? 1 : 0);
  q.exec();
  return u;
}

caf::expected<user> update_user(db& d, const std::string& id,
                                const std::optional<std::string>& name,
                                const std::optional<std::string>& email,
                                std::optional<bool> company_admin) {
  if (id.find('@') != std::string::npos)
    return missing("user", id);
  auto u = find_user(d, id);
  if (!u)
    return u;
  if (name && !valid_name(*name))
    return bad("name");
  if (email && !valid_email(*email))
    return bad("email");
  if (email) {
    sql::stmt q(d, "SELECT 1 FROM users WHERE email = ? AND id <> ?");
    q.bind(1, *email);
    q.bind(2, id);
    if (q.executeStep())
      return make_error(ec::already_exists, std::string{"email"}, *email);
    u->email = *email;
  }
  if (name)
    u->name = *name;
  if (company_admin)
    u->company_admin = *company_admin;
  sql::stmt q(d, "UPDATE users SET email = ?, name = ?, company_admin = ? WHERE id = ?");
  q.bind(1, u->email);
  q.bind(2, u->name);
  q.bind(3, u->company_admin ? 1 : 0);
  q.bind(4, id);
  q.exec();
  return u;
}

caf::expected<std::vector<user>> list_users(db& d, const std::optional<std::string>& company,
                                            const std::optional<std::string>& after,
                                            int64_t limit) {
  if (company && !exists(d, "SELECT 1 FROM companies WHERE id = ?", *company))
    return missing("company", *company);
  sql::stmt q(d, std::string("SELECT ") + user_cols
                   + " FROM users WHERE (?1 IS NULL OR company = ?1) AND (?2 IS NULL OR id > ?2)"
                     " ORDER BY id LIMIT ?3");
  sql::bind_opt(q, 1, company);
  sql::bind_opt(q, 2, after);
  q.bind(3, limit);
  std::vector<user> out;
  while (q.executeStep())
    out.push_back(read_user(q));
  return out;
}

// --- access -----------------------------------------------------------------

caf::expected<access> set_access(db& d, const std::string& project, const std::string& user,
                                 std::optional<level> cm, std::optional<level> drawings) {
  if (!exists(d, "SELECT 1 FROM projects WHERE id = ?", project))
    return missing("project", project);
  auto u = find_user(d, user);
  if (!u)
    return u.error();
  access a{project, u->id, level::none, level::none};
  {
    sql::stmt q(d, "SELECT project, user, cm, drawings FROM access WHERE project = ? AND user = ?");
    q.bind(1, project);
    q.bind(2, u->id);
    if (q.executeStep())
      a = read_access(q);
  }
  if (cm)
    a.cm = *cm;
  if (drawings)
    a.drawings = *drawings;
  sql::stmt q(d, "INSERT INTO access (project, user, cm, drawings) VALUES (?, ?, ?, ?) "
                 "ON CONFLICT (project, user) DO UPDATE SET cm = excluded.cm, "
                 "drawings = excluded.drawings");
  q.bind(1, a.project);
  q.bind(2, a.user);
  q.bind(3, static_cast<int>(a.cm));
  q.bind(4, static_cast<int>(a.drawings));
  q.exec();
  return a;
}

caf::expected<void> remove_access(db& d, const std::string& project, const std::string& user) {
  if (!exists(d, "SELECT 1 FROM projects WHERE id = ?", project))
    return missing("project", project);
  auto u = find_user(d, user);
  if (!u)
    return u.error();
  sql::stmt q(d, "DELETE FROM access WHERE project = ? AND user = ?");
  q.bind(1, project);
  q.bind(2, u->id);
  if (q.exec() == 0)
    return missing("access", project + "/" + u->id);
  return caf::unit;
}

caf::expected<std::vector<access>> list_access(db& d, const std::string& project,
                                               const std::optional<std::string>& after,
                                               int64_t limit) {
  if (!exists(d, "SELECT 1 FROM projects WHERE id = ?", project))
    return missing("project", project);
  sql::stmt q(d, "SELECT project, user, cm, drawings FROM access WHERE project = ?1"
                 " AND (?2 IS NULL OR user > ?2) ORDER BY user LIMIT ?3");
  q.bind(1, project);
  sql::bind_opt(q, 2, after);
  q.bind(3, limit);
  std::vector<access> out;
  while (q.executeStep())
    out.push_back(read_access(q));
  return out;
}

// --- import -----------------------------------------------------------------

namespace {

/// Reads one item of an Import document; every problem becomes
/// InvalidDocument at the place it was found.
struct item_reader {
  const YAML::Node& node;
  std::set<std::string> allowed;
  std::optional<caf::error> err;

  caf::error at(const YAML::Node& n, const std::string& msg) {
    auto m = n.Mark();
    return make_error(ec::invalid_document, int64_t{m.line + 1}, int64_t{m.column + 1}, msg);
  }

  bool check() {
    if (!node.IsMap()) {
      err = at(node, "expected a mapping");
      return false;
    }
    for (const auto& kv : node) {
      auto k = kv.first.IsScalar() ? kv.first.Scalar() : std::string{};
      if (!allowed.count(k)) {
        std::string known;
        for (const auto& a : allowed)
          known += (known.empty() ? "" : ", ") + a;
        err = at(kv.first, "unknown field '" + k + "' (known: " + known + ")");
        return false;
      }
      if (!kv.second.IsScalar()) {
        err = at(kv.second, "field '" + k + "' must be a plain value");
        return false;
      }
    }
    return true;
  }

  std::optional<std::string> str(const char* key) {
    auto n = node[key];
    if (!n.IsDefined() || n.IsNull())
      return std::nullopt;
    return n.Scalar();
  }

  std::optional<std::string> required(const char* key) {
    auto v = str(key);
    if (!v && !err)
      err = at(node, std::string("missing field '") + key + "'");
    return v;
  }

  std::optional<bool> boolean(const char* key) {
    auto n = node[key];
    if (!n.IsDefined() || n.IsNull())
      return std::nullopt;
    bool b = false;
    if (!YAML::convert<bool>::decode(n, b)) {
      if (!err)
        err = at(n, std::string("field '") + key + "' must be true or false");
      return std::nullopt;
    }
    return b;
  }

  std::optional<level> lvl(const char* key) {
    auto v = str(key);
    if (!v)
      return std::nullopt;
    auto l = parse_level(*v);
    if (!l && !err)
      err = at(node[key], std::string("field '") + key
                            + "' must be one of none, read_only, standard, admin");
    return l;
  }

  /// Wraps an error from the directory functions with this item's place.
  caf::error wrap(const caf::error& e) {
    const auto& ctx = e.context();
    auto arg = [&](size_t i) {
      return i < ctx.size() && ctx.match_element<std::string>(i) ? ctx.get_as<std::string>(i)
                                                                 : std::string{"?"};
    };
    switch (code_of(e)) {
      case ec::invalid_parameter: {
        auto v = str(arg(0).c_str());
        return at(node, "bad " + arg(0) + (v ? " '" + *v + "'" : std::string{})
                          + (arg(0) == "id" ? " (ids are [a-z0-9][a-z0-9._-]*)" : ""));
      }
      case ec::not_found:
        return at(node, "no " + arg(0) + " '" + arg(1) + "'");
      case ec::already_exists:
        return at(node, arg(0) + " '" + arg(1) + "' already exists");
      default:
        return at(node, describe(e));
    }
  }
};

} // namespace

caf::expected<import_counts> import_document(db& d, const std::string& yaml) {
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return make_error(ec::invalid_document, int64_t{e.mark.line + 1}, int64_t{e.mark.column + 1},
                      "not valid YAML: " + e.msg);
  }
  auto at = [](const YAML::Node& n, const std::string& msg) {
    auto m = n.Mark();
    return make_error(ec::invalid_document, int64_t{m.line + 1}, int64_t{m.column + 1}, msg);
  };
  if (!doc.IsMap())
    return make_error(ec::invalid_document, int64_t{1}, int64_t{1},
                      "expected a mapping with lists companies, projects, users, access");
  static const char* lists[] = {"companies", "projects", "users", "access"};
  for (const auto& kv : doc) {
    auto k = kv.first.IsScalar() ? kv.first.Scalar() : std::string{};
    if (std::find(std::begin(lists), std::end(lists), k) == std::end(lists))
      return at(kv.first, "unknown list '" + k + "' (known: companies, projects, users, access)");
    if (!kv.second.IsNull() && !kv.second.IsSequence())
      return at(kv.second, "'" + k + "' must be a list");
  }
  import_counts counts;
  using apply_fn = std::function<std::optional<caf::error>(item_reader&)>;
  auto each = [&](const char* list, std::set<std::string> fields, int64_t& count,
                  const apply_fn& apply) -> std::optional<caf::error> {
    auto seq = doc[list];
    if (!seq.IsDefined() || seq.IsNull())
      return std::nullopt;
    for (const auto& node : seq) {
      item_reader r{node, fields, std::nullopt};
      if (!r.check())
        return r.err;
      if (auto e = apply(r))
        return e;
      ++count;
    }
    return std::nullopt;
  };

  auto e = each("companies", {"id", "name", "auto_approve"}, counts.companies,
                [&](item_reader& r) -> std::optional<caf::error> {
                  auto id = r.required("id");
                  auto name = r.str("name");
                  auto aa = r.boolean("auto_approve");
                  if (r.err)
                    return r.err;
                  caf::error err;
                  if (get_company(d, *id)) {
                    if (auto c = update_company(d, *id, name, aa); !c)
                      err = c.error();
                  } else {
                    if (!name)
                      return r.at(r.node, "missing field 'name'");
                    if (auto c = create_company(d, {*id, *name, aa.value_or(true)}); !c)
                      err = c.error();
                  }
                  return err ? std::optional{r.wrap(err)} : std::nullopt;
                });
  if (!e)
    e = each("projects",
             {"id", "company", "name", "active", "role", "permanently_disconnected", "revisions"},
             counts.projects, [&](item_reader& r) -> std::optional<caf::error> {
               auto id = r.required("id");
               auto comp = r.str("company");
               auto name = r.str("name");
               auto active = r.boolean("active");
               if (r.err)
                 return r.err;
               caf::error err;
               if (auto existing = get_project(d, *id)) {
                 if (comp && *comp != existing->company)
                   return r.at(r.node, "project '" + *id + "' belongs to company '"
                                         + existing->company + "'; it cannot move");
                 if (auto p = update_project(d, *id, name, active); !p)
                   err = p.error();
               } else {
                 if (!comp)
                   return r.at(r.node, "missing field 'company'");
                 if (!name)
                   return r.at(r.node, "missing field 'name'");
                 project p;
                 p.id = *id;
                 p.company = *comp;
                 p.name = *name;
                 p.active = active.value_or(true);
                 if (auto res = create_project(d, p); !res)
                   err = res.error();
               }
               return err ? std::optional{r.wrap(err)} : std::nullopt;
             });
  if (!e)
    e = each("users", {"id", "email", "name", "company", "company_admin"}, counts.users,
             [&](item_reader& r) -> std::optional<caf::error> {
               auto id = r.required("id");
               auto email = r.str("email");
               auto name = r.str("name");
               auto comp = r.str("company");
               auto admin = r.boolean("company_admin");
               if (r.err)
                 return r.err;
               caf::error err;
               if (auto existing = find_user(d, *id); existing && id->find('@') == std::string::npos) {
                 if (comp && *comp != existing->company)
                   return r.at(r.node, "user '" + *id + "' belongs to company '"
                                         + existing->company + "'; it cannot move");
                 if (auto u = update_user(d, *id, name, email, admin); !u)
                   err = u.error();
               } else {
                 for (auto [key, v] : {std::pair{"email", &email}, std::pair{"name", &name},
                                       std::pair{"company", &comp}})
                   if (!*v)
                     return r.at(r.node, std::string("missing field '") + key + "'");
                 if (auto u = create_user(d, {*id, *email, *name, *comp, admin.value_or(false)}); !u)
                   err = u.error();
               }
               return err ? std::optional{r.wrap(err)} : std::nullopt;
             });
  if (!e)
    e = each("access", {"project", "user", "cm", "drawings"}, counts.access,
             [&](item_reader& r) -> std::optional<caf::error> {
               auto proj = r.required("project");
               auto usr = r.required("user");
               auto cm = r.lvl("cm");
               auto dr = r.lvl("drawings");
               if (r.err)
                 return r.err;
               if (auto a = set_access(d, *proj, *usr, cm, dr); !a)
                 return r.wrap(a.error());
               return std::nullopt;
             });
  if (e)
    return *e;
  return counts;
}

caf::expected<store_counts> counts(db& d) {
  store_counts c;
  c.projects = d.execAndGet("SELECT count(*) FROM projects").getInt64();
  c.sync_backlog
    = d.execAndGet("SELECT count(*) FROM sync_jobs WHERE state IN ('pending', 'running')").getInt64();
  c.notification_backlog
    = d.execAndGet("SELECT count(*) FROM outbox WHERE state = 'pending'").getInt64();
  return c;
}

} // namespace projlink::directory
