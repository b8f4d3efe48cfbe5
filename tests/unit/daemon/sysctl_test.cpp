// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/sysctl.hpp"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

std::string read(const std::filesystem::path& path) {
  std::string value;
  std::ifstream(path) >> value;
  return value;
}

TEST(SysctlTest, SetsWhatIsOffAndReportsIt) {
  testing::TempDir proc;
  std::filesystem::create_directories(proc / "sys/net/netfilter");
  const auto file = proc / "sys/net/netfilter/nf_conntrack_acct";
  std::ofstream(file) << "0\n";
  const RequiredSysctl acct{"nf_conntrack_acct", "1", "no counters"};

  const auto checked = ensureSysctl(proc.path(), acct, false);
  ASSERT_TRUE(checked);
  EXPECT_FALSE(checked->changed);
  EXPECT_EQ(checked->before, "0");
  EXPECT_EQ(read(file), "0");

  const auto applied = ensureSysctl(proc.path(), acct, true);
  ASSERT_TRUE(applied);
  EXPECT_TRUE(applied->changed);
  EXPECT_EQ(read(file), "1");

  const auto again = ensureSysctl(proc.path(), acct, true);
  ASSERT_TRUE(again);
  EXPECT_FALSE(again->changed);
}

TEST(SysctlTest, MissingFileSaysWhatToLoad) {
  testing::TempDir proc;
  const auto result = ensureSysctl(proc.path(), requiredSysctls().front(), true);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().detail.find("modprobe nf_conntrack"), std::string::npos);
}

}  // namespace
}  // namespace ctaudit::daemon
