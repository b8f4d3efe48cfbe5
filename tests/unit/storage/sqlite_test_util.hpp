// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <sqlite3.h>

#include <filesystem>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "storage/sqlite_handles.hpp"

// Helpers for storage tests that look at a database behind the code under test's back.
namespace ctaudit::storage::testing {

// A plain read-write connection, as a person at the sqlite3 shell would have.
inline SqliteDb openRaw(const std::filesystem::path& path) {
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
  SqliteDb db(raw);
  EXPECT_EQ(rc, SQLITE_OK) << path;
  sqlite3_busy_timeout(db.get(), 1000);
  return db;
}

// The first column of the first row as text ("" for NULL or no row); a failing statement fails the
// test.
inline std::string scalar(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
    return {};
  }
  const SqliteStmt stmt(raw);
  const int rc = sqlite3_step(stmt.get());
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
    ADD_FAILURE() << sql << ": " << sqlite3_errmsg(db);
  }
  if (rc != SQLITE_ROW || sqlite3_column_type(stmt.get(), 0) == SQLITE_NULL) {
    return {};
  }
  return reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0));  // NOLINT: SQLite text is unsigned char
}

// Runs `sql` on the database at `path` through a connection of its own, as a person at the sqlite3
// shell would; a failing statement fails the test.
inline void execute(const std::filesystem::path& path, const std::string& sql) {
  const SqliteDb db = openRaw(path);
  ASSERT_EQ(sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sql << ": "
                                                                                       << sqlite3_errmsg(db.get());
}

inline std::int64_t count(sqlite3* db, const std::string& sql) {
  const std::string text = scalar(db, sql);
  return text.empty() ? -1 : std::stoll(text);
}

// The `detail` lines of EXPLAIN QUERY PLAN, one per line.
inline std::string queryPlan(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  const std::string explain = "EXPLAIN QUERY PLAN " + sql;
  if (sqlite3_prepare_v2(db, explain.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << explain << ": " << sqlite3_errmsg(db);
    return {};
  }
  const SqliteStmt stmt(raw);
  std::string plan;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    plan += reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 3));  // NOLINT: as above
    plan += '\n';
  }
  return plan;
}

inline std::shared_ptr<spdlog::logger> nullLogger() {
  return std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace ctaudit::storage::testing
