// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_handles.hpp"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "storage/read_only_db.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::storage {
namespace {

// A file whose one row says which file it is.
void writeNamedDatabase(const std::filesystem::path& path, const std::string& name) {
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr), SQLITE_OK);
  const SqliteDb db(raw);
  ASSERT_TRUE(execute(db.get(), "CREATE TABLE which (name TEXT); INSERT INTO which VALUES ('" + name + "')"));
}

std::string whichDatabase(sqlite3* db) {
  const auto name = queryText(db, "SELECT name FROM which");
  return name ? *name : "error: " + name.error().detail;
}

TEST(SqliteFileNameTest, ANameThatLooksLikeAUriStillOpensThatFile) {
  EXPECT_EQ(sqliteFileName("file:a.db"), "./file:a.db");
  EXPECT_EQ(sqliteFileName("/var/lib/ctaudit/flows.db"), "/var/lib/ctaudit/flows.db");
  EXPECT_EQ(sqliteFileName("flows.db"), "flows.db");
  EXPECT_EQ(sqliteFileName("./file:a.db"), "./file:a.db");

  const testing::TempDir dir;
  writeNamedDatabase(dir / "a.db", "a.db");
  writeNamedDatabase(dir / "file:a.db", "file:a.db");
  // The hazard is a relative name, so the lookups run in `dir`: in a child process, whose working
  // directory is its own.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const auto in_child = [&dir] {
    std::error_code ec;
    std::filesystem::current_path(dir.path(), ec);
    if (ec) {
      return 1;
    }
    // SQLite takes the name as a URI for another file when asked to (Debian's always does).
    sqlite3* raw = nullptr;
    if (sqlite3_open_v2("file:a.db", &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, nullptr) != SQLITE_OK) {
      return 2;
    }
    const SqliteDb as_uri(raw);
    if (whichDatabase(as_uri.get()) != "a.db") {
      return 3;
    }
    auto db = openReadOnly("file:a.db");
    if (!db) {
      return 4;
    }
    return whichDatabase(db->get()) == "file:a.db" ? 0 : 5;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
}

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
