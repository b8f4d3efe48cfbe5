// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>

#include <ostream>

#include "query/cli_options.hpp"
#include "query/exit_status.hpp"
#include "query/flow_finder.hpp"
#include "storage/flow_query.hpp"

namespace ctaudit::query {

// The filter for `ctaudit flows`: every given option narrows it. The limit asked of the database is
// one more than `flows.limit`, so that runFlows can tell "exactly N flows" from "N and more".
[[nodiscard]] storage::FlowQuery toFlowQuery(const FlowsCommand& flows);

// Runs `ctaudit flows`: prints the matching flows, oldest first, in `flows.format` on `out`. When
// more flows match than the limit, prints the first `limit` and says so in one "ctaudit: note: ..."
// line on `err`, so that truncation is never silent. A read error is one "ctaudit: ..." line on
// `err` (ExitStatus::Error); no match is ExitStatus::NothingFound, with a note on `err` in table
// format only. With --from or --to, the window is checked against the log's gaps and logged periods
// as runWho does (an open side reaches the edge of the logged time, see resolveWindow); without
// either, not at all.
// How the lines reach `out`: as they are read (Direct: a file, whose writes never wait on a person),
// or held in an OutputSpool until the read is done (Spooled: a pipe or a terminal, whose reader may
// pause while the read snapshot would keep the daemon's WAL from being checkpointed).
enum class OutputPath : std::uint8_t { Direct, Spooled };
[[nodiscard]] ExitStatus runFlows(const FlowsCommand& flows, FlowFinder& finder, std::ostream& out, std::ostream& err,
                                  OutputPath path = OutputPath::Direct);

}  // namespace ctaudit::query
