// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flow_table.hpp"

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <optional>
#include <vector>

#include "flow/protocol.hpp"
#include "flow/time.hpp"
#include "query/text_table.hpp"

namespace ctaudit::query {
namespace {

constexpr std::string_view kReceiveTimeNote =
    "~ receive time: ctauditd's clock, not the kernel's: a START up to a quarter second early (when ctauditd "
    "woke for a batch of events), an END a little late (when it read the event)";
constexpr std::string_view kObservedAtStartNote =
    "* first seen in the conntrack table when ctauditd started, not through its creation event; an "
    "unmarked START is the kernel's own time";
constexpr std::string_view kBoundNote =
    "^ bound: the end event was lost; the flow ended at or before this time";
constexpr std::string_view kBoundStartNote =
    "^ on START: its start is not known; the flow began at or before this time, when ctauditd first saw it";

// "2026-11-25T10:00:03.123456Z": formatRfc3339 with the last three fractional digits cut off.
std::string tableTime(Timestamp t) {
  std::string text = formatRfc3339(t);
  constexpr std::size_t kNanoDigitsToDrop = 3;
  text.erase(text.size() - 1 - kNanoDigitsToDrop, kNanoDigitsToDrop);
  return text;
}

std::string endpointText(const IpAddress& address, std::optional<std::uint16_t> port) {
  if (!port) {
    return address.toString();
  }
  return Endpoint{address, *port}.toString();
}

// The protocols whose tuples carry something a NAT rewrites: ports, or the ICMP id.
bool hasPortOrId(Protocol protocol) { return hasPorts(protocol) || isIcmp(protocol); }

std::string insideText(const FlowTuple& original) {
  return endpointText(original.src, hasPortOrId(original.protocol) ? std::optional(original.sourceKey()) : std::nullopt);
}

std::string destinationText(const FlowTuple& original) {
  return endpointText(original.dst, hasPorts(original.protocol) ? std::optional(original.dst_port) : std::nullopt);
}

std::string natText(const std::optional<Endpoint>& endpoint, Protocol protocol) {
  if (!endpoint) {
    return "-";
  }
  return endpointText(endpoint->address, hasPortOrId(protocol) ? std::optional(endpoint->port) : std::nullopt);
}

std::string bytesText(const std::optional<Counters>& counters) {
  return counters ? std::to_string(counters->bytes) : "-";
}

// "0", "+1.5s", "-0.000001s".
std::string gapText(std::chrono::nanoseconds gap) {
  if (gap.count() == 0) {
    return "0";
  }
  constexpr std::int64_t kNanosPerSecond = 1'000'000'000;
  const std::int64_t magnitude = gap.count() < 0 ? -gap.count() : gap.count();
  std::string text = (gap.count() < 0 ? "-" : "+") + std::to_string(magnitude / kNanosPerSecond);
  if (const std::int64_t nanos = magnitude % kNanosPerSecond; nanos != 0) {
    std::string fraction = std::to_string(nanos);
    fraction.insert(0, 9 - fraction.size(), '0');
    fraction.erase(fraction.find_last_not_of('0') + 1);
    text += "." + fraction;
  }
  return text + "s";
}

// Which footnotes the table needs.
struct MarksUsed {
  bool receive_time{false};
  bool observed_at_start{false};
  bool bound{false};
  bool bound_start{false};
};

// "2026-11-25T10:00:03.123456Z", with '~' for a receive time, '^' for a bound (the start is not
// known: the flow began at or before this, shownRecord) and '*' for a flow first seen in the start
// dump; "-" when there is no start.
std::string startCell(const FlowRecord& flow, MarksUsed& marks) {
  std::string cell = "-";
  if (flow.start) {
    cell = tableTime(*flow.start);
    if (flow.start_source == TimeSource::Receive) {
      cell += '~';
      marks.receive_time = true;
    } else if (flow.start_source == TimeSource::Bound) {
      cell += '^';
      marks.bound_start = true;
    }
  }
  if (flow.observed_at_start) {
    cell += '*';
    marks.observed_at_start = true;
  }
  return cell;
}

std::string endCell(const FlowRecord& flow, MarksUsed& marks) {
  if (!flow.end) {
    return "open";
  }
  std::string cell = tableTime(*flow.end);
  if (flow.end_source == TimeSource::Receive) {
    cell += '~';
    marks.receive_time = true;
  } else if (flow.end_source == TimeSource::Bound) {
    cell += '^';
    marks.bound = true;
  }
  return cell;
}

// Which optional columns the table needs.
struct ColumnsUsed {
  bool dnat{false};
  bool zone{false};
};

std::vector<std::string> flowRow(const FlowRecord& flow, ColumnsUsed used, MarksUsed& marks) {
  std::vector<std::string> row{startCell(flow, marks),
                               endCell(flow, marks),
                               protocolName(flow.original.protocol),
                               insideText(flow.original),
                               natText(flow.nat.translated_source, flow.original.protocol),
                               destinationText(flow.original)};
  if (used.dnat) {
    row.push_back(natText(flow.nat.translated_destination, flow.original.protocol));
  }
  if (used.zone) {
    row.push_back(std::to_string(flow.zone));
  }
  row.push_back(std::to_string(flow.ct_id));
  row.push_back(bytesText(flow.counters_original));
  row.push_back(bytesText(flow.counters_reply));
  return row;
}

}  // namespace

std::string renderFlowTable(std::span<const FlowRecord> flows, std::span<const std::chrono::nanoseconds> gaps,
                            std::span<const WhoMatch> matches) {
  assert(gaps.empty() || gaps.size() == flows.size());
  assert(matches.empty() || matches.size() == flows.size());
  const bool show_match = std::find(matches.begin(), matches.end(), WhoMatch::PortForward) != matches.end();
  if (flows.empty()) {
    return {};
  }
  const ColumnsUsed used{
      .dnat = std::any_of(flows.begin(), flows.end(),
                          [](const FlowRecord& flow) { return flow.nat.translated_destination.has_value(); }),
      // Two gateways' worth of subscribers behind one box (VRFs, conntrack zones) can have the same
      // inside addresses: the zone tells them apart.
      .zone = std::any_of(flows.begin(), flows.end(), [](const FlowRecord& flow) { return flow.zone != 0; }),
  };
  const bool show_gap = !gaps.empty();

  std::vector<TableColumn> columns{{"START"}, {"END"}, {"PROTO"}, {"INSIDE"}, {"TRANSLATED"}, {"DESTINATION"}};
  if (used.dnat) {
    columns.push_back({"DNAT_TO"});
  }
  if (used.zone) {
    columns.push_back({"ZONE", true});
  }
  columns.push_back({"CT_ID", true});
  columns.push_back({"BYTES_OUT", true});
  columns.push_back({"BYTES_IN", true});
  if (show_gap) {
    columns.push_back({"GAP", true});
  }
  if (show_match) {
    columns.push_back({"MATCH"});
  }

  MarksUsed marks;
  std::vector<std::vector<std::string>> rows;
  rows.reserve(flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i) {
    rows.push_back(flowRow(flows[i], used, marks));
    if (show_gap) {
      rows.back().push_back(gapText(gaps[i]));
    }
    if (show_match) {
      rows.back().emplace_back(matches[i] == WhoMatch::PortForward ? "forward" : "snat");
    }
  }

  std::string text = renderTextTable(columns, rows);
  if (marks.receive_time || marks.observed_at_start || marks.bound || marks.bound_start) {
    text += '\n';
    if (marks.receive_time) {
      text.append(kReceiveTimeNote).push_back('\n');
    }
    if (marks.observed_at_start) {
      text.append(kObservedAtStartNote).push_back('\n');
    }
    if (marks.bound) {
      text.append(kBoundNote).push_back('\n');
    }
    if (marks.bound_start) {
      text.append(kBoundStartNote).push_back('\n');
    }
  }
  return text;
}

}  // namespace ctaudit::query
