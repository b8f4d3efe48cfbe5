// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/resync_schedule.hpp"

#include <gtest/gtest.h>

#include "tests/support/flow_builders.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using testing::at;

ResyncSchedule schedule() { return ResyncSchedule({1s, 30s}, at(0s), 0); }

// Runs one resync from `begin` to `end` (dump finished) and reads empty at `settle` with `drops`.
ResyncSchedule::Settled resync(ResyncSchedule& s, Timestamp begin, Timestamp end, Timestamp settle,
                               std::uint64_t drops) {
  s.dumpStarted(begin);
  s.dumpFinished(end);
  EXPECT_TRUE(s.settling());
  return s.noteEmpty(settle, drops);
}

TEST(ResyncScheduleTest, NothingToDoUntilSomethingIsLost) {
  auto s = schedule();
  s.noteCleanRead(at(1s));
  EXPECT_FALSE(s.noteEmpty(at(2s), 0).settled);
  EXPECT_FALSE(s.nextResyncAt());
  EXPECT_FALSE(s.windowOpen());
  EXPECT_FALSE(s.abandon(at(3s), 0));
}

TEST(ResyncScheduleTest, OverrunWindowRunsFromTheLastCleanReadToTheSettledResync) {
  auto s = schedule();
  s.noteCleanRead(at(10s));
  s.noteOverrun(at(11s));
  s.noteDrops(at(11s), 40);
  EXPECT_TRUE(s.windowOpen());
  // More reads after the overrun prove nothing about the window's start.
  s.noteCleanRead(at(11500ms));
  ASSERT_TRUE(s.nextResyncAt());
  EXPECT_EQ(*s.nextResyncAt(), at(12s));
  EXPECT_FALSE(s.resyncDue(at(11900ms)));
  EXPECT_TRUE(s.resyncDue(at(12s)));
  const auto settled = resync(s, at(12s), at(13s), at(13100ms), 40);
  EXPECT_TRUE(settled.settled);
  ASSERT_TRUE(settled.gap);
  EXPECT_EQ(settled.gap->reason, GapReason::KernelOverrun);
  EXPECT_EQ(settled.gap->start, at(10s));
  EXPECT_EQ(settled.gap->end, at(13100ms));
  EXPECT_EQ(settled.gap->lost_records, 40U);
  EXPECT_EQ(settled.gap->overruns, 1U);
  EXPECT_FALSE(s.windowOpen());
  EXPECT_FALSE(s.nextResyncAt());
}

TEST(ResyncScheduleTest, WaitsForQuietButNoLongerThanMaxWait) {
  auto s = schedule();
  for (int i = 0; i <= 40; ++i) {  // an overrun every 900 ms for 36 s
    s.noteOverrun(at(std::chrono::milliseconds{900 * i}));
    if (i < 33) {
      EXPECT_FALSE(s.resyncDue(at(std::chrono::milliseconds{900 * i + 899}))) << i;
    }
  }
  EXPECT_EQ(*s.nextResyncAt(), at(30s));
}

TEST(ResyncScheduleTest, LossDuringResyncKeepsTheWindowOpenAndCoalesces) {
  auto s = schedule();
  s.noteCleanRead(at(1s));
  s.noteOverrun(at(2s));
  s.noteDrops(at(2s), 10);
  s.dumpStarted(at(3s));
  s.noteOverrun(at(3500ms));  // while the dump ran, events were lost again
  s.dumpFinished(at(4s));
  const auto first = s.noteEmpty(at(4100ms), 25);
  EXPECT_TRUE(first.settled);
  EXPECT_FALSE(first.gap);
  EXPECT_TRUE(s.windowOpen());
  ASSERT_TRUE(s.nextResyncAt());
  const auto second = resync(s, *s.nextResyncAt(), at(6s), at(6100ms), 25);
  ASSERT_TRUE(second.gap);
  EXPECT_EQ(second.gap->start, at(1s));
  EXPECT_EQ(second.gap->end, at(6100ms));
  EXPECT_EQ(second.gap->overruns, 2U);
  EXPECT_EQ(second.gap->lost_records, 25U);
}

TEST(ResyncScheduleTest, TheDropCounterAloneOpensAWindow) {
  // Reliable mode: no ENOBUFS, only the socket's drop counter.
  auto s = schedule();
  EXPECT_FALSE(s.noteEmpty(at(5s), 0).settled);  // evidence: nothing lost up to 5 s
  EXPECT_FALSE(s.noteEmpty(at(8s), 3).settled);
  EXPECT_TRUE(s.windowOpen());
  const auto settled = resync(s, at(9s), at(9500ms), at(9600ms), 3);
  ASSERT_TRUE(settled.gap);
  EXPECT_EQ(settled.gap->start, at(5s));
  EXPECT_EQ(settled.gap->lost_records, 3U);
  EXPECT_EQ(settled.gap->overruns, 0U);
}

TEST(ResyncScheduleTest, QueueLossAsksForAResyncButIsNoKernelGap) {
  auto s = schedule();
  s.noteQueueLoss(at(2s));
  EXPECT_FALSE(s.windowOpen());
  EXPECT_TRUE(s.resyncDue(at(3s)));
  const auto settled = resync(s, at(3s), at(4s), at(4100ms), 0);
  EXPECT_TRUE(settled.settled);
  EXPECT_FALSE(settled.gap);
  EXPECT_FALSE(s.nextResyncAt());
}

// A sweep for flows that may never report their end: a dump at once, no gap; asked for while a
// dump is under way it changes nothing, least of all the overrun window that dump may close.
TEST(ResyncScheduleTest, ASweepIsADumpAtOnceWithoutAGap) {
  auto s = schedule();
  s.requestSweep(at(5s));
  EXPECT_FALSE(s.windowOpen());
  ASSERT_TRUE(s.nextResyncAt());
  EXPECT_EQ(*s.nextResyncAt(), at(5s));
  const auto settled = resync(s, at(5s), at(6s), at(6100ms), 0);
  EXPECT_TRUE(settled.settled);
  EXPECT_FALSE(settled.gap);
  EXPECT_FALSE(s.nextResyncAt());

  s.noteOverrun(at(10s));
  s.dumpStarted(at(11s));
  s.requestSweep(at(12s));
  s.dumpFinished(at(13s));
  const auto repaired = s.noteEmpty(at(13100ms), 0);
  EXPECT_TRUE(repaired.gap) << "the sweep asked for meanwhile is no loss during the resync";
  EXPECT_FALSE(s.nextResyncAt());
}

// A sweep waits while a dump as long as the last would fill half the event socket's buffer: at
// 100k events/s a 2 s dump queues 200k events, more than half of the 209,715 that 256 MiB holds.
TEST(ResyncScheduleTest, ADumpThatWouldCrowdTheSocketIsSaidToDoSo) {
  EXPECT_TRUE(dumpWouldCrowdTheSocket(100000, 2s, 209715));
  EXPECT_FALSE(dumpWouldCrowdTheSocket(100000, 1s, 209715)) << "100k of 209,715: under half";
  EXPECT_FALSE(dumpWouldCrowdTheSocket(20000, 4s, 209715));
  EXPECT_FALSE(dumpWouldCrowdTheSocket(1e9, 10s, 0)) << "buffer not known: never";
  EXPECT_FALSE(dumpWouldCrowdTheSocket(0, 1h, 100));
}

// A loss noted after a sweep was asked for makes the dump a resync that repairs it; a sweep whose
// dump failed is tried again as a sweep after max_wait, unless something was lost meanwhile.
TEST(ResyncScheduleTest, ASweepStaysASweepOnlyWhileNothingIsLost) {
  auto s = schedule();
  s.requestSweep(at(5s));
  EXPECT_TRUE(s.sweepOnly());
  s.noteQueueLoss(at(5500ms));
  EXPECT_FALSE(s.sweepOnly());

  auto failed = schedule();
  failed.requestSweep(at(5s));
  failed.dumpStarted(at(5s));
  failed.dumpFailed(at(6s));
  EXPECT_TRUE(failed.sweepOnly());
  ASSERT_TRUE(failed.nextResyncAt());
  EXPECT_EQ(*failed.nextResyncAt(), at(36s));
  EXPECT_FALSE(failed.windowOpen());

  auto lossy = schedule();
  lossy.requestSweep(at(5s));
  lossy.dumpStarted(at(5s));
  lossy.noteOverrun(at(5500ms));
  lossy.dumpFailed(at(6s));
  EXPECT_FALSE(lossy.sweepOnly());
}

TEST(ResyncScheduleTest, AFailedDumpIsRetriedAfterMaxWait) {
  auto s = schedule();
  s.noteOverrun(at(1s));
  s.dumpStarted(at(2s));
  s.dumpFailed(at(2s));
  EXPECT_FALSE(s.settling());
  ASSERT_TRUE(s.nextResyncAt());
  EXPECT_EQ(*s.nextResyncAt(), at(32s));
  EXPECT_TRUE(s.windowOpen());
}

TEST(ResyncScheduleTest, AbandonReportsTheOpenWindowAtShutdown) {
  auto s = schedule();
  s.noteCleanRead(at(1s));
  s.noteOverrun(at(2s));
  const auto gap = s.abandon(at(3s), 7);
  ASSERT_TRUE(gap);
  EXPECT_EQ(gap->start, at(1s));
  EXPECT_EQ(gap->end, at(3s));
  EXPECT_EQ(gap->lost_records, 7U);
  EXPECT_FALSE(s.windowOpen());
}

}  // namespace
}  // namespace ctaudit::daemon
