// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "storage/flow_query.hpp"
#include "storage/flow_row.hpp"
#include "storage/spans.hpp"

// FlowQuery → SQL, kept apart from FlowReader so that tests can read the SQL and ask SQLite for its
// plan. Internal to storage/.
namespace ctaudit::storage {

// One SQL statement and the values of its numbered parameters: parameters[i] binds to ?(i+1).
// Every value the user gave is a parameter; the SQL text depends only on which fields are set.
struct CompiledQuery {
  using Parameter = ColumnValue;  // never NULL
  std::string sql;
  std::vector<Parameter> parameters;
};

// The start times whose rows compileFlowQuery() takes from `spans` (rowsStartedBetween): from
// kLongFlowMs before the query's `from` to its `to`. nullopt when the query has no `from`: it then
// needs no spans.
struct StartWindow {
  std::int64_t from_ms{0};
  std::int64_t to_ms{0};
};
[[nodiscard]] std::optional<StartWindow> recentStartWindow(const FlowQuery& query);

// Compiles `query` to a SELECT of `id` followed by flowColumnList() from `flows`, with one AND term
// per set field, ordered by start_ms then id, and LIMIT when set. `started_in_window` are the
// rowid ranges that hold the rows whose start lies in recentStartWindow(query) (ignored without it).
//  - Lifetime overlap, as flow_query.hpp defines it, in the row's milliseconds:
//    start_ms <= to AND (dur_ms IS NULL OR start_ms + dur_ms >= from). start_ms is the row's
//    lifetime start, so a flow with no known start counts from its end (flow_row.hpp, StoredFlow).
//  - With a `from`, a UNION ALL of three disjoint arms: the rows in `started_in_window`, the open
//    rows outside them, and the long rows that started before the window (spans.hpp), each through
//    the index of the query's key: nat_src when a translated source is given, else the original
//    destination of the DNAT'd rows for a port forward (forwarded_address), else the orig_src
//    address (kOrigSrcKeySql), else the rowid order and full scans of the small partial indexes.
//  - source: the key of orig_src (kOrigSrcKeySql) BETWEEN the keys of network and last address, as
//    stored (an INTEGER range of addresses for IPv4, a BLOB range of endpoints for IPv6; SQLite
//    orders every INTEGER before every BLOB).
//  - nat_address (and nat_port): the translated source or the translated destination matches.
// Which index serves which shape is in docs/schema.md; flow_reader_test checks the plans.
[[nodiscard]] CompiledQuery compileFlowQuery(const FlowQuery& query, std::span<const IdRange> started_in_window);

// The ids of the rows that compileFlowQuery(query, started_in_window) reaches through its key's
// index (its first arm with a `from`, its only one without), read from the index alone: every row
// the query then looks at, and more (the other terms need the row). What RowPrefetch warms the
// cache with. nullopt for a query without a key (its rows lie in rowid ranges, which the disk reads
// ahead by itself), with both keys, or without ranges to search.
[[nodiscard]] std::optional<CompiledQuery> compileKeyIdQuery(const FlowQuery& query,
                                                             std::span<const IdRange> started_in_window);

}  // namespace ctaudit::storage
