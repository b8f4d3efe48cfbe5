// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "storage/flow_query.hpp"
#include "storage/flow_row.hpp"

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

// Compiles `query` to a SELECT of `id` followed by flowColumnList() from `flows`, with one AND term
// per set field, ordered by start_ns then id, and LIMIT when set.
//  - Lifetime overlap, as flow_query.hpp defines it: start_ns <= to AND (dur_ns IS NULL OR
//    start_ns + dur_ns >= from). start_ns is the row's lifetime start, so a flow with no known start counts
//    from its end (flow_row.hpp, StoredFlow).
//  - source: orig_src BETWEEN network and last address, as stored (an INTEGER range for IPv4, a
//    BLOB range for IPv6; SQLite orders every INTEGER before every BLOB).
//  - nat_address (and nat_port): the translated source or the translated destination matches.
// Which index serves which shape is in docs/schema.md; flow_reader_test checks the plans.
[[nodiscard]] CompiledQuery compileFlowQuery(const FlowQuery& query);

}  // namespace ctaudit::storage
