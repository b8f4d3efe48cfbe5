// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/retention.hpp"
#include "storage/sink.hpp"

namespace ctaudit::storage {

// The name this sink has in `gaps.sink` (a sink_failure gap names the sink that lost records).
// The JSON-lines sink's gaps are stored in the database too, so that it says what the JSON lines
// miss; the database itself has those records.
inline constexpr std::string_view kDatabaseSinkLabel = "sqlite";

// How the daemon run before this one ended, as the `runs` table remembers it (SqliteSink::beginRun).
struct RunHistory {
  std::optional<Timestamp> previous_start;  // nullopt: this is the first run on this database
  std::optional<Timestamp> previous_alive;  // last heartbeat of the previous run
  bool previous_clean{true};                // the previous run stopped through endRun()
  friend bool operator==(const RunHistory&, const RunHistory&) = default;
};

// Writes flows to the SQLite database that `ctaudit` queries: one row per conntrack entry, opened
// by its first event and completed by its DESTROY (docs/schema.md; the folding rules are in
// flow_merge.hpp). Also keeps the log's record of itself: a `gaps` row per window in which records
// were lost (writeGap), and a `runs` row per daemon run with its heartbeat (beginRun, noteAlive,
// endRun), so that the reader can tell "nothing happened" from "nothing was recorded". Owned by the
// daemon's composition root; owns its connection and its prepared statements. Not thread-safe: one
// thread calls every member.
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
  // (e.g. a network file system). Upgrading a file of an older version may take minutes (it
  // rebuilds indexes over the whole table, docs/operations.md "Upgrade"): `while_upgrading`, when
  // set, is called when such an upgrade starts and then every kUpgradeProgressEvery while it runs,
  // so that the caller can tell a service manager that the start is still going on.
  [[nodiscard]] static Result<std::unique_ptr<SqliteSink>> open(const std::filesystem::path& path,
                                                                std::string observer_hostname,
                                                                std::shared_ptr<spdlog::logger> log,
                                                                std::function<void()> while_upgrading = {});
  static constexpr std::chrono::seconds kUpgradeProgressEvery{5};

  ~SqliteSink() override;

  // Inserts one `gaps` row in its own transaction, without the pending heartbeat (the batch
  // written after it may still fail, and a heartbeat would claim its records). Same contract as
  // write(): Retry when the write lock is busy, Failed when the row is refused (a gap that ends
  // before it starts is refused without touching the database). Logged like a batch.
  [[nodiscard]] SinkStatus writeGap(const GapRecord& gap) noexcept override;

  // Every accepted batch is already durable (see the class comment). The only thing flush() may
  // write is a heartbeat that no commit has carried (noteAlive), and only once it is
  // kHeartbeatInterval newer than the stored one, so that an idle gateway costs one small commit
  // every few seconds instead of one per tick; and never while the last write or writeGap failed,
  // since records older than the heartbeat then wait for a retry. Ok, or the status of that commit.
  SinkStatus flush() noexcept override;

  // How stale the stored heartbeat may get before flush() commits it on its own. A killed daemon's
  // run therefore ends in the `runs` table at most this long (plus one flush interval) before it
  // really stopped: the hole the reader derives errs on the side of being too large.
  static constexpr std::chrono::seconds kHeartbeatInterval{5};

  // --- The daemon's runs (table `runs`), so that downtime is on the record. ---
  //
  // Records the start of this run (a `runs` row with started_ns = alive_ns = now, stopped_ns NULL,
  // this build's version and the observer host name) and says how the previous run ended: its start,
  // its last heartbeat, and whether it stopped through endRun(); all in one transaction. Call once,
  // after open() and before the first write. Errors: Errc::Storage when called twice, or when the
  // database is busy or refuses the row; Errc::Io for file-system errors. Nothing is recorded then.
  [[nodiscard]] Result<RunHistory> beginRun(Timestamp now);
  // Heartbeat: remembered and written with the next committed transaction (a batch, a gap, or
  // flush()), no extra fsync per call. The latest call wins, even if its time is earlier (the clock
  // was stepped back). Does nothing before beginRun() or after endRun(). Never fails.
  // The stored heartbeat is where the reader takes the log of a run that did not stop cleanly to
  // end (FlowReader::loggedPeriods): it claims that every record received before `now` is committed
  // once the heartbeat is. So pass a time by which every record received has been handed to
  // write(), and call it before that write(): then the batch's commit carries it, and a batch that
  // fails takes the heartbeat down with it.
  void noteAlive(Timestamp now) noexcept;
  // Marks this run as stopped cleanly: stopped_ns = alive_ns = now, in its own transaction. Call
  // after the last flush at shutdown; later heartbeats are ignored. Errors: Errc::Storage without a
  // run begun (or one already ended), or when the database is busy or refuses the update; Errc::Io
  // for file-system errors. The run then reads as killed at its last heartbeat.
  [[nodiscard]] Result<void> endRun(Timestamp now);
  // For a start that failed after beginRun() (no netlink socket, a --user that cannot write, a
  // failed dump): deletes this run's `runs` row in its own transaction, unless the run has
  // committed anything (then the row stays, as a run killed at its last heartbeat, since its gap
  // is on record). A start that wrote nothing logged nothing, and with its row gone the next start
  // takes the run before it as the previous one, so that its daemon_down gap reaches back to that
  // run's last heartbeat instead of to the failed start. Errors as endRun(); the row then stays.
  [[nodiscard]] Result<void> abandonRun();
  // True when the file this sink writes is no longer the one at its path: deleted, or replaced
  // (SQLITE_FCNTL_HAS_MOVED). What is written then is lost with the old file; the daemon stops so
  // that its next start creates the database again (Daemon::tick).
  [[nodiscard]] bool fileMoved() noexcept;
  // Every flow whose row is still open (no end), as FlowRecords (event New, observed_at_start etc.
  // as stored; what FlowReader::find returns for an open row), in no particular order, for
  // reconciling with the kernel's table after a restart. A row that does not decode is left out
  // and logged with its id: it cannot be closed by a record anyway (write() refuses to merge into
  // it). Errors: Errc::Storage / Errc::Io when the rows cannot be read.
  [[nodiscard]] Result<std::vector<FlowRecord>> openFlows();

  // --- Retention (storage/retention.hpp, docs/operations.md "Retention") ---
  //
  // Lets expire() delete what is older than `period` on this connection. Call once, after open().
  // Errors as FlowExpiry::open.
  [[nodiscard]] Result<void> enableRetention(std::chrono::nanoseconds period);
  // One bounded expiry step (FlowExpiry::step) in its own transaction, on this connection: the
  // caller interleaves it with write() from the same thread, so a step and a batch never contend
  // for SQLite's single write lock. Errors: Errc::Config before enableRetention(); else as
  // FlowExpiry::step (nothing of the step is kept).
  [[nodiscard]] Result<ExpiryStep> expire(Timestamp now, std::size_t max_rows);

private:
  struct Impl;
  explicit SqliteSink(std::unique_ptr<Impl> impl) noexcept;

  // One transaction per batch (BEGIN IMMEDIATE), which also carries the pending heartbeat. Returns
  // Retry when the write lock is busy (another connection writes) and nothing was written; Failed
  // when any record fails, after rolling back the whole batch. A failure is logged once, when it
  // first happens, and its recovery once.
  SinkStatus doWrite(std::span<const FlowRecord> batch) noexcept override;

  std::unique_ptr<Impl> impl_;
};

}  // namespace ctaudit::storage
