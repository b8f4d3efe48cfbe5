// SPDX-License-Identifier: GPL-2.0-or-later
// The JSON-lines rotation settings (jsonl-rotate, jsonl-keep, jsonl-compress, jsonl-grace) on the
// command line and in the config file. Kept apart from command_line_test.cpp, which covers the rest.
#include <fstream>

#include <gtest/gtest.h>

#include "daemon/command_line.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;

// No default config file: one installed on the machine must not change what the tests parse.
const std::filesystem::path kNoDefaultFile{"/nonexistent/ctaudit-test/ctauditd.toml"};

Result<DaemonCommand> parse(std::vector<std::string_view> args) { return parseDaemonCommandLine(args, kNoDefaultFile); }

const storage::RotationSettings& rotationOf(const Result<DaemonCommand>& command) {
  return std::get<RunCommand>(*command).config.jsonl_rotation;
}

TEST(JsonlRotationFlagsTest, DefaultIsDailyGzipAMonthKept) {
  const auto command = parse({});
  ASSERT_TRUE(command);
  const auto& rotation = rotationOf(command);
  EXPECT_EQ(rotation.policy, (storage::RotationPolicy{std::chrono::seconds{86400}, std::nullopt}));
  EXPECT_EQ(rotation.keep, std::optional<std::size_t>{31});
  EXPECT_EQ(rotation.compression, storage::Compression::Gzip);
  EXPECT_EQ(rotation.grace, 5min);
}

TEST(JsonlRotationFlagsTest, FlagsSetEachPart) {
  const auto command = parse({"--jsonl-rotate", "1h,512M", "--jsonl-keep=all", "--jsonl-compress", "zstd",
                              "--jsonl-grace", "90s"});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& rotation = rotationOf(command);
  EXPECT_EQ(rotation.policy, (storage::RotationPolicy{std::chrono::seconds{3600}, std::uint64_t{512} << 20U}));
  EXPECT_FALSE(rotation.keep);
  EXPECT_EQ(rotation.compression, storage::Compression::Zstd);
  EXPECT_EQ(rotation.grace, 90s);
  const auto off = parse({"--jsonl-rotate", "none", "--jsonl-keep", "7", "--jsonl-compress=none"});
  ASSERT_TRUE(off) << off.error().detail;
  EXPECT_FALSE(rotationOf(off).policy.enabled());
  EXPECT_EQ(rotationOf(off).keep, std::optional<std::size_t>{7});
  EXPECT_EQ(rotationOf(off).compression, storage::Compression::None);
}

TEST(JsonlRotationFlagsTest, BadValuesAreUsageErrors) {
  for (const auto& args : std::vector<std::vector<std::string_view>>{{"--jsonl-rotate", "7h"},
                                                                     {"--jsonl-rotate", "512"},
                                                                     {"--jsonl-keep", "0"},
                                                                     {"--jsonl-keep", "many"},
                                                                     {"--jsonl-compress", "xz"},
                                                                     {"--jsonl-grace", "-1s"},
                                                                     {"--jsonl-grace", "8d"}}) {
    const auto command = parse(args);
    ASSERT_FALSE(command) << args[0] << " " << args[1];
    EXPECT_EQ(command.error().code, Errc::Usage);
  }
  const std::string help = daemonUsage(kNoDefaultFile);
  for (const char* flag : {"--jsonl-rotate", "--jsonl-keep", "--jsonl-compress", "--jsonl-grace"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

TEST(JsonlRotationFlagsTest, ConfigFileTakesTheSameKeys) {
  const testing::TempDir dir;
  const auto path = dir / "ctauditd.toml";
  std::ofstream(path) << "jsonl-rotate = \"15m,64M\"\njsonl-keep = 96\njsonl-compress = \"zstd\"\njsonl-grace = \"1m\"\n";
  const auto command = parse({"--config", path.string()});
  ASSERT_TRUE(command) << command.error().detail;
  const auto& rotation = rotationOf(command);
  EXPECT_EQ(rotation.policy, (storage::RotationPolicy{std::chrono::seconds{900}, std::uint64_t{64} << 20U}));
  EXPECT_EQ(rotation.keep, std::optional<std::size_t>{96});
  EXPECT_EQ(rotation.compression, storage::Compression::Zstd);
  EXPECT_EQ(rotation.grace, 1min);
  std::ofstream(path) << "\njsonl-rotate = \"5h\"\n";
  const auto bad = parse({"--config", path.string()});
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().detail.find(path.string() + ":2:"), std::string::npos) << bad.error().detail;
}

}  // namespace
}  // namespace ctaudit::daemon
