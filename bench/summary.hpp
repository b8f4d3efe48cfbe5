// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "bench/load_run.hpp"
#include "bench/loadgen_options.hpp"

namespace ctaudit::bench {

// The run's totals as key=value lines or one JSON object (with a trailing newline). Keys:
// created, deleted, create_errors, delete_errors, acks_missing, requests, sends, left_alive,
// socket_overruns, elapsed_s, requests_per_s, create_phase_s, create_phase_requests_per_s,
// target_rate (0 = max), batch, live_max, interrupted, and errors (by errno name; in kv form one
// key errors.EEXIST=... per errno).
// A tool's report: key=value lines, or one JSON object (with a trailing newline) when `json`.
// Values are numbers or booleans, so both forms print them as they are.
using SummaryFields = std::vector<std::pair<std::string, std::string>>;
[[nodiscard]] std::string formatFields(const SummaryFields& fields, bool json);

[[nodiscard]] std::string formatSummary(const RunTotals& totals, const LoadgenOptions& options);

}  // namespace ctaudit::bench
