// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/read_pacing.hpp"

#include <gtest/gtest.h>

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;

TEST(ReadPacingTest, TheWaitTakesAboutTheTargetAtTheLastTurnsRate) {
  const ReadPacing pacing{10ms, 100ms, 2048};
  // 150k events/s: 1500 in 10 ms, so 2048 take 13.65 ms.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::microseconds>(pacing.next(1500, 10ms)), 13653us);
  // 40k events/s: 2048 take 51.2 ms.
  EXPECT_EQ(pacing.next(4000, 100ms), 51200us);
}

TEST(ReadPacingTest, TheWaitStaysWithinItsBounds) {
  const ReadPacing pacing{10ms, 100ms, 2048};
  EXPECT_EQ(pacing.next(100000, 10ms), 10ms);  // faster than the target: the minimum
  EXPECT_EQ(pacing.next(32, 32ms), 100ms);     // 1k events/s: the maximum
  EXPECT_EQ(pacing.next(0, 1s), 100ms);        // nothing read
  EXPECT_EQ(pacing.next(1, std::chrono::hours{24 * 365}), 100ms);  // a year idle
  EXPECT_EQ(pacing.next(1, 0ns), 10ms);
}

TEST(ReadPacingTest, TheDefaultReceiveBufferSetsTheDefaultLongestWait) {
  // The default maximum is above what the default 256 MiB buffer allows, so the buffer decides.
  const ReadPacing pacing{};
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(pacing.maxFor(std::size_t{256} << 20U)), 223ms);
  EXPECT_EQ(pacing.maxFor(std::size_t{1} << 30U), pacing.max);
}

TEST(ReadPacingTest, AZeroPacingReadsAtOnce) {
  const ReadPacing pacing{0s, 0s, 2048};
  EXPECT_EQ(pacing.next(1, 1s), 0s);
  EXPECT_EQ(pacing.next(0, 1s), 0s);
}

TEST(ReadPacingTest, ASmallReceiveBufferShortensTheLongestWait) {
  const ReadPacing pacing{10ms, 100ms, 2048};
  // A quarter of 256 MiB fills in 224 ms at 300 MB/s: the maximum stands.
  EXPECT_EQ(pacing.maxFor(std::size_t{256} << 20U), 100ms);
  // A quarter of 64 MiB: 55.9 ms.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(pacing.maxFor(std::size_t{64} << 20U)), 55ms);
  // 208 KiB (the kernel's default): below the minimum, which stands.
  EXPECT_EQ(pacing.maxFor(std::size_t{208} << 10U), 10ms);
}

}  // namespace
}  // namespace ctaudit::daemon
