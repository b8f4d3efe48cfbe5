// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/who.hpp"

#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/fake_flow_database.hpp"
#include "tests/support/nat_flow_builder.hpp"

namespace ctaudit::query {
namespace {

using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::NatFlowBuilder;

const Timestamp kAt = *parseTime("2026-11-25T10:00:03Z");

WhoCommand whoCommand(std::chrono::nanoseconds slack = nanoseconds{0}) {
  WhoCommand who;
  who.translated_source = Endpoint{*IpAddress::parse("203.0.113.7"), 40001};
  who.at = kAt;
  who.slack = slack;
  return who;
}

TEST(WhoTest, QueryIsTheTranslatedSourceAtTheTime) {
  WhoCommand who = whoCommand();
  who.protocol = Protocol::Tcp;
  const storage::FlowQuery query = toFlowQuery(who);
  EXPECT_EQ(query.nat_source_address, IpAddress::parse("203.0.113.7"));
  EXPECT_EQ(query.nat_source_port, 40001);
  EXPECT_EQ(query.protocol, Protocol::Tcp);
  EXPECT_EQ(query.from, kAt);
  EXPECT_EQ(query.to, kAt);
  EXPECT_FALSE(query.limit) << "every match is wanted";
  EXPECT_FALSE(query.source);
  EXPECT_FALSE(query.destination_address);
  EXPECT_FALSE(query.nat_address);
}

TEST(WhoTest, SlackWidensTheWindowBothWays) {
  const storage::FlowQuery query = toFlowQuery(whoCommand(seconds{2}));
  EXPECT_EQ(query.from, kAt - seconds{2});
  EXPECT_EQ(query.to, kAt + seconds{2});
  EXPECT_FALSE(query.protocol);
}

TEST(WhoTest, HugeSlackClampsInsteadOfOverflowing) {
  const storage::FlowQuery query = toFlowQuery(whoCommand(nanoseconds::max()));
  EXPECT_EQ(query.from, kAt - nanoseconds::max()) << "still representable after 1970";
  EXPECT_EQ(query.to, Timestamp::max());
  WhoCommand before_1970 = whoCommand(nanoseconds::max());
  before_1970.at = fromUnixNanos(-1000);
  EXPECT_EQ(toFlowQuery(before_1970).from, Timestamp::min());
}

// A flow as the reader returns it: its row, indexed under its start, or when it was first seen.
storage::StoredFlow stored(const FlowRecord& flow) { return testing::storedAsRead(flow); }

storage::StoredFlow firstSeenAt(FlowRecord flow, std::string_view first_seen) {
  storage::StoredFlow row = stored(flow);
  row.lifetime_start = *parseTime(first_seen);
  return row;
}

// What one runWho printed, and how it exited.
struct WhoRun {
  ExitStatus status;
  std::string out;
  std::string err;
};

WhoRun run(const WhoCommand& who, FlowFinder& finder) {
  std::ostringstream out;
  std::ostringstream err;
  const ExitStatus status = runWho(who, finder, out, err);
  return {status, out.str(), err.str()};
}

TEST(WhoTest, GapIsZeroInsideTheLifetimeIncludingItsEdges) {
  const auto flow = stored(NatFlowBuilder{}.start("2026-11-25T10:00:00Z").end("2026-11-25T10:01:00Z").build());
  EXPECT_EQ(gapToLifetime(flow, kAt), nanoseconds{0});
  EXPECT_EQ(gapToLifetime(flow, *flow.record.start), nanoseconds{0});
  EXPECT_EQ(gapToLifetime(flow, *flow.record.end), nanoseconds{0});
}

TEST(WhoTest, GapIsPositiveBeforeTheStartAndNegativeAfterTheEnd) {
  const auto later = stored(NatFlowBuilder{}.start("2026-11-25T10:00:04.5Z").end("2026-11-25T10:01:00Z").build());
  EXPECT_EQ(gapToLifetime(later, kAt), std::chrono::milliseconds{1500});
  const auto earlier = stored(NatFlowBuilder{}.start("2026-11-25T09:59:00Z").end("2026-11-25T10:00:01Z").build());
  EXPECT_EQ(gapToLifetime(earlier, kAt), -seconds{2});
}

TEST(WhoTest, OpenFlowLastsForEver) {
  const auto open = stored(NatFlowBuilder{}.start("2026-11-25T09:00:00Z").open().build());
  EXPECT_EQ(gapToLifetime(open, kAt), nanoseconds{0});
  EXPECT_EQ(gapToLifetime(open, kAt + std::chrono::hours{24 * 365}), nanoseconds{0});
  const auto future = stored(NatFlowBuilder{}.start("2026-11-25T10:00:05Z").open().build());
  EXPECT_EQ(gapToLifetime(future, kAt), seconds{2});
}

TEST(WhoTest, FlowSeenOnlyAtItsEndStartsThere) {
  const auto no_start = stored(NatFlowBuilder{}.noStart().end("2026-11-25T10:00:00Z").build());
  EXPECT_EQ(gapToLifetime(no_start, kAt), -seconds{3});
  EXPECT_EQ(gapToLifetime(no_start, kAt - seconds{4}), seconds{1});
}

// Found by an exploratory run: a flow from the start-up dump without a kernel start time (START
// `-*`) certainly held the port from when it was first seen, but ranked below a flow that merely
// came near, with a GAP of `?` while open and of `+154s` once it had ended.
TEST(WhoTest, FlowWithUnknownStartLivesFromWhenItWasFirstSeen) {
  const auto open = firstSeenAt(NatFlowBuilder{}.noStart().open().build(), "2026-11-25T09:59:00Z");
  EXPECT_EQ(gapToLifetime(open, kAt), nanoseconds{0});
  const auto ended =
      firstSeenAt(NatFlowBuilder{}.noStart().end("2026-11-25T10:02:00Z").build(), "2026-11-25T09:59:00Z");
  EXPECT_EQ(gapToLifetime(ended, kAt), nanoseconds{0});
  EXPECT_EQ(gapToLifetime(ended, kAt - seconds{63}), seconds{0});
  EXPECT_EQ(gapToLifetime(ended, kAt - seconds{64}), seconds{1}) << "first seen 1 s after: at most 1 s away";
}

std::vector<std::uint32_t> rankedIds(const std::vector<storage::StoredFlow>& flows) {
  std::vector<std::uint32_t> ids;
  for (const RankedFlow& ranked : rankByCloseness(flows, kAt)) {
    ids.push_back(ranked.flow.ct_id);
  }
  return ids;
}

TEST(WhoTest, RanksContainingFlowFirstThenByDistance) {
  // Oldest start first, as the reader returns them.
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:58:00Z").end("2026-11-25T10:00:00Z").build()),  // -3s
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T09:59:00Z").end("2026-11-25T10:00:02Z").build()),  // -1s
      stored(NatFlowBuilder{}.ctId(3).start("2026-11-25T10:00:01Z").end("2026-11-25T10:00:10Z").build()),  // inside
      stored(NatFlowBuilder{}.ctId(4).start("2026-11-25T10:00:05Z").end("2026-11-25T10:00:09Z").build()),  // +2s
  };
  EXPECT_EQ(rankedIds(flows), (std::vector<std::uint32_t>{3, 2, 4, 1}));
  const auto ranked = rankByCloseness(flows, kAt);
  EXPECT_EQ(ranked[0].gap, nanoseconds{0});
  EXPECT_EQ(ranked[1].gap, -seconds{1});
  EXPECT_EQ(ranked[2].gap, seconds{2});
  EXPECT_EQ(ranked[3].gap, -seconds{3});
}

TEST(WhoTest, AmongContainingFlowsTheLatestStartComesFirst) {
  // The port was reused while the first entry was still waiting out its timeout.
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:50:00Z").end("2026-11-25T10:05:00Z").build()),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:02Z").open().build()),
      stored(NatFlowBuilder{}.ctId(3).start("2026-11-25T09:59:00Z").end("2026-11-25T10:00:03Z").build()),
  };
  EXPECT_EQ(rankedIds(flows), (std::vector<std::uint32_t>{2, 3, 1}));
}

TEST(WhoTest, EquallyDistantFlowsTieOnLatestStartThenKeepInputOrder) {
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:00:00Z").end("2026-11-25T10:00:01Z").build()),  // -2s
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:05Z").end("2026-11-25T10:00:06Z").build()),  // +2s
      stored(NatFlowBuilder{}.ctId(3).start("2026-11-25T10:00:05Z").end("2026-11-25T10:00:07Z").build()),  // +2s, same start
  };
  EXPECT_EQ(rankedIds(flows), (std::vector<std::uint32_t>{2, 3, 1}));
}

// The exploratory run's case: the dump's flow (first seen before TIME, still holding the port)
// and a flow that was forced onto the same port 2 s before TIME and ended.
TEST(WhoTest, AFlowFirstSeenInTheDumpThatHeldThePortRanksFirst) {
  const std::vector<storage::StoredFlow> flows{
      firstSeenAt(NatFlowBuilder{}.ctId(1).noStart().end("2026-11-25T10:02:35Z").build(), "2026-11-25T09:59:23Z"),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:00Z").end("2026-11-25T10:00:01Z").build()),
  };
  EXPECT_EQ(rankedIds(flows), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(rankByCloseness(flows, kAt)[0].gap, nanoseconds{0});
}

// The time `who` measured from is the time it shows: a start that is not known is shown as when
// the flow was first seen, marked a bound; a known start is shown as it is.
TEST(WhoTest, AnUnknownStartIsShownAsWhenTheFlowWasFirstSeen) {
  const std::vector<storage::StoredFlow> flows{
      firstSeenAt(NatFlowBuilder{}.ctId(1).noStart().observedAtStart().end("2026-11-25T10:02:35Z").build(),
                  "2026-11-25T09:59:23Z"),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:00Z").end("2026-11-25T10:00:01Z").build()),
  };
  const auto ranked = rankByCloseness(flows, kAt);
  ASSERT_EQ(ranked.size(), 2U);
  EXPECT_EQ(ranked[0].flow.start, *parseTime("2026-11-25T09:59:23Z"));
  EXPECT_EQ(ranked[0].flow.start_source, TimeSource::Bound);
  EXPECT_TRUE(ranked[0].flow.observed_at_start);
  EXPECT_EQ(ranked[1].flow.start, *parseTime("2026-11-25T10:00:00Z"));
  EXPECT_EQ(ranked[1].flow.start_source, TimeSource::Kernel);
  // An open flow's @timestamp is its start: a bound too (a review found "event": "kernel").
  const std::vector<storage::StoredFlow> open{
      firstSeenAt(NatFlowBuilder{}.ctId(3).noStart().observedAtStart().open().build(), "2026-11-25T09:59:23Z")};
  const auto shown = rankByCloseness(open, kAt);
  ASSERT_EQ(shown.size(), 1U);
  EXPECT_EQ(shown[0].flow.start_source, TimeSource::Bound);
  EXPECT_EQ(shown[0].flow.event_time_source, TimeSource::Bound);
}

// Found by an exploratory run with flows on one translated source and destination, which the kernel
// lets only one entry hold at a time: the older flow's DESTROY and the newer one's NEW were read in
// one turn, and the NEW's receive time (when ctauditd woke) lay before the DESTROY's kernel time.
// `who` ranked the newer flow first for a time the older one still held the port.
TEST(WhoTest, AReceiveTimeStartIsNarrowedByTheKernelEndOfTheFlowBeforeIt) {
  const Timestamp at = *parseTime("2026-11-25T10:00:03.330Z");
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).inside("100.64.0.2", 8102).start("2026-11-25T10:00:00.5Z")
                 .end("2026-11-25T10:00:03.353Z").build()),
      stored(NatFlowBuilder{}.ctId(2).inside("100.64.0.3", 8103)
                 .start("2026-11-25T10:00:03.317Z", TimeSource::Receive).open().build()),
  };
  const auto ranked = rankByCloseness(flows, at);
  ASSERT_EQ(ranked.size(), 2U);
  EXPECT_EQ(ranked[0].flow.ct_id, 1U);
  EXPECT_EQ(ranked[0].gap, nanoseconds{0});
  EXPECT_FALSE(ranked[0].narrowed);
  EXPECT_EQ(ranked[1].flow.ct_id, 2U);
  EXPECT_EQ(ranked[1].gap, std::chrono::milliseconds{23}) << "it began after the kernel ended the first";
  EXPECT_TRUE(ranked[1].narrowed);
  EXPECT_EQ(ranked[1].flow.start, *parseTime("2026-11-25T10:00:03.317Z")) << "shown as recorded";
  EXPECT_TRUE(ranked[0].undecided_with.empty());
  EXPECT_TRUE(ranked[1].undecided_with.empty());
}

// The other way round: a receive-time (or bound) END is narrowed by the kernel start of the flow
// after it, and a flow still open in the log ends at the latest when the next one began.
TEST(WhoTest, AnEndThatIsNotTheKernelsIsNarrowedByTheKernelStartOfTheFlowAfterIt) {
  const std::vector<storage::StoredFlow> ended_late{
      stored(NatFlowBuilder{}
                 .ctId(1)
                 .start("2026-11-25T10:00:00Z")
                 .end("2026-11-25T10:00:03.542Z", TimeSource::Receive)
                 .build()),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:03.355Z").open().build()),
  };
  auto ranked = rankByCloseness(ended_late, *parseTime("2026-11-25T10:00:03.400Z"));
  EXPECT_EQ(ranked[0].flow.ct_id, 2U);
  EXPECT_EQ(ranked[1].gap, -std::chrono::milliseconds{45});
  EXPECT_TRUE(ranked[1].narrowed);
  ranked = rankByCloseness(ended_late, *parseTime("2026-11-25T10:00:03.330Z"));
  EXPECT_EQ(ranked[0].flow.ct_id, 1U);
  EXPECT_EQ(ranked[1].gap, std::chrono::milliseconds{25});

  const std::vector<storage::StoredFlow> never_closed{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:00:00Z").open().build()),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T09:30:00Z").end("2026-11-25T09:31:00Z").build()),
  };
  ranked = rankByCloseness(never_closed, kAt);
  EXPECT_EQ(ranked[0].flow.ct_id, 2U) << "ended 29 min 3 s before; the open one at 09:30, 30 min 3 s before";
  EXPECT_EQ(ranked[1].gap, -(std::chrono::minutes{30} + seconds{3}));
  EXPECT_TRUE(ranked[1].narrowed);
}

// Receive times on both sides: the flows cannot both have held the tuple at `at`, and nothing
// recorded says which did. Both stay at GAP 0, the newer one is said to be undecided against the
// older, and `who` warns.
TEST(WhoTest, TwoReceiveTimesOnOneTupleAroundTheTimeAreUndecided) {
  testing::FakeFlowDatabase database;
  database.flows = {
      NatFlowBuilder{}.ctId(1).inside("100.64.0.2", 8102).start("2026-11-25T10:00:00Z", TimeSource::Receive)
          .end("2026-11-25T10:00:03.542Z", TimeSource::Receive).build(),
      NatFlowBuilder{}.ctId(2).inside("100.64.0.3", 8103).start("2026-11-25T10:00:02.9Z", TimeSource::Receive)
          .open().build(),
      // Another destination: the same translated port, legitimately at the same time.
      NatFlowBuilder{}.ctId(3).destination("198.51.100.9", 443).start("2026-11-25T10:00:01Z").open().build(),
  };
  std::vector<storage::StoredFlow> stored_flows;
  for (const FlowRecord& flow : database.flows) {
    stored_flows.push_back(stored(flow));
  }
  const auto ranked = rankByCloseness(stored_flows, kAt);
  ASSERT_EQ(ranked.size(), 3U);
  EXPECT_EQ(ranked[0].flow.ct_id, 2U);
  EXPECT_EQ(ranked[0].undecided_with, (std::vector<std::string>{"100.64.0.2:8102 (ct id 1)"}));
  for (const RankedFlow& entry : ranked) {
    EXPECT_EQ(entry.gap, nanoseconds{0});
    EXPECT_FALSE(entry.narrowed);
    if (entry.flow.ct_id != 2) {
      EXPECT_TRUE(entry.undecided_with.empty());
    }
  }
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runWho(whoCommand(), **finder, out, err), ExitStatus::Found);
  EXPECT_NE(err.str().find("ctaudit: warning: 100.64.0.2:8102 (ct id 1) and 100.64.0.3:8103 (ct id 2) used "
                           "the same translated source and destination"),
            std::string::npos)
      << err.str();
}

// A review: the order of the recorded starts is not always the order of the flows. A flow whose
// NEW was lost is first seen at its DESTROY; a flow whose NEW the same turn read has the earlier,
// wake-time start. Neither can say which came first, so neither narrows the other: the open one
// was cut short at the other's end before.
TEST(WhoTest, FlowsWhoseOrderTheLogCannotTellNarrowNothingAndAreUndecided) {
  const std::vector<storage::StoredFlow> flows{
      firstSeenAt(NatFlowBuilder{}.ctId(1).noStart().end("2026-11-25T10:00:02.100Z", TimeSource::Receive).build(),
                  "2026-11-25T10:00:02.100Z"),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:02Z", TimeSource::Receive).open().build()),
  };
  auto ranked = rankByCloseness(flows, kAt);
  ASSERT_EQ(ranked.size(), 2U);
  EXPECT_EQ(ranked[0].flow.ct_id, 2U);
  EXPECT_EQ(ranked[0].gap, nanoseconds{0}) << "the open flow is not cut at the other's end";
  EXPECT_FALSE(ranked[0].narrowed);
  ranked = rankByCloseness(flows, *parseTime("2026-11-25T10:00:02.100Z"));
  const auto undecided = std::count_if(ranked.begin(), ranked.end(),
                                       [](const RankedFlow& entry) { return !entry.undecided_with.empty(); });
  EXPECT_EQ(undecided, 1) << "both alive then, and no order known";
}

// First seen at an UPDATE (its NEW lost), a flow's first sighting was stamped when the reader woke:
// not a bound on its start, so it does not cut the flow before it short (a review).
TEST(WhoTest, AStartFirstSeenAtAnUpdateIsNoBound) {
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:59:00Z").end("2026-11-25T10:00:10Z", TimeSource::Receive)
                 .build()),
      firstSeenAt(NatFlowBuilder{}.ctId(2).noStart().open().build(), "2026-11-25T10:00:01Z"),
  };
  for (const RankedFlow& entry : rankByCloseness(flows, kAt)) {
    EXPECT_EQ(entry.gap, nanoseconds{0}) << entry.flow.ct_id;
    EXPECT_FALSE(entry.narrowed) << entry.flow.ct_id;
  }
}

// Receive-time starts a few milliseconds apart (stored in whole milliseconds, perhaps equal): no
// order, no narrowing, and `who` says it cannot decide.
TEST(WhoTest, ReceiveTimeStartsTooCloseToOrderAreUndecided) {
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T10:00:02Z", TimeSource::Receive)
                 .end("2026-11-25T10:00:04Z", TimeSource::Receive).build()),
      stored(NatFlowBuilder{}.ctId(2).inside("100.64.0.3", 8103).start("2026-11-25T10:00:02Z", TimeSource::Receive)
                 .open().build()),
  };
  const auto ranked = rankByCloseness(flows, kAt);
  ASSERT_EQ(ranked.size(), 2U);
  EXPECT_EQ(ranked[0].gap, nanoseconds{0});
  EXPECT_EQ(ranked[1].gap, nanoseconds{0});
  EXPECT_EQ(ranked[0].undecided_with.size() + ranked[1].undecided_with.size(), 1U);
}

// ctauditd stamps a NEW when it reads it, which a reader held up does late: the next flow on the
// tuple, stamped just after --at, may have held it at --at. The earlier flow alone, with no
// warning, named the wrong subscriber (an exploratory run with nf_conntrack_timestamp=0: 12 of
// 240). A kernel start settles it.
TEST(WhoTest, AReceiveTimeStartJustAfterTheTimeIsUndecidedWithTheFlowBefore) {
  std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T10:00:01Z", TimeSource::Receive)
                 .end("2026-11-25T10:00:04Z", TimeSource::Receive).build()),
      stored(NatFlowBuilder{}.ctId(2).inside("100.64.0.3", 8103).start("2026-11-25T10:00:03.1Z", TimeSource::Receive)
                 .open().build()),
  };
  const auto ranked = rankByCloseness(flows, kAt);
  ASSERT_EQ(ranked.size(), 2U);
  EXPECT_EQ(ranked[0].flow.ct_id, 1U);
  EXPECT_GT(ranked[1].gap, nanoseconds{0});
  EXPECT_EQ(ranked[1].undecided_with.size(), 1U) << "ct id 2 may have held it at --at";
  // Its kernel start after --at: it did not.
  flows[1] = stored(NatFlowBuilder{}.ctId(2).inside("100.64.0.3", 8103).start("2026-11-25T10:00:03.1Z").open().build());
  const auto settled = rankByCloseness(flows, kAt);
  EXPECT_EQ(settled[0].undecided_with.size() + settled[1].undecided_with.size(), 0U);
}

// Two kernel times are what happened, even where they overlap (a TCP entry in TIME_WAIT whose
// tuple a new connection took over): nothing is narrowed, and nothing is undecided.
TEST(WhoTest, KernelTimesAreNeverNarrowed) {
  const std::vector<storage::StoredFlow> flows{
      stored(NatFlowBuilder{}.ctId(1).start("2026-11-25T09:50:00Z").end("2026-11-25T10:05:00Z").build()),
      stored(NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:02Z").open().build()),
  };
  for (const RankedFlow& entry : rankByCloseness(flows, kAt)) {
    EXPECT_EQ(entry.gap, nanoseconds{0});
    EXPECT_FALSE(entry.narrowed);
    EXPECT_TRUE(entry.undecided_with.empty());
  }
}

TEST(WhoTest, RunPrintsRankedFlowsAndSendsTheQuery) {
  testing::FakeFlowDatabase database;
  database.flows = {
      NatFlowBuilder{}.ctId(1).start("2026-11-25T09:58:00Z").end("2026-11-25T10:00:00Z").build(),
      NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:01Z").end("2026-11-25T10:00:10Z").build(),
  };
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  WhoCommand who = whoCommand(seconds{5});
  who.format = OutputFormat::Csv;
  EXPECT_EQ(runWho(who, **finder, out, err), ExitStatus::Found);
  ASSERT_EQ(database.queries.size(), 2U) << "the translated source, then a port forward";
  EXPECT_EQ(database.queries[0].from, kAt - seconds{5});
  EXPECT_EQ(database.queries[1].from, kAt - seconds{5});
  const std::string csv = out.str();
  const auto first = csv.find(",2,0,0,");  // ct_id 2, zone 0, mark 0
  const auto second = csv.find(",1,0,0,");
  ASSERT_NE(first, std::string::npos);
  ASSERT_NE(second, std::string::npos);
  EXPECT_LT(first, second) << csv;
  EXPECT_EQ(err.str(), "");
}

TEST(WhoTest, RunReportsNoMatchWithAHintInTableFormatOnly) {
  testing::FakeFlowDatabase database;
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  WhoCommand who = whoCommand();
  who.protocol = Protocol::Tcp;
  EXPECT_EQ(runWho(who, **finder, out, err), ExitStatus::NothingFound);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(),
            "ctaudit: no flow had translated source 203.0.113.7:40001 (tcp) at 2026-11-25T10:00:03.000000000Z; "
            "widen the window with --slack, e.g. --slack 5s\n"
            "ctaudit: nor did such a flow come in through a port forward (DNAT) of 203.0.113.7:40001\n");

  std::ostringstream slack_err;
  std::ostringstream slack_out;
  EXPECT_EQ(runWho(whoCommand(seconds{2}), **finder, slack_out, slack_err), ExitStatus::NothingFound);
  EXPECT_EQ(slack_err.str(),
            "ctaudit: no flow had translated source 203.0.113.7:40001 between 2026-11-25T10:00:01.000000000Z and "
            "2026-11-25T10:00:05.000000000Z\n"
            "ctaudit: nor did such a flow come in through a port forward (DNAT) of 203.0.113.7:40001\n");

  std::ostringstream json_out;
  std::ostringstream json_err;
  who.format = OutputFormat::Json;
  EXPECT_EQ(runWho(who, **finder, json_out, json_err), ExitStatus::NothingFound);
  EXPECT_EQ(json_out.str(), "");
  EXPECT_EQ(json_err.str(), "");
}

// A report names a port: without --proto, a ping whose echo id has the port's number is another
// flow, left out with a note (an exploratory run found one ranked above the TCP flow asked about).
TEST(WhoTest, WithoutProtoAnIcmpIdOfTheSameNumberIsLeftOutAndSaidSo) {
  testing::FakeFlowDatabase database;
  database.flows = {
      NatFlowBuilder{}.ctId(1).start("2026-11-25T10:00:00Z").end("2026-11-25T10:01:00Z").build(),
      NatFlowBuilder{}
          .ctId(2)
          .protocol(Protocol::Icmp)
          .start("2026-11-25T10:00:02Z")
          .end("2026-11-25T10:00:04Z")
          .build(),
  };
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runWho(whoCommand(), **finder, out, err), ExitStatus::Found);
  EXPECT_NE(out.str().find(" tcp "), std::string::npos) << out.str();
  EXPECT_EQ(out.str().find(" icmp "), std::string::npos) << out.str();
  EXPECT_NE(err.str().find("1 ICMP flow(s) that used 40001 as their echo id are left out: --proto icmp"),
            std::string::npos)
      << err.str();

  WhoCommand ping = whoCommand();
  ping.protocol = Protocol::Icmp;
  std::ostringstream ping_out;
  std::ostringstream ping_err;
  EXPECT_EQ(runWho(ping, **finder, ping_out, ping_err), ExitStatus::Found);
  EXPECT_NE(ping_out.str().find(" icmp "), std::string::npos) << ping_out.str();

  database.flows.erase(database.flows.begin());
  std::ostringstream only_out;
  std::ostringstream only_err;
  EXPECT_EQ(runWho(whoCommand(), **finder, only_out, only_err), ExitStatus::NothingFound);
  EXPECT_NE(only_err.str().find("; 1 ICMP flow(s) used 40001 as their echo id: --proto icmp (or icmpv6) shows them"),
            std::string::npos)
      << only_err.str();
}

// Found by an exploratory run: GRE flows keep 0 in the port's place, and `who ADDR:0` named them as
// exact matches.
TEST(WhoTest, WithoutProtoAFlowWithoutPortsIsLeftOutAndSaidSo) {
  testing::FakeFlowDatabase database;
  database.flows = {
      NatFlowBuilder{}
          .protocol(Protocol::Gre)
          .inside("100.64.0.2", 0)
          .translated("203.0.113.7", 0)
          .destination("198.51.100.1", 0)
          .start("2026-11-25T10:00:00Z")
          .end("2026-11-25T10:01:00Z")
          .build(),
  };
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  WhoCommand who = whoCommand();
  who.translated_source.port = 0;
  const WhoRun left_out = run(who, **finder);
  EXPECT_EQ(left_out.status, ExitStatus::NothingFound);
  EXPECT_NE(left_out.err.find("1 flow(s) of protocols without ports (GRE: a PPTP call id or 0) had that number"),
            std::string::npos)
      << left_out.err;
  who.protocol = Protocol::Gre;
  const WhoRun gre = run(who, **finder);
  EXPECT_EQ(gre.status, ExitStatus::Found);
  EXPECT_NE(gre.out.find("100.64.0.2"), std::string::npos) << gre.out;
}

// A flow from `inside` to `destination`, translated to 203.0.113.7:40001 (whoCommand's).
FlowRecord sharing(std::uint32_t ct_id, std::string_view inside, std::string_view destination, std::uint16_t port) {
  return NatFlowBuilder{}
      .ctId(ct_id)
      .inside(inside, 33000)
      .destination(destination, port)
      .start("2026-11-25T10:00:00Z")
      .end("2026-11-25T10:01:00Z")
      .build();
}

// Found by an exploratory run: two subscribers held one translated port at once, each to another
// destination, and nothing said the answer was two.
TEST(WhoTest, InsideHostsSharingTheTranslatedSourceAreNamedInANote) {
  testing::FakeFlowDatabase database;
  database.flows = {sharing(1, "100.64.0.2", "198.51.100.1", 7001), sharing(2, "100.64.0.3", "198.51.100.2", 7001)};
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  const WhoRun two = run(whoCommand(), **finder);
  EXPECT_EQ(two.status, ExitStatus::Found);
  EXPECT_NE(two.err.find("note: 2 inside hosts held 203.0.113.7:40001 at --at at once"), std::string::npos) << two.err;
  EXPECT_NE(two.err.find("the destination the report names (the victim) tells which: --dst ADDR[:PORT]"),
            std::string::npos)
      << two.err;

  WhoCommand one = whoCommand();
  one.destination_address = IpAddress::parse("198.51.100.1");
  one.destination_port = 7001;
  const storage::FlowQuery query = toFlowQuery(one);
  EXPECT_EQ(query.destination_address, IpAddress::parse("198.51.100.1"));
  EXPECT_EQ(query.destination_port, 7001);
  EXPECT_TRUE(query.destination_reached) << "the victim got the packets where DNAT sent them";

  // Same destination address, other ports: --dst without its port leaves both.
  database.flows.back() = sharing(2, "100.64.0.3", "198.51.100.1", 7002);
  WhoCommand by_address = whoCommand();
  by_address.destination_address = IpAddress::parse("198.51.100.1");
  const WhoRun ports = run(by_address, **finder);
  EXPECT_EQ(ports.status, ExitStatus::Found);
  EXPECT_NE(ports.err.find("the destination port the report names tells which: give --dst the port too"),
            std::string::npos)
      << ports.err;

  // One translated tuple (the same destination): one flow followed the other, whatever their
  // recorded times say, and no filter parts them (a review: the note told to use --dst).
  database.flows.back() = sharing(2, "100.64.0.3", "198.51.100.1", 7001);
  const WhoRun tuple = run(whoCommand(), **finder);
  EXPECT_EQ(tuple.status, ExitStatus::Found);
  EXPECT_EQ(tuple.err.find("inside hosts held"), std::string::npos) << tuple.err;

  database.flows.pop_back();
  const WhoRun alone = run(whoCommand(), **finder);
  EXPECT_EQ(alone.status, ExitStatus::Found);
  EXPECT_EQ(alone.err.find("inside hosts held"), std::string::npos) << alone.err;
}

// A connection from an outside client to the port forward 203.0.113.7:40001, sent on to `server`.
FlowRecord forwardedFlow(std::uint32_t id, std::uint16_t client_port = 51000, std::string_view server = "100.64.0.2") {
  return NatFlowBuilder{}
      .ctId(id)
      .inside("198.51.100.9", client_port)
      .noSnat()
      .destination("203.0.113.7", 40001)
      .dnatTo(server, 80)
      .start("2026-11-25T10:00:00Z")
      .end("2026-11-25T10:00:10Z")
      .build();
}

// The fake database answers only the port-forward lookup.
bool onlyForwards(const storage::FlowQuery& query, const FlowRecord&) { return query.forwarded_address.has_value(); }

// An abuse report about a server behind the gateway names the port forward's public address and
// port, which no flow has as its translated source: who also asks for the flows forwarded from
// it, and names the inside host they went to.
TEST(WhoTest, APortForwardAnswersWhenNoFlowHadTheTranslatedSource) {
  testing::FakeFlowDatabase database;
  database.flows = {forwardedFlow(5)};
  database.matches = onlyForwards;
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  const WhoRun found = run(whoCommand(), **finder);
  EXPECT_EQ(found.status, ExitStatus::Found);
  ASSERT_EQ(database.queries.size(), 2U);
  const storage::FlowQuery& forward = database.queries[1];
  EXPECT_EQ(forward.forwarded_address, IpAddress::parse("203.0.113.7"));
  EXPECT_EQ(forward.forwarded_port, 40001);
  EXPECT_FALSE(forward.nat_source_address);
  EXPECT_EQ(forward.from, kAt);
  EXPECT_NE(found.out.find("100.64.0.2:80"), std::string::npos) << found.out;
  EXPECT_NE(found.err.find("1 flow(s) came in through a port forward (DNAT) of 203.0.113.7:40001"),
            std::string::npos)
      << found.err;
  EXPECT_NE(found.out.find("MATCH"), std::string::npos) << found.out;
  EXPECT_NE(found.out.find("forward"), std::string::npos) << found.out;
  // The machine formats say it too, on every line: a script must not take the outside client in
  // source.ip (or src_ip) for a subscriber.
  WhoCommand as_json = whoCommand();
  as_json.format = OutputFormat::Json;
  EXPECT_NE(run(as_json, **finder).out.find(R"(,"ctaudit":{"who":{"match":"forward"}}})"), std::string::npos);
  WhoCommand as_csv = whoCommand();
  as_csv.format = OutputFormat::Csv;
  const std::string csv = run(as_csv, **finder).out;
  EXPECT_NE(csv.find(",observed_at_start,match\r\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find(",forward\r\n"), std::string::npos) << csv;
  EXPECT_EQ(found.err.find("inside hosts"), std::string::npos) << found.err;

  // --dst names the victim, which for a forward is the outside host that connected: its address
  // narrows the query, its port the rows.
  WhoCommand victim = whoCommand();
  victim.destination_address = IpAddress::parse("198.51.100.9");
  victim.destination_port = 51000;
  const std::size_t asked = database.queries.size();
  EXPECT_EQ(run(victim, **finder).status, ExitStatus::Found);
  ASSERT_EQ(database.queries.size(), asked + 2);
  const storage::FlowQuery& from_victim = database.queries.back();
  ASSERT_TRUE(from_victim.source);
  EXPECT_EQ(from_victim.source->toString(), "198.51.100.9/32");
  EXPECT_FALSE(from_victim.destination_address);
  victim.destination_port = 51001;
  const WhoRun other_port = run(victim, **finder);
  EXPECT_EQ(other_port.status, ExitStatus::NothingFound);
  EXPECT_NE(other_port.err.find("nor did such a flow come in through a port forward (DNAT) of 203.0.113.7:40001"),
            std::string::npos)
      << other_port.err;

  // An ICMP id is no port a forward names: one query.
  WhoCommand ping = whoCommand();
  ping.protocol = Protocol::Icmp;
  const std::size_t before = database.queries.size();
  const WhoRun icmp = run(ping, **finder);
  EXPECT_EQ(icmp.status, ExitStatus::NothingFound);
  EXPECT_EQ(database.queries.size(), before + 1);
  EXPECT_EQ(icmp.err.find("port forward"), std::string::npos) << icmp.err;
}

// A forward that balances its connections over several servers: the note says how many served it.
TEST(WhoTest, APortForwardToSeveralInsideHostsSaysHowMany) {
  testing::FakeFlowDatabase database;
  database.flows = {forwardedFlow(5, 51000, "100.64.0.2"), forwardedFlow(6, 51001, "100.64.0.3")};
  database.matches = onlyForwards;
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  const WhoRun found = run(whoCommand(), **finder);
  EXPECT_EQ(found.status, ExitStatus::Found);
  EXPECT_NE(found.err.find("; 2 inside hosts served it at --at"), std::string::npos) << found.err;
}

// Masquerade may hand out a forwarded port for a flow to another destination: both entries hold
// the endpoint at once (their reply tuples differ). A masqueraded flow that only came near --at
// hid the forward that held it at --at (a review): both are asked and shown, each marked.
TEST(WhoTest, AMasqueradedFlowNearByDoesNotHideThePortForwardAtTheTime) {
  testing::FakeFlowDatabase database;
  const FlowRecord masqueraded =
      NatFlowBuilder{}.ctId(4).start("2026-11-25T09:59:00Z").end("2026-11-25T10:00:01Z").build();
  const FlowRecord forwarded = forwardedFlow(5);
  database.flows = {masqueraded, forwarded};
  database.matches = [](const storage::FlowQuery& query, const FlowRecord& flow) {
    return query.forwarded_address ? flow.ct_id == 5 : flow.ct_id == 4;
  };
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  const WhoRun found = run(whoCommand(seconds{5}), **finder);
  EXPECT_EQ(found.status, ExitStatus::Found);
  const auto forward_row = found.out.find("198.51.100.9:51000");
  const auto snat_row = found.out.find("100.64.0.2:33000");
  ASSERT_NE(forward_row, std::string::npos) << found.out;
  ASSERT_NE(snat_row, std::string::npos) << found.out;
  EXPECT_LT(forward_row, snat_row) << "the forward held it at --at (GAP 0), the masqueraded flow had ended";
  EXPECT_NE(found.out.find("forward"), std::string::npos) << found.out;
  EXPECT_NE(found.out.find("snat"), std::string::npos) << found.out;
  EXPECT_NE(found.err.find("1 flow(s) came in through a port forward"), std::string::npos) << found.err;

  // A flow both lookups return (a hairpin's can be) is shown once.
  database.matches = {};
  database.flows = {masqueraded};
  const WhoRun once = run(whoCommand(seconds{5}), **finder);
  EXPECT_EQ(std::count(once.out.begin(), once.out.end(), '\n'), 2) << once.out;
}

TEST(WhoTest, TheNoMatchMessageNamesTheDestinationAndTheBrackets) {
  testing::FakeFlowDatabase database;
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  WhoCommand who = whoCommand();
  who.translated_source = Endpoint{*IpAddress::parse("2001:db8:ffff::7"), 40001};
  who.destination_address = IpAddress::parse("2001:db8::1:443");
  const WhoRun none = run(who, **finder);
  EXPECT_EQ(none.status, ExitStatus::NothingFound);
  EXPECT_NE(none.err.find("to 2001:db8::1:443 (an IPv6 address with a port is written in brackets"),
            std::string::npos)
      << none.err;
}

TEST(WhoTest, RunReportsReadErrors) {
  testing::FakeFlowDatabase database;
  database.find_error = Error{Errc::Storage, 0, "database disk image is malformed"};
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(runWho(whoCommand(), **finder, out, err), ExitStatus::Error);
  EXPECT_EQ(err.str(), "ctaudit: database disk image is malformed\n");
  EXPECT_EQ(out.str(), "");
}

}  // namespace
}  // namespace ctaudit::query
