// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/time.hpp"

#include <cstdint>

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

// A Timestamp is 64 bits of nanoseconds. Past its ends a time used to wrap around silently: a
// question about 2611 was answered with flows of 2026, exit 0.
TEST(TimeTest, RefusesTimesOutsideTheRangeInsteadOfWrapping) {
  for (const char* text : {"@20241744278", "2611-06-09T10:44:38Z", "9999-12-31T23:59:59Z", "1400-01-01T00:00:00Z",
                           "@9223372036854775807", "@99999999999999999999", "@-9223372037", "@9223372036.9"}) {
    const auto t = parseTime(text);
    ASSERT_FALSE(t) << text << " gave " << formatRfc3339(*t);
    EXPECT_NE(t.error().detail.find("out of range"), std::string::npos) << t.error().detail;
    EXPECT_NE(t.error().detail.find("2262-04-11T23:47:16.854775807Z"), std::string::npos) << t.error().detail;
  }
  // The ends themselves, to the second the message names.
  const auto last = parseTime("2262-04-11T23:47:16Z");
  ASSERT_TRUE(last) << last.error().detail;
  EXPECT_EQ(*last, *parseTime("@9223372036"));
  const auto first = parseTime("1677-09-21T00:12:44Z");
  ASSERT_TRUE(first) << first.error().detail;
  EXPECT_EQ(*first, *parseTime("@-9223372036"));
  EXPECT_FALSE(parseTime("1677-09-21T00:12:43Z"));
  // An offset can carry a time just inside over the end, and back.
  EXPECT_FALSE(parseTime("2262-04-11T23:47:16-01:00"));
  EXPECT_TRUE(parseTime("2262-04-12T00:47:16+01:00"));
  EXPECT_EQ(toUnixNanos(*parseTime("@-1.5")), -1'500'000'000);
  // The first second of the range, with a fraction, in both forms; a second sign is no number.
  EXPECT_EQ(toUnixNanos(*parseTime("1677-09-21T00:12:43.145224192Z")), INT64_MIN);
  EXPECT_EQ(toUnixNanos(*parseTime("@-9223372036.854775808")), INT64_MIN);
  EXPECT_FALSE(parseTime("1677-09-21T00:12:43.145224191Z"));
  EXPECT_FALSE(parseTime("@--5"));
  EXPECT_FALSE(parseTime("@--9223372036854775808"));
  EXPECT_FALSE(parseTime("@+5"));
}

// Every Timestamp formats, the first and last nanoseconds included (the first day's midnight lies
// before what nanoseconds since 1970 can count).
TEST(TimeTest, FormatsTheEndsOfTheRange) {
  EXPECT_EQ(formatRfc3339(fromUnixNanos(INT64_MIN)), "1677-09-21T00:12:43.145224192Z");
  EXPECT_EQ(formatRfc3339(fromUnixNanos(INT64_MAX)), "2262-04-11T23:47:16.854775807Z");
  EXPECT_EQ(formatRfc3339(fromUnixNanos(-1)), "1969-12-31T23:59:59.999999999Z");
  EXPECT_EQ(formatRfc3339(*parseTime("1677-09-21T12:00:00Z")), "1677-09-21T12:00:00.000000000Z");
}

TEST(TimeTest, RefusesDurationsTooLongInsteadOfWrapping) {
  for (const char* text : {"213505d", "18446744074s", "106752d", "106751d24h", "106751d23h48m",
                           "9223372036854775808ns", "99999999999999999999s"}) {
    const auto d = parseDuration(text);
    ASSERT_FALSE(d) << text << " gave " << d->count() << " ns";
    EXPECT_NE(d.error().detail.find("too long"), std::string::npos) << d.error().detail;
  }
  EXPECT_EQ(parseDuration("106751d")->count(), 106'751LL * 86'400 * 1'000'000'000);
  EXPECT_EQ(parseDuration("9223372036854775807ns")->count(), INT64_MAX);
}

TEST(TimeTest, SaysThatDurationsTakeNoFractions) {
  const auto d = parseDuration("1.5s");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().detail.find("1500ms"), std::string::npos) << d.error().detail;
}

// "1h1h" and "1s1m" are typing slips more likely than sums: each unit once, the largest first.
TEST(TimeTest, DurationUnitsGoFromTheLargestDownEachOnce) {
  EXPECT_EQ(parseDuration("1h30m")->count(), 5'400'000'000'000);
  EXPECT_EQ(parseDuration("5")->count(), 5'000'000'000);  // a bare number is seconds, on its own
  const auto trailing = parseDuration("1h30");
  ASSERT_FALSE(trailing);
  EXPECT_NE(trailing.error().detail.find("30 after a unit needs its own unit"), std::string::npos)
      << trailing.error().detail;
  for (const char* text : {"1h1h", "1s1m", "5ms1s", "1m1m"}) {
    const auto d = parseDuration(text);
    ASSERT_FALSE(d) << text;
    EXPECT_NE(d.error().detail.find("the largest first"), std::string::npos) << d.error().detail;
  }
}

TEST(TimeTest, DurationsTakeTheMicroSign) {
  EXPECT_EQ(parseDuration("250\u00B5s")->count(), 250'000);  // micro sign
  EXPECT_EQ(parseDuration("250\u03BCs")->count(), 250'000);  // Greek mu
  EXPECT_EQ(parseDuration("250us")->count(), 250'000);
  const auto d = parseDuration("1_000s");
  ASSERT_FALSE(d);
  EXPECT_NE(d.error().detail.find("unexpected '_' after 1"), std::string::npos) << d.error().detail;
}

TEST(TimeTest, RefusesTimesThatOnlyLookValid) {
  const auto refused = [](std::string_view text, std::string_view why) {
    const auto t = parseTime(text);
    ASSERT_FALSE(t) << text << " gave " << formatRfc3339(*t);
    EXPECT_NE(t.error().detail.find(why), std::string::npos) << t.error().detail;
  };
  refused("2026-11-18T11:10:60Z", "in Unix time it is 11:10:59 or the next minute's :00");
  refused("2016-12-31T23:59:60Z", "leap second");
  refused("2026-11-18T11:10:17.Z", "expected digits");
  refused("@1795000000.", "expected digits");
  refused("@1,5", "unexpected characters");
  // Digits below the nanosecond are dropped, as the precision ends there.
  EXPECT_EQ(toUnixNanos(*parseTime("1970-01-01T00:00:01.1234567891Z")), 1'123'456'789);
  EXPECT_EQ(toUnixNanos(*parseTime("1970-01-01T00:00:01,5Z")), 1'500'000'000);  // ISO 8601's comma
}

}  // namespace
}  // namespace ctaudit
