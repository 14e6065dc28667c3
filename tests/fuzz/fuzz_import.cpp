// libFuzzer target: Directory.Import's document parser and its writes
// (actors/directory_db.cpp), on a fresh database per run, each input applied
// inside a savepoint that is then rolled back (as the store does for a
// refused call). Any document must give counts or a named error; never a
// crash or an exception escaping.

#include "actors/directory_db.hpp"
#include "actors/schema.hpp"

#include <SQLiteCpp/Database.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

namespace {

std::shared_ptr<SQLite::Database>& db() {
  // A directory to import into: companies, projects and users that inputs
  // may refer to (the seed corpus does).
  static auto d = [] {
    auto x = projlink::open_database(":memory:", false);
    auto r = projlink::directory::import_document(*x, R"(companies:
  - {id: gc, name: General Contractor}
projects:
  - {id: up, company: gc, name: Tower}
users:
  - {id: ga, email: ga@gc.test, name: GC Admin, company: gc, company_admin: true}
)");
    if (!r)
      std::abort();
    return x;
  }();
  return d;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto& d = *db();
  std::string doc(reinterpret_cast<const char*>(data), size);
  d.exec("SAVEPOINT fuzz");
  try {
    auto r = projlink::directory::import_document(d, doc);
    (void) r;
  } catch (const std::exception&) {
    // The store turns an exception into InternalError; an import must not
    // need that: every bad document has a named error.
    std::abort();
  }
  d.exec("ROLLBACK TO fuzz");
  d.exec("RELEASE fuzz");
  return 0;
}
