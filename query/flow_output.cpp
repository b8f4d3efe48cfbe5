// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flow_output.hpp"

#include <utility>

#include "query/csv_printer.hpp"
#include "query/flow_table.hpp"
#include "query/json_printer.hpp"

namespace ctaudit::query {

FlowRecord shownRecord(const storage::StoredFlow& flow) {
  FlowRecord record = flow.record;
  if (!record.start) {
    record.start = flow.lifetime_start;
    record.start_source = TimeSource::Bound;
    if (!record.end) {
      record.event_time_source = TimeSource::Bound;  // an open flow's @timestamp is its start
    }
  }
  return record;
}

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

namespace {

std::string_view matchName(WhoMatch match) noexcept {
  return match == WhoMatch::PortForward ? "forward" : "snat";
}

}  // namespace

void printWhoFlows(std::ostream& out, OutputFormat format, std::span<const FlowRecord> flows,
                   std::span<const std::chrono::nanoseconds> gaps, std::span<const WhoMatch> matches,
                   const std::string& observer_hostname) {
  switch (format) {
    case OutputFormat::Table:
      out << renderFlowTable(flows, gaps, matches);
      return;
    case OutputFormat::Json: {
      const storage::JsonContext context{observer_hostname};
      for (std::size_t i = 0; i < flows.size(); ++i) {
        std::string line = storage::toJsonLine(flows[i], context);
        line.pop_back();  // the object's closing brace: the field goes last, as the mapping has no such key
        line += R"(,"ctaudit":{"who":{"match":")";
        line += matchName(matches[i]);
        line += R"("}}})";
        out << line << '\n';
      }
      return;
    }
    case OutputFormat::Csv: {
      std::vector<std::string_view> names;
      names.reserve(matches.size());
      for (const WhoMatch match : matches) {
        names.push_back(matchName(match));
      }
      printWhoCsv(out, flows, names);
      return;
    }
  }
}

FlowStreamPrinter::FlowStreamPrinter(std::ostream& out, OutputFormat format, std::string observer_hostname)
    : out_(out), format_(format), json_context_{std::move(observer_hostname)} {}

void FlowStreamPrinter::add(const FlowRecord& flow) {
  const std::span<const FlowRecord> one(&flow, 1);
  switch (format_) {
    case OutputFormat::Table:
      table_rows_.push_back(flow);
      break;
    case OutputFormat::Json:
      printJsonLines(out_, one, json_context_);
      break;
    case OutputFormat::Csv:
      if (added_ == 0) {
        printCsvHeader(out_);
      }
      printCsvRows(out_, one);
      break;
  }
  ++added_;
}

void FlowStreamPrinter::finish() {
  if (format_ == OutputFormat::Table) {
    out_ << renderFlowTable(table_rows_, {});
  } else if (format_ == OutputFormat::Csv && added_ == 0) {
    printCsvHeader(out_);
  }
}

}  // namespace ctaudit::query
