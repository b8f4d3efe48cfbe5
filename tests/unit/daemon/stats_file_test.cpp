// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/stats_file.hpp"

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <sys/stat.h>
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

std::shared_ptr<spdlog::logger> quietLogger() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
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
  auto file = StatsFile::open(dir / "missing" / "x.prom", quietLogger());
  ASSERT_TRUE(file) << "no lock file in a missing directory is a warning, not a refusal";
  (*file)->write("a 1\n");  // logs once, goes on
  (*file)->write("a 2\n");
}

TEST(StatsFileTest, ASecondWriterOfTheSameStatsFileIsRefused) {
  testing::TempDir dir;
  const auto path = dir / "ctauditd.prom";
  auto first = StatsFile::open(path, quietLogger());
  ASSERT_TRUE(first);
  const auto second = StatsFile::open(path, quietLogger());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::Io);
  EXPECT_NE(second.error().detail.find("--stats-file"), std::string::npos) << second.error().detail;
  first->reset();
  EXPECT_TRUE(StatsFile::open(path, quietLogger())) << "the lock goes with the daemon that held it";
  EXPECT_TRUE(StatsFile::open(dir / "other.prom", quietLogger())) << "another stats file in the directory is fine";
}

// A review: the lock is opened as root in a directory the service account may write. A link
// planted at its name is not followed, and a FIFO there neither blocks the start nor is the lock.
TEST(StatsFileTest, TheLockFollowsNoLinkAndWaitsOnNoFifo) {
  testing::TempDir dir;
  const auto target = dir / "planted-target";
  std::filesystem::create_symlink(target, StatsFile::lockPath(dir / "a.prom"));
  EXPECT_TRUE(StatsFile::open(dir / "a.prom", quietLogger()));
  EXPECT_FALSE(std::filesystem::exists(target)) << "the link's target was created";

  ASSERT_EQ(::mkfifo(StatsFile::lockPath(dir / "b.prom").c_str(), 0600), 0);
  auto first = StatsFile::open(dir / "b.prom", quietLogger());
  EXPECT_TRUE(first);
  EXPECT_TRUE(StatsFile::open(dir / "b.prom", quietLogger())) << "a FIFO is no lock: both run, with a warning";
}

}  // namespace
}  // namespace ctaudit::daemon
