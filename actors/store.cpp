#include "actors/store.hpp"
#include "actors/sql_cache.hpp"
#include "daemon/metrics_registry.hpp"

#include <SQLiteCpp/Database.h>
#include <SQLiteCpp/Exception.h>
#include <caf/all.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <vector>

namespace projlink {

namespace {

struct pending_write {
  store_fn fn;
  caf::response_promise promise;
  bool read_only = false;
};

struct store_state {
  std::shared_ptr<SQLite::Database> db;
  store_metrics* metrics = nullptr;
  std::vector<pending_write> batch;
  static inline const char* name = "store";
};

caf::expected<caf::message> run(SQLite::Database& db, const store_fn& fn) {
  try {
    return fn(db);
  } catch (const std::exception& e) {
    return make_error(ec::internal, std::string{"storage: "} + e.what());
  }
}

/// Commits the current batch in one transaction and answers every caller.
void flush(caf::stateful_actor<store_state>* self) {
  auto& st = self->state;
  if (st.batch.empty())
    return;
  auto batch = std::move(st.batch);
  st.batch.clear();
  std::vector<caf::expected<caf::message>> results;
  results.reserve(batch.size());
  auto& db = *st.db;
  auto began = std::chrono::steady_clock::now();
  try {
    db.exec("BEGIN IMMEDIATE");
    for (auto& w : batch) {
      if (w.read_only) {
        results.push_back(run(db, w.fn));
        continue;
      }
      sql::stmt(db, "SAVEPOINT w").exec();
      auto r = run(db, w.fn);
      if (!r)
        sql::stmt(db, "ROLLBACK TO w").exec();
      sql::stmt(db, "RELEASE w").exec();
      results.push_back(std::move(r));
    }
    db.exec("COMMIT");
  } catch (const std::exception& e) {
    // Nothing of this batch is durable: everyone gets the failure.
    spdlog::error("store: commit of {} writes failed: {}", batch.size(), e.what());
    st.metrics->failed_commits++;
    telemetry::registry::global().commit_failed(telemetry::sqlite_code_of(e));
    try {
      db.exec("ROLLBACK");
    } catch (...) {
    }
    auto err = make_error(ec::internal, std::string{"storage commit failed: "} + e.what());
    for (auto& w : batch)
      w.promise.deliver(err);
    return;
  }
  st.metrics->commits++;
  auto writes = static_cast<uint64_t>(
    std::count_if(batch.begin(), batch.end(), [](const auto& w) { return !w.read_only; }));
  st.metrics->writes += writes;
  telemetry::registry::global().commit(
    writes, std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count());
  for (size_t i = 0; i < batch.size(); ++i) {
    if (results[i])
      batch[i].promise.deliver(std::move(*results[i]));
    else
      batch[i].promise.deliver(std::move(results[i].error()));
  }
}

caf::behavior store(caf::stateful_actor<store_state>* self, std::shared_ptr<SQLite::Database> db,
                    store_metrics* metrics) {
  self->state.db = std::move(db);
  self->state.metrics = metrics;
  return {
    [=](atom::write, store_fn& fn) -> caf::response_promise {
      auto rp = self->make_response_promise();
      // The flush message queues behind every write already in the mailbox,
      // so they all join this batch.
      if (self->state.batch.empty())
        self->send(self, atom::flush_v);
      self->state.batch.push_back({std::move(fn), rp, false});
      return rp;
    },
    [=](atom::flush) { flush(self); },
    [=](atom::read, store_fn& fn) -> caf::result<caf::message> {
      self->state.metrics->reads++;
      // A read queued behind writes joins their batch, so that a client's
      // pipelined write-then-read sees its write.
      if (!self->state.batch.empty()) {
        auto rp = self->make_response_promise();
        self->state.batch.push_back({std::move(fn), rp, true});
        return rp;
      }
      auto r = run(*self->state.db, fn);
      if (!r)
        return std::move(r.error());
      return std::move(*r);
    },
    [=](atom::ping) { return atom::pong_v; },
    [=](atom::shutdown) {
      flush(self);
      // A clean stop leaves everything in the database file itself: whether
      // SQLite checkpoints on close depends on which connection (store,
      // reader, notifier) closes last, so checkpoint here, deterministically.
      try {
        self->state.db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
      } catch (const std::exception& e) {
        spdlog::warn("store: checkpoint at shutdown failed: {}", e.what());
      }
      self->state.db.reset();
      self->quit();
    },
  };
}

struct reader_state {
  std::shared_ptr<SQLite::Database> db;
  static inline const char* name = "reader";
};

caf::behavior reader(caf::stateful_actor<reader_state>* self, std::shared_ptr<SQLite::Database> db,
                     store_metrics* metrics) {
  self->state.db = std::move(db);
  return {
    [=](atom::read, store_fn& fn) -> caf::result<caf::message> {
      metrics->reads++;
      auto& d = *self->state.db;
      caf::expected<caf::message> r = caf::make_message();
      try {
        sql::stmt(d, "BEGIN").exec();
        r = run(d, fn);
        sql::stmt(d, "COMMIT").exec();
      } catch (const std::exception& e) {
        try {
          d.exec("ROLLBACK");
        } catch (...) {
        }
        r = make_error(ec::internal, std::string{"storage: "} + e.what());
      }
      if (!r)
        return std::move(r.error());
      return std::move(*r);
    },
    [=](atom::shutdown) {
      self->state.db.reset();
      self->quit();
    },
  };
}

} // namespace

caf::actor spawn_reader(caf::actor_system& sys, std::shared_ptr<SQLite::Database> db,
                        store_metrics* metrics) {
  return sys.spawn<caf::detached>(reader, std::move(db), metrics);
}

caf::actor spawn_store(caf::actor_system& sys, std::shared_ptr<SQLite::Database> db,
                       store_metrics* metrics, bool detached) {
  if (!detached)
    return sys.spawn(store, std::move(db), metrics);
  return sys.spawn<caf::detached>(store, std::move(db), metrics);
}

} // namespace projlink
