// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_handles.hpp"

#include <limits>

namespace ctaudit::storage {

Transaction::Transaction(sqlite3* db) noexcept
    : db_(db), begin_rc_(sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr)) {}

Transaction::~Transaction() {
  // After some errors (SQLITE_FULL, SQLITE_IOERR, SQLITE_NOMEM) SQLite has already rolled the
  // transaction back by itself (https://sqlite.org/lang_transaction.html, "Response To Errors
  // Within A Transaction"); a second ROLLBACK would only fail, so ask whether one is open.
  if (begun() && !committed_ && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
}

int Transaction::commit() noexcept {
  const int rc = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  committed_ = rc == SQLITE_OK;
  return rc;
}

ReadSnapshot::ReadSnapshot(sqlite3* db) noexcept
    : db_(db), begun_(sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr) == SQLITE_OK) {}

ReadSnapshot::~ReadSnapshot() {
  if (begun_ && sqlite3_get_autocommit(db_) == 0) {
    sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr);
  }
}

bool isIoError(int rc) noexcept {
  switch (rc & 0xFF) {
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_PERM:
    case SQLITE_READONLY:
    case SQLITE_NOMEM:
    case SQLITE_FULL:
      return true;
    default:
      return false;
  }
}

std::string sqliteError(sqlite3* db, std::string_view what) {
  std::string text(what);
  text += ": ";
  text += sqlite3_errmsg(db);
  text += " (";
  text += sqlite3_errstr(sqlite3_extended_errcode(db));
  text += ")";
  return text;
}

Unexpected sqliteFailure(sqlite3* db, std::string_view what) {
  const bool io = isIoError(sqlite3_extended_errcode(db));
  return fail(io ? Errc::Io : Errc::Storage, sqliteError(db, what), io ? sqlite3_system_errno(db) : 0);
}

Result<SqliteStmt> prepare(sqlite3* db, std::string_view sql, unsigned prep_flags) {
  if (sql.size() > static_cast<std::size_t>(std::numeric_limits<int>::max())) {
    return fail(Errc::Storage, "SQL statement too long");
  }
  sqlite3_stmt* raw = nullptr;
  const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), prep_flags, &raw, nullptr);
  SqliteStmt stmt(raw);
  if (rc != SQLITE_OK) {
    return sqliteFailure(db, "cannot prepare [" + std::string(sql) + "]");
  }
  if (!stmt) {
    return fail(Errc::Storage, "empty SQL statement [" + std::string(sql) + "]");
  }
  return stmt;
}

Result<void> execute(sqlite3* db, const std::string& sql) {
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
    return sqliteFailure(db, "[" + sql + "] failed");
  }
  return {};
}

Result<std::int64_t> queryInteger(sqlite3* db, const std::string& sql) {
  auto stmt = prepare(db, sql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_ROW) {
    return static_cast<std::int64_t>(sqlite3_column_int64(stmt->get(), 0));
  }
  if (rc == SQLITE_DONE) {
    return fail(Errc::Storage, "[" + sql + "] returned no row");
  }
  return sqliteFailure(db, "[" + sql + "] failed");
}

Result<std::string> queryText(sqlite3* db, const std::string& sql) {
  auto stmt = prepare(db, sql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  const int rc = sqlite3_step(stmt->get());
  if (rc == SQLITE_ROW && sqlite3_column_type(stmt->get(), 0) != SQLITE_NULL) {
    // SQLite hands out UTF-8 as unsigned char.
    return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt->get(), 0)));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
  }
  if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
    return fail(Errc::Storage, "[" + sql + "] returned no value");
  }
  return sqliteFailure(db, "[" + sql + "] failed");
}

std::string sqliteFileName(const std::filesystem::path& path) {
  const std::string& name = path.native();
  return name.starts_with("file:") ? "./" + name : name;
}

bool tuneSqliteForThisProcess() noexcept { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0) == SQLITE_OK; }

}  // namespace ctaudit::storage
