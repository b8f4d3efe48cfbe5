// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <ostream>
#include <span>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "storage/json_mapping.hpp"

namespace ctaudit::query {

// Writes each flow as storage::toJsonLine(flow, context) plus '\n', in the order given: exactly the
// lines the JSON-lines sink writes, so that a SIEM and an analyst see one shape. Nothing for no flows.
void printJsonLines(std::ostream& out, std::span<const FlowRecord> flows, const storage::JsonContext& context);

// Writes each gap as storage::toJsonLine(gap, context) plus '\n': the pipeline_error lines the
// JSON-lines sink writes for gaps. Nothing for no gaps.
void printGapJsonLines(std::ostream& out, std::span<const GapRecord> gaps, const storage::JsonContext& context);

}  // namespace ctaudit::query
