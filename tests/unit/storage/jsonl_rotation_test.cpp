// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_rotation.hpp"

#include <gtest/gtest.h>

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;

// 2026-11-25T17:00:00Z
constexpr Timestamp kFiveOClock = fromUnixNanos(1'795'626'000'000'000'000);

Timestamp at(std::chrono::nanoseconds since_five) { return kFiveOClock + since_five; }

TEST(JsonlRotationTest, ParsesPeriodsSizesAndBoth) {
  EXPECT_EQ(parseRotationPolicy("none").value(), RotationPolicy{});
  EXPECT_EQ(parseRotationPolicy("1d").value(), (RotationPolicy{std::chrono::seconds{86400}, std::nullopt}));
  EXPECT_EQ(parseRotationPolicy("1h").value(), (RotationPolicy{std::chrono::seconds{3600}, std::nullopt}));
  EXPECT_EQ(parseRotationPolicy("15m").value(), (RotationPolicy{std::chrono::seconds{900}, std::nullopt}));
  EXPECT_EQ(parseRotationPolicy("512M").value(), (RotationPolicy{std::nullopt, std::uint64_t{512} << 20U}));
  EXPECT_EQ(parseRotationPolicy("64KiB").value(), (RotationPolicy{std::nullopt, std::uint64_t{64} << 10U}));
  EXPECT_EQ(parseRotationPolicy("1h,512M").value(), (RotationPolicy{std::chrono::seconds{3600}, std::uint64_t{512} << 20U}));
  EXPECT_EQ(parseRotationPolicy("2G, 6h").value(), (RotationPolicy{std::chrono::seconds{21600}, std::uint64_t{2} << 30U}));
  EXPECT_EQ(formatRotationPolicy(parseRotationPolicy("1h,512M").value()), "1h,512M");
  EXPECT_EQ(formatRotationPolicy(parseRotationPolicy("1d").value()), "1d");
  EXPECT_EQ(formatRotationPolicy(RotationPolicy{}), "none");
}

TEST(JsonlRotationTest, RefusesWhatItCannotReadWithAHint) {
  // "1m" is a minute and "1M" a mebibyte; a bare number is neither.
  for (const char* bad : {"", "512", "7h", "5000s", "2d", "0s", "512X", "1h,2h", "1M,2M", "1h,", "512B", "1G,", "0M"}) {
    const auto parsed = parseRotationPolicy(bad);
    ASSERT_FALSE(parsed) << "'" << bad << "' was accepted";
    EXPECT_NE(parsed.error().detail.find("1d,512M"), std::string::npos) << parsed.error().detail;
    EXPECT_EQ(parsed.error().code, Errc::Usage);
  }
  EXPECT_TRUE(parseRotationPolicy("1m"));
}

TEST(JsonlRotationTest, ParsesCompression) {
  EXPECT_EQ(parseCompression("gzip").value(), Compression::Gzip);
  EXPECT_EQ(parseCompression("zstd").value(), Compression::Zstd);
  EXPECT_EQ(parseCompression("none").value(), Compression::None);
  EXPECT_FALSE(parseCompression("xz"));
  EXPECT_EQ(compressionSuffix(Compression::Zstd), ".zst");
  EXPECT_EQ(compressionSuffix(Compression::Gzip), ".gz");
}

TEST(JsonlRotationTest, PeriodsAreAlignedToUtc) {
  EXPECT_EQ(periodStart(at(59min + 59s), 1h), kFiveOClock);
  EXPECT_EQ(periodStart(at(1h), 1h), kFiveOClock + 1h);
  EXPECT_EQ(periodStart(at(14min), 15min), kFiveOClock);
  EXPECT_EQ(periodStart(at(16min), 15min), kFiveOClock + 15min);
  EXPECT_EQ(periodStart(at(3h), 24h), kFiveOClock - 17h);  // midnight UTC
  EXPECT_EQ(periodStart(fromUnixNanos(-1), 1h), fromUnixNanos(0) - 1h);
}

TEST(JsonlRotationTest, AgeRotatesAtTheFirstCheckInTheNextPeriod) {
  const RotationPolicy hourly{std::chrono::seconds{3600}, std::nullopt};
  const Timestamp start = at(3s);
  EXPECT_EQ(rotationDue(hourly, start, 100, 10, at(59min + 59s)), RotateReason::None);
  EXPECT_EQ(rotationDue(hourly, start, 100, 10, at(1h)), RotateReason::Age);
  EXPECT_EQ(rotationDue(hourly, start, 100, 0, at(3h)), RotateReason::Age);
  // An empty file is never closed: it only gets a new start.
  EXPECT_EQ(rotationDue(hourly, start, 0, 10, at(3h)), RotateReason::None);
  // The name ends at the boundary, not at the (later) check.
  EXPECT_EQ(closedEnd(hourly, RotateReason::Age, start, at(1h + 250ms)), at(1h));
  EXPECT_EQ(closedEnd(hourly, RotateReason::Age, start, at(3h)), at(1h));
}

TEST(JsonlRotationTest, SizeRotatesBeforeTheWriteThatWouldPassIt) {
  const RotationPolicy sized{std::nullopt, 1000};
  EXPECT_EQ(rotationDue(sized, at(0s), 900, 100, at(1s)), RotateReason::None);  // exactly full
  EXPECT_EQ(rotationDue(sized, at(0s), 900, 101, at(1s)), RotateReason::Size);
  EXPECT_EQ(rotationDue(sized, at(0s), 1500, 0, at(1s)), RotateReason::Size);  // one big batch
  EXPECT_EQ(rotationDue(sized, at(0s), 0, 5000, at(1s)), RotateReason::None);  // never split a batch
  // The end is the closing time rounded up, so every write lies inside the name's period.
  EXPECT_EQ(closedEnd(sized, RotateReason::Size, at(0s), at(1s + 1ns)), at(2s));
  EXPECT_EQ(closedEnd(sized, RotateReason::Size, at(0s), at(1s)), at(1s));
  const RotationPolicy both{std::chrono::seconds{3600}, 1000};
  EXPECT_EQ(rotationDue(both, at(0s), 10, 10, at(1h)), RotateReason::Age);
  EXPECT_EQ(rotationDue(both, at(0s), 999, 10, at(5min)), RotateReason::Size);
}

TEST(JsonlRotationTest, NamesCarryTheUtcPeriodAndReadBack) {
  const std::filesystem::path active{"/var/log/ctaudit/flows.jsonl"};
  const auto closed = closedFilePath(active, at(250ms), at(1h));
  EXPECT_EQ(closed, "/var/log/ctaudit/flows-20261125T170000Z-20261125T180000Z.jsonl");
  EXPECT_EQ(closedFilePath(active, at(1s), at(1s + 1ms)).filename(), "flows-20261125T170001Z-20261125T170002Z.jsonl");

  for (const auto& [name, compression, temporary] :
       {std::tuple{"flows-20261125T170000Z-20261125T180000Z.jsonl", Compression::None, false},
        std::tuple{"flows-20261125T170000Z-20261125T180000Z.jsonl.gz", Compression::Gzip, false},
        std::tuple{"flows-20261125T170000Z-20261125T180000Z.jsonl.zst", Compression::Zstd, false},
        std::tuple{"flows-20261125T170000Z-20261125T180000Z.jsonl.zst.tmp", Compression::Zstd, true}}) {
    const auto parsed = parseClosedFileName(active, name);
    ASSERT_TRUE(parsed) << name;
    EXPECT_EQ(parsed->start, kFiveOClock) << name;
    EXPECT_EQ(parsed->end, kFiveOClock + 1h) << name;
    EXPECT_EQ(parsed->compression, compression) << name;
    EXPECT_EQ(parsed->temporary, temporary) << name;
    EXPECT_EQ(parsed->base, "flows-20261125T170000Z-20261125T180000Z.jsonl") << name;
    EXPECT_EQ(parsed->path, active.parent_path() / name);
  }
  for (const char* other :
       {"flows.jsonl", "flows.jsonl.torn", "flows.jsonl.1", "flows.jsonl.2.gz", "flows-20261125T170000Z.jsonl",
        "flows-20261125T170000Z-20261125T180000Z.jsonl.tmp", "other-20261125T170000Z-20261125T180000Z.jsonl",
        "flows-20261125T180000Z-20261125T170000Z.jsonl", "flows-20261325T170000Z-20261125T180000Z.jsonl",
        "flows-20261125T170000Z-20261125T180000Z.json", "flows-20261125T170000Z-20261125T180000Z.jsonl.xz",
        // years a Timestamp cannot hold: not ours, and their nanoseconds would overflow
        "flows-99991231T235959Z-99991231T235959Z.jsonl", "flows-00010101T000000Z-20261125T180000Z.jsonl"}) {
    EXPECT_FALSE(parseClosedFileName(active, other)) << other;
  }
}

TEST(JsonlRotationTest, NamesSortInTheOrderTheFilesWereClosed) {
  const std::filesystem::path active{"flows.jsonl"};
  const std::vector<std::string> names{
      closedFilePath(active, at(-25h), at(-1h)).string(), closedFilePath(active, at(-1h), at(0s)).string(),
      closedFilePath(active, at(0s), at(1s)).string(), closedFilePath(active, at(1s), at(1h)).string(),
      closedFilePath(active, at(1h), at(240h)).string()};
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
}

}  // namespace
}  // namespace ctaudit::storage
