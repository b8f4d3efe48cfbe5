// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::storage {

// The owners of SQLite's C handles. sqlite3_close_v2 (not sqlite3_close) so that a connection whose
// statements are still alive becomes a zombie and closes when the last one is finalized, instead of
// failing with SQLITE_BUSY and leaking. Declare a SqliteDb member before the SqliteStmt members
// prepared on it, so that it dies last.
using SqliteDb = UniqueC<sqlite3, sqlite3_close_v2>;
using SqliteStmt = UniqueC<sqlite3_stmt, sqlite3_finalize>;

// sqlite3_bind_blob/text's "the caller keeps the bytes alive until the next step or reset"
// (SQLITE_STATIC). The macro is a C-style cast of 0, which -Wold-style-cast rejects.
inline constexpr sqlite3_destructor_type kSqliteStatic = nullptr;

// A write transaction for the lifetime of a scope. The constructor runs BEGIN IMMEDIATE, which takes
// the database's write lock at once (waiting up to the connection's busy timeout) rather than at
// the first write, so that a busy database shows up here as SQLITE_BUSY and not halfway through a
// batch (https://sqlite.org/lang_transaction.html). Unless commit() succeeds, the destructor rolls
// back. Not copyable or movable; borrows the connection, which must outlive it.
class Transaction {
public:
  explicit Transaction(sqlite3* db) noexcept;
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  Transaction(Transaction&&) = delete;
  Transaction& operator=(Transaction&&) = delete;
  ~Transaction();

  // True when BEGIN succeeded; otherwise beginResult() says why (SQLITE_BUSY: another connection
  // holds the write lock).
  [[nodiscard]] bool begun() const noexcept { return begin_rc_ == SQLITE_OK; }
  [[nodiscard]] int beginResult() const noexcept { return begin_rc_; }

  // Runs COMMIT and returns its result code. Precondition: begun(). On SQLITE_BUSY the transaction
  // is still open and the destructor rolls it back; on SQLITE_OK the destructor does nothing.
  [[nodiscard]] int commit() noexcept;

private:
  sqlite3* db_;
  int begin_rc_;
  bool committed_{false};
};

// A read transaction (BEGIN, deferred) for the life of the object, so that several statements read
// one snapshot of a WAL database: what a writer commits in between is seen by all of them or by
// none. Ended (COMMIT, which for a reader only releases the snapshot) at scope exit.
class ReadSnapshot {
public:
  explicit ReadSnapshot(sqlite3* db) noexcept;
  ReadSnapshot(const ReadSnapshot&) = delete;
  ReadSnapshot& operator=(const ReadSnapshot&) = delete;
  ReadSnapshot(ReadSnapshot&&) = delete;
  ReadSnapshot& operator=(ReadSnapshot&&) = delete;
  ~ReadSnapshot();

  // True when BEGIN succeeded.
  [[nodiscard]] bool begun() const noexcept { return begun_; }

private:
  sqlite3* db_;
  bool begun_;
};

// Resets a statement at scope exit, so that it releases its read snapshot (an un-reset SELECT
// keeps a WAL snapshot, and with it the checkpointer, pinned), and by default clears its bindings
// so that the next use starts clean. Bindings::Keep is for statements that bind every parameter
// before each step: clearing them would only rewrite each to NULL first.
class StatementReset {
public:
  enum class Bindings : std::uint8_t { Clear, Keep };
  explicit StatementReset(sqlite3_stmt* stmt, Bindings bindings = Bindings::Clear) noexcept
      : stmt_(stmt), bindings_(bindings) {}
  explicit StatementReset(const SqliteStmt& stmt, Bindings bindings = Bindings::Clear) noexcept
      : StatementReset(stmt.get(), bindings) {}
  StatementReset(const StatementReset&) = delete;
  StatementReset& operator=(const StatementReset&) = delete;
  StatementReset(StatementReset&&) = delete;
  StatementReset& operator=(StatementReset&&) = delete;
  ~StatementReset() {
    sqlite3_reset(stmt_);
    if (bindings_ == Bindings::Clear) {
      sqlite3_clear_bindings(stmt_);
    }
  }

private:
  sqlite3_stmt* stmt_;
  Bindings bindings_;
};

// True for result codes that come from the file system or the machine rather than from the
// database's content: the file cannot be opened, read or written, or memory ran out.
[[nodiscard]] bool isIoError(int rc) noexcept;

// "what failed: sqlite's message (extended code)" for error details and logs.
[[nodiscard]] std::string sqliteError(sqlite3* db, std::string_view what);

// The Error for the last failed call on `db`: Errc::Io with errno when isIoError(), else
// Errc::Storage; the detail is sqliteError(db, what). Call it before anything else runs on `db`.
[[nodiscard]] Unexpected sqliteFailure(sqlite3* db, std::string_view what);

// Compiles one SQL statement. Pass SQLITE_PREPARE_PERSISTENT in `prep_flags` for a statement that
// is kept and reused for the life of the connection. Errors: as sqliteFailure(), naming the
// statement.
[[nodiscard]] Result<SqliteStmt> prepare(sqlite3* db, std::string_view sql, unsigned prep_flags = 0);

// Runs SQL that returns no rows (pragmas, DDL, BEGIN/COMMIT). Errors: as sqliteFailure().
[[nodiscard]] Result<void> execute(sqlite3* db, const std::string& sql);

// The first column of the first row of `sql` as an integer, e.g. "PRAGMA user_version".
// Errors: as sqliteFailure(); Errc::Storage when the statement returns no row.
[[nodiscard]] Result<std::int64_t> queryInteger(sqlite3* db, const std::string& sql);

// The first column of the first row of `sql` as text, e.g. "PRAGMA journal_mode". Errors:
// as sqliteFailure(); Errc::Storage when the statement returns no row or NULL.
[[nodiscard]] Result<std::string> queryText(sqlite3* db, const std::string& sql);

// The name to give sqlite3_open_v2 for the file at `path`. A SQLite built to accept URI names
// (Debian's is: SQLITE_USE_URI) reads a name that begins with "file:" as a URI, so "file:a.db"
// would open a.db, and "file:a.db?immutable=1" would also change how; "./" in front keeps a
// relative path the file it names. Every other path is passed as it is.
[[nodiscard]] std::string sqliteFileName(const std::filesystem::path& path);

// Process-wide SQLite settings for ctauditd and ctaudit: call it first in main(), before any
// database is opened (sqlite3_config() only works before SQLite initialises itself). It turns off
// SQLite's memory statistics, which take a global mutex around every allocation SQLite makes
// (about 9 mutex pairs per flow the sink writes; 2.8 % of sink_bench's instructions; and threads
// that read side by side, RowPrefetch's, wait on each other for it) for counters that nothing here
// reads. False when SQLite was already initialised, which costs only speed.
bool tuneSqliteForThisProcess() noexcept;

}  // namespace ctaudit::storage
