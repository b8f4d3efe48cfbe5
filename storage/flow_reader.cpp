// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_reader.hpp"

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <utility>

#include <sys/statvfs.h>
#include <fcntl.h>
#include <unistd.h>

#include "storage/flow_query_sql.hpp"
#include "storage/flow_row.hpp"
#include "storage/read_only_db.hpp"
#include "storage/retention.hpp"
#include "storage/row_prefetch.hpp"
#include "storage/schema.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// The header passed checkFileHeader, so a file SQLite finds malformed is a ctaudit file whose
// pages are not what SQLite wrote: cut short by a full disk or a copy, or changed on disk.
Error damagedFile(sqlite3* db, const std::filesystem::path& path) {
  return {Errc::Storage, 0,
          path.string() + " is damaged (SQLite: " + sqlite3_errmsg(db) +
              "): ctaudit cannot read it; use a copy kept elsewhere, or the JSON-lines files, which may hold the "
              "same flows (docs/operations.md, \"A damaged database\")"};
}

// A read-only connection's SQLITE_FULL: its temporary files, in which SQLite sorts an answer too
// large for its cache, filled their file system. An exploratory run with a small TMPDIR was told
// "database or disk is full", which sends an analyst to the database's disk.
Error temporaryFilesFull(sqlite3* db) {
  // Where SQLite puts them on Unix: the first of these that is set (and that it can write).
  std::string where = "/var/tmp or /tmp (neither SQLITE_TMPDIR nor TMPDIR is set)";
  for (const char* variable : {"SQLITE_TMPDIR", "TMPDIR"}) {
    // NOLINTNEXTLINE(concurrency-mt-unsafe): nothing in ctaudit sets the environment
    if (const char* value = std::getenv(variable); value != nullptr && *value != '\0') {
      where = std::string(variable) + " (" + value + ")";
      break;
    }
  }
  return {Errc::Io, 0,
          std::string("SQLite's temporary files, where it sorts a large answer, filled their file system in ") +
              where + " (SQLite: " + sqlite3_errmsg(db) +
              "): point TMPDIR at a directory with room, or ask for less (a shorter --from/--to, --limit)"};
}

// `error`, from a failed read, as damagedFile() when SQLite found a damaged page (a query can
// reach one that opening the file did not; its error code is still the failed step's), or as
// temporaryFilesFull().
Unexpected relabelDamaged(sqlite3* db, const std::filesystem::path& path, Error error) {
  switch (sqlite3_extended_errcode(db) & 0xFF) {
    case SQLITE_CORRUPT:
      return Unexpected{damagedFile(db, path)};
    case SQLITE_FULL:
      return Unexpected{temporaryFilesFull(db)};
    default:
      return Unexpected{std::move(error)};
  }
}

// A failed read of `what` here: as sqliteFailure(), or damagedFile().
Unexpected readFailure(sqlite3* db, const std::filesystem::path& path, std::string_view what) {
  return relabelDamaged(db, path, sqliteFailure(db, what).error);
}

// Why SQLite could not open `path` for reading although the header check read it, and what to do.
// A WAL database needs its -shm file, which SQLite creates beside it when it is missing, and a
// -journal left by a writer that was killed must be rolled back, which only a writer can do. So
// the directory must be writable when the -shm is missing: the user's permissions are one cause,
// a read-only mount of the evidence is another (an exploratory run found root told to run as
// root), and a hot journal a third.
std::string cannotOpenAdvice(const std::filesystem::path& path) {
  std::error_code ec;
  // SQLite keeps the -shm and -journal beside the file a symbolic link names (readFileHeader).
  std::filesystem::path real = std::filesystem::canonical(path, ec);
  if (ec) {
    real = path;
  }
  const std::string journal = real.string() + "-journal";
  if (std::filesystem::exists(journal, ec)) {
    return journal + " holds an unfinished transaction of a writer that was stopped mid-write, which only a "
                     "writer can roll back and ctaudit never writes: copy " + real.string() + " and " + journal +
           " into a directory DIR of their own, run sqlite3 DIR/" + real.filename().string() +
           " 'PRAGMA quick_check' once, and query the copy";
  }
  const std::filesystem::path directory = real.has_parent_path() ? real.parent_path() : std::filesystem::path{"."};
  if (struct statvfs fs {}; ::statvfs(directory.c_str(), &fs) == 0 && (fs.f_flag & ST_RDONLY) != 0) {
    return "the file system holding it is mounted read-only, and SQLite needs to create its -shm beside it: copy it "
           "with its -wal and -shm (if any) to writable storage and query the copy (cp -a " + real.string() + "* DIR/)";
  }
  if (::geteuid() == 0) {
    return "it and its -wal and -shm files need read access, and its directory write access when they are missing";
  }
  // The daemon keeps the -shm for readers who cannot create it; what removes it is a writer's last
  // close, typically `sqlite3 flows.db` without -readonly on a stopped daemon's file (a helper's
  // walkthrough run found analysts locked out that way and told to join the group they were in).
  const std::string shm = real.string() + "-shm";
  if (!std::filesystem::exists(shm, ec) && ::faccessat(AT_FDCWD, real.c_str(), R_OK, AT_EACCESS) == 0 &&
      ::faccessat(AT_FDCWD, directory.c_str(), W_OK, AT_EACCESS) != 0) {
    return shm + " is missing and this user cannot create it in " + directory.string() +
           ": ctauditd keeps it, but a program that opened the file for writing (sqlite3 without -readonly) "
           "deletes it and the -wal when it closes. Start ctauditd, which makes them again, or query as root; "
           "open the file with sqlite3 -readonly from now on";
  }
  return "it and its -wal and -shm files need read access, and a directory this user can write to when they are "
         "missing; run ctaudit as a member of group ctaudit (adduser USER ctaudit) or as root";
}

// Re-labels a failure from the first reads of a freshly opened file: SQLite opens lazily, so an
// unreadable file or one that is not a database only shows when the header is read.
Error classifyOpenError(sqlite3* db, const std::filesystem::path& path, const Error& error,
                        std::chrono::milliseconds busy_timeout) {
  const std::string file = path.string();
  switch (sqlite3_extended_errcode(db) & 0xFF) {
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
      return damagedFile(db, path);
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return {Errc::Storage, 0,
              file + " stayed locked for " +
                  (busy_timeout % std::chrono::seconds{1} == std::chrono::milliseconds::zero()
                       ? std::to_string(busy_timeout / std::chrono::seconds{1}) + " s"
                       : std::to_string(busy_timeout.count()) + " ms") +
                  ": another program holds it (ctauditd never keeps readers out that long); try again once it "
                  "is done"};
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
      return {Errc::Io, error.sys_errno, "cannot read " + file + " (SQLite: " + sqlite3_errmsg(db) + "): " +
                                             cannotOpenAdvice(path)};
    default: break;
  }
  if (error.code == Errc::Io) {
    return {Errc::Io, error.sys_errno, "cannot read " + file + ": " + error.detail};
  }
  return {error.code, error.sys_errno, file + ": " + error.detail};
}

constexpr std::string_view kGapsSql =
    "SELECT id, reason, start_ns, end_ns, lost_records, overruns, sink FROM gaps"
    " WHERE start_ns <= ?1 AND end_ns >= ?2 ORDER BY start_ns, id";
constexpr std::string_view kRunsSql = "SELECT started_ns, alive_ns, stopped_ns FROM runs ORDER BY started_ns, id";

constexpr std::array kGapReasons{GapReason::KernelOverrun, GapReason::QueueOverflow, GapReason::SinkFailure,
                                 GapReason::DaemonDown, GapReason::MalformedEvent};

std::optional<GapReason> parseGapReason(std::string_view text) noexcept {
  for (const GapReason reason : kGapReasons) {
    if (gapReasonName(reason) == text) {
      return reason;
    }
  }
  return std::nullopt;
}

// SQLite hands out UTF-8 as unsigned char; "" for NULL.
std::string_view columnText(sqlite3_stmt* stmt, int col) noexcept {
  const auto* text = sqlite3_column_text(stmt, col);
  if (text == nullptr) {
    return {};
  }
  return {reinterpret_cast<const char*>(text), static_cast<std::size_t>(sqlite3_column_bytes(stmt, col))};  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

// Prepares (without running) the reader's own statements on gaps and runs and a SELECT of every
// column of flows, spans and meta: a table or column that a person dropped or renamed at the shell
// is found at open, in one line, rather than by a later query as "cannot prepare [thirty lines of
// SQL]: no such column", or, for gaps, not at all (an answer of nobody that cannot say whether
// events were lost).
Result<void> checkReaderTables(sqlite3* db) {
  std::string flows_sql = "SELECT id";
  for (std::size_t i = 0; i < kFlowColumnCount; ++i) {
    flows_sql += ", ";
    flows_sql += columnName(static_cast<FlowColumn>(i));
  }
  flows_sql += " FROM flows";
  const std::array<std::pair<std::string_view, std::string>, 5> statements{{
      {"flows", flows_sql},
      {"spans", "SELECT min_start_ms, max_start_ms, first_id, last_id FROM spans"},
      {"gaps", std::string(kGapsSql)},
      {"runs", std::string(kRunsSql)},
      {"meta", "SELECT key, value FROM meta"},
  }};
  for (const auto& [table, sql] : statements) {
    auto stmt = prepare(db, sql);
    if (stmt) {
      continue;
    }
    // The connection keeps the failed prepare's error; prepare()'s own detail carries the whole SQL.
    const int rc = sqlite3_extended_errcode(db);
    if (isIoError(rc) || (rc & 0xFF) == SQLITE_CORRUPT || (rc & 0xFF) == SQLITE_BUSY) {
      return sqliteFailure(db, "cannot read the schema");  // not the schema's fault: classifyOpenError says what
    }
    return fail(Errc::Storage, "the table '" + std::string(table) + "' is missing or lacks columns of schema version " +
                                   std::to_string(kSchemaVersion) + " (SQLite: " + sqlite3_errmsg(db) +
                                   "): the file was changed after ctauditd wrote it; use a copy kept elsewhere");
  }
  // The partial indexes that queries name with INDEXED BY (flow_query_sql.cpp), where a missing
  // one fails the statement rather than slowing it down.
  auto index = prepare(db, "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = ?1");
  if (!index) {
    return Unexpected{index.error()};
  }
  for (const std::string_view name : flow_index::kIndexedBy) {
    sqlite3_bind_text(index->get(), 1, name.data(), static_cast<int>(name.size()), kSqliteStatic);
    const int rc = sqlite3_step(index->get());
    if (rc != SQLITE_ROW) {
      return sqliteFailure(db, "cannot read the schema");
    }
    const bool present = sqlite3_column_int64(index->get(), 0) > 0;
    sqlite3_reset(index->get());
    if (!present) {
      return fail(Errc::Storage, "the index '" + std::string(name) + "' of schema version " +
                                     std::to_string(kSchemaVersion) +
                                     " is missing: the file was changed after ctauditd wrote it; use a copy kept "
                                     "elsewhere, or create the index again as docs/schema.md gives it");
    }
  }
  return {};
}

// `compiled`, prepared, its parameters bound.
Result<SqliteStmt> prepareCompiled(sqlite3* db, const CompiledQuery& compiled) {
  auto stmt = prepare(db, compiled.sql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  for (std::size_t i = 0; i < compiled.parameters.size(); ++i) {
    if (bindValue(stmt->get(), static_cast<int>(i + 1), compiled.parameters[i]) != SQLITE_OK) {
      return sqliteFailure(db, "cannot bind a query parameter");
    }
  }
  return stmt;
}

// Runs `compiled` and returns the integer of each row's first column, at most `limit` of them.
Result<std::vector<std::int64_t>> readIds(sqlite3* db, const CompiledQuery& compiled, std::size_t limit) {
  auto stmt = prepareCompiled(db, compiled);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  std::vector<std::int64_t> ids;
  int rc = SQLITE_DONE;  // stays so when `limit` is 0
  while (ids.size() < limit && (rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    ids.push_back(sqlite3_column_int64(stmt->get(), 0));
  }
  if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
    return sqliteFailure(db, "cannot read flows");
  }
  return ids;
}

// The rows `query` will read through its key's index, read ahead from other connections while it
// runs (row_prefetch.hpp), into `prefetch` when worth it. The ids come from the index alone, whose
// entries for one key lie together, so reading them first costs the query little even from a cold
// disk.
Result<void> startReadAhead(sqlite3* db, const std::filesystem::path& path, FlowReader::ReadAhead mode,
                            const FlowQuery& query, std::span<const IdRange> started,
                            std::optional<RowPrefetch>& prefetch) {
  const auto id_query = compileKeyIdQuery(query, started);
  if (!id_query) {
    return {};
  }
  auto ids = readIds(db, *id_query, RowPrefetch::kMaxRows);
  if (!ids) {
    return Unexpected{ids.error()};
  }
  if (mode == FlowReader::ReadAhead::Always) {
    prefetch.emplace(path, std::move(*ids), std::chrono::nanoseconds{0});
    prefetch->wait();
    return {};
  }
  if (ids->size() < RowPrefetch::kMinRows) {
    return {};
  }
  const auto cached = RowPrefetch::rowsLookCached(db, *ids);
  if (!cached) {
    return Unexpected{cached.error()};
  }
  if (!*cached) {
    // The rows the probe read are in the page cache now.
    static_assert(RowPrefetch::kStretchRows < RowPrefetch::kMinRows);
    ids->erase(ids->begin(), ids->begin() + static_cast<std::ptrdiff_t>(RowPrefetch::kStretchRows));
    prefetch.emplace(path, std::move(*ids));
  }
  return {};
}

}  // namespace

// The connection, and the path that RowPrefetch opens again.
struct FlowReader::Impl {
  SqliteDb db;
  std::filesystem::path path;
  ReadAhead read_ahead{ReadAhead::WhenCold};
  std::size_t rows_read_ahead{0};
};

FlowReader::FlowReader(std::unique_ptr<Impl> impl, std::string observer_hostname)
    : impl_(std::move(impl)), observer_hostname_(std::move(observer_hostname)) {}

FlowReader::~FlowReader() = default;

Result<std::unique_ptr<FlowReader>> FlowReader::open(const std::filesystem::path& path) {
  return open(path, kReaderBusyTimeout);
}

Result<std::unique_ptr<FlowReader>> FlowReader::open(const std::filesystem::path& path,
                                                     std::chrono::milliseconds busy_timeout) {
  if (auto header = checkFileHeader(path); !header) {
    return fail(header.error().code, path.string() + ": " + header.error().detail);
  }
  auto db = openReadOnly(path, busy_timeout);
  if (!db) {
    return Unexpected{db.error()};
  }
  auto version = checkSchemaVersion(db->get());
  if (!version) {
    return Unexpected{classifyOpenError(db->get(), path, version.error(), busy_timeout)};
  }
  if (auto tables = checkReaderTables(db->get()); !tables) {
    return Unexpected{classifyOpenError(db->get(), path, tables.error(), busy_timeout)};
  }
  auto info = readDatabaseInfo(db->get(), *version);
  if (!info) {
    return Unexpected{classifyOpenError(db->get(), path, info.error(), busy_timeout)};
  }
  auto impl = std::make_unique<Impl>(Impl{std::move(*db), path, ReadAhead::WhenCold, 0});
  // make_unique cannot reach the private constructor; the new'd object is owned at once.
  return std::unique_ptr<FlowReader>(new FlowReader(std::move(impl), std::move(info->observer_hostname)));
}

Result<std::vector<FlowRecord>> FlowReader::find(const FlowQuery& query) {
  std::vector<FlowRecord> records;
  auto read = forEach(query, [&records](const StoredFlow& flow) {
    records.push_back(flow.record);
    return true;
  });
  if (!read) {
    return Unexpected{read.error()};
  }
  return records;
}

Result<void> FlowReader::forEach(const FlowQuery& query, const FlowVisitor& visit) {
  sqlite3* db = impl_->db.get();
  // The spans, meta.open_index_from, the last id and the rows from one snapshot: a row the daemon
  // inserts or adds to flows_open_* meanwhile is then in the ranges or the indexes this query
  // searches, or not yet in the file.
  const ReadSnapshot snapshot(db);
  if (!snapshot.begun()) {
    return sqliteFailure(db, "cannot begin a read transaction");
  }
  std::vector<IdRange> started;
  if (const auto window = recentStartWindow(query)) {
    auto ranges = rowsToSearch(db, window->from_ms, window->to_ms);
    if (!ranges) {
      return relabelDamaged(db, impl_->path, ranges.error());
    }
    started = std::move(*ranges);
  }
  const CompiledQuery compiled = compileFlowQuery(query, started);
  std::optional<RowPrefetch> prefetch;
  if (auto started_ahead = startReadAhead(db, impl_->path, impl_->read_ahead, query, started, prefetch);
      !started_ahead) {
    return relabelDamaged(db, impl_->path, started_ahead.error());
  }
  auto stmt = prepareCompiled(db, compiled);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }

  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    const auto id = sqlite3_column_int64(stmt->get(), 0);
    auto row = readRow(stmt->get(), 1);
    if (!row) {
      return fail(Errc::Storage, "flows row id " + std::to_string(id) + ": " + row.error().detail);
    }
    auto flow = decodeFlow(*row);
    if (!flow) {
      return fail(Errc::Storage, "flows row id " + std::to_string(id) + ": " + flow.error().detail);
    }
    if (!visit(*flow)) {
      rc = SQLITE_DONE;
      break;
    }
  }
  if (rc != SQLITE_DONE) {
    return readFailure(db, impl_->path, "cannot read flows");
  }
  impl_->rows_read_ahead = prefetch ? prefetch->rowsRead() : 0;
  return {};
}

void FlowReader::setReadAhead(ReadAhead mode) noexcept { impl_->read_ahead = mode; }

std::size_t FlowReader::rowsReadAhead() const noexcept { return impl_->rows_read_ahead; }

Result<std::vector<GapRecord>> FlowReader::gaps(Timestamp from, Timestamp to) {
  std::vector<GapRecord> gaps;
  sqlite3* db = impl_->db.get();
  auto stmt = prepare(db, kGapsSql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  if (sqlite3_bind_int64(stmt->get(), 1, toUnixNanos(to)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt->get(), 2, toUnixNanos(from)) != SQLITE_OK) {
    return sqliteFailure(db, "cannot bind the gap window");
  }
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* row = stmt->get();
    const auto id = sqlite3_column_int64(row, 0);
    const std::string_view reason_text = columnText(row, 1);
    const auto reason = parseGapReason(reason_text);
    if (!reason) {
      return fail(Errc::Storage, "gaps row id " + std::to_string(id) + ": unknown reason '" + std::string(reason_text) +
                                     "'");
    }
    // The writer stores counts of 0 or more (each below 2^63); a negative one was written by
    // something else, and its warning would print nonsense.
    const std::int64_t lost = sqlite3_column_int64(row, 4);
    const std::int64_t overruns = sqlite3_column_int64(row, 5);
    if (lost < 0 || overruns < 0) {
      return fail(Errc::Storage, "gaps row id " + std::to_string(id) + ": a negative count (lost_records " +
                                     std::to_string(lost) + ", overruns " + std::to_string(overruns) + ")");
    }
    GapRecord gap;
    gap.reason = *reason;
    gap.start = fromUnixNanos(sqlite3_column_int64(row, 2));
    gap.end = fromUnixNanos(sqlite3_column_int64(row, 3));
    gap.lost_records = static_cast<std::uint64_t>(lost);
    gap.overruns = static_cast<std::uint64_t>(overruns);
    gap.sink = std::string(columnText(row, 6));
    gaps.push_back(std::move(gap));
  }
  if (rc != SQLITE_DONE) {
    return readFailure(db, impl_->path, "cannot read gaps");
  }
  return gaps;
}

Result<std::vector<LoggedPeriod>> FlowReader::loggedPeriods() {
  std::vector<LoggedPeriod> periods;
  sqlite3* db = impl_->db.get();
  auto stmt = prepare(db, kRunsSql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
    sqlite3_stmt* row = stmt->get();
    const bool stopped = sqlite3_column_type(row, 2) != SQLITE_NULL;
    periods.push_back({fromUnixNanos(sqlite3_column_int64(row, 0)),
                       fromUnixNanos(sqlite3_column_int64(row, stopped ? 2 : 1)), stopped});
  }
  if (rc != SQLITE_DONE) {
    return readFailure(db, impl_->path, "cannot read runs");
  }
  return periods;
}

Result<std::optional<RetentionHorizon>> FlowReader::retentionHorizon() {
  return readRetentionHorizon(impl_->db.get());
}

}  // namespace ctaudit::storage
