// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/batcher.hpp"

#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/sinks/ostream_sink.h>

#include "tests/support/fake_sink.hpp"

namespace ctaudit::daemon {
namespace {

using storage::SinkStatus;
using testing::FakeSink;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

const Timestamp kT0 = fromUnixNanos(1'000'000'000'000);

FlowRecord record(std::uint32_t id) {
  FlowRecord r;
  r.ct_id = id;
  r.event_time = kT0 + std::chrono::seconds{id};
  return r;
}

Batcher::Options options(std::size_t max_rows, std::size_t max_pending) {
  Batcher::Options o;
  o.max_rows = max_rows;
  o.max_age = std::chrono::milliseconds{1000};
  o.max_pending_per_sink = max_pending;
  return o;
}

TEST(BatcherTest, WritesWhenFullAndFlushesOnInterval) {
  FakeSink sink;
  Batcher batcher({{"fake", &sink}}, {3, std::chrono::milliseconds{1000}, 100}, quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);
  EXPECT_TRUE(sink.accepted.empty());
  batcher.add(record(3), kT0);
  EXPECT_EQ(sink.accepted.size(), 3U);
  batcher.add(record(4), kT0);
  batcher.tick(kT0 + std::chrono::milliseconds{500});
  EXPECT_EQ(sink.accepted.size(), 3U);
  EXPECT_EQ(sink.flushes, 0);
  batcher.tick(kT0 + std::chrono::milliseconds{1000});
  EXPECT_EQ(sink.accepted.size(), 4U);
  EXPECT_EQ(sink.flushes, 1);
}

TEST(BatcherTest, RetryKeepsRecordsForThatSinkOnly) {
  FakeSink busy;
  FakeSink fine;
  busy.script = {SinkStatus::Retry};
  Batcher batcher({{"busy", &busy}, {"fine", &fine}}, {2, std::chrono::milliseconds{1000}, 100}, quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);
  EXPECT_TRUE(busy.accepted.empty());
  EXPECT_EQ(fine.accepted.size(), 2U);
  EXPECT_TRUE(batcher.flushAll(kT0 + std::chrono::seconds{1}));
  ASSERT_EQ(busy.accepted.size(), 2U);
  EXPECT_EQ(busy.accepted[0].ct_id, 1U);
  EXPECT_EQ(fine.accepted.size(), 2U);
}

TEST(BatcherTest, FailedBatchIsolatesTheBadRecord) {
  FakeSink sink;
  sink.poison = {2};
  Batcher batcher({{"fake", &sink}}, {3, std::chrono::milliseconds{1000}, 100}, quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);
  batcher.add(record(3), kT0);
  ASSERT_EQ(sink.accepted.size(), 2U);
  EXPECT_EQ(sink.accepted[0].ct_id, 1U);
  EXPECT_EQ(sink.accepted[1].ct_id, 3U);
  EXPECT_EQ(batcher.dropped(), 1U);
}

TEST(BatcherTest, FailingSinkKeepsEverythingUntilItRecovers) {
  FakeSink sink;
  // The sink is down, not the records: nothing is tried record by record.
  sink.script = {SinkStatus::Failed};
  Batcher batcher({{"fake", &sink}}, {3, std::chrono::milliseconds{1000}, 100}, quiet());
  for (std::uint32_t id = 1; id <= 3; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_TRUE(sink.accepted.empty());
  EXPECT_EQ(batcher.dropped(), 0U);
  EXPECT_TRUE(batcher.flushAll(kT0 + std::chrono::seconds{1}));
  ASSERT_EQ(sink.accepted.size(), 3U);
  EXPECT_EQ(sink.accepted[2].ct_id, 3U);
}

// The JSON lines on a disk that fills part way keep the lines they wrote: the retry passes only
// the rest, whether the failed batch was the fresh records or the lane's pending ones, so no
// record reaches the sink twice.
TEST(BatcherTest, WhatAFailingSinkTookIsNotPassedAgain) {
  FakeSink sink;
  sink.script = {SinkStatus::Failed, SinkStatus::Failed};
  sink.accept_before_failing = 2;
  Batcher batcher({{"fake", &sink}}, {3, std::chrono::milliseconds{1000}, 100}, quiet());
  for (std::uint32_t id = 1; id <= 3; ++id) {
    batcher.add(record(id), kT0);  // the third fills the batch: written straight from it, 2 taken
  }
  ASSERT_EQ(sink.accepted.size(), 2U);
  sink.accept_before_failing = 1;
  for (std::uint32_t id = 4; id <= 6; ++id) {
    batcher.add(record(id), kT0);  // a failing lane is tried once a flush interval: pending
  }
  EXPECT_FALSE(batcher.flushAll(kT0 + std::chrono::seconds{1}));  // pending 3..6: 3 taken, fails
  EXPECT_TRUE(batcher.flushAll(kT0 + std::chrono::seconds{2}));   // then 4..6 go through
  std::vector<std::uint32_t> ids;
  for (const FlowRecord& r : sink.accepted) {
    ids.push_back(r.ct_id);
  }
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(batcher.dropped(), 0U);
}

TEST(BatcherTest, ADiskThatFillsUpWhileLookingForABadRecordKeepsTheRest) {
  FakeSink sink;
  sink.poison = {2};
  // The batch is rejected (record 2); single writes: 1 goes through, 2 is rejected, then the disk
  // is full for 3 and everything after it stays pending.
  sink.script = {SinkStatus::Ok, SinkStatus::Failed};
  Batcher batcher({{"fake", &sink}}, {6, std::chrono::milliseconds{1000}, 100}, quiet());
  for (std::uint32_t id = 1; id <= 6; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_EQ(sink.accepted.size(), 1U);
  EXPECT_EQ(batcher.dropped(), 1U);
  EXPECT_EQ(batcher.sinks()[0].pending, 4U);
  EXPECT_TRUE(batcher.sinks()[0].failing);
  EXPECT_TRUE(batcher.flushAll(kT0 + std::chrono::seconds{1}));
  ASSERT_EQ(sink.accepted.size(), 5U);
  EXPECT_EQ(sink.accepted[1].ct_id, 3U);
}

TEST(BatcherTest, ASinkWideFailureIsNeverTakenForABadRecord) {
  FakeSink sink;
  // The disk is full for the batch and is freed at once: a sink that fails as a whole is not
  // searched record by record, so no record that met the full disk is judged bad and dropped.
  sink.script = {SinkStatus::Failed};
  Batcher batcher({{"fake", &sink}}, {3, std::chrono::milliseconds{1000}, 100}, quiet());
  for (std::uint32_t id = 1; id <= 3; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_TRUE(sink.accepted.empty());
  EXPECT_EQ(batcher.sinks()[0].pending, 3U);
  EXPECT_TRUE(batcher.flushAll(kT0 + std::chrono::seconds{1}));
  EXPECT_EQ(sink.accepted.size(), 3U);
  EXPECT_EQ(batcher.dropped(), 0U);
}

TEST(BatcherTest, ARejectedGapIsDroppedNotRetriedForever) {
  FakeSink sink;
  sink.script = {SinkStatus::Rejected};
  Batcher batcher({{"fake", &sink}}, options(10, 100), quiet());
  GapRecord refused;
  refused.reason = GapReason::KernelOverrun;
  GapRecord next = refused;
  next.overruns = 2;
  batcher.addGap(refused);
  batcher.addGap(next);
  batcher.tick(kT0);
  ASSERT_EQ(sink.gaps.size(), 1U);
  EXPECT_EQ(sink.gaps.front(), next);
}

TEST(BatcherTest, ABadRecordBetweenGoodOnesIsDroppedEvenLast) {
  FakeSink sink;
  sink.poison = {2, 4};
  Batcher batcher({{"fake", &sink}}, {4, std::chrono::milliseconds{1000}, 100}, quiet());
  for (std::uint32_t id = 1; id <= 4; ++id) {
    batcher.add(record(id), kT0);
  }
  ASSERT_EQ(sink.accepted.size(), 2U);
  EXPECT_EQ(sink.accepted[1].ct_id, 3U);
  EXPECT_EQ(batcher.dropped(), 2U);
  EXPECT_EQ(batcher.sinks()[0].pending, 0U);
}

TEST(BatcherTest, PendingIsCappedDroppingTheOldest) {
  FakeSink sink;
  sink.script.assign(10, SinkStatus::Retry);
  Batcher batcher({{"fake", &sink}}, {2, std::chrono::milliseconds{1000}, 3}, quiet());
  for (std::uint32_t id = 1; id <= 6; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_EQ(batcher.dropped(), 3U);
  sink.script.clear();
  EXPECT_TRUE(batcher.flushAll(kT0));
  ASSERT_EQ(sink.accepted.size(), 3U);
  EXPECT_EQ(sink.accepted.front().ct_id, 4U);
}

TEST(BatcherTest, GapsGoToEverySink) {
  FakeSink a;
  FakeSink b;
  Batcher batcher({{"a", &a}, {"b", &b}}, options(10, 100), quiet());
  GapRecord gap;
  gap.reason = GapReason::KernelOverrun;
  gap.overruns = 3;
  batcher.addGap(gap);
  EXPECT_TRUE(a.gaps.empty()) << "written with the next batch or flush";
  batcher.tick(kT0);
  ASSERT_EQ(a.gaps.size(), 1U);
  EXPECT_EQ(a.gaps.front(), gap);
  EXPECT_EQ(b.gaps, a.gaps);
}

// An fdatasync that failed may have lost what the sink had accepted since the last good one: the
// window becomes a sink_failure gap in every sink, the sink's own included.
TEST(BatcherTest, ASyncThatFailedIsAGapInEverySink) {
  FakeSink jsonl;
  FakeSink sqlite;
  Batcher batcher({{"jsonl", &jsonl}, {"sqlite", &sqlite}}, options(10, 100), quiet());
  batcher.add(record(1), kT0);
  jsonl.sync_loss = storage::SyncLoss{7, kT0 + std::chrono::seconds{1}, kT0 + std::chrono::seconds{2}};
  batcher.tick(kT0 + std::chrono::seconds{1});  // flush: the loss is taken and its gap queued
  batcher.tick(kT0 + std::chrono::seconds{2});  // the next flush writes the gap
  ASSERT_EQ(sqlite.gaps.size(), 1U);
  EXPECT_EQ(sqlite.gaps[0].reason, GapReason::SinkFailure);
  EXPECT_EQ(sqlite.gaps[0].lost_records, 7U);
  EXPECT_EQ(sqlite.gaps[0].start, kT0 + std::chrono::seconds{1});
  EXPECT_EQ(sqlite.gaps[0].end, kT0 + std::chrono::seconds{2});
  EXPECT_EQ(sqlite.gaps[0].sink, "jsonl");
  EXPECT_EQ(jsonl.gaps, sqlite.gaps);
  EXPECT_EQ(batcher.sinkFailureGaps(), 1U);
}

// How a sink gathers what a failed sync may have lost: counts add up, the window widens, and an
// empty side changes nothing (its zero times are no event times).
// Every fdatasync failing (an I/O error) fails every flush: one error when it starts, one line
// when it works again, not an error a flush interval.
TEST(BatcherTest, AFlushFailureIsLoggedOnceAnEpisode) {
  std::ostringstream out;
  auto log = std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::ostream_sink_st>(out));
  log->set_pattern("%l %v");
  FakeSink jsonl;
  jsonl.failing_flushes_from = 2;
  jsonl.failing_flushes_to = 5;
  Batcher batcher({{"jsonl", &jsonl}}, options(100, 100), log);
  for (int second = 1; second <= 8; ++second) {
    batcher.add(record(static_cast<std::uint32_t>(second)), kT0);
    batcher.tick(kT0 + std::chrono::seconds{second});
  }
  ASSERT_EQ(jsonl.flushes, 8);
  const auto count = [&](const std::string& text) {
    std::size_t n = 0;
    for (std::size_t at = out.str().find(text); at != std::string::npos; at = out.str().find(text, at + 1)) {
      ++n;
    }
    return n;
  };
  EXPECT_EQ(count("error jsonl: flush failed"), 1U) << out.str();
  EXPECT_EQ(count("info jsonl: flushing works again"), 1U) << out.str();
  EXPECT_EQ(jsonl.accepted.size(), 8U);
}

TEST(BatcherTest, SyncLossesAddUp) {
  storage::SyncLoss loss;
  loss.add({});
  EXPECT_EQ(loss.records, 0U);
  loss.add({3, kT0 + std::chrono::seconds{5}, kT0 + std::chrono::seconds{6}});
  loss.add({});
  loss.add({2, kT0 + std::chrono::seconds{2}, kT0 + std::chrono::seconds{4}});
  EXPECT_EQ(loss.records, 5U);
  EXPECT_EQ(loss.earliest, kT0 + std::chrono::seconds{2});
  EXPECT_EQ(loss.latest, kT0 + std::chrono::seconds{6});
}

TEST(BatcherTest, ASyncThatFailsAtTheStopReachesTheOtherSinks) {
  FakeSink jsonl;
  FakeSink sqlite;
  Batcher batcher({{"jsonl", &jsonl}, {"sqlite", &sqlite}}, options(10, 100), quiet());
  batcher.add(record(1), kT0);
  jsonl.sync_loss = storage::SyncLoss{1, kT0 + std::chrono::seconds{1}, kT0 + std::chrono::seconds{1}};
  EXPECT_TRUE(batcher.finish(kT0 + std::chrono::seconds{1})) << "every record was accepted";
  ASSERT_EQ(sqlite.gaps.size(), 1U);
  EXPECT_EQ(sqlite.gaps[0].lost_records, 1U);
  // The last flush of all fails (finish flushes twice: in flushAll, then after the gaps): no flush
  // is left to carry the gap, so finish writes it to the other sinks itself.
  FakeSink jsonl2;
  FakeSink sqlite2;
  Batcher last({{"jsonl", &jsonl2}, {"sqlite", &sqlite2}}, options(10, 100), quiet());
  last.add(record(1), kT0);
  jsonl2.staged_loss = storage::SyncLoss{2, kT0 + std::chrono::seconds{1}, kT0 + std::chrono::seconds{1}};
  jsonl2.loss_at_flush = 2;
  (void)last.finish(kT0 + std::chrono::seconds{2});
  EXPECT_EQ(jsonl2.flushes, 2);
  ASSERT_EQ(sqlite2.gaps.size(), 1U);
  EXPECT_EQ(sqlite2.gaps[0].lost_records, 2U);
}

// A JSON line cut by a full disk counts as written, its rest to follow; if the rest never finds
// room before the stop, the record is lost after all, and the database must say so.
TEST(BatcherTest, WhatASinkLeavesUnfinishedAtTheStopIsAGapInTheOthers) {
  FakeSink jsonl;
  FakeSink sqlite;
  Batcher batcher({{"jsonl", &jsonl}, {"sqlite", &sqlite}}, options(10, 100), quiet());
  batcher.add(record(1), kT0);
  jsonl.unfinished = storage::SyncLoss{1, kT0, kT0};
  EXPECT_FALSE(batcher.finish(kT0 + std::chrono::seconds{1})) << "a record was given up: the stop says so (exit 1)";
  ASSERT_EQ(sqlite.gaps.size(), 1U);
  EXPECT_EQ(sqlite.gaps[0].reason, GapReason::SinkFailure);
  EXPECT_EQ(sqlite.gaps[0].lost_records, 1U);
  EXPECT_EQ(sqlite.gaps[0].start, kT0);
  EXPECT_EQ(sqlite.gaps[0].sink, "jsonl");
}

// Standard output whose reader exited can never be written again: its records are given up as
// they come instead of held, up to the lane's share of --queue-max, for retries that cannot
// succeed; the loss reaches the other sink as gaps, and the stop says records were given up.
TEST(BatcherTest, ASinkThatIsGoneHasItsRecordsGivenUpAtOnce) {
  FakeSink jsonl;
  FakeSink sqlite;
  auto opts = options(2, 1000);
  opts.gap_interval = std::chrono::seconds{10};
  Batcher batcher({{"jsonl", &jsonl}, {"sqlite", &sqlite}}, opts, quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);
  ASSERT_EQ(jsonl.accepted.size(), 2U);
  jsonl.is_gone = true;
  std::uint32_t id = 3;
  for (int second = 1; second <= 30; ++second) {
    const Timestamp now = kT0 + std::chrono::seconds{second};
    for (int i = 0; i < 10; ++i) {
      batcher.add(record(id++), now);
    }
    batcher.tick(now);
    ASSERT_EQ(batcher.sinks()[0].pending, 0U) << "held nothing at " << second << " s";
  }
  EXPECT_EQ(sqlite.accepted.size(), 302U);
  EXPECT_EQ(batcher.sinks()[0].dropped, 300U);
  EXPECT_FALSE(batcher.finish(kT0 + std::chrono::seconds{31})) << "records were given up";
  std::uint64_t lost = 0;
  for (const GapRecord& gap : sqlite.gaps) {
    EXPECT_EQ(gap.sink, "jsonl");
    lost += gap.lost_records;
  }
  EXPECT_EQ(lost, 300U);
  EXPECT_GE(sqlite.gaps.size(), 3U) << "one every gap_interval while it lasts";
  EXPECT_LE(sqlite.gaps.size(), 4U);
}

TEST(BatcherTest, OneFailingSinkDoesNotStopTheOther) {
  FakeSink down;
  FakeSink fine;
  down.script.assign(100, SinkStatus::Failed);
  Batcher batcher({{"down", &down}, {"fine", &fine}}, options(2, 1000), quiet());
  for (std::uint32_t id = 1; id <= 10; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_EQ(fine.accepted.size(), 10U);
  EXPECT_TRUE(down.accepted.empty());
  // A failing sink is tried again at the flush tick, not for every batch: only the first batch
  // was tried.
  EXPECT_EQ(down.script.size(), 99U);
  const auto states = batcher.sinks();
  EXPECT_TRUE(states[0].failing);
  EXPECT_EQ(states[0].pending, 10U);
  EXPECT_FALSE(states[1].failing);
  down.script.clear();
  batcher.tick(kT0 + std::chrono::seconds{1});
  EXPECT_EQ(down.accepted.size(), 10U) << "nothing lost once it recovers";
  EXPECT_FALSE(batcher.sinks()[0].failing);
  EXPECT_TRUE(down.gaps.empty());
  EXPECT_EQ(batcher.dropped(), 0U);
}

TEST(BatcherTest, RecordsDroppedForAFailingSinkBecomeOneGapInEverySink) {
  FakeSink down;
  FakeSink fine;
  down.script.assign(1000, SinkStatus::Retry);
  Batcher batcher({{"sqlite /x.db", &down, "sqlite"}, {"jsonl /x.jsonl", &fine, "jsonl"}}, options(2, 3), quiet());
  for (std::uint32_t id = 1; id <= 8; ++id) {
    batcher.add(record(id), kT0);
  }
  EXPECT_EQ(batcher.dropped(), 5U);
  EXPECT_TRUE(fine.gaps.empty()) << "the gap waits for the recovery (or the gap interval)";
  down.script.clear();
  batcher.tick(kT0 + std::chrono::seconds{1});
  ASSERT_EQ(down.accepted.size(), 3U);
  EXPECT_EQ(down.accepted.front().ct_id, 6U);
  ASSERT_EQ(down.gaps.size(), 1U) << "the failing sink gets its own gap once it writes again";
  const GapRecord& gap = down.gaps.front();
  EXPECT_EQ(gap.reason, GapReason::SinkFailure);
  EXPECT_EQ(gap.sink, "sqlite");
  EXPECT_EQ(gap.lost_records, 5U);
  EXPECT_EQ(gap.start, kT0 + std::chrono::seconds{1});
  EXPECT_EQ(gap.end, kT0 + std::chrono::seconds{5});
  batcher.tick(kT0 + std::chrono::seconds{2});
  ASSERT_EQ(fine.gaps.size(), 1U);
  EXPECT_EQ(fine.gaps.front(), gap);
  EXPECT_EQ(batcher.sinkFailureGaps(), 1U);
}

TEST(BatcherTest, ALongOutageReportsItsGapEveryInterval) {
  FakeSink down;
  FakeSink fine;
  down.script.assign(1000, SinkStatus::Retry);
  auto o = options(1, 1);
  o.gap_interval = std::chrono::seconds{60};
  Batcher batcher({{"down", &down, "sqlite"}, {"fine", &fine, "jsonl"}}, o, quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);  // drops record 1
  batcher.tick(kT0 + std::chrono::seconds{30});
  batcher.tick(kT0 + std::chrono::seconds{59});
  EXPECT_TRUE(fine.gaps.empty());
  batcher.tick(kT0 + std::chrono::seconds{60});
  batcher.tick(kT0 + std::chrono::seconds{61});
  ASSERT_EQ(fine.gaps.size(), 1U);
  EXPECT_EQ(fine.gaps.front().lost_records, 1U);
}

TEST(BatcherTest, ABadRecordIsAGapAtOnce) {
  FakeSink sink;
  sink.poison = {2};
  Batcher batcher({{"fake", &sink, "jsonl"}}, options(3, 100), quiet());
  for (std::uint32_t id = 1; id <= 3; ++id) {
    batcher.add(record(id), kT0);
  }
  batcher.tick(kT0 + std::chrono::seconds{1});
  ASSERT_EQ(sink.gaps.size(), 1U);
  EXPECT_EQ(sink.gaps.front().lost_records, 1U);
  EXPECT_EQ(sink.gaps.front().start, kT0 + std::chrono::seconds{2});
}

TEST(BatcherTest, FinishGivesUpWhatAFailingSinkHoldsAndTellsTheOthers) {
  FakeSink down;
  FakeSink fine;
  down.script.assign(1000, SinkStatus::Retry);
  Batcher batcher({{"down", &down, "sqlite"}, {"fine", &fine, "jsonl"}}, options(10, 100), quiet());
  batcher.add(record(1), kT0);
  batcher.add(record(2), kT0);
  EXPECT_FALSE(batcher.finish(kT0 + std::chrono::seconds{1}));
  EXPECT_EQ(fine.accepted.size(), 2U);
  EXPECT_EQ(batcher.dropped(), 2U);
  ASSERT_EQ(fine.gaps.size(), 1U);
  EXPECT_EQ(fine.gaps.front().sink, "sqlite");
  EXPECT_EQ(fine.gaps.front().lost_records, 2U);
}

TEST(BatcherTest, AGapASinkCannotTakeWaitsForTheNextTry) {
  FakeSink sink;
  Batcher batcher({{"fake", &sink}}, options(10, 100), quiet());
  batcher.addGap(GapRecord{});
  sink.script = {SinkStatus::Retry, SinkStatus::Retry};  // the batch write and the flush
  batcher.tick(kT0);
  EXPECT_TRUE(sink.gaps.empty());
  batcher.tick(kT0 + std::chrono::seconds{1});
  EXPECT_EQ(sink.gaps.size(), 1U);
  EXPECT_EQ(batcher.sinks()[0].gaps_written, 1U);
}

}  // namespace
}  // namespace ctaudit::daemon
