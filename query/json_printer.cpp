// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/json_printer.hpp"

namespace ctaudit::query {

void printJsonLines(std::ostream& out, std::span<const FlowRecord> flows, const storage::JsonContext& context) {
  for (const FlowRecord& flow : flows) {
    out << storage::toJsonLine(flow, context) << '\n';
  }
}

void printGapJsonLines(std::ostream& out, std::span<const GapRecord> gaps, const storage::JsonContext& context) {
  for (const GapRecord& gap : gaps) {
    out << storage::toJsonLine(gap, context) << '\n';
  }
}

}  // namespace ctaudit::query
