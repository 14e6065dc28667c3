#pragma once

// Drawings (SPEC §5) as SQL: areas, disciplines, sets, drawings and their
// revisions, the §4 permissions for drawings, the read-only rule for
// connected copies, and the sync jobs each upstream change queues.
//
// REQUIRES: called on the store's thread, writes inside a transaction.

#include "actors/blob_store.hpp"
#include "actors/model.hpp"

#include <caf/expected.hpp>

#include <optional>
#include <string>
#include <vector>

namespace SQLite {
class Database;
}

namespace projlink {

/// Metadata a caller may set (Upload, Update). Absent = unchanged / none.
struct drawing_fields {
  std::optional<std::string> title;
  std::optional<std::string> status;
  std::optional<std::string> drawing_date;
  std::optional<std::string> received_date;
  std::optional<std::string> discipline;
  std::optional<int64_t> discipline_position;
  std::optional<std::string> area;
  std::optional<std::string> area_description;
  std::optional<std::string> set;
  std::optional<std::string> set_date;
};

struct upload_request {
  std::string as;
  std::string project;
  std::string number;
  std::string label;
  drawing_fields fields; ///< title required
};

namespace drawings {

using db = SQLite::Database;

/// Checks that `as` may upload into `project` (drawings >= standard) and
/// that nothing it touches is a connected copy. Run before the file is
/// stored, and again by `insert`.
caf::expected<void> check_upload(db& d, const upload_request& r);
/// Records an uploaded revision (unpublished) whose file is `blob`.
caf::expected<revision> insert(db& d, const upload_request& r, const blob_info& blob);

/// Publishes `ids` (all of `project`); queues a copy for every active
/// downstream of `project`. All or nothing.
caf::expected<std::vector<revision>> publish(db& d, const std::string& as,
                                             const std::string& project,
                                             const std::vector<std::string>& ids);
caf::expected<revision> update(db& d, const std::string& as, const std::string& id,
                               const drawing_fields& f);
caf::expected<revision> set_obsolete(db& d, const std::string& as, const std::string& id,
                                     bool obsolete);
caf::expected<void> remove(db& d, const std::string& as, const std::string& id);
caf::expected<revision> get(db& d, const std::string& as, const std::string& id);
/// Keyset-paged (SPEC §6.2): ascending by revision id, after `after`, at
/// most `limit` (< 0: all).
caf::expected<std::vector<revision>> list(db& d, const std::string& as, const std::string& project,
                                          bool include_unpublished,
                                          const std::optional<std::string>& after = {},
                                          int64_t limit = -1);
/// Ascending by deletion time, then revision id; `after` is
/// `<deleted_at>\n<id>` of the last revision of the previous page.
caf::expected<std::vector<revision>> deleted(db& d, const std::string& as,
                                             const std::string& project,
                                             const std::optional<std::string>& after = {},
                                             int64_t limit = -1);
/// The revision for Export, after the permission check.
caf::expected<revision> for_export(db& d, const std::string& as, const std::string& id);

/// Every blob a live or deleted-but-listed revision refers to (sorted).
caf::expected<std::vector<std::string>> referenced_blobs(db& d);
/// The blobs of `candidates` that no revision of any project refers to.
caf::expected<std::vector<std::string>> unreferenced_blobs(db& d,
                                                           const std::vector<std::string>& candidates);

/// Queues the backfill of `connection`: a copy job for every published,
/// live revision of its upstream, oldest publish first. Returns the count.
int64_t queue_backfill(db& d, const std::string& connection, const std::string& upstream);

/// Creates or updates the area, discipline and set `f` names in `project`;
/// rows it creates carry `connection` (copies) or none.
void upsert_parts(db& d, const std::string& project, const drawing_fields& f,
                  const std::optional<std::string>& connection);

/// True if the revision exists and is deleted.
bool is_deleted(db& d, const std::string& id);

/// A revision by id, without permission checks.
caf::expected<revision> load(db& d, const std::string& id);
/// The same in one query, absent when the revision is gone or deleted.
std::optional<revision> load_live(db& d, const std::string& id);

} // namespace drawings
} // namespace projlink
