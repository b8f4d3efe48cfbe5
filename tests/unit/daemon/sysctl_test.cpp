// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/sysctl.hpp"

#include <filesystem>
#include <cerrno>
#include <fstream>
#include <stdexcept>

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

const RequiredSysctl& named(std::string_view name) {
  static const auto all = requiredSysctls();
  for (const auto& sysctl : all) {
    if (sysctl.name == name) {
      return sysctl;
    }
  }
  throw std::invalid_argument(std::string(name));
}

bool has(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

TEST(SysctlTest, NothingToSayWhenAlreadyOn) {
  EXPECT_FALSE(describeSysctl(named("nf_conntrack_acct"), {"nf_conntrack_acct", "1", false, 0}, true));
  EXPECT_FALSE(describeSysctl(named("nf_conntrack_acct"), {"nf_conntrack_acct", "1", false, 0}, false));
}

TEST(SysctlTest, ChangedIsInformationAboutNewConntracksOnly) {
  const auto report = describeSysctl(named("nf_conntrack_acct"), {"nf_conntrack_acct", "0", true, 0}, true);
  ASSERT_TRUE(report);
  EXPECT_FALSE(report->warning);
  EXPECT_TRUE(has(report->text, "set net.netfilter.nf_conntrack_acct=1 (was 0)")) << report->text;
  EXPECT_TRUE(has(report->text, "created from now on")) << report->text;
}

TEST(SysctlTest, ReadOnlyProcSaysWhichSettingWhyAndTheCost) {
  const auto report = describeSysctl(named("nf_conntrack_acct"), {"nf_conntrack_acct", "0", false, EROFS}, true);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->warning);
  EXPECT_TRUE(has(report->text, "net.netfilter.nf_conntrack_acct is 0 in this network namespace")) << report->text;
  EXPECT_TRUE(has(report->text, "/proc/sys is read-only")) << report->text;
  EXPECT_TRUE(has(report->text, "no packet or byte counters")) << report->text;
  EXPECT_TRUE(has(report->text, "sysctl -w net.netfilter.nf_conntrack_acct=1")) << report->text;
  EXPECT_TRUE(has(report->text, "/usr/lib/sysctl.d/60-ctaudit.conf")) << report->text;
}

TEST(SysctlTest, MissingCapabilityIsNamed) {
  for (const int err : {EACCES, EPERM}) {
    const auto report =
        describeSysctl(named("nf_conntrack_timestamp"), {"nf_conntrack_timestamp", "0", false, err}, true);
    ASSERT_TRUE(report);
    EXPECT_TRUE(has(report->text, "needs CAP_NET_ADMIN in this network namespace")) << report->text;
    EXPECT_TRUE(has(report->text, "no kernel start and stop times")) << report->text;
  }
}

TEST(SysctlTest, NoSysctlIsNamedAsTheReason) {
  const auto report = describeSysctl(named("nf_conntrack_events"), {"nf_conntrack_events", "2", false, 0}, false);
  ASSERT_TRUE(report);
  EXPECT_TRUE(report->warning);
  EXPECT_TRUE(has(report->text, "is 2 in this network namespace and ctauditd leaves it alone (--no-sysctl)"))
      << report->text;
  EXPECT_TRUE(has(report->text, "never report their end")) << report->text;
}

TEST(SysctlTest, EventsOffEntirelyCostsMoreThanAuto) {
  const auto off = describeSysctl(named("nf_conntrack_events"), {"nf_conntrack_events", "0", false, 0}, false);
  ASSERT_TRUE(off);
  EXPECT_TRUE(has(off->text, "no conntrack events at all")) << off->text;
}

}  // namespace
}  // namespace ctaudit::daemon
