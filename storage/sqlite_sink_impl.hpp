// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

// SqliteSink's state, for the files that implement it and no one else: sqlite_sink.cpp (opening
// the file, transactions, runs, gaps), sqlite_sink_batch.cpp (a batch folded per flow into INSERTs
// and UPDATEs) and sqlite_sink_open_rows.cpp (the map of open rows and the open-flow indexes).

#include <array>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <memory_resource>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "flow/unique_c.hpp"
#include "storage/flow_key_map.hpp"
#include "storage/flow_merge.hpp"
#include "storage/flow_row.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_handles.hpp"
#include "storage/sqlite_sink.hpp"

namespace ctaudit::storage {

// Rows per INSERT statement when a batch has that many to insert. SQLite opens a cursor on the
// table and on each of its six indexes, and evaluates the partial indexes' WHERE, once per
// statement: 32 rows a statement saves most of that (bench/flowdb_gen/sink_bench under
// callgrind) and binds 544 parameters, far below SQLite's limit of 32766.
inline constexpr std::size_t kInsertRows = 32;

// Rows per UPDATE statement when a batch closes that many open rows with the same columns changed
// (update-group mask), for the same reason: one UPDATE … FROM (VALUES …) opens its cursors once
// for all of them. A row's UPDATE took 1.26–1.32 µs alone and 0.91–0.95 µs 32 to a statement in a
// standalone test on this schema (docs/benchmarks.md, "Closing rows 32 to a statement").
inline constexpr std::size_t kUpdateRows = 32;

// UPDATE statements are kept by update-group mask (sqlite_sink_batch.cpp): four groups.
inline constexpr std::size_t kUpdateMasks = 16;

// The statements of the per-flow path (the open-row read, the inserts, the updates, data_version)
// bind every parameter before each step, so they keep their bindings at reset:
// sqlite3_clear_bindings after each of them only rewrote every parameter to NULL, which the next
// use overwrites anyway: 1.3 % of the folded path's instructions (bench/flowdb_gen/sink_bench under
// callgrind). Blobs stay bound by pointer (SQLITE_STATIC) to a row that may be gone after the
// step; SQLite reads a bound value only when the statement is stepped, and every step is preceded
// by binding all parameters again.
inline constexpr auto kKeepBindings = StatementReset::Bindings::Keep;

// Why one record could not be written: the SQLite result code decides Retry, Failed or Rejected.
struct WriteFailure {
  int rc;
  std::string detail;
};

struct SqliteSink::Impl {
  // The part of a record that identifies its open row, as the row stores it: the key columns hold
  // the ICMP id in the port columns (FlowTuple::sourceKey/destinationKey) and the original ICMP type
  // and code in `icmp`, so two records that the database cannot tell apart get the same key here.
  static FlowKey storedKey(const FlowRecord& record) noexcept;

  // flock(2) on the database file, so that a second daemon on the same file stops at its start
  // instead of storing every flow twice. Declared before `db`, so closed after it: closing any
  // descriptor of the file drops the process's POSIX locks on it, SQLite's included.
  UniqueFd writer_lock;
  // Declared after writer_lock and before the statements: destroyed after the statements prepared
  // on it, before the lock.
  SqliteDb db;
  SqliteStmt read_open;
  SqliteStmt insert;
  SqliteStmt insert_many;  // kInsertRows rows
  // UPDATE statements by update-group mask, prepared the first time a mask occurs: of one row, and
  // of kUpdateRows rows.
  std::array<SqliteStmt, kUpdateMasks> updates;
  std::array<SqliteStmt, kUpdateMasks> updates_many;
  SqliteStmt insert_gap;
  SqliteStmt update_alive;
  SqliteStmt index_open_row;
  std::shared_ptr<spdlog::logger> log;
  std::filesystem::path path;
  std::string observer_hostname;
  // The result code of the failure last logged, SQLITE_OK when none is outstanding: a full disk
  // fails every batch until it is fixed, and the log says so once, not once per batch.
  int logged_failure{SQLITE_OK};

  // This run's `runs` row, from beginRun() until endRun(); heartbeats are written only meanwhile.
  std::optional<std::int64_t> run_id;
  // A transaction committed since beginRun(): the run has written rows or gaps (abandonRun).
  bool run_wrote{false};
  // The heartbeat as noteAlive() last gave it, and as the database holds it.
  Timestamp pending_alive{};
  Timestamp stored_alive{};
  // The last transaction failed: its records wait in the daemon for a retry (or were dropped, which
  // the daemon records as a gap), so flush() must not commit a heartbeat that claims them.
  bool last_write_failed{false};
  // Retention, once enabled; its statements are prepared on `db`, declared above, so it dies first.
  std::unique_ptr<FlowExpiry> expiry;
  // The spans of the rows this sink inserts (spans.hpp); set by open(), prepared on `db`.
  std::optional<SpanWriter> spans;

  // The id of every open row (dur_ms NULL) by its flow's key, so that an event finds its row
  // without a lookup statement: what the database holds as of the last commit plus the writes of
  // the transaction under way. Loaded from the open rows at open(); an insert of an open row adds
  // its id, the write that closes a row removes it. Retention deletes only closed rows, so it never
  // touches the map. A row that does not decode at open() is left out (logged), as openFlows()
  // leaves it out: a later event of that flow opens a new row.
  //
  // Each entry also holds the row's columns as this connection last wrote or read them (packed,
  // flow_row.hpp), so that the event that closes a flow opened in an earlier batch merges into it
  // without reading it back: the read by rowid was 11 % of that path's instructions (docs/
  // benchmarks.md "SQLite sink instructions, round 2"). The copy is only good while no one else
  // changes the row: `generation` must equal row_generation, which moves on when another connection
  // has committed (PRAGMA data_version, checked in every batch's transaction) and when a
  // transaction of ours is rolled back; a row that does not pack (PackedRow::kCapacity) or whose
  // copy is stale is read from the database as before.
  struct OpenRow {
    std::int64_t id{0};
    std::uint32_t generation{0};
    PackedRow row;  // size 0: not held
  };
  // Nodes from a pool of their own, like FlowTable's: a flow that ends gives back the node a new
  // one takes, so the steady state allocates nothing from malloc.
  std::pmr::unsynchronized_pool_resource open_rows_pool;  // declared first: outlives open_rows
  FlowKeyMap<OpenRow> open_rows{&open_rows_pool};
  std::uint32_t row_generation{1};
  // Makes every held row stale. Generation 0 marks an entry that holds nothing, so it is skipped
  // when the counter wraps.
  void forgetHeldRows() noexcept {
    if (++row_generation == 0) {
      row_generation = 1;
    }
  }
  // PRAGMA data_version as last read (open(), then each batch): another connection's commit changes it.
  SqliteStmt data_version_stmt;
  std::int64_t data_version{0};
  [[nodiscard]] std::optional<WriteFailure> checkDataVersion();
  // Remembers `row` as the current columns of open row `entry` (or forgets them if it does not pack).
  void holdRow(OpenRow& entry, const FlowRow& row) const noexcept {
    entry.generation = packRow(row, entry.row) ? row_generation : 0;
  }
  // How to undo the map changes of the transaction under way, newest last: the key and the id it
  // mapped to before (nullopt: none). Replayed backwards when the transaction does not commit, so
  // that a rolled-back batch (Failed or Retry, then retried or split by the Batcher) leaves the map
  // as the database is; cleared when it commits.
  std::vector<std::pair<FlowKey, std::optional<std::int64_t>>> open_rows_undo;

  // --- Open rows into flows_open_* (kOpenIndexAfter). ---
  //
  // Every open row with an id below open_index_from is in flows_open_* (meta, kOpenIndexFromKey).
  // written_at says when the rows were written: (the newest event time of a committed batch, the
  // first id after its rows), oldest first. A batch whose events are kOpenIndexAfter newer than an
  // entry's adds the open rows before that entry's id to the indexes and moves open_index_from
  // there; the entries it passed are dropped when it commits.
  std::int64_t open_index_from{1};
  std::deque<std::pair<Timestamp, std::int64_t>> written_at;
  // The front entry of written_at stands for the rows written before open(), at a time not known:
  // it takes the first batch's time.
  bool stamp_first_entry{false};
  Timestamp last_open_index_pass{};
  bool open_index_failing{false};  // the last pass failed (logged once, until one succeeds)
  // Of the batch under way: its newest event time, the id after its last row (0: none inserted),
  // and where it moved open_index_from to.
  Timestamp batch_newest{};
  std::int64_t batch_next_id{0};
  std::int64_t batch_open_index_from{1};
  std::optional<WriteFailure> indexOldOpenRows();
  // Puts the open rows of the map with ids in [from, to) into flows_open_* and moves
  // open_index_from to `to`.
  std::optional<WriteFailure> addToOpenIndexes(std::int64_t from, std::int64_t to);
  // Puts open row `id` into flows_open_* (indexOpenRowSql).
  std::optional<WriteFailure> indexOpenRow(std::int64_t id);
  // Open rows that the map does not hold (they do not decode, or an older row of the same key):
  // no pass would find them, so they go into flows_open_* when the sink opens the database.
  std::optional<WriteFailure> indexUnmappedOpenRows(std::span<const std::int64_t> ids);
  // After a commit: what the batch wrote becomes the state above.
  void committedOpenIndex();
  // `row`: the columns the open row `id` now has, to hold (null: not known).
  void setOpenRow(const FlowKey& key, std::optional<std::int64_t> id, const FlowRow* row = nullptr);
  void undoOpenRows() noexcept;
  // Decodes every open row (no end yet), in id order, and hands it to `visit`; a row that does
  // not decode is logged with `skipped` (what happens to it instead) and passed over.
  [[nodiscard]] Result<void> forEachOpenRow(std::string_view skipped,
                                            const std::function<void(std::int64_t, const FlowRow&, StoredFlow&&)>& visit,
                                            const std::function<void(std::int64_t)>& skipped_id = {});
  [[nodiscard]] Result<void> loadOpenRows();

  // --- One batch, folded per flow before SQLite sees it (writeBatch). ---
  //
  // A flow that opens and closes within one batch (most flows at a busy gateway, whose batches
  // span the flush interval) costs one INSERT of the finished row instead of an INSERT and an
  // UPDATE, and a flow with several events in the batch one UPDATE instead of one per event; the
  // database ends up exactly as if every event had been written on its own (a test compares
  // both on random event sequences).
  struct FoldedFlow {
    FlowKey key;
    StoredFlow flow;                    // the flow's row as the batch leaves it
    std::optional<std::int64_t> row_id;  // its open row in the database, if it had one
    std::size_t stored_row{0};           // with a row_id: that row as read, in batch_stored_rows
  };
  std::vector<FoldedFlow> batch_flows;          // in the order of their first event in the batch
  std::vector<FlowRow> batch_stored_rows;       // open rows read from the database
  std::pmr::unsynchronized_pool_resource batch_open_pool;  // each batch reuses the last one's nodes
  FlowKeyMap<std::size_t> batch_open{&batch_open_pool};  // open flows of batch_flows
  std::optional<WriteFailure> writeBatch(std::span<const FlowRecord> batch);
  std::optional<WriteFailure> fold(const FlowRecord& record);
  // `folded` after `record`, merged from `as_stored`: its row as the database holds it or would
  // read it back. When that ends the flow, its database row (if any) is no longer open.
  std::optional<WriteFailure> mergeInto(FoldedFlow& folded, const FlowRow& as_stored, const FlowRecord& record);
  // The flows the batch inserts, in the order to insert them in (by start). Each row is encoded
  // only when its statement is bound, into insert_rows: holding a whole batch's rows encoded cost
  // ~800 bytes a flow, ~100 MB for a full batch.
  struct PendingInsert {
    std::int64_t start_ms;
    std::size_t flow;  // in batch_flows
  };
  std::vector<PendingInsert> batch_inserts;
  std::array<FlowRow, kInsertRows> insert_rows;
  // Inserts 1 or kInsertRows rows in one statement and records their ids and spans.
  std::optional<WriteFailure> insertRows(std::span<const PendingInsert> pending);
  std::optional<WriteFailure> updateFolded(const FoldedFlow& folded, const FlowRow& row);
  // The batch's UPDATEs waiting for their statement, by update-group mask. Their blobs are bound
  // by pointer, so the rows stay here until the statement has run. Allocated for a mask when it
  // first occurs (a FlowRow is ~600 bytes).
  struct PendingUpdates {
    std::array<FlowRow, kUpdateRows> rows;
    std::array<std::int64_t, kUpdateRows> ids{};
    std::size_t size{0};
  };
  std::array<std::unique_ptr<PendingUpdates>, kUpdateMasks> pending_updates;
  // Adds the UPDATE of row `id` to `row`'s columns of `mask`; runs the mask's statement once
  // kUpdateRows wait.
  std::optional<WriteFailure> queueUpdate(unsigned mask, const FlowRow& row, std::int64_t id);
  // Runs the UPDATEs waiting for `mask`: kUpdateRows in one statement, fewer one by one.
  std::optional<WriteFailure> runUpdates(unsigned mask);
  // The statement of `mask` for one row or for kUpdateRows rows, prepared on first use.
  Result<sqlite3_stmt*> updateStatement(unsigned mask, bool many);
  // The open row `id` of `key` into `row`; nullopt in `row` (and `key` forgotten) when another
  // writer has closed or deleted it.
  std::optional<WriteFailure> readOpenRow(const FlowKey& key, std::int64_t id, std::optional<FlowRow>& row);
  std::optional<WriteFailure> update(sqlite3_stmt* stmt, std::span<const FlowColumn> columns, const FlowRow& row,
                                     std::int64_t id) const;
  std::optional<WriteFailure> insertGap(const GapRecord& gap) const;
  // Writes the pending heartbeat into the open transaction, if it is not stored yet.
  std::optional<WriteFailure> writeHeartbeat() const;
  // Runs `sql` on this run's `runs` row in a transaction of its own: ?1 is the row's id, ?2 `time`
  // when given. `what` says what it does in the errors ("record the daemon's stop"). Errors as
  // endRun(); the caller has checked that a run is going on.
  [[nodiscard]] Result<void> changeRun(std::string_view sql, std::optional<Timestamp> time, const std::string& what);
  [[nodiscard]] bool heartbeatPending() const noexcept { return run_id && pending_alive != stored_alive; }
  [[nodiscard]] WriteFailure failure(std::string_view what) const {
    return {sqlite3_extended_errcode(db.get()), sqliteError(db.get(), what)};
  }
  // Runs `body` (which writes and returns the failure that stopped it, if any), with the pending
  // heartbeat unless `heartbeat` is Heartbeat::Without, in one BEGIN IMMEDIATE transaction and
  // commits. `what` names the content for the log ("a batch of 12 flows"); it is called only when
  // something is logged. Only allocation can throw in `body`; that is logged and answered with
  // Rejected.
  enum class Heartbeat : std::uint8_t { With, Without };
  template <class Body, class What>
  SinkStatus inTransaction(const Body& body, const What& what, Heartbeat heartbeat = Heartbeat::With) noexcept;
  SinkStatus report(const WriteFailure& failure, const std::string& what);
};

}  // namespace ctaudit::storage
