// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flow_output.hpp"

#include "query/csv_printer.hpp"
#include "query/flow_table.hpp"
#include "query/json_printer.hpp"

namespace ctaudit::query {

void printFlows(std::ostream& out, OutputFormat format, std::span<const FlowRecord> flows,
                std::span<const std::chrono::nanoseconds> gaps, const std::string& observer_hostname) {
  switch (format) {
    case OutputFormat::Table:
      out << renderFlowTable(flows, gaps);
      return;
    case OutputFormat::Json:
      printJsonLines(out, flows, storage::JsonContext{observer_hostname});
      return;
    case OutputFormat::Csv:
      printCsv(out, flows);
      return;
  }
}

}  // namespace ctaudit::query
