#pragma once

// Domain value types (SPEC §1). Plain values with `inspect` overloads so that
// any of them may travel in a CAF message, locally or, later, between nodes
// (SPEC §13). No handles, no pointers.

#include <chrono>
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

/// A project's role (SPEC §1, R6): fixed when its first connection becomes active.
enum class project_role : uint8_t { none = 0, upstream, downstream };

const char* to_string(project_role x);
std::optional<project_role> parse_project_role(const std::string& s);

struct project {
  std::string id;
  std::string company;
  std::string name;
  bool active = true;
  project_role role = project_role::none;
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

/// CAF 0.17 serializes no std::optional: inspect functions pass `opt(x)`,
/// which travels as (present, value).
template <class T>
struct opt_ref {
  std::optional<T>* x;
};

template <class T>
opt_ref<T> opt(std::optional<T>& x) {
  return {&x};
}

template <class Inspector, class T>
typename Inspector::result_type inspect(Inspector& f, opt_ref<T>& r) {
  bool has = r.x->has_value();
  T value = has ? **r.x : T{};
  if constexpr (Inspector::writes_state) {
    auto err = f(has, value);
    if (has)
      *r.x = std::move(value);
    else
      r.x->reset();
    return err;
  } else {
    return f(has, value);
  }
}

/// States of a connection (SPEC §3). requesting, awaiting_approval and
/// active are "live": at most one per downstream (R3). requesting and
/// refused occur only across nodes (§13).
enum class conn_state : uint8_t {
  requesting,
  awaiting_approval,
  active,
  rejected,
  refused,
  cancelled,
  expired,
  disconnected,
};

/// The SPEC name, e.g. `awaiting_approval`.
const char* to_string(conn_state x);
/// Parses a SPEC name.
std::optional<conn_state> parse_conn_state(const std::string& s);

/// True for requesting, awaiting_approval and active (R3, R5).
bool is_live(conn_state x);

/// A connection record (SPEC §3, §6.2 `Connection`).
struct connection {
  std::string id;
  std::string upstream;
  std::string downstream;
  conn_state state = conn_state::awaiting_approval;
  std::string requested_by;
  std::string requested_at;
  std::optional<std::string> decided_by;
  std::optional<std::string> decided_at;
  std::optional<std::string> ended_by;
  std::optional<std::string> ended_at;
  std::optional<std::string> reason;
  std::optional<std::string> undo_until;
  bool manual_approval = false; ///< approved by a person (R9: the upstream may undo)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, connection& x) {
  return f(x.id, x.upstream, x.downstream, x.state, x.requested_by, x.requested_at,
           opt(x.decided_by), opt(x.decided_at), opt(x.ended_by), opt(x.ended_at), opt(x.reason),
           opt(x.undo_until), x.manual_approval);
}


/// One history entry (R15). A connection's event is listed for both projects:
/// `project` is the side where it happened, `peer` the other side.
struct event {
  int64_t seq = 0;
  std::string at;
  std::string kind;
  std::string project;
  std::optional<std::string> peer;
  std::optional<std::string> connection;
  std::optional<std::string> user;
  std::optional<std::string> reason;
  std::string detail; ///< a JSON object as text; empty = none
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, event& x) {
  return f(x.seq, x.at, x.kind, x.project, opt(x.peer), opt(x.connection), opt(x.user),
           opt(x.reason), x.detail);
}

/// A project's notification distribution list (SPEC §10).
struct settings {
  std::string project;
  std::string mode = "all_admins"; ///< all_admins | specific_users
  std::vector<std::string> users;  ///< user ids (specific_users)
  std::vector<std::string> recipients; ///< resolved e-mail addresses
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, settings& x) {
  return f(x.project, x.mode, x.users, x.recipients);
}

/// One revision of one drawing (SPEC §5), as Drawings.* shows it.
struct revision {
  std::string id;
  std::string project;
  std::string number;
  std::string title;
  std::string label; ///< the revision label ("A", "3", …): `revision` on the wire
  std::optional<std::string> status;
  std::optional<std::string> drawing_date;
  std::optional<std::string> received_date;
  std::optional<std::string> discipline;
  std::optional<int64_t> discipline_position;
  std::optional<std::string> area;
  std::optional<std::string> area_description;
  std::optional<std::string> set;
  std::optional<std::string> set_date;
  bool obsolete = false;
  bool published = false;
  bool connected = false;
  std::optional<std::string> upstream_revision;
  std::string sha256;
  int64_t size = 0;
  /// When it was deleted (not on the wire; the key of DeletedRevisions' pages).
  std::optional<std::string> deleted_at;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revision& x) {
  return f(x.id, x.project, x.number, x.title, x.label, opt(x.status), opt(x.drawing_date),
           opt(x.received_date), opt(x.discipline), opt(x.discipline_position), opt(x.area),
           opt(x.area_description), opt(x.set), opt(x.set_date), x.obsolete, x.published,
           x.connected, opt(x.upstream_revision), x.sha256, x.size, opt(x.deleted_at));
}

/// RFC 3339 UTC with milliseconds (`2026-11-23T10:00:00.123Z`); sorts as text.
std::string format_time(std::chrono::system_clock::time_point t);
/// Parses what format_time writes (milliseconds optional).
std::optional<std::chrono::system_clock::time_point> parse_time(const std::string& s);
/// The current time, formatted.
std::string now_string();

/// True for ids chosen by callers: `[a-z0-9][a-z0-9._-]*`, at most 128 bytes.
bool valid_id(const std::string& id);

} // namespace projlink
