#include "actors/sql_cache.hpp"

#include <mutex>
#include <unordered_map>

namespace projlink::sql {

class statement_cache {
public:
  static constexpr size_t max_entries = 512;

  struct entry {
    std::unique_ptr<SQLite::Statement> statement;
    bool in_use = false;
  };

  /// The entry for `text`, or nullptr when the cache is full.
  entry* find_or_prepare(SQLite::Database& db, const char* text) {
    auto it = entries_.find(text);
    if (it != entries_.end())
      return &it->second;
    if (entries_.size() >= max_entries)
      return nullptr;
    auto s = std::make_unique<SQLite::Statement>(db, text);
    return &entries_.emplace(text, entry{std::move(s), false}).first->second;
  }

private:
  std::unordered_map<std::string, entry> entries_;
};

namespace {

// Which SQLite::Database objects are sql::database (the base class is not
// polymorphic, so it cannot be asked).
std::mutex registry_mtx;
std::unordered_map<const SQLite::Database*, statement_cache*> registry;

statement_cache* cache_of(const SQLite::Database& db) {
  std::lock_guard<std::mutex> guard{registry_mtx};
  auto it = registry.find(&db);
  return it == registry.end() ? nullptr : it->second;
}

} // namespace

database::database(const std::string& path, int flags)
  : SQLite::Database(path, flags), cache_(std::make_unique<statement_cache>()) {
  std::lock_guard<std::mutex> guard{registry_mtx};
  registry[this] = cache_.get();
}

database::~database() {
  {
    std::lock_guard<std::mutex> guard{registry_mtx};
    registry.erase(this);
  }
  cache_.reset(); // finalizes every statement before the base closes the db
}

stmt::stmt(SQLite::Database& db, const char* text) {
  if (auto* cache = cache_of(db)) {
    if (auto* e = cache->find_or_prepare(db, text); e != nullptr && !e->in_use) {
      e->in_use = true;
      in_use_ = &e->in_use;
      s_ = e->statement.get();
      return;
    }
  }
  own_ = std::make_unique<SQLite::Statement>(db, text);
  s_ = own_.get();
}

stmt::~stmt() {
  if (in_use_ == nullptr)
    return;
  // Ready for the next user: no row in hand, no bindings, no open read.
  s_->tryReset();
  try {
    s_->clearBindings(); // sqlite3_clear_bindings cannot fail
  } catch (...) {
  }
  *in_use_ = false;
}

} // namespace projlink::sql
