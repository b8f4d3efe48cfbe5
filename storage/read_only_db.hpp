// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <filesystem>
#include <optional>

#include "flow/result.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {

// How long a reader waits for a lock before SQLITE_BUSY. In WAL mode a reader only waits while
// another connection recovers or restarts the WAL, so this is a rare, short wait; the CLI can
// afford it.
inline constexpr std::chrono::milliseconds kReaderBusyTimeout{5000};

// Opens an existing database for reading only: SQLITE_OPEN_READONLY (never creates the file), a
// busy timeout, defensive mode with an untrusted schema (the file may come from anywhere), and an
// authorizer that allows SELECT and reads, the read-only pragmas user_version and application_id,
// and transactions, and denies everything else: ATTACH (which could create files elsewhere), every
// write, every DDL statement, every other pragma. A denied statement fails to prepare with
// SQLITE_AUTH. The schema is not checked here.
// Errors: Errc::Io when the file is missing, a directory or not a regular file, or cannot be
// opened; the detail names the path and sys_errno carries errno when known.
// `busy_timeout` is a parameter for tests and for RowPrefetch, which never waits. `cache_pages`
// sets the connection's page cache (PRAGMA cache_size) before the authorizer is installed; that
// reads the file's header and schema at once, so a file that is not a database, or cannot be
// read, is then an error here already (as sqliteFailure() classifies it).
[[nodiscard]] Result<SqliteDb> openReadOnly(const std::filesystem::path& path,
                                            std::chrono::milliseconds busy_timeout = kReaderBusyTimeout,
                                            std::optional<int> cache_pages = std::nullopt);

}  // namespace ctaudit::storage
