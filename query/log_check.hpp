// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "flow/gap_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "query/flow_finder.hpp"
#include "query/output_format.hpp"
#include "storage/logged_period.hpp"
#include "storage/retention_horizon.hpp"

// Whether the log is complete around the time a command asked about: a forensic "no match" inside
// a gap in the log, or while no daemon was recording, means "not known", not "nobody". The
// functions here are pure except checkLog (which reads through a FlowFinder) and printLogCheck.
namespace ctaudit::query {

// The time a command asked about, both ends included: [at - slack, at + slack] for `who`,
// [--from, --to] for `flows`.
struct TimeWindow {
  Timestamp from;
  Timestamp to;
  friend bool operator==(const TimeWindow&, const TimeWindow&) = default;
};

// A stretch of a window that no daemon run covered (no ctauditd was recording). `from` and `to`
// are clipped to the window; where a run ended before the stretch or began after it, `from` is
// that run's end and `to` that run's start (instants the log does cover, so that the stretch reads
// as "from when the log stopped to when it resumed").
struct UncoveredSpan {
  Timestamp from;
  Timestamp to;
  std::optional<storage::LoggedPeriod> before;  // the run whose end is the stretch's start, if any
  std::optional<storage::LoggedPeriod> after;   // the run whose start is the stretch's end, if any
  friend bool operator==(const UncoveredSpan&, const UncoveredSpan&) = default;
};

// The parts of `window` outside every period of `periods` (any order; overlapping runs count as
// one), in time order: before the first run, between runs, after the last run's end (its clean
// stop, or its last heartbeat when it did not stop cleanly). Empty when `periods` covers the whole
// window, and when `periods` is empty (nothing is known; see assessLog). A period whose end lies
// before its start (the clock was stepped back) covers its start only.
[[nodiscard]] std::vector<UncoveredSpan> uncoveredSpans(TimeWindow window,
                                                        std::span<const storage::LoggedPeriod> periods);

// The window to check for a query bounded on one side only (`ctaudit flows --from T`): the open
// side is taken to reach the edge of the logged time (the earliest start, the latest end of
// `periods`), so that a question about everything after T is not told that the future is not
// logged, but one about a T after the log's end still is ([T, T] then). Precondition: `from` or
// `to` is set. With no periods the open side is Timestamp's limit.
[[nodiscard]] TimeWindow resolveWindow(std::optional<Timestamp> from, std::optional<Timestamp> to,
                                       std::span<const storage::LoggedPeriod> periods);

// What a command must say about the log around its window.
struct LogCheck {
  // The recorded gaps overlapping the window, and a synthesized GapReason::DaemonDown gap for each
  // uncovered span that no recorded gap already contains, oldest start first: the pipeline_error
  // lines `--format json` adds to its output.
  std::vector<GapRecord> gaps;
  // One "ctaudit: warning: ..." line (no newline) per entry of `gaps`, in the same order, plus one
  // when the database records no daemon run at all (then nothing can be said about coverage, and
  // no gap is synthesized: it would claim a daemon was down that may never have been asked to
  // record runs).
  std::vector<std::string> warnings;
  friend bool operator==(const LogCheck&, const LogCheck&) = default;
};

// Checks `window` against the recorded gaps that overlap it, the logged periods and the retention
// horizon. The part of the window before the horizon gets one GapReason::RetentionExpired entry
// ("out of range": flows that ended before the horizon were deleted) and is not checked against
// the runs, whose rows retention deleted too; the rest is checked as without retention.
[[nodiscard]] LogCheck assessLog(TimeWindow window, std::span<const GapRecord> gaps,
                                 std::span<const storage::LoggedPeriod> periods,
                                 const std::optional<storage::RetentionHorizon>& horizon = std::nullopt);

// What a command reads about the log before it reads its flows (readCoverage); checkLog adds the
// retention horizon, which it reads after them.
struct LogCoverage {
  std::optional<TimeWindow> window;  // nullopt: the command has no window; nothing is checked
  std::vector<GapRecord> gaps;
  std::vector<storage::LoggedPeriod> periods;
};

// Reads the logged periods and the gaps of the window from `finder`. `from` and `to` are the
// command's bounds; one may be open (resolveWindow); with neither there is nothing to check and
// nothing is read. Call before reading the flows: a heartbeat only lands with or after the records
// it vouches for. Errors: as FlowFinder::gaps and FlowFinder::loggedPeriods.
[[nodiscard]] Result<LogCoverage> readCoverage(FlowFinder& finder, std::optional<Timestamp> from,
                                               std::optional<Timestamp> to);

// Reads the retention horizon (unless there is no window) and assesses `coverage` with it. Call
// after reading the flows: the horizon only moves forward and is committed with the deletions it
// allows, so one read afterwards covers every flow the read missed. Errors: as
// FlowFinder::retentionHorizon.
[[nodiscard]] Result<LogCheck> checkLog(FlowFinder& finder, const LogCoverage& coverage);

// readCoverage and checkLog(finder, coverage) at once, for a caller that reads no flows in between.
[[nodiscard]] Result<LogCheck> checkLog(FlowFinder& finder, std::optional<Timestamp> from,
                                        std::optional<Timestamp> to);

// Prints `check`: every warning as a line on `err`; with OutputFormat::Json also every gap as its
// pipeline_error line (storage::toJsonLine) on `out`, so that a consumer of stdout alone sees them.
// Call after the flows are printed, so that `who`'s best match stays the first line.
void printLogCheck(std::ostream& out, std::ostream& err, OutputFormat format, const LogCheck& check,
                   const std::string& observer_hostname);

}  // namespace ctaudit::query
