#pragma once

// Prepared statements kept for reuse (SPEC §12: the store spent half its
// time in sqlite3_prepare_v2 before this; see docs/performance.md).
//
//   sql::stmt q(db, "SELECT state FROM connections WHERE id = ?");
//   q.bind(1, id);
//   while (q.executeStep()) ...
//
// `stmt` borrows the statement prepared for that text on that database the
// first time and resets it (and clears its bindings) when it goes out of
// scope. It behaves like a SQLite::Statement prepared on the spot:
// - on a database not opened by `sql::database` it prepares one;
// - if the same text is already borrowed (a nested use while iterating) it
//   prepares a private one;
// - at most `statement_cache::max_entries` texts are kept per database
//   (texts built at run time past that are prepared each time).
// A database's statements are finalized before it closes.

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Statement.h>

#include <memory>
#include <string>
#include <utility>

namespace projlink::sql {

class statement_cache;

/// A SQLite::Database that keeps the statements its users prepare through
/// `stmt`. Create it with std::make_shared (SQLite::Database has no virtual
/// destructor: the shared_ptr remembers the right one).
class database : public SQLite::Database {
public:
  database(const std::string& path, int flags);
  ~database();
  database(const database&) = delete;
  database& operator=(const database&) = delete;

  statement_cache& cache() {
    return *cache_;
  }

private:
  std::unique_ptr<statement_cache> cache_;
};

/// A borrowed prepared statement; see the file comment.
class stmt {
public:
  stmt(SQLite::Database& db, const char* text);
  stmt(SQLite::Database& db, const std::string& text) : stmt(db, text.c_str()) {
  }
  ~stmt();
  stmt(const stmt&) = delete;
  stmt& operator=(const stmt&) = delete;

  operator SQLite::Statement&() {
    return *s_;
  }
  SQLite::Statement* operator->() {
    return s_;
  }

  template <class... Ts>
  void bind(Ts&&... xs) {
    s_->bind(std::forward<Ts>(xs)...);
  }
  int exec() {
    return s_->exec();
  }
  bool executeStep() {
    return s_->executeStep();
  }
  template <class K>
  SQLite::Column getColumn(K k) {
    return s_->getColumn(k);
  }
  void reset() {
    s_->reset();
  }

private:
  SQLite::Statement* s_ = nullptr;
  std::unique_ptr<SQLite::Statement> own_; ///< when not borrowed from a cache
  bool* in_use_ = nullptr;                 ///< the cache entry's flag
};

} // namespace projlink::sql
