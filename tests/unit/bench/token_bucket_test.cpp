// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/token_bucket.hpp"

#include <gtest/gtest.h>

namespace ctaudit::bench {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

TEST(TokenBucketTest, AccruesAtTheRateUpToTheCapacity) {
  const Clock::time_point t0{};
  TokenBucket bucket(1000.0, 64, t0);
  EXPECT_EQ(bucket.available(t0), 0U);
  EXPECT_EQ(bucket.available(t0 + 10ms), 10U);
  EXPECT_EQ(bucket.available(t0 + 1s), 64U);
  bucket.take(60);
  EXPECT_EQ(bucket.available(t0 + 1s), 4U);
  EXPECT_EQ(bucket.available(t0 + 1s + 5ms), 9U);
}

TEST(TokenBucketTest, SaysWhenEnoughTokensWillBeThere) {
  const Clock::time_point t0{};
  TokenBucket bucket(2000.0, 32, t0);
  EXPECT_EQ(bucket.readyAt(16, t0), t0 + 8ms);
  // Asking for more than the capacity waits only for a full bucket.
  EXPECT_EQ(bucket.readyAt(100, t0), t0 + 16ms);
  EXPECT_EQ(bucket.readyAt(4, t0 + 8ms), t0 + 8ms);
}

TEST(TokenBucketTest, RateZeroMeansNoLimit) {
  const Clock::time_point t0{};
  TokenBucket bucket(0.0, 32, t0);
  EXPECT_TRUE(bucket.unlimited());
  EXPECT_EQ(bucket.available(t0), 32U);
  bucket.take(32);
  EXPECT_EQ(bucket.available(t0), 32U);
  EXPECT_EQ(bucket.readyAt(32, t0), t0);
}

}  // namespace
}  // namespace ctaudit::bench
