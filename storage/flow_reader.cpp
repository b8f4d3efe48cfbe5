// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_reader.hpp"

#include <utility>

#include "storage/flow_query_sql.hpp"
#include "storage/flow_row.hpp"
#include "storage/read_only_db.hpp"
#include "storage/schema.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// Re-labels a failure from the first reads of a freshly opened file: SQLite opens lazily, so an
// unreadable file or one that is not a database only shows when the header is read.
Error classifyOpenError(sqlite3* db, const std::filesystem::path& path, const Error& error) {
  if ((sqlite3_extended_errcode(db) & 0xFF) == SQLITE_NOTADB) {
    return {Errc::Storage, 0, path.string() + " is not a SQLite database, so not a ctaudit flow database"};
  }
  if (error.code == Errc::Io) {
    // A WAL database needs its -shm file: a reader without write access to the directory can only
    // read while the daemon (or a previous reader) has created it.
    return {Errc::Io, error.sys_errno,
            "cannot read " + path.string() + ": " + error.detail +
                " (a WAL database also needs read access to, or a writable directory for, its -wal and -shm files)"};
  }
  return {error.code, error.sys_errno, path.string() + ": " + error.detail};
}

int bindParameter(sqlite3_stmt* stmt, int index, const CompiledQuery::Parameter& value) noexcept {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    return sqlite3_bind_int64(stmt, index, *integer);
  }
  const auto bytes = std::get<IpAddress>(value).bytes();
  return sqlite3_bind_blob(stmt, index, bytes.data(), static_cast<int>(bytes.size()), kSqliteStatic);
}

}  // namespace

// The connection; FlowReader's only resource.
struct FlowReader::Impl {
  SqliteDb db;
};

FlowReader::FlowReader(std::unique_ptr<Impl> impl, std::string observer_hostname)
    : impl_(std::move(impl)), observer_hostname_(std::move(observer_hostname)) {}

FlowReader::~FlowReader() = default;

Result<std::unique_ptr<FlowReader>> FlowReader::open(const std::filesystem::path& path) {
  auto db = openReadOnly(path);
  if (!db) {
    return Unexpected{db.error()};
  }
  auto info = checkSchema(db->get());
  if (!info) {
    return Unexpected{classifyOpenError(db->get(), path, info.error())};
  }
  auto impl = std::make_unique<Impl>(Impl{std::move(*db)});
  // make_unique cannot reach the private constructor; the new'd object is owned at once.
  return std::unique_ptr<FlowReader>(new FlowReader(std::move(impl), std::move(info->observer_hostname)));
}

Result<std::vector<FlowRecord>> FlowReader::find(const FlowQuery& query) {
  sqlite3* db = impl_->db.get();
  const CompiledQuery compiled = compileFlowQuery(query);
  auto stmt = prepare(db, compiled.sql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  for (std::size_t i = 0; i < compiled.parameters.size(); ++i) {
    if (bindParameter(stmt->get(), static_cast<int>(i + 1), compiled.parameters[i]) != SQLITE_OK) {
      return sqliteFailure(db, "cannot bind a query parameter");
    }
  }

  std::vector<FlowRecord> records;
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
    records.push_back(flow->record);
  }
  if (rc != SQLITE_DONE) {
    return sqliteFailure(db, "cannot read flows");
  }
  return records;
}

}  // namespace ctaudit::storage
