// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "flow/result.hpp"
#include "flow/time.hpp"

struct sqlite3;

// The database layout that SqliteSink writes and FlowReader reads; docs/schema.md is its reference.
// Internal to storage/.
namespace ctaudit::storage {

// PRAGMA user_version. Raise it with every change to the layout and add the step that upgrades
// the previous version in applySchema (see docs/schema.md, "Versions and migrations").
inline constexpr std::int64_t kSchemaVersion = 7;
// The oldest version that applySchema upgrades in place; older ones are refused.
inline constexpr std::int64_t kOldestUpgradableVersion = 4;

// PRAGMA application_id: marks the file as ctaudit's, so that file(1) and both our sides can tell
// it from any other SQLite database (https://sqlite.org/fileformat.html#application_id). The
// ASCII of "ctau".
inline constexpr std::int64_t kApplicationId = 0x63746175;

// What the `meta` table says about a database.
struct DatabaseInfo {
  std::int64_t schema_version{0};
  std::string observer_hostname;  // as stored before applySchema changed it
  std::string created_at;         // RFC 3339 UTC
};

// The nine CREATE INDEX statements on `flows` as this version writes them (schema.cpp says what
// each is for). SQLite keeps the text as given, so sqlite_master tells an index of an older
// version from its current form.
[[nodiscard]] std::array<std::string, 9> createIndexSql();

// `error`, from a read of `db` that failed: when SQLite found the file damaged or not a database,
// says so and what to do (move it aside; check the path), instead of SQLite's words alone.
[[nodiscard]] Error explainUnusableFile(sqlite3* db, Error error);

// For the writer: creates the schema in an empty database, or checks an existing one and
// records `observer_hostname` in `meta` when it changed (the machine was renamed). Refuses a
// database of a newer schema version, or one that is not empty and not ctaudit's, so that the
// daemon never writes into a file it does not understand. Runs in its own transaction, so a
// second process creating the same file at the same time is safe. Errors: Errc::Storage.
// `on_upgrade`, when set, is called with the file's version just before an upgrade in place
// starts (docs/schema.md, "Versions and migrations"), which may rebuild indexes for minutes.
[[nodiscard]] Result<DatabaseInfo> applySchema(sqlite3* db, std::string_view observer_hostname, Timestamp now,
                                               const std::function<void(std::int64_t from)>& on_upgrade = {});

// The `meta` key whose value (a rowid, in decimal) is the first row that may be open without being
// in flows_open_nat and flows_open_src (flows_open_dnat too with DNAT): every open row below it is in them. SqliteSink moves it on
// as it adds the rows that stayed open to those indexes (docs/schema.md, "Open rows").
inline constexpr std::string_view kOpenIndexFromKey = "open_index_from";
// Its value in `db`. Errors: Errc::Storage when it is missing or not a positive number.
[[nodiscard]] Result<std::int64_t> openIndexFrom(sqlite3* db);
// Sets it, in the caller's transaction. Errors: Errc::Storage.
[[nodiscard]] Result<void> setOpenIndexFrom(sqlite3* db, std::int64_t first_id);
// The largest id in `flows`, 0 when it is empty: the end of the rows from open_index_from on.
[[nodiscard]] Result<std::int64_t> lastFlowId(sqlite3* db);

// For readers: checks, without writing, that `db` is a ctaudit database of a version this build
// reads, and returns its meta data. Errors: Errc::Storage saying what the file is instead.
[[nodiscard]] Result<DatabaseInfo> checkSchema(sqlite3* db);
// Its two steps, for a reader that checks its tables in between (before it reads meta): the
// file's schema version, checked; then what the meta table says of the file.
[[nodiscard]] Result<std::int64_t> checkSchemaVersion(sqlite3* db);
[[nodiscard]] Result<DatabaseInfo> readDatabaseInfo(sqlite3* db, std::int64_t version);

// For readers, before SQLite opens the file: reads its header (and sqlite_master's page header)
// directly and refuses a file that is empty, not SQLite, or (by application_id and user_version)
// not a ctaudit database this build reads. SQLite creates -wal and -shm files beside a WAL
// database it opens, even read-only; a file refused here is left without them. Passes, leaving the
// verdict to checkSchema, when the file cannot be read here or has a -wal with frames (whose page
// 1 may be newer than the file's, after an upgrade until the next checkpoint).
// Errors: Errc::Storage saying what the file is instead.
[[nodiscard]] Result<void> checkFileHeader(const std::filesystem::path& path);

// Whether the regular file at `path` begins with SQLite's header string ("SQLite format 3\0"),
// read without SQLite and without waiting on a FIFO: for a path that must not be written as
// anything else. False when it is missing, not a regular file, shorter, or cannot be read.
[[nodiscard]] bool beginsWithSqliteHeader(const std::filesystem::path& path);

// The same for ctauditd's --check-config: whether a start would accept the file at `path` as its
// database (a missing, empty or table-less file gets the schema; an older version it can upgrade
// is upgraded, which the returned note says). Errors: Errc::Storage for a file a start refuses.
[[nodiscard]] Result<std::optional<std::string>> checkFileHeaderForWriting(const std::filesystem::path& path);

// The SQL expression that renders the address of the endpoint column `column_sql` (flow_row.hpp:
// an IPv4 INTEGER or an 18-byte IPv6 BLOB) as text: dotted quad, or eight colon-separated
// lower-case hex groups without leading zeros; NULL otherwise. SQLite has no inet_ntop; the
// flows_text view is built from this.
[[nodiscard]] std::string endpointAddressTextSql(std::string_view column_sql);

}  // namespace ctaudit::storage
