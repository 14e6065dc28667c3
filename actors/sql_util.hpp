#pragma once

// Small helpers shared by the SQL modules (actors/*_db.cpp).

#include "actors/sql_cache.hpp"

#include <SQLiteCpp/Column.h>
#include <SQLiteCpp/Statement.h>

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

} // namespace projlink::sql
