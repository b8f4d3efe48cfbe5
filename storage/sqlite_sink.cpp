// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_sink.hpp"

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <functional>
#include <memory>
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
#include "storage/flow_row.hpp"
#include "storage/schema.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_handles.hpp"
#include "storage/sqlite_sink_impl.hpp"

namespace ctaudit::storage {
namespace {

// How long BEGIN IMMEDIATE waits for another writer before the batch is answered with Retry. The
// daemon is the only regular writer; another one is a person at the sqlite3 shell or a retention
// job. Waiting stalls the daemon's single thread, and with it the netlink socket, so the wait is
// short: the Batcher retries the same batch on its next tick anyway.
constexpr int kWriterBusyTimeoutMs = 250;

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

SinkStatus SqliteSink::Impl::report(const WriteFailure& failure, const std::string& what) {
  const SinkStatus status = isTransient(failure.rc)   ? SinkStatus::Retry
                            : isSinkWide(failure.rc) ? SinkStatus::Failed
                                                     : SinkStatus::Rejected;
  if (failure.rc != logged_failure) {
    logged_failure = failure.rc;
    if (status == SinkStatus::Retry) {
      log->warn("{}: database busy, {} waits for the next try: {}", path.string(), what, failure.detail);
    } else if (status == SinkStatus::Failed && (failure.rc & 0xFF) == SQLITE_CORRUPT) {
      // Unlike a full disk, a damaged file does not get better by waiting (an exploratory run found
      // the daemon waiting for ever, saying only "until this is fixed").
      log->error("{}: the database is damaged and will not recover by itself: {}. Stop ctauditd, move the file "
                 "aside with its -wal and -shm, keeping them (sqlite3's .recover may save its flows), and start "
                 "ctauditd again, which begins a new database; until then its records wait in memory (--queue-max) "
                 "and the JSON lines go on (docs/operations.md, \"A damaged database\")",
                 path.string(), failure.detail);
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
    // From version 5 or older an index of every row is sorted anew; from 6 only partial ones of
    // the DNAT'd rows are built, one read of the table each (docs/schema.md, "Versions and migrations").
    impl->log->info("{}: upgrading from schema version {} to {}; this reads the whole table ({}) before events are "
                    "read",
                    path.string(), from, kSchemaVersion,
                    from >= 6 ? "three times, about 0.6 s per million flows in the page cache"
                              : "about 1.3 s per million flows in the page cache");
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
    // The first reads of the table's own pages: damage past the schema shows here.
    const Error error = explainUnusableFile(db, !open_index_from ? open_index_from.error() : last_id.error());
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
