// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_sink.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "ctaudit_version.hpp"
#include "flow/unique_c.hpp"
#include "storage/flow_key_map.hpp"
#include "storage/flow_merge.hpp"
#include "storage/flow_row.hpp"
#include "storage/schema.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// How long BEGIN IMMEDIATE waits for another writer before the batch is answered with Retry. The
// daemon is the only regular writer; another one is a person at the sqlite3 shell or a retention
// job. Waiting stalls the daemon's single thread, and with it the netlink socket, so the wait is
// short: the Batcher retries the same batch on its next tick anyway.
constexpr int kWriterBusyTimeoutMs = 250;

// Rows per INSERT statement when a batch has that many to insert. SQLite opens a cursor on the
// table and on each of its six indexes, and evaluates the partial indexes' WHERE, once per
// statement: 32 rows a statement saves most of that (bench/flowdb_gen/sink_bench under
// callgrind) and binds 544 parameters, far below SQLite's limit of 32766.
constexpr std::size_t kInsertRows = 32;

// Rows per UPDATE statement when a batch closes that many open rows with the same columns changed
// (update-group mask), for the same reason: one UPDATE … FROM (VALUES …) opens its cursors once
// for all of them. A row's UPDATE took 1.26–1.32 µs alone and 0.91–0.95 µs 32 to a statement in a
// standalone test on this schema (docs/benchmarks.md, "Closing rows 32 to a statement").
constexpr std::size_t kUpdateRows = 32;
constexpr int kMinSqliteVersion = 3'033'000;  // UPDATE … FROM

// The writer connection's page cache, in KiB (see open()).
constexpr int kWriterCacheKiB = 64 * 1024;

// WAL pages after which a commit also checkpoints (copies the pages into the database file and
// syncs it). SQLite's default of 1,000 pages (4 MiB) is less than one batch at 10k events/s, so
// every batch was checkpointed, and the pages every batch changes again (the leaves of the newest
// bucket of flows_nat_src and flows_orig_src, the table's last pages) were copied once a second.
// With 40 MiB they are copied once for several batches: -4% of the daemon's CPU at 20k events/s,
// -2.5% at 100k (bench/cpu_ab.sh). The -wal file grows to about this plus one batch.
constexpr int kCheckpointPages = 10000;

// An open row goes into flows_open_nat and flows_open_src once it has been open this long
// (docs/schema.md, "Open rows"). Those indexes are keyed by address, so each entry lands on its own
// leaf somewhere in them, and a flow that had one cost two inserts and two deletes all over both:
// with 100k flows open, 40 % of the sink's CPU (sink_bench --live 100000). Most flows end within
// minutes and now never touch them; until then a lookup finds the row as it finds any recent one.
// Longer means fewer entries, but a start-up after a crash reads the rows of this period to find
// their open ones (forEachOpenRow).
constexpr std::chrono::minutes kOpenIndexAfter{5};
// How often the sink looks for rows that have been open that long: each look walks the map of
// open rows.
constexpr std::chrono::seconds kOpenIndexEvery{10};

// Columns an event can change, split by the indexes they feed, so that an update rewrites an
// index entry only when that entry's value changes (SQLite rewrites the entries of every index
// that has a column named in the SET list, in its key or in its WHERE). The flow key (ct_id, zone,
// original tuple) is never updated; the protocol and the zone, parts of the key, share a column
// with values that change (packed, zone_mark), which no index holds.
// `counters` is in the main group: the write that closes a row sets it without its open padding
// (flow_row.hpp, kOpenCountersBytes), so the space comes back in the same statement.
constexpr std::array kMainColumns{
    FlowColumn::NatDst, FlowColumn::Packed, FlowColumn::ZoneMark, FlowColumn::Icmp, FlowColumn::Reply,
    FlowColumn::Counters,
};
// flows_long_*, and the row's span; dur_ms is relative to start_ms, so both move.
constexpr std::array kStartColumns{FlowColumn::StartMs, FlowColumn::DurMs};
// flows_open_* and flows_long_* (their WHERE): the common DESTROY that ends a flow whose start is
// settled. flows_nat_src and flows_orig_src hold no time and stay as they are.
constexpr std::array kEndColumns{FlowColumn::DurMs};
constexpr std::array kNatSourceColumns{FlowColumn::NatSrc};  // flows_nat_src, flows_open_nat, flows_long_nat
constexpr std::array kKeyColumns{FlowColumn::CtId, FlowColumn::OrigSrc, FlowColumn::OrigDst};
static_assert(kMainColumns.size() + kStartColumns.size() + kNatSourceColumns.size() + kKeyColumns.size() ==
                  kFlowColumnCount,
              "every column is either part of the key or in exactly one update group");

// The update groups as bits of a mask; kStartGroup carries the end (dur_ms) too.
constexpr unsigned kMainGroup = 1;
constexpr unsigned kEndGroup = 2;
constexpr unsigned kStartGroup = 4;
constexpr unsigned kNatSourceGroup = 8;
constexpr std::size_t kUpdateMasks = 16;

// The columns an UPDATE for `mask` sets, in a fixed order; no allocation.
struct UpdateColumns {
  std::array<FlowColumn, kFlowColumnCount> columns{};
  std::size_t size{0};
  void add(std::span<const FlowColumn> group) noexcept {
    for (const FlowColumn column : group) {
      columns.at(size++) = column;
    }
  }
  [[nodiscard]] std::span<const FlowColumn> view() const noexcept { return {columns.data(), size}; }
};

UpdateColumns updateColumns(unsigned mask) noexcept {
  UpdateColumns set;
  if ((mask & kMainGroup) != 0) {
    set.add(kMainColumns);
  }
  if ((mask & kStartGroup) != 0) {
    set.add(kStartColumns);
  } else if ((mask & kEndGroup) != 0) {
    set.add(kEndColumns);
  }
  if ((mask & kNatSourceGroup) != 0) {
    set.add(kNatSourceColumns);
  }
  return set;
}

// The part of a record that identifies its open row, as the row stores it: the key columns hold
// the ICMP id in the port columns (FlowTuple::sourceKey/destinationKey) and the original ICMP type
// and code in `icmp`, so two records that the database cannot tell apart get the same key here.
FlowKey storedKey(const FlowRecord& record) noexcept {
  FlowKey key = record.key();
  key.original.src_port = record.original.sourceKey();
  key.original.dst_port = record.original.destinationKey();
  key.original.icmp_id = 0;
  return key;
}

bool isTransient(int rc) noexcept { return (rc & 0xFF) == SQLITE_BUSY || (rc & 0xFF) == SQLITE_LOCKED; }

// The result codes that say the database cannot be written at all, whatever the records: the
// Batcher then keeps the whole batch instead of looking for a bad record in it. Anything else
// (a constraint, a value too big) is about a record.
bool isSinkWide(int rc) noexcept {
  switch (rc & 0xFF) {
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
    case SQLITE_NOMEM:
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
    case SQLITE_PERM:
    case SQLITE_NOLFS:
      return true;
    default:
      return false;
  }
}

// Why one record could not be written: the SQLite result code decides Retry, Failed or Rejected.
struct WriteFailure {
  int rc;
  std::string detail;
};

Unexpected ioError(const std::filesystem::path& path, std::string_view what, int err) {
  return fail(Errc::Io, std::string(what) + " " + path.string() + ": " + std::generic_category().message(err), err);
}

constexpr std::string_view kInsertGapSql =
    "INSERT INTO gaps (reason, start_ns, end_ns, lost_records, overruns, sink) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
constexpr std::string_view kUpdateAliveSql = "UPDATE runs SET alive_ns = ?1 WHERE id = ?2";
constexpr std::string_view kLastRunSql = "SELECT started_ns, alive_ns, stopped_ns FROM runs ORDER BY id DESC LIMIT 1";
constexpr std::string_view kInsertRunSql =
    "INSERT INTO runs (started_ns, alive_ns, stopped_ns, version, observer_hostname) VALUES (?1, ?1, NULL, ?2, ?3)";
constexpr std::string_view kEndRunSql = "UPDATE runs SET alive_ns = ?2, stopped_ns = ?2 WHERE id = ?1";
constexpr std::string_view kDeleteRunSql = "DELETE FROM runs WHERE id = ?1";

// Counts are unsigned in GapRecord and signed 64-bit in SQLite; no real count comes near 2^63, and
// the value round-trips through the cast either way.
constexpr std::int64_t toStored(std::uint64_t value) noexcept { return static_cast<std::int64_t>(value); }

int bindText(sqlite3_stmt* stmt, int param, std::string_view text) noexcept {
  return sqlite3_bind_text(stmt, param, text.data(), static_cast<int>(text.size()), kSqliteStatic);
}

// The statements of the per-flow path (the open-row read, the inserts, the updates, data_version)
// bind every parameter before each step, so they keep their bindings at reset:
// sqlite3_clear_bindings after each of them only rewrote every parameter to NULL, which the next
// use overwrites anyway: 1.3 % of the folded path's instructions (bench/flowdb_gen/sink_bench under
// callgrind). Blobs stay bound by pointer (SQLITE_STATIC) to a row that may be gone after the
// step; SQLite reads a bound value only when the statement is stepped, and every step is preceded
// by binding all parameters again.
constexpr auto kKeepBindings = StatementReset::Bindings::Keep;

// An exclusive flock(2) on the database file (which sqlite3_open_v2 has created). flock and
// SQLite's POSIX record locks do not interact on Linux; readers (ctaudit) take no flock and are
// not affected.
Result<UniqueFd> lockForWriting(const std::filesystem::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    const int err = errno;
    return fail(Errc::Io, "cannot open " + path.string() + " to lock it: " + std::strerror(err), err);
  }
  while (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    const int err = errno;
    if (err == EINTR) {
      continue;
    }
    if (err == EWOULDBLOCK) {
      return fail(Errc::Io,
                  path.string() + " is being written by another process (another ctauditd?): stop it first "
                                  "(systemctl stop ctauditd), or give this one another --db; two daemons on one "
                                  "file would store every flow twice",
                  err);
    }
    return fail(Errc::Io, "cannot lock " + path.string() + ": " + std::strerror(err), err);
  }
  return fd;
}

}  // namespace

struct SqliteSink::Impl {
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

template <class Body, class What>
SinkStatus SqliteSink::Impl::inTransaction(const Body& body, const What& what, Heartbeat heartbeat) noexcept {
  // A transaction without the heartbeat (a gap) says nothing about the records that wait for a
  // retry, so only one with it changes last_write_failed.
  const bool with_heartbeat = heartbeat == Heartbeat::With;
  if (with_heartbeat) {
    last_write_failed = true;  // until the commit below succeeds
  }
  bool committed = false;
  open_rows_undo.clear();
  // Declared before the transaction, so it runs after ~Transaction has rolled back.
  class UndoUnlessCommitted {
  public:
    UndoUnlessCommitted(Impl* self, const bool& committed) noexcept : self_(self), committed_(committed) {}
    UndoUnlessCommitted(const UndoUnlessCommitted&) = delete;
    UndoUnlessCommitted(UndoUnlessCommitted&&) = delete;
    UndoUnlessCommitted& operator=(const UndoUnlessCommitted&) = delete;
    UndoUnlessCommitted& operator=(UndoUnlessCommitted&&) = delete;
    ~UndoUnlessCommitted() {
      if (!committed_) {
        self_->undoOpenRows();
        self_->forgetHeldRows();  // rows updated by the rolled-back transaction hold its values
        self_->spans->rollback();
      } else {
        self_->spans->commit();
        self_->committedOpenIndex();
      }
      self_->open_rows_undo.clear();
    }

  private:
    Impl* self_;
    const bool& committed_;
  };
  const UndoUnlessCommitted undo(this, committed);
  batch_newest = Timestamp{};
  batch_next_id = 0;
  batch_open_index_from = open_index_from;
  try {
    Transaction tx(db.get());
    if (!tx.begun()) {
      return report({tx.beginResult(), sqliteError(db.get(), "BEGIN IMMEDIATE")}, what());
    }
    if (auto failed = body()) {
      return report(*failed, what());  // ~Transaction rolls everything back
    }
    if (spans->finish() != SQLITE_OK) {
      return report(failure("cannot write a span"), what());
    }
    if (with_heartbeat) {
      if (auto failed = writeHeartbeat()) {
        return report(*failed, what());
      }
    }
    if (tx.commit() != SQLITE_OK) {
      return report(failure("COMMIT"), what());
    }
    committed = true;
    run_wrote = run_wrote || run_id.has_value();
    if (with_heartbeat) {
      stored_alive = pending_alive;
      last_write_failed = false;
    }
  } catch (const std::exception& e) {
    // The transaction has been rolled back by unwinding.
    log->error("{}: {} dropped: {}", path.string(), what(), e.what());
    return SinkStatus::Rejected;
  }
  if (logged_failure != SQLITE_OK) {
    log->info("{}: writing flows again", path.string());
    logged_failure = SQLITE_OK;
  }
  return SinkStatus::Ok;
}

std::optional<WriteFailure> SqliteSink::Impl::insertGap(const GapRecord& gap) const {
  sqlite3_stmt* stmt = insert_gap.get();
  const StatementReset reset(stmt);
  if (bindText(stmt, 1, gapReasonName(gap.reason)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 2, toUnixNanos(gap.start)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 3, toUnixNanos(gap.end)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 4, toStored(gap.lost_records)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 5, toStored(gap.overruns)) != SQLITE_OK ||
      (gap.sink.empty() ? sqlite3_bind_null(stmt, 6) : bindText(stmt, 6, gap.sink)) != SQLITE_OK) {
    return failure("cannot bind a gap");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return failure("cannot insert a gap");
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::writeHeartbeat() const {
  if (!heartbeatPending()) {
    return std::nullopt;
  }
  sqlite3_stmt* stmt = update_alive.get();
  const StatementReset reset(stmt);
  if (sqlite3_bind_int64(stmt, 1, toUnixNanos(pending_alive)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 2, *run_id) != SQLITE_OK) {
    return failure("cannot bind the heartbeat");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return failure("cannot write the heartbeat");
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::update(sqlite3_stmt* stmt, std::span<const FlowColumn> columns,
                                                     const FlowRow& row, std::int64_t id) const {
  const StatementReset reset(stmt, kKeepBindings);
  const int id_param = static_cast<int>(columns.size()) + 1;
  if (bindColumns(stmt, 1, row, columns) != SQLITE_OK || sqlite3_bind_int64(stmt, id_param, id) != SQLITE_OK) {
    return failure("cannot bind an update");
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return failure("cannot update a flow");
  }
  return std::nullopt;
}

void SqliteSink::Impl::setOpenRow(const FlowKey& key, std::optional<std::int64_t> id, const FlowRow* row) {
  // One search of the map either way: it is cold between batches, and each search misses the
  // cache on its tags, its slot and its node (flow_key_map.hpp).
  if (id) {
    const auto [found, added] = open_rows.try_emplace(key);
    open_rows_undo.emplace_back(key, added ? std::nullopt : std::optional{found->second.id});
    OpenRow& entry = found->second;
    entry.id = *id;
    entry.generation = 0;
    if (row != nullptr) {
      holdRow(entry, *row);
    }
    return;
  }
  const auto found = open_rows.find(key);
  open_rows_undo.emplace_back(key, found == open_rows.end() ? std::nullopt : std::optional{found->second.id});
  if (found != open_rows.end()) {
    open_rows.erase(found);
  }
}

void SqliteSink::Impl::undoOpenRows() noexcept {
  // Restoring an entry the transaction erased allocates its node again; as everywhere on the hot
  // path, running out of memory ends the process (std::terminate through noexcept).
  for (auto entry = open_rows_undo.rbegin(); entry != open_rows_undo.rend(); ++entry) {
    if (entry->second) {
      open_rows.insert_or_assign(entry->first, OpenRow{*entry->second, 0, {}});
    } else {
      open_rows.erase(entry->first);
    }
  }
}

Result<void> SqliteSink::Impl::forEachOpenRow(std::string_view skipped,
                                               const std::function<void(std::int64_t, const FlowRow&, StoredFlow&&)>& visit,
                                               const std::function<void(std::int64_t)>& skipped_id) {
  // In id order, so that of two open rows of one key (a database written before the open-row map,
  // or by hand) the newest is visited last, as the lookup by key did ("ORDER BY id DESC LIMIT 1").
  // The open rows in flows_open_* through one of them, and the rows from open_index_from on, which
  // may be open without being in them: at most kOpenIndexAfter and a pass's worth of rows, read
  // in rowid order.
  auto select = prepare(db.get(), openRowsSql());
  if (!select) {
    return Unexpected{select.error()};
  }
  if (sqlite3_bind_int64(select->get(), 1, open_index_from) != SQLITE_OK) {
    return sqliteFailure(db.get(), path.string() + ": cannot read the open flows");
  }
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(select->get())) == SQLITE_ROW) {
    const auto id = sqlite3_column_int64(select->get(), 0);
    auto row = readRow(select->get(), 1);
    auto flow = row ? decodeFlow(*row) : Result<StoredFlow>{Unexpected{row.error()}};
    if (!flow) {
      log->warn("{}: open flow row id {} does not decode; {}: {}", path.string(), id, skipped, flow.error().detail);
      if (skipped_id) {
        skipped_id(id);
      }
      continue;
    }
    visit(id, *row, std::move(*flow));
  }
  if (rc != SQLITE_DONE) {
    return sqliteFailure(db.get(), path.string() + ": cannot read the open flows");
  }
  return {};
}

Result<void> SqliteSink::Impl::loadOpenRows() {
  open_rows.clear();
  std::vector<std::int64_t> unmapped;
  auto loaded = forEachOpenRow(
      "the next event of its flow opens a new row",
      [&](std::int64_t id, const FlowRow& row, StoredFlow&& flow) {
        const auto [found, added] = open_rows.try_emplace(storedKey(flow.record));
        if (!added) {
          unmapped.push_back(found->second.id);  // the newer row of the key takes the entry
        }
        found->second.id = id;
        holdRow(found->second, row);
      },
      [&](std::int64_t id) { unmapped.push_back(id); });
  if (!loaded) {
    return loaded;
  }
  if (auto failed = indexUnmappedOpenRows(unmapped)) {
    return fail(Errc::Storage, path.string() + ": " + failed->detail);
  }
  return {};
}

std::optional<WriteFailure> SqliteSink::Impl::readOpenRow(const FlowKey& key, std::int64_t id,
                                                          std::optional<FlowRow>& row) {
  // A point read by rowid. `dur_ms IS NULL` guards against another writer (a person at the sqlite3
  // shell) having closed or deleted the row: the flow then has no open row, as the lookup by key
  // would have found.
  const StatementReset reset(read_open, kKeepBindings);
  if (sqlite3_bind_int64(read_open.get(), 1, id) != SQLITE_OK) {
    return failure("cannot bind the open-flow read");
  }
  const int rc = sqlite3_step(read_open.get());
  if (rc == SQLITE_DONE) {
    setOpenRow(key, std::nullopt);
    row.reset();
    return std::nullopt;
  }
  if (rc != SQLITE_ROW) {
    return failure("cannot read the open flow");
  }
  auto read = readRow(read_open.get(), 0);
  if (!read) {
    return WriteFailure{SQLITE_CORRUPT, "open flow row id " + std::to_string(id) + ": " + read.error().detail};
  }
  row = *read;
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::mergeInto(FoldedFlow& folded, const FlowRow& as_stored,
                                                        const FlowRecord& record) {
  auto stored = decodeFlow(as_stored);
  if (!stored) {
    const std::string which = folded.row_id ? "open flow row id " + std::to_string(*folded.row_id)
                                            : "a flow of conntrack id " + std::to_string(record.ct_id);
    return WriteFailure{SQLITE_CORRUPT, which + ": " + stored.error().detail};
  }
  folded.flow = mergeEvent(*stored, record);
  if (folded.flow.record.end && folded.row_id) {
    setOpenRow(folded.key, std::nullopt);  // the database's row is no longer open
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::fold(const FlowRecord& record) {
  const FlowKey key = storedKey(record);
  if (const auto found = batch_open.find(key); found != batch_open.end()) {
    // An event of a flow this batch already holds: merged into it as the database would have merged
    // it, from what the row would read back as (the encoding is not lossless for every record).
    FoldedFlow& folded = batch_flows[found->second];
    if (auto failed = mergeInto(folded, encodeFlow(folded.flow), record)) {
      return failed;
    }
    if (folded.flow.record.end) {
      batch_open.erase(found);  // a later event of this key starts a new flow
    }
    return std::nullopt;
  }

  FoldedFlow folded;
  folded.key = key;
  std::optional<FlowRow> stored_row;
  if (const auto found = open_rows.find(key); found != open_rows.end()) {
    const OpenRow& entry = found->second;
    const std::int64_t id = entry.id;
    if (entry.generation == row_generation) {
      stored_row = unpackRow(entry.row);
    } else if (auto failed = readOpenRow(key, id, stored_row)) {
      return failed;
    }
    if (stored_row) {
      folded.row_id = id;
    }
  }
  if (stored_row) {
    if (auto failed = mergeInto(folded, *stored_row, record)) {
      return failed;
    }
    folded.stored_row = batch_stored_rows.size();
    batch_stored_rows.push_back(std::move(*stored_row));
  } else {
    folded.flow = firstEvent(record);
  }
  if (!folded.flow.record.end) {
    batch_open.emplace(key, batch_flows.size());
  }
  batch_flows.push_back(std::move(folded));
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::insertRows(std::span<const PendingInsert> pending) {
  sqlite3_stmt* stmt = pending.size() == kInsertRows ? insert_many.get() : insert.get();
  const StatementReset reset(stmt, kKeepBindings);
  int param = 1;
  for (std::size_t i = 0; i < pending.size(); ++i) {
    insert_rows[i] = encodeFlow(batch_flows[pending[i].flow].flow);  // bound without copying
    if (bindColumns(stmt, param, insert_rows[i], allFlowColumns()) != SQLITE_OK) {
      return failure("cannot bind an insert");
    }
    param += static_cast<int>(kFlowColumnCount);
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return failure("cannot insert a flow");
  }
  // One statement's rows get consecutive ids, the last one reported.
  const std::int64_t first_id = sqlite3_last_insert_rowid(db.get()) - static_cast<std::int64_t>(pending.size()) + 1;
  batch_next_id = first_id + static_cast<std::int64_t>(pending.size());
  if (first_id < batch_open_index_from) {
    // Ids are reused once expiry has deleted the newest rows (retention.cpp): every open row below
    // open_index_from must be in flows_open_*, so it comes down to the new rows.
    if (auto moved = setOpenIndexFrom(db.get(), first_id); !moved) {
      return WriteFailure{sqlite3_extended_errcode(db.get()), moved.error().detail};
    }
    batch_open_index_from = first_id;
  }
  for (std::size_t i = 0; i < pending.size(); ++i) {
    const std::int64_t id = first_id + static_cast<std::int64_t>(i);
    if (spans->add(id, pending[i].start_ms) != SQLITE_OK) {
      return failure("cannot write a span");
    }
    const FoldedFlow& folded = batch_flows[pending[i].flow];
    if (!folded.flow.record.end) {
      setOpenRow(folded.key, id, &insert_rows[i]);
    }
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::updateFolded(const FoldedFlow& folded, const FlowRow& row) {
  const FlowRow& stored_row = batch_stored_rows[folded.stored_row];
  const auto changed = [&](std::span<const FlowColumn> columns) {
    for (const FlowColumn column : columns) {
      const auto i = static_cast<std::size_t>(column);
      if (row.at(i) != stored_row.at(i)) {
        return true;
      }
    }
    return false;
  };
  // The start group carries the end too (dur_ms is relative to the start); when the start stays,
  // only dur_ms moves. One UPDATE per flow, naming only the groups that changed: each statement
  // rewrites the row once, and an index only when one of its columns is in the SET list.
  unsigned mask = 0;
  mask |= changed(kMainColumns) ? kMainGroup : 0U;
  const bool start_moved = changed(std::span<const FlowColumn>(kStartColumns).first(1));
  if (start_moved) {
    mask |= kStartGroup;
  } else if (changed(kEndColumns)) {
    mask |= kEndGroup;
  }
  mask |= changed(kNatSourceColumns) ? kNatSourceGroup : 0U;
  if (mask == 0) {
    return std::nullopt;  // the events brought nothing new (e.g. a repeated UPDATE)
  }
  if (auto failed = queueUpdate(mask, row, *folded.row_id)) {
    return failed;
  }
  if (!folded.flow.record.end) {
    // Still open: the entry is this row's (mergeInto removes it only for an end).
    if (const auto found = open_rows.find(folded.key); found != open_rows.end() && found->second.id == *folded.row_id) {
      holdRow(found->second, row);
    }
  }
  // The span the row was inserted under no longer holds its start.
  if (start_moved && spans->moved(*folded.row_id, storedStartMillis(folded.flow)) != SQLITE_OK) {
    return failure("cannot write a span");
  }
  return std::nullopt;
}

Result<sqlite3_stmt*> SqliteSink::Impl::updateStatement(unsigned mask, bool many) {
  SqliteStmt& stmt = (many ? updates_many : updates).at(mask);
  if (!stmt) {
    const UpdateColumns columns = updateColumns(mask);
    const std::string sql = many ? flowUpdateManySql(columns.view(), kUpdateRows) : flowUpdateSql(columns.view());
    auto prepared = prepare(db.get(), sql, SQLITE_PREPARE_PERSISTENT);
    if (!prepared) {
      return Unexpected{prepared.error()};
    }
    stmt = std::move(*prepared);
  }
  return stmt.get();
}

std::optional<WriteFailure> SqliteSink::Impl::queueUpdate(unsigned mask, const FlowRow& row, std::int64_t id) {
  auto& pending = pending_updates.at(mask);
  if (!pending) {
    pending = std::make_unique<PendingUpdates>();
  }
  pending->rows.at(pending->size) = row;
  pending->ids.at(pending->size) = id;
  if (++pending->size < kUpdateRows) {
    return std::nullopt;
  }
  return runUpdates(mask);
}

std::optional<WriteFailure> SqliteSink::Impl::runUpdates(unsigned mask) {
  PendingUpdates* pending = pending_updates.at(mask).get();
  if (pending == nullptr || pending->size == 0) {
    return std::nullopt;
  }
  const std::size_t rows = std::exchange(pending->size, 0);
  const UpdateColumns columns = updateColumns(mask);
  const auto stmt = updateStatement(mask, rows == kUpdateRows);
  if (!stmt) {
    return WriteFailure{SQLITE_ERROR, stmt.error().detail};
  }
  if (rows < kUpdateRows) {
    for (std::size_t i = 0; i < rows; ++i) {
      if (auto failed = update(*stmt, columns.view(), pending->rows.at(i), pending->ids.at(i))) {
        return failed;
      }
    }
    return std::nullopt;
  }
  const StatementReset reset(*stmt, kKeepBindings);
  int param = 1;
  for (std::size_t i = 0; i < rows; ++i) {
    if (sqlite3_bind_int64(*stmt, param, pending->ids.at(i)) != SQLITE_OK ||
        bindColumns(*stmt, param + 1, pending->rows.at(i), columns.view()) != SQLITE_OK) {
      return failure("cannot bind an update");
    }
    param += static_cast<int>(columns.size) + 1;
  }
  if (sqlite3_step(*stmt) != SQLITE_DONE) {
    return failure("cannot update flows");
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::checkDataVersion() {
  // Read inside the batch's write transaction: no other connection can commit until it ends, so
  // the rows held are good for the whole batch when the version has not moved.
  const StatementReset reset(data_version_stmt, kKeepBindings);
  if (sqlite3_step(data_version_stmt.get()) != SQLITE_ROW) {
    return failure("PRAGMA data_version");
  }
  const std::int64_t version = sqlite3_column_int64(data_version_stmt.get(), 0);
  if (version != data_version) {
    data_version = version;
    forgetHeldRows();  // another connection committed: it may have changed any open row
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::writeBatch(std::span<const FlowRecord> batch) {
  // Cleared here, not after the batch: a failure returns half-way, and the next batch must not
  // find its leftovers. The vectors keep their capacity and batch_open its nodes' pool, so a
  // steady stream of batches allocates only batch_open's slot array, which clear() gives back
  // once it is large: reserved at once for the whole batch rather than grown by rehashing.
  batch_flows.clear();
  batch_stored_rows.clear();
  batch_open.clear();
  batch_open.reserve(batch.size());
  batch_inserts.clear();
  for (const auto& pending : pending_updates) {
    if (pending) {
      pending->size = 0;
    }
  }
  if (auto failed = checkDataVersion()) {
    return failed;
  }
  for (const FlowRecord& record : batch) {
    if (auto failed = fold(record)) {
      return failed;
    }
    batch_newest = std::max(batch_newest, record.event_time);
  }
  if (stamp_first_entry && !written_at.empty()) {
    written_at.front().first = batch_newest;
    stamp_first_entry = false;
  }
  for (std::size_t i = 0; i < batch_flows.size(); ++i) {
    const FoldedFlow& folded = batch_flows[i];
    if (folded.row_id) {
      if (auto failed = updateFolded(folded, encodeFlow(folded.flow))) {
        return failed;
      }
      continue;
    }
    batch_inserts.push_back({storedStartMillis(folded.flow), i});
  }
  for (unsigned mask = 0; mask < kUpdateMasks; ++mask) {
    if (auto failed = runUpdates(mask)) {
      return failed;
    }
  }
  // New rows in start order, so that rowids follow start times and the batch needs one span, or a
  // few when it holds old starts (the start-up dump, a backlog): spans.hpp. Stable, so flows that
  // start in the same millisecond keep the order of their first events.
  // Usually they are in order already (first events arrive in about start order): then the sort,
  // which compares and moves every entry log n times even so, is skipped.
  const auto by_start = [](const PendingInsert& a, const PendingInsert& b) { return a.start_ms < b.start_ms; };
  if (!std::is_sorted(batch_inserts.begin(), batch_inserts.end(), by_start)) {
    std::stable_sort(batch_inserts.begin(), batch_inserts.end(), by_start);
  }
  const std::span<const PendingInsert> inserts(batch_inserts);
  for (std::size_t at = 0; at < inserts.size();) {
    const std::size_t rows = inserts.size() - at >= kInsertRows ? kInsertRows : 1;
    if (auto failed = insertRows(inserts.subspan(at, rows))) {
      return failed;
    }
    at += rows;
  }
  return indexOldOpenRows();
}

std::optional<WriteFailure> SqliteSink::Impl::indexOldOpenRows() {
  // A clock that went back does not hold the passes off until it is past the last one again.
  if (batch_newest >= last_open_index_pass && batch_newest - last_open_index_pass < kOpenIndexEvery) {
    return std::nullopt;
  }
  // From where this batch left it: a reused id may have brought it down (insertRows).
  const std::int64_t index_from = batch_open_index_from;
  std::int64_t index_to = index_from;
  for (const auto& [written, next_id] : written_at) {
    // An entry stamped far after this batch's events (the clock went back, a bogus event time)
    // counts as old enough rather than holding the queue up: adding rows early costs only their
    // entries. Event times that are merely out of order by a little wait as usual.
    const bool far_ahead = written > batch_newest + kOpenIndexAfter;
    if (!far_ahead && batch_newest - written < kOpenIndexAfter) {
      break;
    }
    index_to = std::max(index_to, next_id);
  }
  if (index_to <= index_from) {
    return std::nullopt;
  }
  last_open_index_pass = batch_newest;
  // In a savepoint of its own: the pass is upkeep, and a failure of it (a trigger, a constraint a
  // person added at the shell) must not cost the batch its records. Skipping a pass keeps every
  // open row findable: open_index_from stays where it was.
  if (sqlite3_exec(db.get(), "SAVEPOINT open_index", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return failure("SAVEPOINT");
  }
  auto failed = addToOpenIndexes(index_from, index_to);
  if (!failed) {
    if (sqlite3_exec(db.get(), "RELEASE open_index", nullptr, nullptr, nullptr) != SQLITE_OK) {
      return failure("RELEASE");
    }
    batch_open_index_from = index_to;
    if (open_index_failing) {
      log->info("{}: adding long-open flows to flows_open_* again", path.string());
      open_index_failing = false;
    }
    return std::nullopt;
  }
  if (sqlite3_get_autocommit(db.get()) != 0) {
    return failed;  // SQLite rolled the whole transaction back (full disk, I/O error): the batch fails
  }
  if (sqlite3_exec(db.get(), "ROLLBACK TO open_index; RELEASE open_index", nullptr, nullptr, nullptr) != SQLITE_OK) {
    return failure("ROLLBACK TO");
  }
  if (!open_index_failing) {
    log->warn("{}: cannot add the flows open for {} min to flows_open_*, trying again every {} s; lookups "
              "search those rows by rowid meanwhile: {}",
              path.string(), std::chrono::duration_cast<std::chrono::minutes>(kOpenIndexAfter).count(),
              kOpenIndexEvery.count(), failed->detail);
    open_index_failing = true;
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::addToOpenIndexes(std::int64_t from, std::int64_t to) {
  for (auto& [key, entry] : open_rows) {
    if (entry.id < from || entry.id >= to) {
      continue;
    }
    if (auto failed = indexOpenRow(entry.id)) {
      return failed;
    }
    // The copy lacks the flag now; the next event of the flow reads the row back instead.
    entry.generation = 0;
  }
  if (auto moved = setOpenIndexFrom(db.get(), to); !moved) {
    return WriteFailure{sqlite3_extended_errcode(db.get()), moved.error().detail};
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::indexUnmappedOpenRows(std::span<const std::int64_t> ids) {
  for (const std::int64_t id : ids) {
    if (id < open_index_from) {
      continue;  // in flows_open_* already
    }
    if (auto failed = indexOpenRow(id)) {
      return failed;
    }
  }
  return std::nullopt;
}

std::optional<WriteFailure> SqliteSink::Impl::indexOpenRow(std::int64_t id) {
  const StatementReset reset(index_open_row, kKeepBindings);
  if (sqlite3_bind_int64(index_open_row.get(), 1, id) != SQLITE_OK || sqlite3_step(index_open_row.get()) != SQLITE_DONE) {
    return failure("cannot add an open flow to flows_open_*");
  }
  return std::nullopt;
}

void SqliteSink::Impl::committedOpenIndex() {
  if (batch_open_index_from != open_index_from) {
    open_index_from = batch_open_index_from;
    while (!written_at.empty() && written_at.front().second <= open_index_from) {
      written_at.pop_front();
    }
  }
  if (batch_next_id != 0) {
    written_at.emplace_back(batch_newest, batch_next_id);
  }
}

SinkStatus SqliteSink::Impl::report(const WriteFailure& failure, const std::string& what) {
  const SinkStatus status = isTransient(failure.rc)   ? SinkStatus::Retry
                            : isSinkWide(failure.rc) ? SinkStatus::Failed
                                                     : SinkStatus::Rejected;
  if (failure.rc != logged_failure) {
    logged_failure = failure.rc;
    if (status == SinkStatus::Retry) {
      log->warn("{}: database busy, {} waits for the next try: {}", path.string(), what, failure.detail);
    } else if (status == SinkStatus::Failed) {
      log->error("{}: cannot write flows, every batch is refused until this is fixed: {}", path.string(),
                 failure.detail);
    } else {
      log->warn("{}: {} was refused and rolled back: {}", path.string(), what, failure.detail);
    }
  }
  return status;
}

SqliteSink::SqliteSink(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

SqliteSink::~SqliteSink() = default;

namespace {

// sqlite3_progress_handler's context while an upgrade runs: calls `call` every
// kUpgradeProgressEvery of the statements' work (SQLite calls progress() every
// kUpgradeProgressOps virtual-machine steps, a few milliseconds).
struct UpgradeProgress {
  static constexpr int kUpgradeProgressOps = 100'000;
  const std::function<void()>* call;
  std::chrono::steady_clock::time_point last;

  static int progress(void* context) noexcept {
    auto* self = static_cast<UpgradeProgress*>(context);
    const auto now = std::chrono::steady_clock::now();
    if (now - self->last >= SqliteSink::kUpgradeProgressEvery) {
      self->last = now;
      try {
        (*self->call)();
      } catch (...) {  // NOLINT(bugprone-empty-catch): a report of progress must not stop the upgrade
      }
    }
    return 0;  // go on
  }
};

}  // namespace

Result<std::unique_ptr<SqliteSink>> SqliteSink::open(const std::filesystem::path& path, std::string observer_hostname,
                                                     std::shared_ptr<spdlog::logger> log,
                                                     std::function<void()> while_upgrading) {
  // UPDATE … FROM (the batch's UPDATEs, kUpdateRows to a statement) came with SQLite 3.33.0.
  if (sqlite3_libversion_number() < kMinSqliteVersion) {
    return fail(Errc::Storage, std::string("SQLite ") + sqlite3_libversion() +
                                   " is too old for the flow database: ctauditd needs 3.33.0 or later (Debian 12 "
                                   "has 3.40); install a newer libsqlite3");
  }
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
  impl->observer_hostname = observer_hostname;

  // NOMUTEX (multi-thread mode): one thread uses this connection (see the class comment), so
  // SQLite's lock around every API call only costs: 12% of the write path's instructions
  // (callgrind, bench/flowdb_gen/sink_bench).
  sqlite3* raw = nullptr;
  const int rc = sqlite3_open_v2(sqliteFileName(path).c_str(), &raw,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOMUTEX,
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
  auto locked = lockForWriting(path);
  if (!locked) {
    return Unexpected{locked.error()};
  }
  impl->writer_lock = std::move(*locked);
  sqlite3_busy_timeout(db, kWriterBusyTimeoutMs);
  sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, nullptr);

  // The schema first: on a new file, auto_vacuum must be chosen before anything writes the header,
  // and switching to WAL writes it. An upgrade may rebuild indexes over the whole table: say so
  // before the wait, and report while it runs (docs/operations.md, "Upgrade").
  std::optional<UpgradeProgress> progress;
  const auto on_upgrade = [&](std::int64_t from) {
    impl->log->info("{}: upgrading from schema version {} to {}; this reads the whole table (about 1.3 s per "
                    "million flows) before events are read",
                    path.string(), from, kSchemaVersion);
    if (while_upgrading) {
      while_upgrading();
      progress = UpgradeProgress{&while_upgrading, std::chrono::steady_clock::now()};
      sqlite3_progress_handler(db, UpgradeProgress::kUpgradeProgressOps, &UpgradeProgress::progress, &*progress);
    }
  };
  auto info = applySchema(db, observer_hostname, SystemClock{}.now(), on_upgrade);
  sqlite3_progress_handler(db, 0, nullptr, nullptr);
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
  // The batch's INSERTs and UPDATEs need no statement journal since schema version 6 (OR FAIL,
  // and index expressions without functions: kOrigSrcKeySql), but the open-index pass runs in a
  // savepoint, whose journal holds a copy of each page the pass changes. On disk that journal is
  // a temporary file in /var/tmp: with every INSERT journalled (version 5), 2.4 pwrite(2) calls a
  // flow, 1.8 s of the pipeline thread's 4 s in pwrite at 150k events/s (docs/benchmarks.md "What
  // the kernel did for the daemon"). In memory it is a copy.
  if (auto done = execute(db, "PRAGMA temp_store = MEMORY"); !done) {
    return Unexpected{done.error()};
  }
  // A batch touches an index page for every few flows it inserts (flows_nat_src and flows_orig_src
  // are keyed by address within the newest bucket of rows, so their inserts land all over that
  // bucket's part of the index), and SQLite's default cache of 2 MiB spilled those pages to the WAL
  // in the middle of a batch and read them back: 780 write calls per 1k events at 100k events/s
  // (schema version 3). With 64 MiB they stay until the commit writes each once (150 per 1k;
  // bench/cpu_profile.sh, docs/benchmarks.md "Where the CPU goes").
  if (auto done = execute(db, "PRAGMA cache_size = -" + std::to_string(kWriterCacheKiB)); !done) {
    return Unexpected{done.error()};
  }
  if (auto done = execute(db, "PRAGMA wal_autocheckpoint = " + std::to_string(kCheckpointPages)); !done) {
    return Unexpected{done.error()};
  }
  // Keep flows.db-wal and flows.db-shm when the daemon closes the database. By default the last
  // connection deletes them, and a reader that cannot create them (an analyst in the ctaudit
  // group: the state directory is 0750, not group-writable) then cannot open a WAL database at
  // all: "attempt to write a readonly database". With both files present and group-readable
  // (SQLite gives them the database file's mode, 0640 under the daemon's umask), a read-only
  // connection reads the WAL through a private copy of its index (https://sqlite.org/wal.html,
  // "Read-Only Databases"). A daemon killed with SIGKILL leaves them anyway.
  int persist_wal = 1;
  if (sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist_wal) != SQLITE_OK) {
    impl->log->warn("{}: cannot keep the -wal and -shm files after a stop; users without write access to the "
                    "directory will not be able to read the database while ctauditd is stopped",
                    path.string());
  }
  if (info->observer_hostname != observer_hostname) {
    impl->log->info("{}: observer host name changed from '{}' to '{}'", path.string(), info->observer_hostname,
                    observer_hostname);
  }

  const std::array<std::pair<SqliteStmt*, std::string>, 7> statements{{
      {&impl->index_open_row, indexOpenRowSql()},
      {&impl->read_open, readOpenFlowSql()},
      {&impl->data_version_stmt, "PRAGMA data_version"},
      {&impl->insert, flowInsertSql()},
      {&impl->insert_many, flowInsertSql(kInsertRows)},
      {&impl->insert_gap, std::string(kInsertGapSql)},
      {&impl->update_alive, std::string(kUpdateAliveSql)},
  }};
  for (const auto& [stmt, sql] : statements) {
    auto prepared = prepare(db, sql, SQLITE_PREPARE_PERSISTENT);
    if (!prepared) {
      return Unexpected{prepared.error()};
    }
    *stmt = std::move(*prepared);
  }
  auto spans = SpanWriter::open(db);
  if (!spans) {
    return Unexpected{spans.error()};
  }
  impl->spans.emplace(std::move(*spans));
  // The version before the open rows are loaded: a commit by another connection from here on
  // makes the first batch read them again instead of using what was loaded.
  if (auto checked = impl->checkDataVersion()) {
    return fail(Errc::Storage, path.string() + ": " + checked->detail);
  }
  auto open_index_from = openIndexFrom(db);
  auto last_id = lastFlowId(db);
  if (!open_index_from || !last_id) {
    const auto& error = !open_index_from ? open_index_from.error() : last_id.error();
    return fail(Errc::Storage, path.string() + ": " + error.detail);
  }
  impl->open_index_from = *open_index_from;
  // The rows written before this open that may still be open outside flows_open_*: when they were
  // written is not known, so they count as written at the first batch.
  if (*last_id >= impl->open_index_from) {
    impl->written_at.emplace_back(Timestamp{}, *last_id + 1);
    impl->stamp_first_entry = true;
  }
  if (auto loaded = impl->loadOpenRows(); !loaded) {
    return Unexpected{loaded.error()};
  }
  impl->log->debug("{}: schema version {}, created {}, {} open flows", path.string(), info->schema_version,
                   info->created_at, impl->open_rows.size());
  // make_unique cannot reach the private constructor; the new'd object is owned at once.
  return std::unique_ptr<SqliteSink>(new SqliteSink(std::move(impl)));
}

SinkStatus SqliteSink::doWrite(std::span<const FlowRecord> batch) noexcept {
  if (batch.empty()) {
    return SinkStatus::Ok;
  }
  Impl& self = *impl_;
  return self.inTransaction(
      [&]() -> std::optional<WriteFailure> {
        return self.writeBatch(batch);
      },
      [&] { return "a batch of " + std::to_string(batch.size()) + " flows"; });
}

SinkStatus SqliteSink::writeGap(const GapRecord& gap) noexcept {
  Impl& self = *impl_;
  const auto what = [&] {
    return "a " + std::string(gapReasonName(gap.reason)) + " gap from " + formatRfc3339(gap.start) + " to " +
           formatRfc3339(gap.end);
  };
  if (gap.end < gap.start) {
    // Formatting allocates; as everywhere on the daemon's hot path, running out of memory ends the
    // process (std::terminate through noexcept).
    self.log->warn("{}: {} ends before it starts; not written", self.path.string(), what());
    return SinkStatus::Rejected;
  }
  // Without the heartbeat: the batch written after the gap may fail, and its records then wait for
  // a retry that a heartbeat committed here would claim were written.
  return self.inTransaction([&] { return self.insertGap(gap); }, what, Impl::Heartbeat::Without);
}

SinkStatus SqliteSink::flush() noexcept {
  Impl& self = *impl_;
  if (!self.heartbeatPending() || self.last_write_failed) {
    return SinkStatus::Ok;
  }
  const bool stepped_back = self.pending_alive < self.stored_alive;
  if (!stepped_back && self.pending_alive - self.stored_alive < kHeartbeatInterval) {
    return SinkStatus::Ok;
  }
  return self.inTransaction([] { return std::optional<WriteFailure>{}; }, [] { return std::string("the heartbeat"); });
}

Result<RunHistory> SqliteSink::beginRun(Timestamp now) {
  Impl& self = *impl_;
  sqlite3* db = self.db.get();
  if (self.run_id) {
    return fail(Errc::Storage, "beginRun: a run was already begun on " + self.path.string());
  }
  Transaction tx(db);
  if (!tx.begun()) {
    return sqliteFailure(db, self.path.string() + ": cannot lock the database to record the daemon's start");
  }
  RunHistory history;
  {
    auto last = prepare(db, kLastRunSql);
    if (!last) {
      return Unexpected{last.error()};
    }
    const int rc = sqlite3_step(last->get());
    if (rc == SQLITE_ROW) {
      history.previous_start = fromUnixNanos(sqlite3_column_int64(last->get(), 0));
      history.previous_alive = fromUnixNanos(sqlite3_column_int64(last->get(), 1));
      history.previous_clean = sqlite3_column_type(last->get(), 2) != SQLITE_NULL;
    } else if (rc != SQLITE_DONE) {
      return sqliteFailure(db, self.path.string() + ": cannot read the previous run");
    }
  }
  auto insert = prepare(db, kInsertRunSql);
  if (!insert) {
    return Unexpected{insert.error()};
  }
  if (sqlite3_bind_int64(insert->get(), 1, toUnixNanos(now)) != SQLITE_OK ||
      bindText(insert->get(), 2, kVersion) != SQLITE_OK ||
      bindText(insert->get(), 3, self.observer_hostname) != SQLITE_OK || sqlite3_step(insert->get()) != SQLITE_DONE) {
    return sqliteFailure(db, self.path.string() + ": cannot record the daemon's start");
  }
  const std::int64_t id = sqlite3_last_insert_rowid(db);
  if (tx.commit() != SQLITE_OK) {
    return sqliteFailure(db, self.path.string() + ": cannot commit the daemon's start");
  }
  self.run_id = id;
  self.pending_alive = now;
  self.stored_alive = now;
  return history;
}

void SqliteSink::noteAlive(Timestamp now) noexcept {
  if (impl_->run_id) {
    impl_->pending_alive = now;
  }
}

bool SqliteSink::fileMoved() noexcept {
  int moved = 0;
  return sqlite3_file_control(impl_->db.get(), "main", SQLITE_FCNTL_HAS_MOVED, &moved) == SQLITE_OK && moved != 0;
}

Result<void> SqliteSink::Impl::changeRun(std::string_view sql, std::optional<Timestamp> time,
                                         const std::string& what) {
  sqlite3* raw = db.get();
  Transaction tx(raw);
  if (!tx.begun()) {
    return sqliteFailure(raw, path.string() + ": cannot lock the database to " + what);
  }
  auto statement = prepare(raw, sql);
  if (!statement) {
    return Unexpected{statement.error()};
  }
  if (sqlite3_bind_int64(statement->get(), 1, *run_id) != SQLITE_OK ||
      (time && sqlite3_bind_int64(statement->get(), 2, toUnixNanos(*time)) != SQLITE_OK) ||
      sqlite3_step(statement->get()) != SQLITE_DONE) {
    return sqliteFailure(raw, path.string() + ": cannot " + what);
  }
  if (tx.commit() != SQLITE_OK) {
    return sqliteFailure(raw, path.string() + ": cannot commit, to " + what);
  }
  return {};
}

Result<void> SqliteSink::abandonRun() {
  Impl& self = *impl_;
  if (!self.run_id) {
    return fail(Errc::Storage, "abandonRun: no run is going on " + self.path.string());
  }
  if (self.run_wrote) {
    // Its rows or its daemon_down gap are in the file: the run stays, as one killed at its last
    // heartbeat, or the next start would record the same hole again.
    self.run_id.reset();
    return {};
  }
  if (auto changed = self.changeRun(kDeleteRunSql, std::nullopt, "take back the failed start"); !changed) {
    return changed;
  }
  self.run_id.reset();
  return {};
}

Result<void> SqliteSink::endRun(Timestamp now) {
  Impl& self = *impl_;
  sqlite3* db = self.db.get();
  if (!self.run_id) {
    return fail(Errc::Storage, "endRun: no run is going on " + self.path.string());
  }
  if (auto changed = self.changeRun(kEndRunSql, now, "record the daemon's stop"); !changed) {
    return changed;
  }
  // Leave the flows in the database file and the -wal file empty: it holds up to kCheckpointPages
  // plus a batch while the daemon runs (40-80 MB), which a stopped daemon need not keep, and a
  // copy of flows.db alone is then complete. Best effort: a reader holding a snapshot makes it
  // give up after the busy timeout, and the next start or checkpoint finishes the job.
  if (const int rc = sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
      rc != SQLITE_OK) {
    self.log->info("{}: the -wal file was not emptied at the stop ({}); it is, after the next checkpoint",
                   self.path.string(), sqlite3_errstr(rc));
  }
  self.run_id.reset();
  self.pending_alive = now;
  self.stored_alive = now;
  return {};
}

Result<void> SqliteSink::enableRetention(std::chrono::nanoseconds period) {
  auto expiry = FlowExpiry::open(impl_->db.get(), period);
  if (!expiry) {
    return fail(expiry.error().code, impl_->path.string() + ": " + expiry.error().detail, expiry.error().sys_errno);
  }
  impl_->expiry = std::move(*expiry);
  return {};
}

Result<ExpiryStep> SqliteSink::expire(Timestamp now, std::size_t max_rows) {
  if (!impl_->expiry) {
    return fail(Errc::Config, "expire: retention is not enabled on " + impl_->path.string());
  }
  return impl_->expiry->step(now, max_rows);
}

Result<std::vector<FlowRecord>> SqliteSink::openFlows() {
  std::vector<FlowRecord> records;
  auto walked = impl_->forEachOpenRow("it is left out of the reconciliation",
                                      [&records](std::int64_t, const FlowRow&, StoredFlow&& flow) {
                                        records.push_back(std::move(flow.record));
                                      });
  if (!walked) {
    return Unexpected{walked.error()};
  }
  return records;
}

}  // namespace ctaudit::storage
