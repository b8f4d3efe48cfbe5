// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "flow/flow_record.hpp"
#include "query/flow_table.hpp"
#include "query/output_format.hpp"
#include "storage/flow_row.hpp"
#include "storage/json_mapping.hpp"

namespace ctaudit::query {

// The flow as the query commands show it: a start that is not known (first seen in the start-up
// dump without a kernel timestamp, or the creation event lost) is shown as the time the flow was
// first seen, a bound (TimeSource::Bound: it began at or before then), the time `who` measures
// from. The database keeps it unknown; the JSON-lines sink never writes such a start.
[[nodiscard]] FlowRecord shownRecord(const storage::StoredFlow& flow);

// Prints `flows`, in the order given, in `format`: the one place that picks a printer, so that
// `who` and `flows` print alike. `gaps` is empty or one per flow (who's distance to the asked
// time; only the table shows it). `observer_hostname` goes into the JSON lines.
void printFlows(std::ostream& out, OutputFormat format, std::span<const FlowRecord> flows,
                std::span<const std::chrono::nanoseconds> gaps, const std::string& observer_hostname);

// `ctaudit who`'s output: printFlows() with how each flow was found (`matches`, one per flow), in
// every format, so that a script tells a port forward's flow, whose tuple reads the other way
// round, from a masqueraded one: the table's MATCH column (when some flow came through a forward),
// in JSON `"ctaudit":{"who":{"match":"snat"|"forward"}}` at the end of each line, in CSV a last
// column `match`, always there.
void printWhoFlows(std::ostream& out, OutputFormat format, std::span<const FlowRecord> flows,
                   std::span<const std::chrono::nanoseconds> gaps, std::span<const WhoMatch> matches,
                   const std::string& observer_hostname);

// Prints flows one at a time, in the order added, as printFlows() prints them all: CSV and JSON
// lines as each flow comes, so that an export of millions of flows is never held in memory; the
// table at finish(), since its column widths depend on every row. finish() writes what a format
// prints for no flows (the CSV header). Without finish() (a read that failed) the table prints
// nothing, and the other formats what was added.
class FlowStreamPrinter {
public:
  FlowStreamPrinter(std::ostream& out, OutputFormat format, std::string observer_hostname);
  void add(const FlowRecord& flow);
  void finish();
  [[nodiscard]] std::size_t added() const noexcept { return added_; }

private:
  std::ostream& out_;
  OutputFormat format_;
  storage::JsonContext json_context_;
  std::vector<FlowRecord> table_rows_;
  std::size_t added_{0};
};

}  // namespace ctaudit::query
