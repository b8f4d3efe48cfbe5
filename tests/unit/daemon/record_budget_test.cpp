// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <gtest/gtest.h>

#include "daemon/event_queue.hpp"
#include "daemon/record_codec.hpp"
#include "flow/flow_record.hpp"

namespace ctaudit::daemon {
namespace {

// The most memory an EventQueue of `capacity` bytes holds: every waiting chunk but the newest was
// closed when the next record did not fit, so it holds more than a chunk less one record; beside
// them the pipeline's chunk and the spare ones.
std::size_t queueMemoryBound(std::size_t capacity) {
  const std::size_t chunk = EventQueue::chunkBytesFor(capacity);
  const std::size_t waiting_chunks = capacity / (chunk - kMaxPackedRecordBytes) + 1;
  return (waiting_chunks + 1 + EventQueue::kSpareChunks) * chunk;
}

TEST(RecordBudgetTest, TheQueueNeverTakesMoreThanItsSize) {
  for (const std::size_t size : {std::size_t{1} << 20U, std::size_t{4} << 20U, std::size_t{10} << 20U,
                                 std::size_t{64} << 20U, std::size_t{512} << 20U}) {
    const RecordBudget budget = recordBudget(size);
    EXPECT_LE(queueMemoryBound(budget.queue_bytes), size) << size;
    EXPECT_GE(budget.queue_bytes, size / 8 * 3) << size;
    EXPECT_LE(budget.lane_records * sizeof(FlowRecord), size / 2);
  }
  // The documented figure (docs/operations.md): at 512M all but 5 MiB holds records.
  EXPECT_EQ(recordBudget(std::size_t{512} << 20U).queue_bytes, std::size_t{507} << 20U);
}

TEST(RecordBudgetTest, ALaneNeverHoldsZero) { EXPECT_EQ(recordBudget(1).lane_records, 1U); }

}  // namespace
}  // namespace ctaudit::daemon
