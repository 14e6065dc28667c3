// io.projlink.Directory: parameters in, one store closure per call, JSON out.

#include "actors/directory_db.hpp"
#include "daemon/paging.hpp"
#include "daemon/session.hpp"

#include <caf/all.hpp>

namespace projlink {

namespace {

using varlink::json;
using varlink::params;

json to_json(const company& c) {
  return {{"id", c.id}, {"name", c.name}, {"auto_approve", c.auto_approve}};
}

json to_json(const project& p) {
  return {{"id", p.id},         {"company", p.company},
          {"name", p.name},     {"active", p.active},
          {"role", to_string(p.role)},     {"permanently_disconnected", p.permanently_disconnected},
          {"revisions", p.revisions}};
}

json to_json(const user& u) {
  return {{"id", u.id},
          {"email", u.email},
          {"name", u.name},
          {"company", u.company},
          {"company_admin", u.company_admin}};
}

json to_json(const access& a) {
  return {{"project", a.project},
          {"user", a.user},
          {"cm", to_string(a.cm)},
          {"drawings", to_string(a.drawings)}};
}

template <class T>
json to_json(const std::vector<T>& xs) {
  auto out = json::array();
  for (const auto& x : xs)
    out.push_back(to_json(x));
  return out;
}

/// A caller-chosen id: checked here so the error names the parameter.
std::string id_param(params& p, const char* name) {
  auto id = p.str(name);
  if (!valid_id(id))
    throw varlink::invalid_parameter(name);
  return id;
}

std::optional<level> level_param(params& p, const char* name) {
  auto s = p.opt_one_of(name, {"none", "read_only", "standard", "admin"});
  return s ? parse_level(*s) : std::nullopt;
}

/// Result wrapper: one key holding the rendered value.
template <class T>
auto as(const char* key) {
  return [key](const T& x) { return json{{key, to_json(x)}}; };
}

/// Renders a page of `T`s fetched with limit + 1 rows (daemon/paging).
template <class T, class Key>
auto paged(const char* list_key, paging::request pg, std::string scope, Key key_of) {
  return [=](const std::vector<T>& xs) {
    std::vector<json> items;
    std::vector<std::string> keys;
    for (const auto& x : xs) {
      items.push_back(to_json(x));
      keys.push_back(key_of(x));
    }
    json reply = json::object();
    paging::fill(reply, list_key, std::move(items), keys, pg.limit, scope);
    return reply;
  };
}

constexpr bool write = true;
constexpr bool read = false;

} // namespace

void add_directory_api(handler_map& m) {
  const std::string i = "io.projlink.Directory.";

  m[i + "CreateCompany"] = [](const call_ptr& c, params& p) {
    company x{id_param(p, "id"), p.str("name"), p.opt_bool("auto_approve").value_or(true)};
    p.finish();
    store_call<company>(c, write, [x](auto& d) { return directory::create_company(d, x); },
                        as<company>("company"));
  };
  m[i + "UpdateCompany"] = [](const call_ptr& c, params& p) {
    auto id = p.str("id");
    auto name = p.opt_str("name");
    auto aa = p.opt_bool("auto_approve");
    p.finish();
    store_call<company>(c, write,
                        [=](auto& d) { return directory::update_company(d, id, name, aa); },
                        as<company>("company"));
  };
  m[i + "ListCompanies"] = [](const call_ptr& c, params& p) {
    std::string scope = "Directory.ListCompanies";
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<company>>(
      c, read, [=](auto& d) { return directory::list_companies(d, pg.after, pg.limit + 1); },
      paged<company>("companies", pg, scope, [](const company& x) { return x.id; }));
  };

  m[i + "CreateProject"] = [](const call_ptr& c, params& p) {
    project x;
    x.id = id_param(p, "id");
    x.company = p.str("company");
    x.name = p.str("name");
    x.active = p.opt_bool("active").value_or(true);
    p.finish();
    store_call<project>(c, write, [x](auto& d) { return directory::create_project(d, x); },
                        as<project>("project"));
  };
  m[i + "UpdateProject"] = [](const call_ptr& c, params& p) {
    auto id = p.str("id");
    auto name = p.opt_str("name");
    auto active = p.opt_bool("active");
    p.finish();
    store_call<project>(c, write,
                        [=](auto& d) { return directory::update_project(d, id, name, active); },
                        as<project>("project"));
  };
  m[i + "GetProject"] = [](const call_ptr& c, params& p) {
    auto id = p.str("id");
    p.finish();
    store_call<project>(c, read, [=](auto& d) { return directory::get_project(d, id); },
                        as<project>("project"));
  };
  m[i + "ListProjects"] = [](const call_ptr& c, params& p) {
    auto company = p.opt_str("company");
    std::string scope = "Directory.ListProjects|" + (company ? "=" + *company : std::string{});
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<project>>(
      c, read,
      [=](auto& d) { return directory::list_projects(d, company, pg.after, pg.limit + 1); },
      paged<project>("projects", pg, scope, [](const project& x) { return x.id; }));
  };

  m[i + "CreateUser"] = [](const call_ptr& c, params& p) {
    user x{id_param(p, "id"), p.str("email"), p.str("name"), p.str("company"),
           p.opt_bool("company_admin").value_or(false)};
    p.finish();
    store_call<user>(c, write, [x](auto& d) { return directory::create_user(d, x); },
                     as<user>("user"));
  };
  m[i + "UpdateUser"] = [](const call_ptr& c, params& p) {
    auto id = p.str("id");
    auto name = p.opt_str("name");
    auto email = p.opt_str("email");
    auto admin = p.opt_bool("company_admin");
    p.finish();
    store_call<user>(c, write,
                     [=](auto& d) { return directory::update_user(d, id, name, email, admin); },
                     as<user>("user"));
  };
  m[i + "ListUsers"] = [](const call_ptr& c, params& p) {
    auto company = p.opt_str("company");
    std::string scope = "Directory.ListUsers|" + (company ? "=" + *company : std::string{});
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<user>>(
      c, read, [=](auto& d) { return directory::list_users(d, company, pg.after, pg.limit + 1); },
      paged<user>("users", pg, scope, [](const user& x) { return x.id; }));
  };

  m[i + "SetAccess"] = [](const call_ptr& c, params& p) {
    auto project = p.str("project");
    auto user = p.str("user");
    auto cm = level_param(p, "cm");
    auto drawings = level_param(p, "drawings");
    p.finish();
    store_call<access>(
      c, write, [=](auto& d) { return directory::set_access(d, project, user, cm, drawings); },
      as<access>("access"));
  };
  m[i + "RemoveAccess"] = [](const call_ptr& c, params& p) {
    auto project = p.str("project");
    auto user = p.str("user");
    p.finish();
    store_call<void>(
      c, write, [=](auto& d) { return directory::remove_access(d, project, user); },
      [] { return json::object(); });
  };
  m[i + "ListAccess"] = [](const call_ptr& c, params& p) {
    auto project = p.str("project");
    std::string scope = "Directory.ListAccess|" + project;
    auto pg = paging::read(p, scope);
    p.finish();
    store_call<std::vector<access>>(
      c, read,
      [=](auto& d) { return directory::list_access(d, project, pg.after, pg.limit + 1); },
      paged<access>("access", pg, scope, [](const access& x) { return x.user; }));
  };

  m[i + "Import"] = [](const call_ptr& c, params& p) {
    auto doc = p.str("document");
    p.finish();
    store_call<import_counts>(
      c, write, [doc](auto& d) { return directory::import_document(d, doc); },
      [](const import_counts& n) {
        return json{{"companies", n.companies},
                    {"projects", n.projects},
                    {"users", n.users},
                    {"access", n.access}};
      });
  };
}

} // namespace projlink
