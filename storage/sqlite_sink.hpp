// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/sink.hpp"

namespace ctaudit::storage {

struct RunHistory {                         // storage/sqlite_sink.hpp
  std::optional<Timestamp> previous_start;  // nullopt: first run on this database
  std::optional<Timestamp> previous_alive;  // last heartbeat of the previous run
  bool previous_clean{true};                // the previous run stopped through endRun()
};

// Writes flows to the SQLite database that `ctaudit` queries: one row per conntrack entry, opened
// by its first event and completed by its DESTROY (docs/schema.md; the folding rules are in
// flow_merge.hpp). Owned by the daemon's composition root; owns its connection and its prepared
// statements. Not thread-safe: one thread calls write() and flush().
//
// Durability: every batch is one transaction, and the connection runs in WAL mode with
// synchronous=FULL, so a commit returns only after the WAL is fsynced. A record accepted by write()
// is therefore durable when write() returns; with the daemon committing once per flush interval
// that is the guarantee "a record is durable within one flush interval". WAL also lets `ctaudit`
// read while the daemon writes (https://sqlite.org/wal.html).
class SqliteSink final : public FlowSink {
public:
  // Opens or creates the database at `path`, creating missing parent directories, applies the
  // schema (schema.hpp) and prepares every statement once. `observer_hostname` is recorded in the
  // meta table (updated when the machine was renamed). `log` is the "sqlite" logger; must not be
  // null. Errors: Errc::Io when the directory or file cannot be created or opened; Errc::Storage
  // when the file is not a ctaudit database, is of a newer schema version, or refuses WAL mode
  // (e.g. a network file system).
  [[nodiscard]] static Result<std::unique_ptr<SqliteSink>> open(const std::filesystem::path& path,
                                                                std::string observer_hostname,
                                                                std::shared_ptr<spdlog::logger> log);

  ~SqliteSink() override;

  // Every accepted batch is already durable (see the class comment), so there is nothing to do;
  // returns SinkStatus::Ok.
  SinkStatus flush() noexcept override;

  [[nodiscard]] Result<RunHistory> beginRun(Timestamp now);
  void noteAlive(Timestamp now) noexcept;          // heartbeat, written with the next commit/flush
  [[nodiscard]] Result<void> endRun(Timestamp now);
  [[nodiscard]] Result<std::vector<FlowRecord>> openFlows();  // rows still open, as records

private:
  struct Impl;
  explicit SqliteSink(std::unique_ptr<Impl> impl) noexcept;

  // One transaction per batch (BEGIN IMMEDIATE). Returns Retry when the write lock is busy (another
  // connection writes) and nothing was written; Failed when any record fails, after rolling back
  // the whole batch. A failure is logged once, when it first happens, and its recovery once.
  SinkStatus doWrite(std::span<const FlowRecord> batch) noexcept override;

  std::unique_ptr<Impl> impl_;
};

}  // namespace ctaudit::storage
