#pragma once

// The Directory (companies, projects, users, access) as SQL over one
// connection. These functions run inside the store actor's transactions
// (REQUIRES: called on the store's thread, inside a transaction for writes);
// they validate their input and return named errors, never throw for bad input.

#include "actors/model.hpp"
#include "actors/rules.hpp"

#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace projlink::directory {

using db = SQLite::Database;

caf::expected<company> create_company(db& d, const company& c);
caf::expected<company> update_company(db& d, const std::string& id,
                                      const std::optional<std::string>& name,
                                      std::optional<bool> auto_approve);
caf::expected<company> get_company(db& d, const std::string& id);
/// Lists are keyset-paged (SPEC §6.2): items after `after` in the stated
/// order, at most `limit` (< 0: all).
caf::expected<std::vector<company>> list_companies(db& d, const std::optional<std::string>& after = {},
                                                   int64_t limit = -1);

caf::expected<project> create_project(db& d, const project& p);
caf::expected<project> update_project(db& d, const std::string& id,
                                      const std::optional<std::string>& name,
                                      std::optional<bool> active);
caf::expected<project> get_project(db& d, const std::string& id);
/// The effective levels of `u` in `project` (SPEC §1: a company admin is
/// admin on both tools in every project of their company; otherwise the
/// directory entry, none without one). The one place that rule is read.
caf::expected<rules::levels> levels_in(db& d, const user& u, const std::string& project);

/// True when a project `id` exists (one primary-key lookup).
caf::expected<bool> project_exists(db& d, const std::string& id);
caf::expected<std::vector<project>> list_projects(db& d, const std::optional<std::string>& company,
                                                  const std::optional<std::string>& after = {},
                                                  int64_t limit = -1);

caf::expected<user> create_user(db& d, const user& u);
caf::expected<user> update_user(db& d, const std::string& id,
                                const std::optional<std::string>& name,
                                const std::optional<std::string>& email,
                                std::optional<bool> company_admin);
/// By id, or by email when `id_or_email` contains '@'.
caf::expected<user> find_user(db& d, const std::string& id_or_email);
caf::expected<std::vector<user>> list_users(db& d, const std::optional<std::string>& company,
                                            const std::optional<std::string>& after = {},
                                            int64_t limit = -1);

caf::expected<access> set_access(db& d, const std::string& project, const std::string& user,
                                 std::optional<level> cm, std::optional<level> drawings);
caf::expected<void> remove_access(db& d, const std::string& project, const std::string& user);
caf::expected<std::vector<access>> list_access(db& d, const std::string& project,
                                               const std::optional<std::string>& after = {},
                                               int64_t limit = -1);

/// Directory.Import: applies a YAML document (see io.projlink.Directory.varlink).
/// On error the caller must roll back: earlier items may have been written.
caf::expected<import_counts> import_document(db& d, const std::string& yaml);

/// Figures for Daemon.GetStatus.
caf::expected<store_counts> counts(db& d);

} // namespace projlink::directory
