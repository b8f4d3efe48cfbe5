// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/output_spool.hpp"

#include <filesystem>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/scoped_env.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::query {
namespace {

using testing::ScopedEnv;

TEST(OutputSpoolTest, GivesBackWhatItTookInOrderAndLeavesNoFile) {
  const testing::TempDir dir;
  const ScopedEnv tmpdir("TMPDIR", dir.path().c_str());
  auto spool = OutputSpool::create();
  ASSERT_TRUE(spool) << spool.error().detail;
  std::string expected;
  for (int line = 0; line < 20'000; ++line) {  // well past one 64 KiB buffer
    const std::string text = "{\"line\":" + std::to_string(line) + "}\n";
    (*spool)->stream() << text;
    expected += text;
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path())) << "unlinked at once";
  std::ostringstream out;
  ASSERT_TRUE((*spool)->copyTo(out));
  EXPECT_EQ(out.str(), expected);
}

TEST(OutputSpoolTest, NoPlaceForTheFileIsAnErrorThatNamesIt) {
  const ScopedEnv tmpdir("TMPDIR", "/nonexistent/ctaudit-test");
  const auto spool = OutputSpool::create();
  ASSERT_FALSE(spool);
  EXPECT_EQ(spool.error().detail, "cannot make a temporary file in /nonexistent/ctaudit-test: No such file or directory");
}

}  // namespace
}  // namespace ctaudit::query
