// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/read_only_db.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace ctaudit::storage {
namespace {

// sqlite3_set_authorizer callback (https://sqlite.org/c3ref/set_authorizer.html). An allow-list:
// an action SQLite adds in a later version is denied until someone decides otherwise.
int readOnlyAuthorizer(void* /*context*/, int action, const char* arg1, const char* arg2, const char* /*db_name*/,
                       const char* /*trigger_or_view*/) noexcept {
  switch (action) {
    case SQLITE_SELECT:
    case SQLITE_READ:
    case SQLITE_FUNCTION:
    case SQLITE_RECURSIVE:
    case SQLITE_TRANSACTION:
      return SQLITE_OK;
    case SQLITE_PRAGMA: {
      // arg1 is the pragma's name, arg2 its argument: reading a value has none.
      const std::string_view name = arg1 == nullptr ? std::string_view{} : std::string_view{arg1};
      const bool reads = arg2 == nullptr && (name == "user_version" || name == "application_id");
      return reads ? SQLITE_OK : SQLITE_DENY;
    }
    default:
      return SQLITE_DENY;
  }
}

Unexpected openError(const std::filesystem::path& path, std::string_view why, int sys_errno) {
  std::string detail = "cannot open the flow database " + path.string() + ": " + std::string(why);
  if (sys_errno != 0) {
    detail += " (";
    detail += std::strerror(sys_errno);  // NOLINT(concurrency-mt-unsafe): glibc returns static strings for known errno
    detail += ")";
  }
  return fail(Errc::Io, std::move(detail), sys_errno);
}

}  // namespace

Result<SqliteDb> openReadOnly(const std::filesystem::path& path, std::chrono::milliseconds busy_timeout,
                              std::optional<int> cache_pages) {
  // SQLITE_OPEN_READONLY alone never creates a file, but its error is a bare SQLITE_CANTOPEN;
  // asking the file system first gives the operator a message that says what is wrong.
  std::error_code ec;
  const auto status = std::filesystem::status(path, ec);
  if (ec || !std::filesystem::exists(status)) {
    const int err = ec ? ec.value() : ENOENT;
    return openError(path, err == ENOENT ? "no such file (check the database path, or whether ctauditd has run)"
                                         : "cannot stat it",
                     err);
  }
  if (std::filesystem::is_directory(status)) {
    return openError(path, "it is a directory", EISDIR);
  }
  // A FIFO or a device would block or mislead SQLite's open; a database is a regular file.
  if (!std::filesystem::is_regular_file(status)) {
    return openError(path, "it is not a regular file", 0);
  }

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(sqliteFileName(path).c_str(), &raw, SQLITE_OPEN_READONLY | SQLITE_OPEN_EXRESCODE, nullptr);
  SqliteDb db(raw);
  if (rc != SQLITE_OK) {
    const int err = db ? sqlite3_system_errno(db.get()) : 0;
    if (err == EACCES || err == EPERM) {
      return openError(path,
                       "permission denied; it needs read access: run ctaudit as a member of group ctaudit "
                       "(adduser USER ctaudit) or as root",
                       0);
    }
    return openError(path, db ? sqlite3_errmsg(db.get()) : sqlite3_errstr(rc), err);
  }
  sqlite3_busy_timeout(db.get(), static_cast<int>(busy_timeout.count()));
  // A database file is input like any other: do not let its schema run functions with side
  // effects, or let SQL alter the file format (https://sqlite.org/security.html).
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);
  sqlite3_db_config(db.get(), SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, nullptr);
  if (cache_pages) {
    // After the settings above (it reads the schema), before the authorizer (which refuses every
    // pragma that sets something).
    const std::string pragma = "PRAGMA cache_size = " + std::to_string(*cache_pages);
    if (sqlite3_exec(db.get(), pragma.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) {
      return sqliteFailure(db.get(), "cannot set the page cache size");
    }
  }
  if (sqlite3_set_authorizer(db.get(), readOnlyAuthorizer, nullptr) != SQLITE_OK) {
    return fail(Errc::Storage, sqliteError(db.get(), "cannot install the read-only authorizer"));
  }
  return db;
}

}  // namespace ctaudit::storage
