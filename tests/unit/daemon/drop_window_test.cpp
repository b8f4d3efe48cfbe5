// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/drop_window.hpp"

#include <gtest/gtest.h>

#include "tests/support/flow_builders.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using testing::at;

TEST(DropWindowTest, CountsExactlyAndSpansTheEventTimes) {
  DropWindow window;
  EXPECT_TRUE(window.empty());
  window.add(at(5s), at(10s));
  window.add(at(2s), at(11s));
  window.add(at(7s), at(12s));
  EXPECT_EQ(window.count(), 3U);
  EXPECT_EQ(window.firstDropAt(), at(10s));
  EXPECT_EQ(window.lastDropAt(), at(12s));
  const GapRecord gap = window.take(GapReason::SinkFailure, "jsonl");
  EXPECT_EQ(gap.reason, GapReason::SinkFailure);
  EXPECT_EQ(gap.start, at(2s));
  EXPECT_EQ(gap.end, at(7s));
  EXPECT_EQ(gap.lost_records, 3U);
  EXPECT_EQ(gap.sink, "jsonl");
  EXPECT_TRUE(window.empty());
}

}  // namespace
}  // namespace ctaudit::daemon
