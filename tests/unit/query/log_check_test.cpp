// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/log_check.hpp"

#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::query {
namespace {

using namespace std::chrono_literals;
using storage::LoggedPeriod;

// 2026-11-25T10:00:00Z
constexpr Timestamp kT0 = fromUnixNanos(1'795'600'800'000'000'000);
constexpr Timestamp t(std::chrono::nanoseconds offset) { return kT0 + offset; }

const LoggedPeriod kStopped{t(0s), t(100s), true};    // 10:00:00 .. 10:01:40, stopped cleanly
const LoggedPeriod kKilled{t(200s), t(300s), false};  // 10:03:20 .. 10:05:00, last heartbeat
const std::vector<LoggedPeriod> kRuns{kStopped, kKilled};

TEST(LogCheckTest, AWindowInsideARunIsCovered) {
  EXPECT_TRUE(uncoveredSpans({t(10s), t(90s)}, kRuns).empty());
  EXPECT_TRUE(uncoveredSpans({t(0s), t(0s)}, kRuns).empty()) << "a run covers its start";
  EXPECT_TRUE(uncoveredSpans({t(100s), t(100s)}, kRuns).empty()) << "and its end";
  EXPECT_TRUE(uncoveredSpans({t(300s), t(300s)}, kRuns).empty());
}

TEST(LogCheckTest, BetweenRunsTheSpanRunsFromOneToTheNext) {
  EXPECT_EQ(uncoveredSpans({t(50s), t(250s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(100s), t(200s), kStopped, kKilled}}));
  // An instant between the runs is clipped to itself.
  EXPECT_EQ(uncoveredSpans({t(150s), t(150s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(150s), t(150s), kStopped, kKilled}}));
  EXPECT_EQ(uncoveredSpans({t(150s), t(250s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(150s), t(200s), kStopped, kKilled}}));
}

TEST(LogCheckTest, BeforeTheFirstRunAndAfterTheLast) {
  EXPECT_EQ(uncoveredSpans({t(-60s), t(10s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(-60s), t(0s), std::nullopt, kStopped}}));
  EXPECT_EQ(uncoveredSpans({t(290s), t(400s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(300s), t(400s), kKilled, std::nullopt}}));
  EXPECT_EQ(uncoveredSpans({t(-60s), t(400s)}, kRuns),
            (std::vector<UncoveredSpan>{{t(-60s), t(0s), std::nullopt, kStopped},
                                        {t(100s), t(200s), kStopped, kKilled},
                                        {t(300s), t(400s), kKilled, std::nullopt}}));
}

TEST(LogCheckTest, OverlappingTouchingAndUnsortedRunsCountAsOne) {
  const LoggedPeriod a{t(0s), t(100s), false};
  const LoggedPeriod b{t(50s), t(150s), true};
  const LoggedPeriod c{t(150s) + 1ns, t(200s), true};
  const std::vector<LoggedPeriod> runs{c, a, b};
  EXPECT_TRUE(uncoveredSpans({t(0s), t(200s)}, runs).empty());
  EXPECT_EQ(uncoveredSpans({t(0s), t(250s)}, runs),
            (std::vector<UncoveredSpan>{{t(200s), t(250s), c, std::nullopt}}));
}

TEST(LogCheckTest, NoRunsMeansNothingIsKnownAndNoSpan) {
  EXPECT_TRUE(uncoveredSpans({t(0s), t(10s)}, {}).empty());
}

TEST(LogCheckTest, ARunWhoseClockSteppedBackCoversItsStart) {
  const std::vector<LoggedPeriod> runs{{t(100s), t(50s), false}};
  EXPECT_TRUE(uncoveredSpans({t(100s), t(100s)}, runs).empty());
  EXPECT_EQ(uncoveredSpans({t(60s), t(60s)}, runs).size(), 1U);
}

TEST(LogCheckTest, AnOpenSideReachesTheEdgeOfTheLog) {
  EXPECT_EQ(resolveWindow(t(50s), std::nullopt, kRuns), (TimeWindow{t(50s), t(300s)}));
  EXPECT_EQ(resolveWindow(std::nullopt, t(50s), kRuns), (TimeWindow{t(0s), t(50s)}));
  EXPECT_EQ(resolveWindow(t(500s), std::nullopt, kRuns), (TimeWindow{t(500s), t(500s)})) << "after the log";
  EXPECT_EQ(resolveWindow(std::nullopt, t(-5s), kRuns), (TimeWindow{t(-5s), t(-5s)})) << "before the log";
  EXPECT_EQ(resolveWindow(t(1s), t(2s), kRuns), (TimeWindow{t(1s), t(2s)}));
  EXPECT_EQ(resolveWindow(t(1s), std::nullopt, {}), (TimeWindow{t(1s), Timestamp::max()}));
}

GapRecord gap(GapReason reason, Timestamp start, Timestamp end) {
  GapRecord g;
  g.reason = reason;
  g.start = start;
  g.end = end;
  return g;
}

GapRecord daemonDown(Timestamp start, Timestamp end) { return gap(GapReason::DaemonDown, start, end); }

TEST(LogCheckTest, ARecordedGapIsWarnedAboutWithItsDetails) {
  GapRecord overrun = gap(GapReason::KernelOverrun, t(10s), t(12s) + 500ms);
  overrun.overruns = 3;
  GapRecord sink = gap(GapReason::SinkFailure, t(20s), t(30s));
  sink.lost_records = 1;
  sink.sink = "sqlite";
  const LogCheck check = assessLog({t(0s), t(60s)}, std::vector{overrun, sink}, kRuns);
  EXPECT_EQ(check.gaps, (std::vector{overrun, sink}));
  EXPECT_EQ(check.warnings,
            (std::vector<std::string>{
                "ctaudit: warning: the log has a gap from 2026-11-25T10:00:10Z to 2026-11-25T10:00:12.5Z "
                "(kernel_overrun, 3 overruns): a flow in that window may be missing",
                "ctaudit: warning: the log has a gap from 2026-11-25T10:00:20Z to 2026-11-25T10:00:30Z "
                "(sink_failure, 1 record lost, in the sqlite sink): a flow in that window may be missing"}));
}

// The JSON lines lost records (their sink failed): the gap is stored in the database too, but the
// database has those records, so an answer from it is complete.
TEST(LogCheckTest, AnotherSinksLossIsNotAHoleInTheDatabase) {
  GapRecord jsonl = gap(GapReason::SinkFailure, t(20s), t(30s));
  jsonl.lost_records = 5;
  jsonl.sink = "jsonl";
  const LogCheck check = assessLog({t(0s), t(60s)}, std::vector{jsonl}, kRuns);
  EXPECT_TRUE(check.gaps.empty());
  EXPECT_TRUE(check.warnings.empty());
}

TEST(LogCheckTest, TimeOutsideTheRunsIsWarnedAboutAndBecomesADaemonDownGap) {
  const LogCheck between = assessLog({t(150s), t(150s)}, {}, kRuns);
  EXPECT_EQ(between.gaps, std::vector{daemonDown(t(150s), t(150s))});
  EXPECT_EQ(between.warnings,
            std::vector<std::string>{"ctaudit: warning: 2026-11-25T10:02:30Z is outside the logged period (ctauditd "
                                     "stopped at 2026-11-25T10:01:40Z and started again at 2026-11-25T10:03:20Z): a "
                                     "flow in that window may be missing"});

  const LogCheck before = assessLog({t(-60s), t(10s)}, {}, kRuns);
  EXPECT_EQ(before.gaps, std::vector{daemonDown(t(-60s), t(0s))});
  EXPECT_EQ(before.warnings, std::vector<std::string>{
                                 "ctaudit: warning: 2026-11-25T09:59:00Z to 2026-11-25T10:00:00Z is outside the "
                                 "logged period (the log begins at 2026-11-25T10:00:00Z): a flow in that window may "
                                 "be missing"});

  const LogCheck after = assessLog({t(310s), t(320s)}, {}, kRuns);
  EXPECT_EQ(after.gaps, std::vector{daemonDown(t(310s), t(320s))});
  EXPECT_EQ(after.warnings,
            std::vector<std::string>{
                "ctaudit: warning: 2026-11-25T10:05:10Z to 2026-11-25T10:05:20Z is outside the logged period "
                "(ctauditd was last seen alive at 2026-11-25T10:05:00Z; it was killed then, or it is still running "
                "and has not committed later records yet): a flow in that window may be missing"});

  const std::vector<LoggedPeriod> stopped{kStopped};
  EXPECT_EQ(assessLog({t(110s), t(110s)}, {}, stopped).warnings,
            std::vector<std::string>{"ctaudit: warning: 2026-11-25T10:01:50Z is outside the logged period (ctauditd "
                                     "stopped at 2026-11-25T10:01:40Z): a flow in that window may be missing"});
}

// The daemon records the downtime it finds at start as a daemon_down gap; the same hole is not
// reported twice.
TEST(LogCheckTest, AHoleARecordedGapContainsIsReportedOnce) {
  const GapRecord recorded = daemonDown(t(100s), t(200s));
  const LogCheck check = assessLog({t(50s), t(250s)}, std::vector{recorded}, kRuns);
  EXPECT_EQ(check.gaps, std::vector{recorded});
  ASSERT_EQ(check.warnings.size(), 1U);
  EXPECT_NE(check.warnings[0].find("the log has a gap"), std::string::npos) << check.warnings[0];
}

TEST(LogCheckTest, GapsAndHolesComeInTimeOrder) {
  const GapRecord overrun = gap(GapReason::KernelOverrun, t(250s), t(251s));
  const GapRecord early = gap(GapReason::QueueOverflow, t(10s), t(11s));
  const LogCheck check = assessLog({t(0s), t(400s)}, std::vector{early, overrun}, kRuns);
  EXPECT_EQ(check.gaps, (std::vector{early, daemonDown(t(100s), t(200s)), overrun, daemonDown(t(300s), t(400s))}));
  EXPECT_EQ(check.warnings.size(), 4U);
}

TEST(LogCheckTest, ADatabaseWithoutRunsSaysItCannotTell) {
  const LogCheck check = assessLog({t(0s), t(10s)}, {}, {});
  EXPECT_TRUE(check.gaps.empty()) << "no daemon_down gap is made up";
  EXPECT_EQ(check.warnings, std::vector<std::string>{
                                "ctaudit: warning: the database records no ctauditd runs, so whether it covers "
                                "2026-11-25T10:00:00Z to 2026-11-25T10:00:10Z cannot be told. A copy of the "
                                "database file taken without its -wal file while ctauditd ran lacks what that file "
                                "held, runs and flows alike: copy the file with its -wal and -shm after ctauditd "
                                "stopped, or while it runs take a copy with sqlite3 -readonly DB \".backup "
                                "copy.db\" (docs/operations.md)"});
  // Only --from: no run bounds the window, which then names no end rather than the year 2262.
  const LogCheck open_ended = assessLog(resolveWindow(t(0s), std::nullopt, {}), {}, {});
  ASSERT_EQ(open_ended.warnings.size(), 1U);
  EXPECT_NE(open_ended.warnings[0].find("covers the time from 2026-11-25T10:00:00Z on cannot be told"),
            std::string::npos)
      << open_ended.warnings[0];
  const LogCheck up_to = assessLog(resolveWindow(std::nullopt, t(10s), {}), {}, {});
  ASSERT_EQ(up_to.warnings.size(), 1U);
  EXPECT_NE(up_to.warnings[0].find("covers the time up to 2026-11-25T10:00:10Z cannot"), std::string::npos)
      << up_to.warnings[0];
}

}  // namespace
}  // namespace ctaudit::query
