#pragma once

// The database schema and its migrations. The schema version is SQLite's
// `PRAGMA user_version`; migration N takes the database from version N-1 to
// N inside one transaction, so a crash during an upgrade leaves the old
// version intact. Migrations are only ever appended.

#include <SQLiteCpp/Database.h>

#include <memory>
#include <string>

namespace projlink {

/// The schema version this build writes.
int schema_version();

/// Opens (creating if needed) the database at `path` in WAL mode with
/// synchronous=FULL, foreign keys on and a busy timeout; runs SQLite's
/// quick_check when `check_integrity` (after an unclean shutdown: it reads
/// the whole file) and then pending migrations. Throws std::runtime_error with a message fit
/// for the log when the file is unusable or newer than this build.
/// `up_to` stops the migrations at that version (tests of a migration).
std::shared_ptr<SQLite::Database> open_database(const std::string& path, bool check_integrity,
                                                int up_to = schema_version());

} // namespace projlink
