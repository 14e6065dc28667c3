#pragma once

// SPEC §6.2's one rule for paged methods: `after: ?string`, `limit: ?int`
// (default 1,000, at most 10,000, below 1 InvalidParameter(limit)) and
// `next: ?string`, absent on the last page. A page also ends early, with
// `next` set, before its reply would pass 4 MiB. Pages are keyset pages.
//
// A token is `p1.<scope>.<key>`: scope is a hash of the method and its
// filter (project, company, include_unpublished …), key the last item's
// sort key in hex. A token of another method or filter, or one that does
// not parse, is InvalidParameter(after); tokens hold no state, so they stay
// valid across restarts. Pure functions; no I/O.

#include "daemon/varlink.hpp"

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace projlink::paging {

constexpr int64_t default_limit = 1000;
constexpr int64_t max_limit = 10'000;
constexpr size_t max_page_bytes = size_t{4} << 20;

/// What a paged call asked for.
struct request {
  std::optional<std::string> after; ///< the key after which the page starts
  int64_t limit = default_limit;
};

/// Reads `after` and `limit` from `p` for a method whose `scope` is its
/// name and filter, e.g. "Directory.ListProjects|gc". Throws
/// varlink::invalid_parameter("after" / "limit").
request read(varlink::params& p, const std::string& scope);

/// The token that continues after `key` in `scope`.
std::string token(const std::string& scope, const std::string& key);

/// Decodes a token of `scope`; nothing when it does not parse or belongs
/// to another scope.
std::optional<std::string> decode(const std::string& scope, const std::string& token);

/// Builds the page from `items` (fetched with limit + 1 rows so that a
/// further page is known): at most `limit` items and less than 4 MiB of
/// JSON; sets `reply[list_key]` and, when more follow, `reply["next"]`.
void fill(varlink::json& reply, const char* list_key, std::vector<varlink::json> items,
          const std::vector<std::string>& keys, int64_t limit, const std::string& scope);

} // namespace projlink::paging
