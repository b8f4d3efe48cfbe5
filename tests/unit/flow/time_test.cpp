// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/time.hpp"

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(TimeTest, ParsesRfc3339WithZoneAndOffset) {
  const auto utc = parseTime("2026-11-25T10:00:03Z");
  ASSERT_TRUE(utc) << utc.error().detail;
  EXPECT_EQ(toUnixNanos(*utc), 1'795'600'803'000'000'000);
  const auto offset = parseTime("2026-11-25T12:00:03.5+02:00");
  ASSERT_TRUE(offset);
  EXPECT_EQ(*offset - *utc, milliseconds{500});
  const auto west = parseTime("2026-11-25 05:00:03-05:00");
  ASSERT_TRUE(west);
  EXPECT_EQ(*west, *utc);
  const auto nanos = parseTime("2026-11-25T10:00:03.123456789Z");
  ASSERT_TRUE(nanos);
  EXPECT_EQ(toUnixNanos(*nanos) % 1'000'000'000, 123'456'789);
}

TEST(TimeTest, ParsesUnixSeconds) {
  const auto t = parseTime("@1795617349.21");
  ASSERT_TRUE(t);
  EXPECT_EQ(toUnixNanos(*t), 1'795'617'349'210'000'000);
  EXPECT_FALSE(parseTime("@"));
  EXPECT_FALSE(parseTime("@12x"));
}

TEST(TimeTest, RefusesTimesWithoutZoneAndSaysHow) {
  const auto t = parseTime("2026-11-25T10:00:03");
  ASSERT_FALSE(t);
  EXPECT_NE(t.error().detail.find("no zone"), std::string::npos);
  EXPECT_NE(t.error().detail.find("2026-11-25T10:00:03Z"), std::string::npos);
  EXPECT_FALSE(parseTime("2026-02-30T10:00:03Z"));
  EXPECT_FALSE(parseTime("2026-11-25T25:00:03Z"));
  EXPECT_FALSE(parseTime("2026-11-25T10:00:03Zjunk"));
  EXPECT_FALSE(parseTime("yesterday"));
}

TEST(TimeTest, FormatsUtcWithNanoseconds) {
  EXPECT_EQ(formatRfc3339(fromUnixNanos(1'795'600'803'000'001'000)), "2026-11-25T10:00:03.000001000Z");
  EXPECT_EQ(formatRfc3339(fromUnixNanos(0)), "1970-01-01T00:00:00.000000000Z");
}

TEST(TimeTest, ParsesDurations) {
  EXPECT_EQ(*parseDuration("2s"), seconds{2});
  EXPECT_EQ(*parseDuration("500ms"), milliseconds{500});
  EXPECT_EQ(*parseDuration("1m30s"), seconds{90});
  EXPECT_EQ(*parseDuration("2d"), seconds{2 * 86400});
  EXPECT_EQ(*parseDuration("0"), seconds{0});
  EXPECT_EQ(*parseDuration("3"), seconds{3});
  EXPECT_FALSE(parseDuration(""));
  EXPECT_FALSE(parseDuration("2 s"));
  EXPECT_FALSE(parseDuration("5parsecs"));
  EXPECT_FALSE(parseDuration("-1s"));
}

}  // namespace
}  // namespace ctaudit
