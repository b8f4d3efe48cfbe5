// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "flow/flow_record.hpp"
#include "flow/time.hpp"
#include "query/cli_options.hpp"
#include "query/exit_status.hpp"
#include "query/flow_finder.hpp"
#include "storage/flow_query.hpp"

namespace ctaudit::query {

// The filter for `ctaudit who`: translated source address and port (ICMP id), the protocol if
// given, and the window [at - slack, at + slack] (clamped at the ends of Timestamp's range). No
// limit: every flow that used the mapping in the window is wanted.
[[nodiscard]] storage::FlowQuery toFlowQuery(const WhoCommand& who);

// Signed distance from `at` to the lifetime [lifetime_start, end] of `flow`: zero when `at` lies
// inside (an open flow, with no end, lasts for ever); negative when the flow ended before `at`
// (-(at - end)); positive when it began after `at` (lifetime_start - at). lifetime_start is the
// start, or for a flow whose start is unknown the time it was first seen (in the start-up dump,
// or at its first event after a lost NEW), which is what the query matched on: such a flow
// certainly existed from then, and perhaps before, so a positive gap is the most it can be.
// Never nanoseconds::min(), so the magnitude is always representable.
[[nodiscard]] std::chrono::nanoseconds gapToLifetime(const storage::StoredFlow& flow, Timestamp at) noexcept;

struct RankedFlow {
  FlowRecord flow;
  // gapToLifetime(flow, at), or, where the flow's start or end is not the kernel's own time, from
  // the lifetime narrowed by the kernel's times of the flows before and after it on the same
  // translated tuple (`narrowed` when that changed it).
  std::chrono::nanoseconds gap{0};
  bool narrowed{false};
  // Earlier flows on the same translated tuple that contain `at` as well, which they cannot both
  // have done, one of them by a time that is not the kernel's: "100.64.0.2:8102 (ct id 7)".
  std::vector<std::string> undecided_with;
};

// Orders `flows` closest to `at` first: by |gap|, then, among equally close ones (typically several
// flows all containing `at` when a port was reused within a flow's timeout), the latest start first,
// because the newest mapping is the one a packet at `at` would have used. Remaining ties keep the
// input order (the reader's oldest-first), so the output is deterministic.
[[nodiscard]] std::vector<RankedFlow> rankByCloseness(std::span<const storage::StoredFlow> flows, Timestamp at);

// Runs `ctaudit who`: finds, ranks and prints the flows in `who.format` on `out`. A read error is
// one "ctaudit: ..." line on `err` (ExitStatus::Error); no match is ExitStatus::NothingFound, with
// a hint on `err` in table format only (machine formats stay quiet, as grep does). Then, in every
// format, the window [at - slack, at + slack] is checked against the log's gaps, logged periods and
// retention horizon (readCoverage, checkLog): a warning on `err` for each hole, and with --format
// json its pipeline_error line on `out` after the flows. Warnings do not change the exit status.
[[nodiscard]] ExitStatus runWho(const WhoCommand& who, FlowFinder& finder, std::ostream& out, std::ostream& err);

}  // namespace ctaudit::query
