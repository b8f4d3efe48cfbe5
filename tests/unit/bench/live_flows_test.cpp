// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/live_flows.hpp"

#include <algorithm>
#include <cstdint>
#include <set>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::bench {
namespace {

std::vector<std::uint64_t> takeAll(LiveFlows& live) {
  std::vector<std::uint64_t> taken;
  while (!live.empty()) {
    taken.push_back(live.take());
  }
  return taken;
}

LiveFlows randomFlows(std::uint32_t nat_ports, std::uint64_t count, std::uint64_t seed = 1) {
  LiveFlows live(EndOrder::Random, nat_ports, seed);
  for (std::uint64_t flow = 0; flow < count; ++flow) {
    live.add(flow);
  }
  return live;
}

TEST(LiveFlowsTest, FifoTakesTheOldestFirstAndNeverAHolder) {
  LiveFlows live(EndOrder::Fifo, 10, 1);
  for (std::uint64_t flow = 5; flow < 9; ++flow) {
    live.add(flow);
  }
  EXPECT_EQ(live.takeHolderOf(15), std::nullopt);  // same port slot as 5, but FIFO never needs it
  EXPECT_EQ(takeAll(live), (std::vector<std::uint64_t>{5, 6, 7, 8}));
}

TEST(LiveFlowsTest, RandomTakesEveryFlowOnceInAnotherOrder) {
  LiveFlows live = randomFlows(1000, 500);
  EXPECT_EQ(live.size(), 500U);
  const std::vector<std::uint64_t> taken = takeAll(live);
  ASSERT_EQ(taken.size(), 500U);
  EXPECT_EQ(std::set<std::uint64_t>(taken.begin(), taken.end()).size(), 500U);
  EXPECT_EQ(*std::max_element(taken.begin(), taken.end()), 499U);
  EXPECT_FALSE(std::is_sorted(taken.begin(), taken.end()));
}

TEST(LiveFlowsTest, RandomOrderIsTheSameForTheSameSeed) {
  LiveFlows a = randomFlows(1000, 200, 7);
  LiveFlows b = randomFlows(1000, 200, 7);
  LiveFlows c = randomFlows(1000, 200, 8);
  const auto order_a = takeAll(a);
  EXPECT_EQ(order_a, takeAll(b));
  EXPECT_NE(order_a, takeAll(c));
}

TEST(LiveFlowsTest, FindsTheFlowHoldingAPortAfterOthersWereTaken) {
  // 100 port slots, flows 0-99 live: flow n + 100 needs the port of flow n.
  LiveFlows live = randomFlows(100, 100);
  std::set<std::uint64_t> alive;
  for (std::uint64_t flow = 0; flow < 100; ++flow) {
    alive.insert(flow);
  }
  for (int i = 0; i < 40; ++i) {  // random takes move the last flow into the hole they leave
    alive.erase(live.take());
  }
  for (std::uint64_t flow = 100; flow < 200; ++flow) {
    const auto holder = live.takeHolderOf(flow);
    if (alive.contains(flow - 100)) {
      EXPECT_EQ(holder, flow - 100);
      alive.erase(flow - 100);
    } else {
      EXPECT_EQ(holder, std::nullopt) << "flow " << flow;
    }
    live.add(flow);
  }
  EXPECT_EQ(live.size(), 100U);
  const auto taken = takeAll(live);
  EXPECT_EQ(std::set<std::uint64_t>(taken.begin(), taken.end()).size(), 100U);
  EXPECT_TRUE(std::all_of(taken.begin(), taken.end(), [](std::uint64_t flow) { return flow >= 100; }));
}

TEST(LiveFlowsTest, AFlowAddedTwiceToAHeldSlotLeavesTheNewerOneFindable) {
  // A create that was not acknowledged is counted as live; a later one of the same port slot then
  // holds it too. Taking the older one must not make the newer one unfindable.
  LiveFlows live = randomFlows(10, 1);  // flow 0
  live.add(10);                         // same slot as 0
  ASSERT_EQ(live.takeHolderOf(20), 10U);
  EXPECT_EQ(live.takeHolderOf(20), std::nullopt);  // flow 0 is no longer indexed, but still live
  EXPECT_EQ(live.size(), 1U);
  EXPECT_EQ(live.take(), 0U);
}

}  // namespace
}  // namespace ctaudit::bench
