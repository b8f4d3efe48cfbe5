// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/who.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "flow/protocol.hpp"
#include "query/flow_output.hpp"
#include "query/log_check.hpp"
#include "query/printable.hpp"

namespace ctaudit::query {
namespace {

using std::chrono::nanoseconds;
using Rep = nanoseconds::rep;

// `t + delta`, clamped to Timestamp's range instead of overflowing (a slack of "100000d").
Timestamp shifted(Timestamp t, nanoseconds delta) noexcept {
  const Rep base = t.time_since_epoch().count();
  const Rep step = delta.count();
  if (step > 0 && base > std::numeric_limits<Rep>::max() - step) {
    return Timestamp::max();
  }
  if (step < 0 && base < std::numeric_limits<Rep>::min() - step) {
    return Timestamp::min();
  }
  return t + delta;
}

// `later - earlier` for later >= earlier, clamped to nanoseconds::max().
nanoseconds distance(Timestamp later, Timestamp earlier) noexcept {
  const Rep a = later.time_since_epoch().count();
  const Rep b = earlier.time_since_epoch().count();
  if (b < 0 && a > std::numeric_limits<Rep>::max() + b) {
    return nanoseconds::max();
  }
  return nanoseconds{a - b};
}

nanoseconds magnitude(nanoseconds gap) noexcept { return gap.count() < 0 ? -gap : gap; }

std::string noMatchMessage(const WhoCommand& who) {
  std::string message = "no flow had translated source " + who.translated_source.toString();
  if (who.protocol) {
    message += " (" + protocolName(*who.protocol) + ")";
  }
  if (who.slack.count() == 0) {
    message += " at " + formatRfc3339(who.at) + "; widen the window with --slack, e.g. --slack 5s";
  } else {
    const auto query = toFlowQuery(who);
    message += " between " + formatRfc3339(*query.from) + " and " + formatRfc3339(*query.to);
  }
  return message;
}

}  // namespace

storage::FlowQuery toFlowQuery(const WhoCommand& who) {
  storage::FlowQuery query;
  query.nat_source_address = who.translated_source.address;
  query.nat_source_port = who.translated_source.port;
  query.protocol = who.protocol;
  query.from = shifted(who.at, -who.slack);
  query.to = shifted(who.at, who.slack);
  return query;
}

nanoseconds gapToLifetime(const storage::StoredFlow& flow, Timestamp at) noexcept {
  if (at < flow.lifetime_start) {
    return distance(flow.lifetime_start, at);
  }
  const std::optional<Timestamp>& end = flow.record.end;
  if (end && at > *end) {
    return -distance(at, *end);
  }
  return nanoseconds{0};
}

std::vector<RankedFlow> rankByCloseness(std::span<const storage::StoredFlow> flows, Timestamp at) {
  struct Entry {
    RankedFlow ranked;
    Timestamp lifetime_start;
  };
  std::vector<Entry> entries;
  entries.reserve(flows.size());
  for (const storage::StoredFlow& flow : flows) {
    entries.push_back({{shownRecord(flow), gapToLifetime(flow, at)}, flow.lifetime_start});
  }
  std::stable_sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    const nanoseconds a_gap = magnitude(a.ranked.gap);
    const nanoseconds b_gap = magnitude(b.ranked.gap);
    if (a_gap != b_gap) {
      return a_gap < b_gap;
    }
    return a.lifetime_start > b.lifetime_start;
  });
  std::vector<RankedFlow> ranked;
  ranked.reserve(entries.size());
  for (Entry& entry : entries) {
    ranked.push_back(std::move(entry.ranked));
  }
  return ranked;
}

ExitStatus runWho(const WhoCommand& who, FlowFinder& finder, std::ostream& out, std::ostream& err) {
  const storage::FlowQuery query = toFlowQuery(who);
  // The log's coverage before the flows: the daemon may commit in between, and a heartbeat only
  // ever lands with or after the records it vouches for, so coverage read first never claims more
  // than the flows read next hold.
  const auto coverage = readCoverage(finder, query.from, query.to);
  if (!coverage) {
    printErrorLine(err, coverage.error().detail);
    return ExitStatus::Error;
  }
  auto found = findAll(finder, query);
  if (!found) {
    printErrorLine(err, found.error().detail);
    return ExitStatus::Error;
  }
  // The retention horizon after the flows (checkLog): a deletion committed in between moves it on.
  const auto check = checkLog(finder, *coverage);
  if (!check) {
    printErrorLine(err, check.error().detail);
    return ExitStatus::Error;
  }
  if (found->empty()) {
    printFlows(out, who.format, {}, {}, finder.observerHostname());  // the CSV header, if CSV
    if (who.format == OutputFormat::Table) {
      err << "ctaudit: " << noMatchMessage(who) << '\n';
    }
    printLogCheck(out, err, who.format, *check, finder.observerHostname());
    return ExitStatus::NothingFound;
  }
  std::vector<RankedFlow> ranked = rankByCloseness(*found, who.at);
  std::vector<FlowRecord> flows;
  std::vector<nanoseconds> gaps;
  flows.reserve(ranked.size());
  gaps.reserve(ranked.size());
  for (const RankedFlow& entry : ranked) {
    flows.push_back(entry.flow);
    gaps.push_back(entry.gap);
  }
  printFlows(out, who.format, flows, gaps, finder.observerHostname());
  printLogCheck(out, err, who.format, *check, finder.observerHostname());
  return ExitStatus::Found;
}

}  // namespace ctaudit::query
