#include "actors/schema.hpp"
#include "actors/sql_cache.hpp"

#include <SQLiteCpp/Statement.h>
#include <SQLiteCpp/Transaction.h>

#include <sqlite3.h>

#include <algorithm>
#include <mutex>
#include <stdexcept>

namespace projlink {

namespace {

// Version 1: the whole model of SPEC §1-§10. Times are RFC 3339 UTC text
// (they sort as text); booleans are 0/1; levels are 0..3 (none..admin).
constexpr const char* migration_1 = R"sql(
CREATE TABLE companies (
  id            TEXT PRIMARY KEY,
  name          TEXT NOT NULL,
  auto_approve  INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

CREATE TABLE projects (
  id                        TEXT PRIMARY KEY,
  company                   TEXT NOT NULL REFERENCES companies(id),
  name                      TEXT NOT NULL,
  active                    INTEGER NOT NULL DEFAULT 1,
  role                      TEXT NOT NULL DEFAULT 'none'
                            CHECK (role IN ('none', 'upstream', 'downstream')),
  permanently_disconnected  INTEGER NOT NULL DEFAULT 0,
  revisions                 INTEGER NOT NULL DEFAULT 0   -- live revisions, for R13
) WITHOUT ROWID;
CREATE INDEX projects_by_company ON projects(company);

CREATE TABLE users (
  id             TEXT PRIMARY KEY,
  email          TEXT NOT NULL UNIQUE COLLATE NOCASE,
  name           TEXT NOT NULL,
  company        TEXT NOT NULL REFERENCES companies(id),
  company_admin  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX users_by_company ON users(company);

-- The directory: per project, which users have which level on cm and drawings.
CREATE TABLE access (
  project   TEXT NOT NULL REFERENCES projects(id),
  user      TEXT NOT NULL REFERENCES users(id),
  cm        INTEGER NOT NULL DEFAULT 0 CHECK (cm BETWEEN 0 AND 3),
  drawings  INTEGER NOT NULL DEFAULT 0 CHECK (drawings BETWEEN 0 AND 3),
  PRIMARY KEY (project, user)
) WITHOUT ROWID;
CREATE INDEX access_by_user ON access(user);

CREATE TABLE connections (
  id                 TEXT PRIMARY KEY,
  upstream           TEXT NOT NULL REFERENCES projects(id),
  downstream         TEXT NOT NULL REFERENCES projects(id),
  state              TEXT NOT NULL CHECK (state IN ('awaiting_approval', 'active', 'rejected',
                                                    'cancelled', 'expired', 'disconnected')),
  requested_by       TEXT NOT NULL,
  requested_at       TEXT NOT NULL,
  decided_by         TEXT,
  decided_at         TEXT,
  ended_by           TEXT,
  ended_at           TEXT,
  reason             TEXT,
  undo_until         TEXT,
  manual_approval    INTEGER NOT NULL DEFAULT 0,  -- approved by a person (R9 upstream undo)
  expires_at         TEXT                         -- request_ttl deadline while pending (R10)
) WITHOUT ROWID;
CREATE INDEX connections_by_upstream ON connections(upstream, state);
CREATE INDEX connections_by_downstream ON connections(downstream, state);
-- R3 as a constraint: one live (pending or active) connection per downstream.
CREATE UNIQUE INDEX connections_one_live_upstream ON connections(downstream)
  WHERE state IN ('awaiting_approval', 'active');
CREATE INDEX connections_pending_expiry ON connections(expires_at)
  WHERE state = 'awaiting_approval';

-- History (R15). A connection's event is one row listed for both projects.
CREATE TABLE events (
  seq         INTEGER PRIMARY KEY AUTOINCREMENT,
  at          TEXT NOT NULL,
  kind        TEXT NOT NULL,
  project     TEXT NOT NULL,
  peer        TEXT,            -- the connection's other project, if any
  connection  TEXT,
  user        TEXT,
  reason      TEXT,
  detail      TEXT             -- JSON object
);
CREATE INDEX events_by_project ON events(project, seq);
CREATE INDEX events_by_peer ON events(peer, seq) WHERE peer IS NOT NULL;

-- Notification distribution list per project (SPEC §10).
CREATE TABLE distribution (
  project  TEXT PRIMARY KEY REFERENCES projects(id),
  mode     TEXT NOT NULL DEFAULT 'all_admins' CHECK (mode IN ('all_admins', 'specific_users')),
  users    TEXT NOT NULL DEFAULT '[]'   -- JSON array of user ids
) WITHOUT ROWID;

-- Drawings (SPEC §5).
CREATE TABLE areas (
  project      TEXT NOT NULL REFERENCES projects(id),
  name         TEXT NOT NULL,
  description  TEXT,
  connection   TEXT,            -- set when created by a sync (connected)
  PRIMARY KEY (project, name)
) WITHOUT ROWID;

CREATE TABLE disciplines (
  project     TEXT NOT NULL REFERENCES projects(id),
  name        TEXT NOT NULL,
  position    INTEGER,
  connection  TEXT,
  PRIMARY KEY (project, name)
) WITHOUT ROWID;

CREATE TABLE sets (
  project     TEXT NOT NULL REFERENCES projects(id),
  name        TEXT NOT NULL,
  date        TEXT,
  connection  TEXT,
  PRIMARY KEY (project, name)
) WITHOUT ROWID;

CREATE TABLE drawings (
  id          INTEGER PRIMARY KEY,
  project     TEXT NOT NULL REFERENCES projects(id),
  number      TEXT NOT NULL,
  title       TEXT NOT NULL,
  discipline  TEXT,
  area        TEXT,
  connection  TEXT,
  UNIQUE (project, number)
);

CREATE TABLE blobs (
  sha256      TEXT PRIMARY KEY,
  size        INTEGER NOT NULL,
  created_at  TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE revisions (
  id                 TEXT PRIMARY KEY,
  project            TEXT NOT NULL REFERENCES projects(id),
  drawing            INTEGER NOT NULL REFERENCES drawings(id),
  revision           TEXT NOT NULL,
  status             TEXT,
  drawing_date       TEXT,
  received_date      TEXT,
  set_name           TEXT,
  obsolete           INTEGER NOT NULL DEFAULT 0,
  published          INTEGER NOT NULL DEFAULT 0,
  published_at       TEXT,
  sha256             TEXT NOT NULL REFERENCES blobs(sha256),
  size               INTEGER NOT NULL,
  created_at         TEXT NOT NULL,
  deleted_at         TEXT,          -- set: listed in the deleted-revisions report
  connection         TEXT,          -- set on a copy made by a connection
  upstream_revision  TEXT
) WITHOUT ROWID;
CREATE INDEX revisions_by_project ON revisions(project, published, deleted_at);
CREATE INDEX revisions_by_blob ON revisions(sha256);
-- One copy per connection and upstream revision (SPEC §5 guarantees).
CREATE UNIQUE INDEX revisions_one_copy ON revisions(connection, upstream_revision)
  WHERE connection IS NOT NULL;

-- The durable sync job queue.
CREATE TABLE sync_jobs (
  id                 INTEGER PRIMARY KEY,
  connection         TEXT NOT NULL REFERENCES connections(id),
  upstream_revision  TEXT NOT NULL,
  kind               TEXT NOT NULL CHECK (kind IN ('copy', 'update', 'delete')),
  state              TEXT NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'running', 'done', 'failed')),
  attempts           INTEGER NOT NULL DEFAULT 0,
  next_attempt_at    TEXT,
  last_error         TEXT,
  bytes              INTEGER NOT NULL DEFAULT 0,
  created_at         TEXT NOT NULL,
  done_at            TEXT
);
CREATE INDEX sync_jobs_by_state ON sync_jobs(state, next_attempt_at);
CREATE INDEX sync_jobs_by_connection ON sync_jobs(connection, state);

-- The durable notification outbox (SPEC §10).
CREATE TABLE outbox (
  id               INTEGER PRIMARY KEY,
  at               TEXT NOT NULL,
  event            TEXT NOT NULL,
  project          TEXT NOT NULL,
  connection       TEXT,
  recipients       TEXT NOT NULL,   -- JSON array of addresses
  subject          TEXT NOT NULL,
  body             TEXT NOT NULL,
  state            TEXT NOT NULL DEFAULT 'pending'
                   CHECK (state IN ('pending', 'delivered', 'failed')),
  attempts         INTEGER NOT NULL DEFAULT 0,
  next_attempt_at  TEXT,
  last_error       TEXT,
  delivered_at     TEXT
);
CREATE INDEX outbox_by_state ON outbox(state, next_attempt_at);
CREATE INDEX outbox_by_project ON outbox(project, id);
)sql";

// Version 2: a decision on a connection remembers which peer project has not
// yet acknowledged it, so that it is re-sent after a restart (SPEC §11, §13).
constexpr const char* migration_2 = R"sql(
ALTER TABLE connections ADD COLUMN peer_unacked TEXT;
CREATE INDEX connections_unacked ON connections(peer_unacked) WHERE peer_unacked IS NOT NULL;
)sql";

// Version 3: what the sync coordinator asks after every batch, answered from
// an index instead of a scan (backfill time grew with the square of its
// size before: docs/performance.md): "has this connection's backfill
// started / completed?" (events by connection) and "the oldest pending
// jobs" (pending jobs in id order).
constexpr const char* migration_3 = R"sql(
CREATE INDEX events_by_connection ON events(connection, kind);
CREATE INDEX sync_jobs_pending ON sync_jobs(state, id);
)sql";

// Version 4: publication order. published_at has millisecond resolution, so
// revisions published within one millisecond tied and backfill broke the tie
// by revision id (random); published_seq numbers publications per project.
// Revisions published before this migration keep NULL and sort first.
constexpr const char* migration_4 = R"sql(
ALTER TABLE revisions ADD COLUMN published_seq INTEGER;
CREATE INDEX revisions_published_seq ON revisions(project, published_seq)
  WHERE published_seq IS NOT NULL;
)sql";

// Version 5: each project's history is its own (SPEC §6.2 Event): an event
// of a connection becomes one row in the history of each of its projects,
// `project` = that project and `peer` = the other. Existing rows are split in
// their original order; seq becomes a plain rowid (no AUTOINCREMENT: events
// are never deleted, so it still increases in commit order).
constexpr const char* migration_5 = R"sql(
CREATE TABLE events_v5 (
  seq         INTEGER PRIMARY KEY,
  at          TEXT NOT NULL,
  kind        TEXT NOT NULL,
  project     TEXT NOT NULL,
  peer        TEXT,
  connection  TEXT,
  user        TEXT,
  reason      TEXT,
  detail      TEXT
);
INSERT INTO events_v5 (at, kind, project, peer, connection, user, reason, detail)
  SELECT at, kind, p, q, connection, user, reason, detail FROM (
    SELECT seq, 0 AS side, at, kind, project AS p, peer AS q, connection, user, reason, detail
      FROM events
    UNION ALL
    SELECT seq, 1 AS side, at, kind, peer AS p, project AS q, connection, user, reason, detail
      FROM events WHERE peer IS NOT NULL AND peer <> project)
  ORDER BY seq, side;
DROP TABLE events;
ALTER TABLE events_v5 RENAME TO events;
CREATE INDEX events_by_project ON events(project, seq);
CREATE INDEX events_by_connection ON events(connection, kind);
)sql";

// Version 6: notifications are rendered by the notifier, not in the
// decision's transaction (SPEC §11): a decision queues one row per list
// (expanded = 0, the event's seq); the notifier expands it into one row per
// recipient. Rows written before this version are expanded already.
constexpr const char* migration_6 = R"sql(
ALTER TABLE outbox ADD COLUMN event_seq INTEGER;
ALTER TABLE outbox ADD COLUMN expanded INTEGER NOT NULL DEFAULT 1;
CREATE INDEX outbox_queued ON outbox(id) WHERE expanded = 0;
)sql";

// Version 7: the blob index holds only revisions that are not copies. A
// copy on this node always shares the blob of its upstream revision, whose
// row is never deleted (a deleted revision keeps its row for the report),
// so "does any revision refer to this blob" is answered by the upstream
// rows alone; copies, most of the rows, then no longer insert at a random
// page of this index (one per copy: ~1,000 pages dirtied per sync batch).
// Copies from another node (SPEC §13, not built yet) would have to be
// included (upstream_revision LIKE '%@%').
constexpr const char* migration_7 = R"sql(
DROP INDEX revisions_by_blob;
CREATE INDEX revisions_by_blob ON revisions(sha256) WHERE connection IS NULL;
)sql";

constexpr const char* migrations[] = {migration_1, migration_2, migration_3, migration_4,
                                      migration_5, migration_6, migration_7};

} // namespace

int schema_version() {
  return static_cast<int>(std::size(migrations));
}

std::shared_ptr<SQLite::Database> open_database(const std::string& path, bool check_integrity,
                                                int up_to) {
  // SQLite's allocation statistics take a global mutex on every malloc and
  // free; nothing here reads them. Only possible before SQLite initializes
  // (a later call fails harmlessly).
  static std::once_flag no_memstatus;
  std::call_once(no_memstatus, [] { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); });
  // NOMUTEX: a connection is used by one thread at a time (the store's).
  std::shared_ptr<SQLite::Database> db = std::make_shared<sql::database>(
    path, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE | SQLite::OPEN_NOMUTEX);
  db->setBusyTimeout(5000);
  db->exec("PRAGMA journal_mode=WAL");
  db->exec("PRAGMA synchronous=FULL");
  db->exec("PRAGMA foreign_keys=ON");
  if (check_integrity) {
    SQLite::Statement check(*db, "PRAGMA quick_check");
    while (check.executeStep()) {
      auto r = check.getColumn(0).getString();
      if (r != "ok")
        throw std::runtime_error("database " + path + " failed its integrity check: " + r);
    }
  }
  int version = db->execAndGet("PRAGMA user_version").getInt();
  if (version > schema_version())
    throw std::runtime_error("database " + path + " has schema version " + std::to_string(version)
                             + ", newer than this build's " + std::to_string(schema_version())
                             + "; upgrade projlinkd");
  for (int v = version; v < std::min(up_to, schema_version()); ++v) {
    SQLite::Transaction tx(*db, SQLite::TransactionBehavior::IMMEDIATE);
    db->exec(migrations[v]);
    db->exec("PRAGMA user_version = " + std::to_string(v + 1));
    tx.commit();
  }
  return db;
}

} // namespace projlink
