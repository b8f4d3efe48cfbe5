// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <ostream>
#include <span>
#include <string>

#include "flow/flow_record.hpp"
#include "query/output_format.hpp"

namespace ctaudit::query {

// Prints `flows`, in the order given, in `format`: the one place that picks a printer, so that
// `who` and `flows` print alike. `gaps` is empty or one per flow (who's distance to the asked
// time; only the table shows it). `observer_hostname` goes into the JSON lines.
void printFlows(std::ostream& out, OutputFormat format, std::span<const FlowRecord> flows,
                std::span<const std::chrono::nanoseconds> gaps, const std::string& observer_hostname);

}  // namespace ctaudit::query
