// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/batcher.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "tests/support/fake_sink.hpp"

namespace ctaudit::daemon {
namespace {

using storage::SinkStatus;
using testing::FakeSink;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

FlowRecord record(std::uint32_t id) {
  FlowRecord r;
  r.ct_id = id;
  return r;
}

const Timestamp kT0 = fromUnixNanos(1'000'000'000'000);

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
  // The batch and the first two single writes fail: the sink is down, not the records.
  sink.script = {SinkStatus::Failed, SinkStatus::Failed, SinkStatus::Failed};
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

}  // namespace
}  // namespace ctaudit::daemon
