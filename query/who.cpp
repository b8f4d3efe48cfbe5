// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/who.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

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

// The flows a lookup without --proto leaves out: a report names a port, and a flow of a protocol
// without ports is another flow that merely has the same number in the port's place.
struct LeftOut {
  std::size_t icmp{0};      // an echo id with the port's number
  std::size_t portless{0};  // GRE and the others keep 0 there: only a lookup of port 0 meets them
};

std::string destinationText(const WhoCommand& who) {
  return who.destination_port ? Endpoint{*who.destination_address, *who.destination_port}.toString()
                              : who.destination_address->toString();
}

void printLeftOut(std::ostream& err, const WhoCommand& who, const LeftOut& left_out) {
  if (left_out.icmp > 0) {
    err << "ctaudit: note: " << left_out.icmp << " ICMP flow(s) that used " << who.translated_source.port
        << " as their echo id are left out: --proto icmp (or icmpv6) shows them\n";
  }
  if (left_out.portless > 0) {
    err << "ctaudit: note: " << left_out.portless
        << " flow(s) of protocols without ports (GRE, which keeps a PPTP call id or 0 in the port's place, ESP, "
           "...) are left out: --proto with their protocol shows them\n";
  }
}

// Whether `who` also asks for a port forward (DNAT) of its address and port: a report about an
// address and port that outside hosts connected to (a server behind the gateway) is about the
// original destination of a DNAT'd flow. An ICMP id is no port a forward names.
bool looksUpForwards(const WhoCommand& who) noexcept { return !who.protocol || !isIcmp(*who.protocol); }

// Whether `flow` is one the port-forward lookup found: DNAT'd, to the asked address and port, and
// not found by its translated source (a hairpin flow can be both: it counts as that).
bool cameThroughForward(const FlowRecord& flow, const Endpoint& asked) noexcept {
  return flow.nat.translated_destination && flow.original.dst == asked.address && flow.original.dst_port == asked.port &&
         !(flow.nat.translated_source && *flow.nat.translated_source == asked);
}

// who's second question: the flows that came in through a port forward of the address and port.
// The victim a report names (--dst) is then the outside host that connected, the flow's source;
// its port, if given, is checked on the rows found (keepFromVictimPort).
storage::FlowQuery toForwardQuery(const WhoCommand& who) {
  storage::FlowQuery query = toFlowQuery(who);
  query.nat_source_address.reset();
  query.nat_source_port.reset();
  query.destination_address.reset();
  query.destination_port.reset();
  query.destination_reached = false;
  query.forwarded_address = who.translated_source.address;
  query.forwarded_port = who.translated_source.port;
  if (who.destination_address) {
    query.source = IpNetwork{*who.destination_address, who.destination_address->isV4() ? 32U : 128U};
  }
  return query;
}

void keepFromVictimPort(const WhoCommand& who, std::vector<storage::StoredFlow>& flows) {
  if (!who.destination_port) {
    return;
  }
  std::erase_if(flows, [&](const storage::StoredFlow& flow) {
    return !hasPorts(flow.record.original.protocol) || flow.record.original.src_port != *who.destination_port;
  });
}

// Said with the flows of a port forward: what they are, and which inside host served them, more
// than one for a forward that balances its connections (dnat to a map or numgen). Their tuple reads
// the other way round from a masqueraded flow's, which a case file must not mix up (a review).
void printForwarded(std::ostream& err, const WhoCommand& who, std::span<const RankedFlow> ranked,
                    std::span<const WhoMatch> matches) {
  std::vector<IpAddress> inside;
  std::size_t count = 0;
  for (std::size_t i = 0; i < ranked.size(); ++i) {
    if (matches[i] != WhoMatch::PortForward) {
      continue;
    }
    ++count;
    const auto& target = ranked[i].flow.nat.translated_destination;
    if (ranked[i].gap.count() == 0 && std::find(inside.begin(), inside.end(), target->address) == inside.end()) {
      inside.push_back(target->address);
    }
  }
  if (count == 0) {
    return;
  }
  err << "ctaudit: note: " << count << " flow(s) came in through a port forward (DNAT) of "
      << who.translated_source.toString()
      << " (MATCH forward; ctaudit.who.match in JSON, match in CSV): the inside host is the one each was forwarded to (DNAT_TO; "
         "destination.nat.ip in JSON, nat_dst_ip in CSV), and its source the outside host that connected";
  if (inside.size() > 1) {
    err << "; " << inside.size() << " inside hosts served it at --at";
  }
  err << '\n';
}

// Two lines. `left_out`: flows of protocols without ports, left out without --proto.
std::string noMatchMessage(const WhoCommand& who, const LeftOut& left_out) {
  std::string message = "no flow had translated source " + who.translated_source.toString();
  if (who.protocol) {
    message += " (" + protocolName(*who.protocol) + ")";
  }
  if (who.zone) {
    message += " in zone " + std::to_string(*who.zone);
  }
  if (who.destination_address) {
    message += " to " + destinationText(who);
    if (mayHaveMeantAPort(who.destination_address, who.destination_port)) {
      message += kUnbracketedPortHint;
    }
  }
  const auto query = toFlowQuery(who);
  if (who.slack.count() == 0) {
    message += " at " + formatRfc3339(who.at) + "; widen the window with --slack, e.g. --slack 5s";
  } else {
    message += " between " + formatRfc3339(*query.from) + " and " + formatRfc3339(*query.to);
  }
  if (left_out.icmp > 0) {
    message += "; " + std::to_string(left_out.icmp) + " ICMP flow(s) used " +
               std::to_string(who.translated_source.port) + " as their echo id: --proto icmp (or icmpv6) shows them";
  }
  if (left_out.portless > 0) {
    message += "; " + std::to_string(left_out.portless) +
               " flow(s) of protocols without ports (GRE: a PPTP call id or 0) had that number in the port's place: "
               "--proto with their protocol shows them";
  }
  // runWho looked for a port forward of it as well, with the same filters (--dst: from that host).
  if (looksUpForwards(who)) {
    message += "\nctaudit: nor did such a flow come in through a port forward (DNAT) of " +
               who.translated_source.toString();
  }
  return message;
}


// What a flow's lifetime is known to lie within: from `start` (its start, or when it was first
// seen) to `end` (none while open).
struct Lifetime {
  Timestamp start;
  std::optional<Timestamp> end;
};

nanoseconds gapTo(const Lifetime& lifetime, Timestamp at) noexcept {
  if (at < lifetime.start) {
    return distance(lifetime.start, at);
  }
  if (lifetime.end && at > *lifetime.end) {
    return -distance(at, *lifetime.end);
  }
  return nanoseconds{0};
}

// The kernel lets only one entry at a time hold a reply tuple (translated source and destination)
// in a zone: of two such flows, the later one began only after the earlier one ended.
bool sameTranslatedTuple(const FlowRecord& a, const FlowRecord& b) noexcept {
  return a.zone == b.zone && a.reply == b.reply;
}

bool exactStart(const FlowRecord& flow) noexcept { return flow.start && flow.start_source == TimeSource::Kernel; }
bool exactEnd(const FlowRecord& flow) noexcept { return flow.end && flow.end_source == TimeSource::Kernel; }

// How far a receive-time START can lie from the truth: the reader's longest wait before it reads
// what woke it (224 ms with the default receive buffer, 250 ms at most: read_pacing.hpp). A backlog
// after a stall can stamp a START later than that; the docs say so of `~`.
constexpr nanoseconds kReceiveTimeSlack = std::chrono::milliseconds{250};

// The earliest and the latest time a flow can have begun, where the log says.
struct StartBounds {
  std::optional<Timestamp> earliest;
  std::optional<Timestamp> latest;
};

// A kernel start: exactly then. A receive-time start: within kReceiveTimeSlack of it. A start not
// known began at or before it was first seen, a bound when that was the start-up dump or its
// DESTROY (its NEW lost); first seen at an UPDATE, stamped when the reader woke, it is not one (a
// review found such a time cutting another flow's end short).
StartBounds startBounds(const storage::StoredFlow& flow) noexcept {
  const FlowRecord& record = flow.record;
  if (exactStart(record)) {
    return {record.start, record.start};
  }
  if (record.start) {
    return {flow.lifetime_start - kReceiveTimeSlack, flow.lifetime_start + kReceiveTimeSlack};
  }
  if (record.observed_at_start) {
    return {std::nullopt, flow.lifetime_start};
  }
  // Seen only at its end: the row keeps the start rounded down and the end up, a millisecond apart
  // at most. A receive-time end is a wake time, which the start can follow by the reader's wait.
  if (record.end && *record.end - flow.lifetime_start <= std::chrono::milliseconds{1}) {
    return {std::nullopt, exactEnd(record) ? *record.end : *record.end + kReceiveTimeSlack};
  }
  return {};
}

// Whether `before` began before `after` for certain: its latest start lies before the other's
// earliest. Ordering by the recorded starts alone put a flow whose NEW was lost (first seen at its
// DESTROY) after the open flow that followed it, and cut the live one's lifetime short (a review).
bool certainlyBefore(const StartBounds& before, const StartBounds& after) noexcept {
  return before.latest && after.earliest && *before.latest < *after.earliest;
}

// Each flow's lifetime, narrowed where it is not the kernel's own time by the kernel's times of
// the flows certainly before and after it on the same translated tuple. A START taken when
// ctauditd woke for the event can lie before the DESTROY of the flow that held the tuple, read in
// the same turn: an exploratory run found `who` ranking the newer flow first for a time the older
// one still held the port. Two kernel times are left as they are: they are what happened.
std::vector<Lifetime> narrowedLifetimes(std::span<const storage::StoredFlow> flows,
                                        std::span<const StartBounds> bounds) {
  std::vector<Lifetime> lifetimes;
  lifetimes.reserve(flows.size());
  for (const storage::StoredFlow& flow : flows) {
    lifetimes.push_back({flow.lifetime_start, flow.record.end});
  }
  for (std::size_t earlier = 0; earlier < flows.size(); ++earlier) {
    for (std::size_t later = 0; later < flows.size(); ++later) {
      const FlowRecord& before = flows[earlier].record;
      const FlowRecord& after = flows[later].record;
      if (earlier == later || !sameTranslatedTuple(before, after) || !certainlyBefore(bounds[earlier], bounds[later])) {
        continue;
      }
      if (!exactStart(after) && exactEnd(before)) {
        lifetimes[later].start = std::max(lifetimes[later].start, *before.end);
      }
      if (const auto latest = bounds[later].latest; latest && !exactEnd(before)) {
        lifetimes[earlier].end = lifetimes[earlier].end ? std::min(*lifetimes[earlier].end, *latest) : *latest;
      }
    }
  }
  return lifetimes;
}

// Flows on one translated tuple that both contain `at` once narrowed (or one does and the other's
// start, not the kernel's, may lie before `at`), where a time that is not the kernel's, or an
// order the log cannot tell, leaves it open which one held it: they cannot both have. Each pair
// once, the one that began later (or was seen later) second.
std::vector<std::pair<std::size_t, std::size_t>> undecided(std::span<const storage::StoredFlow> flows,
                                                           std::span<const StartBounds> bounds,
                                                           std::span<const nanoseconds> gaps, Timestamp at) {
  // Contains `at`, or may have: its start is not the kernel's and may lie before `at` (a flow
  // stamped when ctauditd read its NEW late, after `at`, held the tuple by then: an exploratory run
  // with nf_conntrack_timestamp=0 found `who` naming the flow before it alone).
  const auto alive_at = [&](std::size_t i) {
    return gaps[i].count() == 0 || (gaps[i].count() > 0 && bounds[i].earliest && *bounds[i].earliest <= at);
  };
  std::vector<std::pair<std::size_t, std::size_t>> pairs;
  for (std::size_t first = 0; first < flows.size(); ++first) {
    for (std::size_t second = first + 1; second < flows.size(); ++second) {
      if ((gaps[first].count() != 0 && gaps[second].count() != 0) || !alive_at(first) || !alive_at(second) ||
          !sameTranslatedTuple(flows[first].record, flows[second].record)) {
        continue;
      }
      // One contains `at` and ended by the kernel's time: it held the tuple until then, after `at`,
      // and the other began only after it.
      if (const std::size_t holder = gaps[first].count() == 0 ? first : second;
          gaps[first] != gaps[second] && exactEnd(flows[holder].record)) {
        continue;
      }
      const bool in_order = !certainlyBefore(bounds[second], bounds[first]) &&
                            flows[first].lifetime_start <= flows[second].lifetime_start;
      const std::size_t before = in_order ? first : second;
      const std::size_t after = in_order ? second : first;
      // Both of the kernel: an overlap that happened (a TCP entry in TIME_WAIT taken over).
      if (certainlyBefore(bounds[before], bounds[after]) && exactEnd(flows[before].record) &&
          exactStart(flows[after].record)) {
        continue;
      }
      pairs.emplace_back(before, after);
    }
  }
  return pairs;
}

std::string flowName(const FlowRecord& flow) {
  return Endpoint{flow.original.src, flow.original.sourceKey()}.toString() + " (ct id " +
         std::to_string(flow.ct_id) + ")";
}

void printUndecided(std::ostream& err, std::span<const RankedFlow> ranked) {
  for (const RankedFlow& entry : ranked) {
    for (const std::string& other : entry.undecided_with) {
      err << "ctaudit: warning: " << other << " and " << flowName(entry.flow)
          << " used the same translated source and destination, so one began only after the other ended, but "
             "what the log holds of their times (ctauditd's receive times or bounds, not the kernel's own) "
             "leaves both alive at --at: either may be the one. The kernel's times (nf_conntrack_timestamp=1, "
             "which ctauditd sets) settle it once both have ended\n";
    }
  }
}

// SNAT gives one translated source to several inside hosts at once, each talking to another
// destination (the kernel keeps only whole reply tuples apart): an exploratory run found two
// subscribers at GAP 0 and nothing that said the answer was two. Two flows on one translated
// tuple did not overlap, one followed the other: printUndecided speaks of those, and no filter
// tells them apart (a review).
void printSharedTranslation(std::ostream& err, const WhoCommand& who, std::span<const RankedFlow> ranked) {
  std::vector<const FlowRecord*> containing;
  for (const RankedFlow& entry : ranked) {
    if (entry.gap.count() == 0) {
      containing.push_back(&entry.flow);
    }
  }
  std::vector<std::pair<std::uint16_t, IpAddress>> hosts;
  bool destinations = false;
  bool protocols = false;
  bool zones = false;
  for (std::size_t i = 0; i < containing.size(); ++i) {
    for (std::size_t j = i + 1; j < containing.size(); ++j) {
      const FlowRecord& a = *containing[i];
      const FlowRecord& b = *containing[j];
      if ((a.zone == b.zone && a.original.src == b.original.src) || sameTranslatedTuple(a, b)) {
        continue;
      }
      for (const FlowRecord* flow : {&a, &b}) {
        const std::pair host{flow->zone, flow->original.src};
        if (std::find(hosts.begin(), hosts.end(), host) == hosts.end()) {
          hosts.push_back(host);
        }
      }
      destinations = destinations || a.reply.src != b.reply.src || a.reply.src_port != b.reply.src_port;
      protocols = protocols || a.original.protocol != b.original.protocol;
      zones = zones || a.zone != b.zone;
    }
  }
  if (hosts.empty()) {
    return;
  }
  std::string hint;
  if (destinations) {
    hint = who.destination_address ? "the destination port the report names tells which: give --dst the port too"
                                   : "the destination the report names (the victim) tells which: --dst ADDR[:PORT] "
                                     "keeps its flows alone";
  } else if (protocols) {
    hint = "the protocol the report names tells which: --proto";
  } else if (zones) {
    hint = "the conntrack zone tells which: --zone";
  }
  err << "ctaudit: note: " << hosts.size() << " inside hosts held " << who.translated_source.toString()
      << " at --at at once, which SNAT allows for flows to other destinations";
  if (!hint.empty()) {
    err << ": " << hint;
  }
  err << '\n';
}

}  // namespace

storage::FlowQuery toFlowQuery(const WhoCommand& who) {
  storage::FlowQuery query;
  query.nat_source_address = who.translated_source.address;
  query.nat_source_port = who.translated_source.port;
  query.protocol = who.protocol;
  query.zone = who.zone;
  query.destination_address = who.destination_address;
  query.destination_port = who.destination_port;
  query.destination_reached = true;
  query.from = shifted(who.at, -who.slack);
  query.to = shifted(who.at, who.slack);
  return query;
}

nanoseconds gapToLifetime(const storage::StoredFlow& flow, Timestamp at) noexcept {
  return gapTo({flow.lifetime_start, flow.record.end}, at);
}

std::vector<RankedFlow> rankByCloseness(std::span<const storage::StoredFlow> flows, Timestamp at) {
  struct Entry {
    RankedFlow ranked;
    Timestamp lifetime_start;
  };
  std::vector<StartBounds> bounds;
  bounds.reserve(flows.size());
  for (const storage::StoredFlow& flow : flows) {
    bounds.push_back(startBounds(flow));
  }
  const std::vector<Lifetime> lifetimes = narrowedLifetimes(flows, bounds);
  std::vector<nanoseconds> gaps;
  gaps.reserve(flows.size());
  for (const Lifetime& lifetime : lifetimes) {
    gaps.push_back(gapTo(lifetime, at));
  }
  std::vector<Entry> entries;
  entries.reserve(flows.size());
  for (std::size_t i = 0; i < flows.size(); ++i) {
    const storage::StoredFlow& flow = flows[i];
    entries.push_back({{shownRecord(flow), gaps[i], gaps[i] != gapToLifetime(flow, at), {}}, flow.lifetime_start});
  }
  for (const auto& [earlier, later] : undecided(flows, bounds, gaps, at)) {
    entries[later].ranked.undecided_with.push_back(flowName(flows[earlier].record));
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
  // A report names a port; an ICMP echo id that happens to have the same number is another flow
  // (an exploratory run found a ping ranked above the TCP flow asked about), and so is a GRE flow
  // for port 0 (another found those named as exact matches). --proto asks for them.
  LeftOut left_out;
  const auto leave_out = [&](std::vector<storage::StoredFlow>& flows) {
    LeftOut left;
    if (!who.protocol) {
      left.icmp = std::erase_if(flows, [](const storage::StoredFlow& flow) {
        return isIcmp(flow.record.original.protocol);
      });
      left.portless = std::erase_if(flows, [](const storage::StoredFlow& flow) {
        return !hasPorts(flow.record.original.protocol);
      });
    }
    return left;
  };
  left_out = leave_out(*found);
  // The address and port may have been a port forward's public side, and may have been that while
  // a masqueraded flow to another destination had them as its translated source (their reply
  // tuples differ): both are asked, always (a review found a masqueraded flow that came near --at
  // hiding the forward that held it then). The forward's lookup reads partial indexes of the DNAT'd
  // flows alone, which a CGNAT hardly has.
  if (looksUpForwards(who)) {
    auto forwards = findAll(finder, toForwardQuery(who));
    if (!forwards) {
      printErrorLine(err, forwards.error().detail);
      return ExitStatus::Error;
    }
    // The notes about flows left out speak of the translated source; of a forward, only the flows
    // with ports are kept, silently.
    leave_out(*forwards);
    keepFromVictimPort(who, *forwards);
    for (storage::StoredFlow& flow : *forwards) {
      if (std::find(found->begin(), found->end(), flow) == found->end()) {  // a hairpin flow is in both
        found->push_back(std::move(flow));
      }
    }
  }
  // The retention horizon after the flows (checkLog): a deletion committed in between moves it on.
  const auto check = checkLog(finder, *coverage);
  if (!check) {
    printErrorLine(err, check.error().detail);
    return ExitStatus::Error;
  }
  if (found->empty()) {
    printWhoFlows(out, who.format, {}, {}, {}, finder.observerHostname());  // the CSV header, if CSV
    if (who.format == OutputFormat::Table) {
      err << "ctaudit: " << noMatchMessage(who, left_out) << '\n';
    } else {
      printLeftOut(err, who, left_out);
    }
    printLogCheck(out, err, who.format, *check, finder.observerHostname());
    return ExitStatus::NothingFound;
  }
  std::vector<RankedFlow> ranked = rankByCloseness(*found, who.at);
  std::vector<FlowRecord> flows;
  std::vector<nanoseconds> gaps;
  std::vector<WhoMatch> matches;
  std::vector<RankedFlow> by_translated_source;
  flows.reserve(ranked.size());
  gaps.reserve(ranked.size());
  matches.reserve(ranked.size());
  for (const RankedFlow& entry : ranked) {
    flows.push_back(entry.flow);
    gaps.push_back(entry.gap);
    matches.push_back(cameThroughForward(entry.flow, who.translated_source) ? WhoMatch::PortForward
                                                                             : WhoMatch::TranslatedSource);
    if (matches.back() == WhoMatch::TranslatedSource) {
      by_translated_source.push_back(entry);
    }
  }
  printWhoFlows(out, who.format, flows, gaps, matches, finder.observerHostname());
  printUndecided(err, ranked);
  printSharedTranslation(err, who, by_translated_source);
  printForwarded(err, who, ranked, matches);
  printLeftOut(err, who, left_out);
  if (who.format == OutputFormat::Table &&
      std::any_of(ranked.begin(), ranked.end(), [](const RankedFlow& entry) { return entry.narrowed; })) {
    err << "ctaudit: note: a GAP next to a START or END marked ~ or ^ may be measured from the kernel's time of "
           "the flow before or after it on the same translated source and destination, which it cannot overlap\n";
  }
  printLogCheck(out, err, who.format, *check, finder.observerHostname());
  return ExitStatus::Found;
}

}  // namespace ctaudit::query
