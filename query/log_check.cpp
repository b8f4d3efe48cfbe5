// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/log_check.hpp"

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iterator>
#include <utility>

#include "query/json_printer.hpp"
#include "storage/sqlite_sink.hpp"

namespace ctaudit::query {
namespace {

using storage::LoggedPeriod;
constexpr std::chrono::nanoseconds kOneNano{1};

// Overlapping runs merged into one covered stretch; `first` is the run that starts it and `last`
// the run that ends it, for the words around an uncovered span.
struct Covered {
  Timestamp start;
  Timestamp end;
  LoggedPeriod first;
  LoggedPeriod last;
};

std::vector<Covered> mergedCoverage(std::span<const LoggedPeriod> periods) {
  std::vector<LoggedPeriod> sorted(periods.begin(), periods.end());
  std::stable_sort(sorted.begin(), sorted.end(),
                   [](const LoggedPeriod& a, const LoggedPeriod& b) { return a.start < b.start; });
  std::vector<Covered> merged;
  for (const LoggedPeriod& period : sorted) {
    const Timestamp end = std::max(period.start, period.end);
    // Touching runs (one starts the nanosecond after the other ends) leave nothing between them.
    if (!merged.empty() && (period.start <= merged.back().end || period.start - merged.back().end == kOneNano)) {
      if (end >= merged.back().end) {
        merged.back().end = end;
        merged.back().last = period;
      }
      continue;
    }
    merged.push_back({period.start, end, period, period});
  }
  return merged;
}

// RFC 3339 UTC with only the fractional digits that are not trailing zeros: "2026-11-25T10:00:03Z",
// "2026-11-25T10:00:03.25Z". Exact, and short for the whole seconds that times usually are.
std::string shortTime(Timestamp t) {
  std::string text = formatRfc3339(t);  // ...:SS.nnnnnnnnnZ
  const auto dot = text.rfind('.');
  if (dot == std::string::npos) {
    return text;
  }
  std::size_t last = text.size() - 2;  // the last fractional digit
  while (last > dot && text[last] == '0') {
    --last;
  }
  text.erase(last == dot ? dot : last + 1, text.size() - 1 - (last == dot ? dot : last + 1));
  return text;
}

std::string plural(std::uint64_t count, std::string_view one, std::string_view many) {
  return std::to_string(count) + " " + std::string(count == 1 ? one : many);
}

// A window without a bound on one side (a query with only --from, on a database without runs to
// bound it) ends at Timestamp::max(), which is no time an operator asked about.
std::string windowText(Timestamp from, Timestamp to) {
  if (to == Timestamp::max()) {
    return from == Timestamp::min() ? std::string("any time") : "the time from " + shortTime(from) + " on";
  }
  if (from == Timestamp::min()) {
    return "the time up to " + shortTime(to);
  }
  return from == to ? shortTime(from) : shortTime(from) + " to " + shortTime(to);
}

constexpr std::string_view kWarning = "ctaudit: warning: ";
constexpr std::string_view kMayBeMissing = ": a flow in that window may be missing";

std::string gapWarning(const GapRecord& gap) {
  std::string details(gapReasonName(gap.reason));
  if (gap.overruns > 0) {
    details += ", " + plural(gap.overruns, "overrun", "overruns");
  }
  if (gap.lost_records > 0) {
    details += ", " + plural(gap.lost_records, "record", "records") + " lost";
  }
  if (!gap.sink.empty()) {
    details += ", in the " + gap.sink + " sink";
  }
  return std::string(kWarning) + "the log has a gap from " + shortTime(gap.start) + " to " + shortTime(gap.end) +
         " (" + details + ")" + std::string(kMayBeMissing);
}

// "(ctauditd stopped at P and started again at Q)" and its kin: what the log says about the runs
// around an uncovered span.
std::string spanContext(const UncoveredSpan& span) {
  std::string text;
  if (span.before) {
    text = span.before->stopped ? "ctauditd stopped at " + shortTime(span.before->end)
                                : "ctauditd was last seen alive at " + shortTime(span.before->end);
  }
  if (span.after) {
    text += text.empty() ? "the log begins at " + shortTime(span.after->start)
                         : " and started again at " + shortTime(span.after->start);
  } else if (span.before && !span.before->stopped) {
    text += "; it was killed then, or it is still running and has not committed later records yet";
  }
  return text;
}

std::string spanWarning(const UncoveredSpan& span) {
  return std::string(kWarning) + windowText(span.from, span.to) + " is outside the logged period (" +
         spanContext(span) + ")" + std::string(kMayBeMissing);
}

GapRecord daemonDown(const UncoveredSpan& span) {
  GapRecord gap;
  gap.reason = GapReason::DaemonDown;
  gap.start = span.from;
  gap.end = span.to;
  return gap;
}

bool contains(const GapRecord& gap, const UncoveredSpan& span) { return gap.start <= span.from && gap.end >= span.to; }

// "400 days", "1 day", "36 hours", "90 minutes", "45 seconds": the retention as an operator set it.
std::string periodText(std::chrono::nanoseconds period) {
  using std::chrono::duration_cast;
  constexpr std::chrono::hours kDay{24};
  if (period >= kDay && period % kDay == std::chrono::nanoseconds::zero()) {
    return plural(static_cast<std::uint64_t>(period / kDay), "day", "days");
  }
  if (period >= std::chrono::hours{1} && period % std::chrono::hours{1} == std::chrono::nanoseconds::zero()) {
    return plural(static_cast<std::uint64_t>(period / std::chrono::hours{1}), "hour", "hours");
  }
  if (period >= std::chrono::minutes{1} && period % std::chrono::minutes{1} == std::chrono::nanoseconds::zero()) {
    return plural(static_cast<std::uint64_t>(period / std::chrono::minutes{1}), "minute", "minutes");
  }
  return plural(static_cast<std::uint64_t>(duration_cast<std::chrono::seconds>(period).count()), "second", "seconds");
}

std::string expiredWarning(const GapRecord& expired, const storage::RetentionHorizon& horizon) {
  const std::string by = horizon.period ? "by the retention of " + periodText(*horizon.period) : "by retention";
  return std::string(kWarning) + windowText(expired.start, expired.end) + " is out of range: flows that ended before " +
         shortTime(horizon.horizon) + " were expired " + by + std::string(kMayBeMissing);
}

}  // namespace

std::vector<UncoveredSpan> uncoveredSpans(TimeWindow window, std::span<const LoggedPeriod> periods) {
  std::vector<UncoveredSpan> spans;
  if (periods.empty() || window.to < window.from) {
    return spans;
  }
  // `uncovered_from` is the first instant of the window not yet known to be covered.
  std::optional<Timestamp> uncovered_from = window.from;
  std::optional<LoggedPeriod> before;
  std::optional<LoggedPeriod> after;
  for (const Covered& covered : mergedCoverage(periods)) {
    if (covered.end < *uncovered_from) {
      before = covered.last;
      continue;
    }
    if (covered.start > window.to) {
      after = covered.first;
      break;
    }
    if (covered.start > *uncovered_from) {
      spans.push_back({before ? std::max(window.from, before->end) : window.from, covered.start, before, covered.first});
    }
    if (covered.end >= window.to) {
      uncovered_from.reset();
      break;
    }
    uncovered_from = covered.end + kOneNano;
    before = covered.last;
  }
  if (uncovered_from) {
    spans.push_back({before ? std::max(window.from, before->end) : window.from,
                     after ? std::min(window.to, after->start) : window.to, before, after});
  }
  return spans;
}

TimeWindow resolveWindow(std::optional<Timestamp> from, std::optional<Timestamp> to,
                         std::span<const LoggedPeriod> periods) {
  Timestamp earliest = Timestamp::min();
  Timestamp latest = Timestamp::max();
  if (!periods.empty()) {
    earliest = std::min_element(periods.begin(), periods.end(), [](const auto& a, const auto& b) {
                 return a.start < b.start;
               })->start;
    latest = Timestamp::min();
    for (const LoggedPeriod& period : periods) {
      latest = std::max({latest, period.start, period.end});
    }
  }
  TimeWindow window{from.value_or(earliest), to.value_or(latest)};
  if (!from && to) {
    window.from = std::min(earliest, *to);
  }
  if (from && !to) {
    window.to = std::max(latest, *from);
  }
  return window;
}

LogCheck assessLog(TimeWindow window, std::span<const GapRecord> gaps, std::span<const LoggedPeriod> periods,
                   const std::optional<storage::RetentionHorizon>& horizon) {
  struct Entry {
    GapRecord gap;
    std::string warning;
  };
  // Another sink's loss (the JSON lines') is on record here too, but this database has those
  // records: it leaves the answers from it complete.
  std::vector<GapRecord> own;
  std::copy_if(gaps.begin(), gaps.end(), std::back_inserter(own), [](const GapRecord& gap) {
    return gap.sink.empty() || gap.sink == storage::kDatabaseSinkLabel;
  });
  std::vector<Entry> entries;
  entries.reserve(own.size() + 1);
  // The part of the window that runs are checked for: none of it before the retention horizon.
  std::optional<TimeWindow> covered = window;
  if (horizon && window.from < horizon->horizon && window.from <= window.to) {
    GapRecord expired;
    expired.reason = GapReason::RetentionExpired;
    expired.start = window.from;
    expired.end = std::min(window.to, horizon->horizon);
    entries.push_back({expired, expiredWarning(expired, *horizon)});
    if (window.to < horizon->horizon) {
      covered.reset();
    } else {
      covered->from = horizon->horizon;
    }
  }
  for (const GapRecord& gap : own) {
    entries.push_back({gap, gapWarning(gap)});
  }
  if (covered) {
    for (const UncoveredSpan& span : uncoveredSpans(*covered, periods)) {
      const bool recorded =
          std::any_of(own.begin(), own.end(), [&](const GapRecord& gap) { return contains(gap, span); });
      if (!recorded) {
        entries.push_back({daemonDown(span), spanWarning(span)});
      }
    }
  }
  std::stable_sort(entries.begin(), entries.end(),
                   [](const Entry& a, const Entry& b) { return a.gap.start < b.gap.start; });

  LogCheck check;
  check.gaps.reserve(entries.size());
  check.warnings.reserve(entries.size() + 1);
  if (periods.empty() && covered) {
    check.warnings.push_back(std::string(kWarning) +
                             "the database records no ctauditd runs, so whether it covers " +
                             windowText(covered->from, covered->to) +
                             " cannot be told. A copy of the database file taken without its -wal file while "
                             "ctauditd ran lacks what that file held, runs and flows alike: copy the file with its "
                             "-wal and -shm after ctauditd stopped, or while it runs take a copy with sqlite3 "
                             "-readonly DB \".backup copy.db\" (docs/operations.md)");
  }
  for (Entry& entry : entries) {
    check.gaps.push_back(std::move(entry.gap));
    check.warnings.push_back(std::move(entry.warning));
  }
  return check;
}

Result<LogCoverage> readCoverage(FlowFinder& finder, std::optional<Timestamp> from, std::optional<Timestamp> to) {
  LogCoverage coverage;
  if (!from && !to) {
    return coverage;
  }
  auto periods = finder.loggedPeriods();
  if (!periods) {
    return Unexpected{periods.error()};
  }
  const TimeWindow window = resolveWindow(from, to, *periods);
  auto gaps = finder.gaps(window.from, window.to);
  if (!gaps) {
    return Unexpected{gaps.error()};
  }
  coverage.window = window;
  coverage.gaps = std::move(*gaps);
  coverage.periods = std::move(*periods);
  return coverage;
}

Result<LogCheck> checkLog(FlowFinder& finder, const LogCoverage& coverage) {
  if (!coverage.window) {
    return LogCheck{};
  }
  auto horizon = finder.retentionHorizon();
  if (!horizon) {
    return Unexpected{horizon.error()};
  }
  return assessLog(*coverage.window, coverage.gaps, coverage.periods, *horizon);
}

Result<LogCheck> checkLog(FlowFinder& finder, std::optional<Timestamp> from, std::optional<Timestamp> to) {
  auto coverage = readCoverage(finder, from, to);
  if (!coverage) {
    return Unexpected{coverage.error()};
  }
  return checkLog(finder, *coverage);
}

void printLogCheck(std::ostream& out, std::ostream& err, OutputFormat format, const LogCheck& check,
                   const std::string& observer_hostname) {
  if (format == OutputFormat::Json) {
    printGapJsonLines(out, check.gaps, storage::JsonContext{observer_hostname});
  }
  for (const std::string& warning : check.warnings) {
    err << warning << '\n';
  }
}

}  // namespace ctaudit::query
