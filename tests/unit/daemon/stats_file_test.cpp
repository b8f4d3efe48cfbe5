// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/stats_file.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(StatsFileTest, ReplacesTheFileWithoutLeavingTheTemporary) {
  testing::TempDir dir;
  const auto path = dir / "ctauditd.prom";
  ASSERT_TRUE(replaceFile(path, "a 1\n"));
  ASSERT_TRUE(replaceFile(path, "a 2\n"));
  EXPECT_EQ(slurp(path), "a 2\n");
  EXPECT_FALSE(std::filesystem::exists(dir / "ctauditd.prom.tmp"));
}

TEST(StatsFileTest, AMissingDirectoryIsAnErrorNotACrash) {
  testing::TempDir dir;
  const auto result = replaceFile(dir / "missing" / "x.prom", "a 1\n");
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::Io);
  EXPECT_NE(result.error().detail.find("missing"), std::string::npos);
  StatsFile file(dir / "missing" / "x.prom",
                 std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>()));
  file.write("a 1\n");  // logs once, goes on
  file.write("a 2\n");
}

}  // namespace
}  // namespace ctaudit::daemon
