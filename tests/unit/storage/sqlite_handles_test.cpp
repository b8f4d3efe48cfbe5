// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_handles.hpp"

#include <cstdlib>

#include <gtest/gtest.h>

namespace ctaudit::storage {
namespace {

TEST(SqliteProcessTest, TunedFirstSqliteKeepsNoMemoryStatistics) {
  // A fresh process: this one has initialised SQLite in other tests, and sqlite3_config() only
  // works before that.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto in_child = [] {
    if (!tuneSqliteForThisProcess()) {
      return 1;
    }
    sqlite3* raw = nullptr;
    if (sqlite3_open(":memory:", &raw) != SQLITE_OK) {
      return 2;
    }
    const SqliteDb db(raw);
    if (!execute(db.get(), "CREATE TABLE t (x); INSERT INTO t VALUES (randomblob(100000))")) {
      return 3;
    }
    // With the statistics on, SQLite counts the memory it holds for the connection and the blob.
    if (sqlite3_memory_used() != 0) {
      return 4;
    }
    return tuneSqliteForThisProcess() ? 5 : 0;  // too late once SQLite runs
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ctaudit::storage
