// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/privileges.hpp"

#include <array>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

bool mentions(const Result<ServiceAccount>& result, std::string_view text) {
  return !result && result.error().detail.find(text) != std::string::npos;
}

TEST(PrivilegesTest, NeedsRootToSwitch) {
  const auto result = requireRootToSwitch("nobody", 1000);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().code, Errc::Usage);
  EXPECT_NE(result.error().detail.find("started as root"), std::string::npos) << result.error().detail;
  EXPECT_NE(result.error().detail.find("CAP_NET_ADMIN"), std::string::npos) << result.error().detail;
  EXPECT_TRUE(requireRootToSwitch("nobody", 0));
}

TEST(PrivilegesTest, AnEmptyNameIsRefused) {
  EXPECT_TRUE(mentions(lookupServiceAccount(""), "needs a user name"));
}

TEST(PrivilegesTest, UnknownUserSaysSo) {
  const auto result = lookupServiceAccount("ctaudit-no-such-user-7f3a");
  EXPECT_TRUE(mentions(result, "no such user")) << (result ? "found" : result.error().detail);
}

TEST(PrivilegesTest, RootIsNotATarget) {
  const auto result = lookupServiceAccount("root");
  EXPECT_TRUE(mentions(result, "uid 0")) << (result ? "accepted" : result.error().detail);
}

TEST(PrivilegesTest, FindsAnExistingUser) {
  // nobody exists on every Debian system (base-passwd), as uid 65534.
  const auto result = lookupServiceAccount("nobody");
  ASSERT_TRUE(result) << result.error().detail;
  EXPECT_EQ(result->name, "nobody");
  EXPECT_EQ(result->uid, 65534U);
  EXPECT_NE(result->gid, 0U);
}

TEST(PrivilegesTest, HandsOverExistingFilesAndSkipsMissingOnes) {
  testing::TempDir dir;
  const auto file = dir / "flows.db";
  std::ofstream(file) << "x";
  // Giving a file to its current owner works without privilege, so the test runs as anyone.
  const ServiceAccount self{"self", ::geteuid(), ::getegid()};
  const std::array<std::filesystem::path, 2> paths{file, dir / "flows.db-wal"};
  EXPECT_TRUE(handOverFiles(self, paths));
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_uid, ::geteuid());
}

TEST(PrivilegesTest, UnwritableDirectoryNamesTheFix) {
  testing::TempDir dir;
  const ServiceAccount self{"someone", ::geteuid(), ::getegid()};
  const std::array<std::filesystem::path, 1> missing{dir / "absent"};
  const auto result = requireWritableDirectories(self, missing);
  ASSERT_FALSE(result);
  EXPECT_NE(result.error().detail.find("chown someone: " + (dir / "absent").string()), std::string::npos)
      << result.error().detail;
  const std::array<std::filesystem::path, 1> present{dir.path()};
  EXPECT_TRUE(requireWritableDirectories(self, present));
}

}  // namespace
}  // namespace ctaudit::daemon
