#pragma once

// Small helpers shared by the SQL modules (actors/*_db.cpp).

#include "actors/sql_cache.hpp"

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <random>
#include <string>

namespace projlink::sql {

/// Binds `v`, or NULL when absent.
inline void bind_opt(SQLite::Statement& q, int i, const std::optional<std::string>& v) {
  if (v)
    q.bind(i, *v);
  else
    q.bind(i);
}

/// A text column, absent when NULL.
inline std::optional<std::string> opt_text(const SQLite::Column& c) {
  if (c.isNull())
    return std::nullopt;
  return c.getString();
}

/// An id chosen by the daemon: `prefix` + 16 random hex digits.
inline std::string random_id(const char* prefix) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%016llx", prefix, static_cast<unsigned long long>(gen()));
  return buf;
}

/// An id chosen by the daemon that sorts by creation time: `prefix` + 16 hex
/// digits, 11 of milliseconds since 1970 and 5 of a sequence that starts at
/// a random value each millisecond. Rows keyed or indexed by such ids are
/// appended to their B-trees instead of inserted at random pages (a batch
/// of 1,024 copies dirtied ~1,000 pages per index with random ids).
/// REQUIRES: one thread (the store's) calls it; unique within a process as
/// long as fewer than 2^20 ids are made in one millisecond.
inline std::string ordered_id(const char* prefix) {
  thread_local std::mt19937_64 gen{std::random_device{}()};
  thread_local uint64_t last_ms = 0, seq = 0;
  auto ms = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                    std::chrono::system_clock::now().time_since_epoch())
                                    .count());
  if (ms > last_ms) {
    last_ms = ms;
    seq = gen() & 0x7ffff; // leaves room for 2^19 more in this millisecond
  } else {
    ++seq;
    if (seq > 0xfffff) { // exhausted (or the clock went back): borrow the next ms
      ++last_ms;
      seq = gen() & 0x7ffff;
    }
  }
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%s%011llx%05llx", prefix,
                static_cast<unsigned long long>(last_ms & 0xfffffffffffull),
                static_cast<unsigned long long>(seq));
  return buf;
}

} // namespace projlink::sql
