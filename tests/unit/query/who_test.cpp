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
  ASSERT_EQ(database.queries.size(), 1U);
  EXPECT_EQ(database.queries[0].from, kAt - seconds{5});
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
            "widen the window with --slack, e.g. --slack 5s\n");

  std::ostringstream slack_err;
  std::ostringstream slack_out;
  EXPECT_EQ(runWho(whoCommand(seconds{2}), **finder, slack_out, slack_err), ExitStatus::NothingFound);
  EXPECT_EQ(slack_err.str(),
            "ctaudit: no flow had translated source 203.0.113.7:40001 between 2026-11-25T10:00:01.000000000Z and "
            "2026-11-25T10:00:05.000000000Z\n");

  std::ostringstream json_out;
  std::ostringstream json_err;
  who.format = OutputFormat::Json;
  EXPECT_EQ(runWho(who, **finder, json_out, json_err), ExitStatus::NothingFound);
  EXPECT_EQ(json_out.str(), "");
  EXPECT_EQ(json_err.str(), "");
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
