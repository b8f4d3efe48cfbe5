// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/output_paths.hpp"

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/support/temp_dir.hpp"

namespace ctaudit::daemon {
namespace {

using ctaudit::testing::TempDir;

class OutputPathsTest : public ::testing::Test {
protected:
  void SetUp() override {
    config_.db_path = dir_ / "flows.db";
    config_.jsonl_path = dir_ / "flows.jsonl";
    config_.stats_file = dir_ / "ctauditd.prom";
  }

  // The conflict's message, or "" when there is none.
  [[nodiscard]] std::string conflict() const { return outputPathConflict(config_).value_or(""); }

  TempDir dir_;
  DaemonConfig config_;
};

TEST_F(OutputPathsTest, DistinctPathsAreFine) {
  EXPECT_EQ(conflict(), "");
  config_.jsonl_path = "-";  // standard output is no file
  EXPECT_EQ(conflict(), "");
  config_.jsonl_path.reset();
  config_.stats_file.reset();
  EXPECT_EQ(conflict(), "");
}

// Found by running the daemon so: the stats file replaced the database within a second.
TEST_F(OutputPathsTest, TwoOutputsOnOneFileAreRefused) {
  config_.stats_file = config_.db_path;
  EXPECT_NE(conflict().find("--db and --stats-file name the same file"), std::string::npos) << conflict();
  SetUp();
  config_.jsonl_path = config_.db_path;
  EXPECT_NE(conflict().find("--db and --jsonl name the same file"), std::string::npos) << conflict();
  SetUp();
  config_.jsonl_path = dir_ / "flows.db-wal";  // the database's newest commits
  EXPECT_NE(conflict().find("--db and --jsonl"), std::string::npos) << conflict();
  SetUp();
  config_.stats_file = *config_.jsonl_path;
  EXPECT_NE(conflict().find("--jsonl and --stats-file name the same file"), std::string::npos) << conflict();
  SetUp();
  config_.stats_file = dir_ / "sub" / ".." / "flows.jsonl";  // another spelling
  EXPECT_NE(conflict().find("--jsonl and --stats-file"), std::string::npos) << conflict();
}

TEST_F(OutputPathsTest, ALinkToAnotherOutputIsTheSameFile) {
  std::ofstream(config_.db_path) << "";
  std::filesystem::create_symlink(config_.db_path, dir_ / "link.jsonl");
  config_.jsonl_path = dir_ / "link.jsonl";
  EXPECT_NE(conflict().find("--db and --jsonl"), std::string::npos) << conflict();
}

// Relative spellings of files that do not exist yet: the first start used to cut the new database.
TEST_F(OutputPathsTest, RelativeSpellingsOfOneFileAreTheSameFile) {
  const auto cwd = std::filesystem::current_path();
  config_.db_path = "flows-relative-test.db";
  config_.jsonl_path = "./flows-relative-test.db";
  EXPECT_NE(conflict().find("--db and --jsonl"), std::string::npos) << conflict();
  config_.jsonl_path = cwd / "flows-relative-test.db";
  EXPECT_NE(conflict().find("--db and --jsonl"), std::string::npos) << conflict();
  EXPECT_FALSE(std::filesystem::exists(cwd / "flows-relative-test.db")) << "the check creates nothing";
}

TEST_F(OutputPathsTest, AJsonLinesPathHoldingADatabaseOrAnotherProgramsTextIsRefused) {
  std::ofstream(*config_.jsonl_path, std::ios::binary) << std::string("SQLite format 3\0rest", 20);
  EXPECT_NE(conflict().find("is a SQLite database, not a JSON-lines file"), std::string::npos) << conflict();
  // Anything else is the sink's to deal with: a start after a power cut must not be refused.
  std::ofstream(*config_.jsonl_path, std::ios::binary) << std::string(8, '\0') << "{\"event\":{}}\n";
  EXPECT_EQ(conflict(), "");
  std::ofstream(*config_.jsonl_path) << "{\"event\":{}}\n{\"torn";
  EXPECT_EQ(conflict(), "") << "its own file, a torn last line and all";
  std::ofstream(*config_.jsonl_path) << "";
  EXPECT_EQ(conflict(), "") << "an empty file, as logrotate's copytruncate leaves it";
  // Found by an exploratory run: someone else's file lost its last line to the torn-line check,
  // and an old one was renamed and compressed by the rotation at start.
  std::ofstream(*config_.jsonl_path) << "line one\nsecond line without newline";
  EXPECT_NE(conflict().find("is not a JSON-lines file"), std::string::npos) << conflict();
  std::ofstream(*config_.jsonl_path) << "Nov 24 00:00:01 gw1 syslog line\n";
  EXPECT_NE(conflict().find("is not a JSON-lines file"), std::string::npos) << conflict();
  // Zeros and then the middle of a line: a power cut on a file system of small blocks (a review).
  std::ofstream(*config_.jsonl_path, std::ios::binary) << std::string(1024, '\0') << "\"port\":443}}\n{\"event\":{}}\n";
  EXPECT_EQ(conflict(), "");
  // Zeros and then something else: a binary file such as lastlog (a second review).
  std::ofstream(*config_.jsonl_path, std::ios::binary) << std::string(1024, '\0') << "\x01\x02tty1\nroot\x00x\n";
  EXPECT_NE(conflict().find("is not a JSON-lines file"), std::string::npos) << conflict();
}

TEST_F(OutputPathsTest, AStatsPathHoldingSomethingElseIsRefused) {
  config_.stats_file = "/dev/null";  // replaced by a regular file every 5 s, when run as root
  EXPECT_NE(conflict().find("is not a regular file"), std::string::npos) << conflict();
  config_.stats_file = dir_ / "ctauditd.prom";
  std::ofstream(*config_.stats_file) << "important notes\n";
  EXPECT_NE(conflict().find("is not a ctauditd stats file"), std::string::npos) << conflict();
  std::ofstream(*config_.stats_file) << "# HELP ctauditd_start_time_seconds When this run started.\n";
  EXPECT_EQ(conflict(), "");
}

// Found by running the daemon so: SQLite opened the FIFO or the device and said "disk I/O error".
TEST_F(OutputPathsTest, ADatabasePathThatIsNoRegularFileIsRefused) {
  config_.db_path = "/dev/null";
  EXPECT_NE(conflict().find("--db /dev/null is a character device, not a database file"), std::string::npos)
      << conflict();
  ASSERT_EQ(::mkfifo((dir_ / "fifo.db").c_str(), 0600), 0);
  config_.db_path = dir_ / "fifo.db";
  EXPECT_NE(conflict().find("is a FIFO, not a database file"), std::string::npos) << conflict();
  config_.db_path = dir_.path();
  EXPECT_NE(conflict().find("is a directory, not a database file; give --db the path of a file, e.g. " +
                            (dir_ / "flows.db").string()),
            std::string::npos)
      << conflict();
  std::filesystem::create_symlink(dir_ / "real.db", dir_ / "link.db");
  std::ofstream(dir_ / "real.db") << "";
  config_.db_path = dir_ / "link.db";  // a link to a file is a file
  EXPECT_EQ(conflict(), "");
}

TEST_F(OutputPathsTest, AJsonLinesPathThatIsADirectoryIsRefusedButAFifoIsNot) {
  config_.jsonl_path = dir_.path();
  EXPECT_NE(conflict().find("is a directory; give --jsonl the path of a file, e.g. " + (dir_ / "flows.jsonl").string()),
            std::string::npos)
      << conflict();
  ASSERT_EQ(::mkfifo((dir_ / "to-shipper").c_str(), 0600), 0);
  config_.jsonl_path = dir_ / "to-shipper";  // a SIEM shipper's pipe
  EXPECT_EQ(conflict(), "");
  config_.jsonl_path = "/dev/null";
  EXPECT_EQ(conflict(), "");
}

// --check-config says every one at once (a review found it said the first, one run at a time).
TEST_F(OutputPathsTest, EveryProblemIsListedOnceAndAStartRefusesTheFirst) {
  std::filesystem::create_directories(dir_ / "db-dir");
  config_.db_path = dir_ / "db-dir";
  config_.jsonl_path = dir_.path();
  config_.stats_file = dir_ / "x.prom";
  std::ofstream(*config_.stats_file) << "notes\n";
  const auto problems = outputPathProblems(config_);
  ASSERT_EQ(problems.size(), 3U);
  EXPECT_NE(problems[0].find("--db " + (dir_ / "db-dir").string() + " is a directory"), std::string::npos);
  EXPECT_NE(problems[1].find("--jsonl " + dir_.path().string() + " is a directory"), std::string::npos);
  EXPECT_NE(problems[2].find("is not a ctauditd stats file"), std::string::npos);
  EXPECT_EQ(conflict(), problems[0]);

  SetUp();
  config_.jsonl_path = config_.db_path;
  EXPECT_EQ(outputPathProblems(config_).size(), 1U) << "one pair of settings, said once";
}

}  // namespace
}  // namespace ctaudit::daemon
