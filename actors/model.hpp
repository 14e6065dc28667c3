#pragma once

// Domain value types (SPEC §1). Plain values with `inspect` overloads so that
// any of them may travel in a CAF message, locally or, later, between nodes
// (SPEC §13). No handles, no pointers.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace projlink {

/// Permission level on one tool; ordered.
enum class level : uint8_t { none = 0, read_only, standard, admin };

const char* to_string(level x);
/// Parses `none|read_only|standard|admin`.
std::optional<level> parse_level(const std::string& s);

struct company {
  std::string id;
  std::string name;
  bool auto_approve = true;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, company& x) {
  return f(x.id, x.name, x.auto_approve);
}

struct project {
  std::string id;
  std::string company;
  std::string name;
  bool active = true;
  std::string role = "none"; ///< none | upstream | downstream
  bool permanently_disconnected = false;
  int64_t revisions = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, project& x) {
  return f(x.id, x.company, x.name, x.active, x.role, x.permanently_disconnected, x.revisions);
}

struct user {
  std::string id;
  std::string email;
  std::string name;
  std::string company;
  bool company_admin = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user& x) {
  return f(x.id, x.email, x.name, x.company, x.company_admin);
}

/// One directory entry: a user's levels on the two tools in one project.
struct access {
  std::string project;
  std::string user;
  level cm = level::none;
  level drawings = level::none;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, access& x) {
  return f(x.project, x.user, x.cm, x.drawings);
}

/// What Directory.Import changed: items per list in the document.
struct import_counts {
  int64_t companies = 0;
  int64_t projects = 0;
  int64_t users = 0;
  int64_t access = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, import_counts& x) {
  return f(x.companies, x.projects, x.users, x.access);
}

/// Figures for Daemon.GetStatus that live in the database.
struct store_counts {
  int64_t projects = 0;
  int64_t sync_backlog = 0;
  int64_t notification_backlog = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, store_counts& x) {
  return f(x.projects, x.sync_backlog, x.notification_backlog);
}

/// True for ids chosen by callers: `[a-z0-9][a-z0-9._-]*`, at most 128 bytes.
bool valid_id(const std::string& id);

} // namespace projlink
