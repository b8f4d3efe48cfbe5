// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <gtest/gtest.h>

#include "daemon/pipeline_item.hpp"

namespace ctaudit::daemon {
namespace {

TEST(RecordBudgetTest, TheQueueNeverTakesMoreThanItsSize) {
  constexpr std::size_t kSize = std::size_t{512} << 20U;
  const RecordBudget budget = recordBudget(kSize);
  EXPECT_LE(2 * budget.queue_records * sizeof(PipelineItem), kSize);
  EXPECT_GT(2 * (budget.queue_records + 1) * sizeof(PipelineItem), kSize);
  EXPECT_LE(budget.lane_records * sizeof(FlowRecord), kSize / 2);
  // The documented figures (docs/operations.md, --help): about 950k records per queue buffer.
  EXPECT_GT(budget.queue_records, 900'000U);
  EXPECT_LT(budget.queue_records, 1'000'000U);
}

TEST(RecordBudgetTest, NeverZero) {
  EXPECT_EQ(recordBudget(1).queue_records, 1U);
  EXPECT_EQ(recordBudget(1).lane_records, 1U);
}

}  // namespace
}  // namespace ctaudit::daemon
