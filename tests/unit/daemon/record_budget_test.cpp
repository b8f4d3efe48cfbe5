// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <gtest/gtest.h>

#include "daemon/event_queue.hpp"
#include "flow/flow_record.hpp"

namespace ctaudit::daemon {
namespace {

TEST(RecordBudgetTest, TheQueueNeverTakesMoreThanItsSize) {
  constexpr std::size_t kSize = std::size_t{512} << 20U;
  const RecordBudget budget = recordBudget(kSize);
  EXPECT_EQ(budget.queue_bytes + EventQueue::kChunkBytes, kSize) << "the pipeline's chunk beside the waiting ones";
  EXPECT_LE(budget.lane_records * sizeof(FlowRecord), kSize / 2);
}

TEST(RecordBudgetTest, TheSmallestQueueStillHoldsHalfOfItsSize) {
  constexpr std::size_t kMin = std::size_t{1} << 20U;  // --queue-max's least
  EXPECT_EQ(recordBudget(kMin).queue_bytes, kMin / 2);
}

TEST(RecordBudgetTest, ALaneNeverHoldsZero) { EXPECT_EQ(recordBudget(1).lane_records, 1U); }

}  // namespace
}  // namespace ctaudit::daemon
