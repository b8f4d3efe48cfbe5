// SPDX-License-Identifier: GPL-2.0-or-later
// The `retention` setting (--retention, `retention = "400d"`). In a file of its own so that it
// stays out of the way of changes to the other settings' tests.
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

std::optional<std::chrono::nanoseconds> retentionOf(const Result<DaemonCommand>& command) {
  return std::get<RunCommand>(*command).config.retention;
}

TEST(RetentionConfigTest, DefaultKeepsEverything) {
  const auto command = parse({});
  ASSERT_TRUE(command);
  EXPECT_FALSE(retentionOf(command));
  EXPECT_NE(daemonUsage(kNoDefaultFile).find("--retention DUR"), std::string::npos);
}

TEST(RetentionConfigTest, TakesDurationsWithAUnitAndNone) {
  for (const auto& [text, expected] : std::vector<std::pair<std::string_view, std::optional<std::chrono::nanoseconds>>>{
           {"400d", std::chrono::days{400}}, {"90d", std::chrono::days{90}}, {"36h", 36h}, {"1h", 1h}, {"none", std::nullopt}}) {
    const auto command = parse({"--retention", text});
    ASSERT_TRUE(command) << text << ": " << command.error().detail;
    EXPECT_EQ(retentionOf(command), expected) << text;
  }
  const auto equals = parse({"--retention=7d"});
  ASSERT_TRUE(equals);
  EXPECT_EQ(retentionOf(equals), std::chrono::days{7});
}

TEST(RetentionConfigTest, RefusesWhatWouldDeleteTheLogByMistake) {
  for (const std::string_view text : {"400", "0", "59m", "400s", "", "forever", "36501d", "-1d"}) {
    const auto command = parse({"--retention", text});
    ASSERT_FALSE(command) << text;
    EXPECT_EQ(command.error().code, Errc::Usage) << text;
    EXPECT_NE(command.error().detail.find("--retention"), std::string::npos) << command.error().detail;
    EXPECT_NE(command.error().detail.find("e.g. 400d"), std::string::npos) << command.error().detail;
  }
}

TEST(RetentionConfigTest, ConfigFileKeyAndTheFlagWins) {
  testing::TempDir dir;
  const auto path = dir / "ctauditd.toml";
  std::ofstream(path) << "retention = \"400d\"\n";
  const auto from_file = parse({"--config", path.string()});
  ASSERT_TRUE(from_file) << from_file.error().detail;
  EXPECT_EQ(retentionOf(from_file), std::chrono::days{400});
  const auto overridden = parse({"--config", path.string(), "--retention", "none"});
  ASSERT_TRUE(overridden);
  EXPECT_FALSE(retentionOf(overridden));

  std::ofstream(path) << "\nretention = 400\n";
  const auto wrong_type = parse({"--config", path.string()});
  ASSERT_FALSE(wrong_type);
  EXPECT_EQ(wrong_type.error().code, Errc::Config);
  EXPECT_TRUE(wrong_type.error().detail.starts_with(path.string() + ":2:")) << wrong_type.error().detail;
}

}  // namespace
}  // namespace ctaudit::daemon
