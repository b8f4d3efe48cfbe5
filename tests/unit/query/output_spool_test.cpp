// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/output_spool.hpp"

#include <cstdlib>
#include <filesystem>
#include <optional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::query {
namespace {

// Sets TMPDIR for one test and puts back what was there.
class TmpdirForTest {
public:
  explicit TmpdirForTest(const std::string& value) {
    if (const char* old = std::getenv("TMPDIR"); old != nullptr) {  // NOLINT(concurrency-mt-unsafe): tests run one at a time
      old_ = old;
    }
    ::setenv("TMPDIR", value.c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
  }
  TmpdirForTest(const TmpdirForTest&) = delete;
  TmpdirForTest& operator=(const TmpdirForTest&) = delete;
  TmpdirForTest(TmpdirForTest&&) = delete;
  TmpdirForTest& operator=(TmpdirForTest&&) = delete;
  ~TmpdirForTest() {
    if (old_) {
      ::setenv("TMPDIR", old_->c_str(), 1);  // NOLINT(concurrency-mt-unsafe)
    } else {
      ::unsetenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe)
    }
  }

private:
  std::optional<std::string> old_;
};

TEST(OutputSpoolTest, GivesBackWhatItTookInOrderAndLeavesNoFile) {
  const testing::TempDir dir;
  const TmpdirForTest tmpdir(dir.path().string());
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
  const TmpdirForTest tmpdir("/nonexistent/ctaudit-test");
  const auto spool = OutputSpool::create();
  ASSERT_FALSE(spool);
  EXPECT_EQ(spool.error().detail, "cannot make a temporary file in /nonexistent/ctaudit-test: No such file or directory");
}

}  // namespace
}  // namespace ctaudit::query
