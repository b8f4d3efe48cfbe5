// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_sink.hpp"

#include <array>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "storage/flow_merge.hpp"
#include "storage/flow_row.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// How long BEGIN IMMEDIATE waits for another writer before the batch is answered with Retry. The
// daemon is the only regular writer; another one is a person at the sqlite3 shell or a retention
// job. Waiting stalls the daemon's single thread, and with it the netlink socket, so the wait is
// short: the Batcher retries the same batch on its next tick anyway.
constexpr int kWriterBusyTimeoutMs = 250;

// Columns an event can change, split by the indexes they feed, so that an update rewrites an
// index entry only when that entry's value changes. The flow key (ct_id, zone, original tuple) is
// never updated.
constexpr std::array kMainColumns{
    FlowColumn::ReplySrc,    FlowColumn::ReplyDst,  FlowColumn::ReplySport,   FlowColumn::ReplyDport,
    FlowColumn::Icmp,        FlowColumn::NatDstIp,  FlowColumn::NatDstPort,   FlowColumn::Status,
    FlowColumn::Mark,        FlowColumn::TcpState,  FlowColumn::EndNs,        FlowColumn::Flags,
    FlowColumn::OrigPackets, FlowColumn::OrigBytes, FlowColumn::ReplyPackets, FlowColumn::ReplyBytes,
};
constexpr std::array kStartColumns{FlowColumn::StartNs};                          // flows_start, _orig_src, _nat_src
constexpr std::array kNatSourceColumns{FlowColumn::NatSrcIp, FlowColumn::NatSrcPort};  // flows_nat_src
constexpr std::array kKeyColumns{FlowColumn::CtId,    FlowColumn::Zone,      FlowColumn::Protocol,
                                 FlowColumn::OrigSrc, FlowColumn::OrigDst,   FlowColumn::OrigSport,
                                 FlowColumn::OrigDport};
static_assert(kMainColumns.size() + kStartColumns.size() + kNatSourceColumns.size() + kKeyColumns.size() ==
                  kFlowColumnCount,
              "every column is either part of the key or in exactly one update group");

bool isTransient(int rc) noexcept { return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED; }

// Why one record could not be written: the SQLite result code decides Retry or Failed.
struct WriteFailure {
  int rc;
  std::string detail;
};

Unexpected ioError(const std::filesystem::path& path, std::string_view what, int err) {
  return fail(Errc::Io, std::string(what) + " " + path.string() + ": " + std::generic_category().message(err), err);
}

}  // namespace

struct SqliteSink::Impl {
  // Declared first so that it is destroyed after the statements prepared on it.
  SqliteDb db;
  SqliteStmt find_open;
  SqliteStmt insert;
  SqliteStmt update_main;
  SqliteStmt update_start;
  SqliteStmt update_nat_source;
  std::shared_ptr<spdlog::logger> log;
  std::filesystem::path path;
  // The result code of the failure last logged, SQLITE_OK when none is outstanding: a full disk
  // fails every batch until it is fixed, and the log says so once, not once per batch.
  int logged_failure{SQLITE_OK};

  std::optional<WriteFailure> write(const FlowRecord& record);
  std::optional<WriteFailure> update(sqlite3_stmt* stmt, std::span<const FlowColumn> columns, const FlowRow& row,
                                     std::int64_t id) const;
  [[nodiscard]] WriteFailure failure(std::string_view what) const {
    return {sqlite3_extended_errcode(db.get()), sqliteError(db.get(), what)};
  }
  SinkStatus report(const WriteFailure& failure, std::size_t batch_size);
};

std::optional<WriteFailure> SqliteSink::Impl::update(sqlite3_stmt* stmt, std::span<const FlowColumn> columns,
                                                     const FlowRow& row, std::int64_t id) const {
  const StatementReset reset(stmt);
  const int id_param = static_cast<int>(columns.size()) + 1;
  if (bindColumns(stmt, 1, row, columns) != SQLITE_OK || sqlite3_bind_int64(stmt, id_param, id) != SQLITE_OK) {
    return failure("cannot bind an update");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return failure("cannot update a flow");
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::write(const FlowRecord& record) {
  const FlowRow key = encodeFlow(StoredFlow{record, {}});
  const auto icmp_key = static_cast<std::int64_t>((unsigned{record.original.icmp_type} << 8U) | record.original.icmp_code);

  std::optional<std::int64_t> open_id;
  FlowRow stored_row{};
  {
    const StatementReset reset(find_open);
    if (bindColumns(find_open.get(), 1, key, kKeyColumns) != SQLITE_OK ||
        sqlite3_bind_int64(find_open.get(), static_cast<int>(kKeyColumns.size()) + 1, icmp_key) != SQLITE_OK) {
      return failure("cannot bind the open-flow lookup");
    }
    const int rc = sqlite3_step(find_open.get());
    if (rc == SQLITE_ROW) {
      open_id = sqlite3_column_int64(find_open.get(), 0);
      auto row = readRow(find_open.get(), 1);
      if (!row) {
        return WriteFailure{SQLITE_CORRUPT, "open flow row id " + std::to_string(*open_id) + ": " + row.error().detail};
      }
      stored_row = *row;
    } else if (rc != SQLITE_DONE) {
      return failure("cannot look up the open flow");
    }
  }

  if (!open_id) {
    const FlowRow row = encodeFlow(firstEvent(record));
    const StatementReset reset(insert);
    if (bindColumns(insert.get(), 1, row, allFlowColumns()) != SQLITE_OK) {
      return failure("cannot bind an insert");
    }
    if (sqlite3_step(insert.get()) != SQLITE_DONE) {
      return failure("cannot insert a flow");
    }
    return std::nullopt;
  }

  auto stored = decodeFlow(stored_row);
  if (!stored) {
    return WriteFailure{SQLITE_CORRUPT, "open flow row id " + std::to_string(*open_id) + ": " + stored.error().detail};
  }
  const FlowRow merged = encodeFlow(mergeEvent(*stored, record));
  const auto changed = [&](std::span<const FlowColumn> columns) {
    for (const FlowColumn column : columns) {
      const auto i = static_cast<std::size_t>(column);
      if (merged.at(i) != stored_row.at(i)) {
        return true;
      }
    }
    return false;
  };
  const std::array<std::pair<sqlite3_stmt*, std::span<const FlowColumn>>, 3> groups{{
      {update_main.get(), kMainColumns},
      {update_start.get(), kStartColumns},
      {update_nat_source.get(), kNatSourceColumns},
  }};
  for (const auto& [stmt, columns] : groups) {
    if (changed(columns)) {
      if (auto failed = update(stmt, columns, merged, *open_id)) {
        return failed;
      }
    }
  }
  return std::nullopt;
}

SinkStatus SqliteSink::Impl::report(const WriteFailure& failure, std::size_t batch_size) {
  const SinkStatus status = isTransient(failure.rc) ? SinkStatus::Retry : SinkStatus::Failed;
  if (failure.rc != logged_failure) {
    logged_failure = failure.rc;
    const int primary = failure.rc & 0xFF;
    if (status == SinkStatus::Retry) {
      log->warn("{}: database busy, a batch of {} flows waits for the next try: {}", path.string(), batch_size,
                failure.detail);
    } else if (primary == SQLITE_FULL || primary == SQLITE_IOERR) {
      log->error("{}: cannot write flows, every batch is refused until this is fixed: {}", path.string(),
                 failure.detail);
    } else {
      log->warn("{}: a batch of {} flows was refused and rolled back: {}", path.string(), batch_size, failure.detail);
    }
  }
  return status;
}

SqliteSink::SqliteSink(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

SqliteSink::~SqliteSink() = default;

Result<std::unique_ptr<SqliteSink>> SqliteSink::open(const std::filesystem::path& path, std::string observer_hostname,
                                                     std::shared_ptr<spdlog::logger> log) {
  if (path.has_parent_path()) {
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (ec) {
      return ioError(path.parent_path(), "cannot create the database directory", ec.value());
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->log = std::move(log);
  impl->path = path;

  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE,
                                 nullptr);
  impl->db.reset(raw);
  if (rc != SQLITE_OK) {
    const int err = impl->db ? sqlite3_system_errno(impl->db.get()) : 0;
    return fail(Errc::Io,
                "cannot open the flow database " + path.string() + ": " +
                    (impl->db ? std::string(sqlite3_errmsg(impl->db.get())) : std::string(sqlite3_errstr(rc))),
                err);
  }
  sqlite3* db = impl->db.get();
  sqlite3_busy_timeout(db, kWriterBusyTimeoutMs);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);

  // The schema first: on a new file, auto_vacuum must be chosen before anything writes the header,
  // and switching to WAL writes it.
  auto info = applySchema(db, observer_hostname, SystemClock{}.now());
  if (!info) {
    return fail(info.error().code, path.string() + ": " + info.error().detail, info.error().sys_errno);
  }

  // journal_mode answers with the mode in effect: a file system without shared memory (NFS and
  // the like) keeps the rollback journal, and the query tool would then block the daemon.
  const auto mode = queryText(db, "PRAGMA journal_mode = WAL");
  if (!mode || *mode != "wal") {
    return fail(Errc::Io, path.string() + ": cannot switch to WAL mode (" +
                              (mode ? "got '" + *mode + "'" : mode.error().detail) +
                              "); keep the database on a local file system");
  }
  if (auto done = execute(db, "PRAGMA synchronous = FULL"); !done) {
    return Unexpected{done.error()};
  }
  if (info->observer_hostname != observer_hostname) {
    impl->log->info("{}: observer host name changed from '{}' to '{}'", path.string(), info->observer_hostname,
                    observer_hostname);
  }

  const std::array<std::pair<SqliteStmt*, std::string>, 5> statements{{
      {&impl->find_open, findOpenFlowSql()},
      {&impl->insert, flowInsertSql()},
      {&impl->update_main, flowUpdateSql(kMainColumns)},
      {&impl->update_start, flowUpdateSql(kStartColumns)},
      {&impl->update_nat_source, flowUpdateSql(kNatSourceColumns)},
  }};
  for (const auto& [stmt, sql] : statements) {
    auto prepared = prepare(db, sql, SQLITE_PREPARE_PERSISTENT);
    if (!prepared) {
      return Unexpected{prepared.error()};
    }
    *stmt = std::move(*prepared);
  }
  impl->log->debug("{}: schema version {}, created {}", path.string(), info->schema_version, info->created_at);
  // make_unique cannot reach the private constructor; the new'd object is owned at once.
  return std::unique_ptr<SqliteSink>(new SqliteSink(std::move(impl)));
}

SinkStatus SqliteSink::doWrite(std::span<const FlowRecord> batch) noexcept {
  if (batch.empty()) {
    return SinkStatus::Ok;
  }
  Impl& self = *impl_;
  try {
    Transaction tx(self.db.get());
    if (!tx.begun()) {
      return self.report({tx.beginResult(), sqliteError(self.db.get(), "BEGIN IMMEDIATE")}, batch.size());
    }
    for (const FlowRecord& record : batch) {
      if (auto failed = self.write(record)) {
        return self.report(*failed, batch.size());  // ~Transaction rolls the whole batch back
      }
    }
    if (tx.commit() != SQLITE_OK) {
      return self.report(self.failure("COMMIT"), batch.size());
    }
  } catch (const std::exception& e) {
    // Only allocation can throw here; the transaction has been rolled back by unwinding.
    self.log->error("{}: batch of {} flows dropped: {}", self.path.string(), batch.size(), e.what());
    return SinkStatus::Failed;
  }
  if (self.logged_failure != SQLITE_OK) {
    self.log->info("{}: writing flows again", self.path.string());
    self.logged_failure = SQLITE_OK;
  }
  return SinkStatus::Ok;
}

SinkStatus SqliteSink::flush() noexcept { return SinkStatus::Ok; }

}  // namespace ctaudit::storage
