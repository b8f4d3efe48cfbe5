// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/retention.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>

#include "storage/flow_row.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

constexpr std::string_view kHorizonKey = "retention_horizon_ns";
constexpr std::string_view kPeriodKey = "retention_period_ns";
constexpr std::string_view kCursorKey = "retention_cursor_id";

// A row that starts this far after now was dated by a clock running ahead. It must not stop the
// walk until the clock catches up with it, so it is remembered like a long flow instead.
constexpr std::chrono::hours kFutureSlack{24};

// Only the rowid: a remembered row costs a few bytes, and the pass over them walks this table's
// own b-tree in id order.
constexpr std::string_view kCreatePending = "CREATE TABLE IF NOT EXISTS retention_pending (id INTEGER PRIMARY KEY)";

// The walk: the next rows from the cursor, in rowid order (the table's own b-tree, no index).
constexpr std::string_view kWalkSql = "SELECT id, start_ms FROM flows WHERE id >= ?1 ORDER BY id LIMIT ?2";
// Of the rows walked over, remember those that stay (open, or ended at or after the horizon) ...
constexpr std::string_view kKeepSql =
    "INSERT OR IGNORE INTO retention_pending (id) SELECT id FROM flows"
    " WHERE id >= ?1 AND id < ?2 AND (dur_ms IS NULL OR start_ms + dur_ms >= ?3)";
// ... and delete the others.
constexpr std::string_view kDeleteRangeSql = "DELETE FROM flows WHERE id >= ?1 AND id < ?2 AND start_ms + dur_ms < ?3";

// A pass over the remembered rows, in chunks of their ids.
constexpr std::string_view kPendingChunkSql =
    "SELECT max(id), count(*) FROM (SELECT id FROM retention_pending WHERE id > ?1 ORDER BY id LIMIT ?2)";
constexpr std::string_view kDeletePendingFlowsSql =
    "DELETE FROM flows WHERE id IN (SELECT id FROM retention_pending WHERE id > ?1 AND id <= ?2) AND start_ms + dur_ms < ?3";
constexpr std::string_view kForgetPendingSql =
    "DELETE FROM retention_pending WHERE id > ?1 AND id <= ?2"
    " AND NOT EXISTS (SELECT 1 FROM flows WHERE flows.id = retention_pending.id)";

// The oldest spans (spans.hpp) whose rows are all gone: spans are appended in id order, so the
// head of the table is where they go stale. A span a moved start added later may stay behind; it
// costs a few bytes and covers no row.
constexpr std::string_view kDeleteSpansSql =
    "DELETE FROM spans WHERE rowid IN (SELECT rowid FROM spans ORDER BY rowid LIMIT ?1)"
    " AND last_id < (SELECT coalesce(min(id), 0) FROM flows)";

// Gaps that ended before the horizon (end >= start, so the range on gaps_time's start_ns applies).
constexpr std::string_view kDeleteGapsSql =
    "DELETE FROM gaps WHERE id IN (SELECT id FROM gaps WHERE start_ns < ?1 AND end_ns < ?1 LIMIT ?2)";
// Runs whose logged period ended before the horizon; never the newest run (the running daemon's).
constexpr std::string_view kDeleteRunsSql =
    "DELETE FROM runs WHERE id IN (SELECT id FROM runs WHERE coalesce(stopped_ns, alive_ns) < ?1"
    " AND id < (SELECT max(id) FROM runs) LIMIT ?2)";

// The id the next inserted row gets: SQLite gives a new row max(rowid) + 1 (no AUTOINCREMENT), so
// once expiry has deleted the newest rows, new ones reuse ids below the cursor.
constexpr std::string_view kNextIdSql = "SELECT coalesce(max(id), 0) + 1 FROM flows";

constexpr std::string_view kReadMetaSql = "SELECT value FROM meta WHERE key = ?1";
constexpr std::string_view kWriteMetaSql =
    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value";

int bindText(sqlite3_stmt* stmt, int param, std::string_view text) noexcept {
  return sqlite3_bind_text(stmt, param, text.data(), static_cast<int>(text.size()), kSqliteStatic);
}

// An integer meta value, nullopt when the key is absent. Errors: Errc::Storage for a value that is
// not a decimal integer (someone edited the file), naming the key.
Result<std::optional<std::int64_t>> readMetaInteger(sqlite3* db, std::string_view key) {
  auto select = prepare(db, kReadMetaSql);
  if (!select) {
    return Unexpected{select.error()};
  }
  bindText(select->get(), 1, key);
  const int rc = sqlite3_step(select->get());
  if (rc == SQLITE_DONE) {
    return std::optional<std::int64_t>{};
  }
  if (rc != SQLITE_ROW) {
    return sqliteFailure(db, "cannot read meta '" + std::string(key) + "'");
  }
  const auto* raw = sqlite3_column_text(select->get(), 0);
  const std::string text = raw == nullptr ? std::string{} : std::string(reinterpret_cast<const char*>(raw));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): SQLite returns UTF-8 as unsigned char
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    return fail(Errc::Storage, "meta '" + std::string(key) + "' is '" + text + "', not an integer");
  }
  return std::optional<std::int64_t>{value};
}

// Runs a prepared statement with integer parameters and returns sqlite3_changes(), or the failure.
template <std::size_t N>
Result<std::size_t> run(sqlite3* db, const SqliteStmt& stmt, const std::array<std::int64_t, N>& params,
                        std::string_view what) {
  const StatementReset reset(stmt);
  for (std::size_t i = 0; i < N; ++i) {
    if (sqlite3_bind_int64(stmt.get(), static_cast<int>(i + 1), params.at(i)) != SQLITE_OK) {
      return sqliteFailure(db, what);
    }
  }
  if (sqlite3_step(stmt.get()) != SQLITE_DONE) {
    return sqliteFailure(db, what);
  }
  return static_cast<std::size_t>(sqlite3_changes(db));
}

// Sets synchronous=NORMAL for its lifetime and FULL again afterwards. PRAGMA synchronous cannot
// change inside a transaction, so it wraps the step's transaction. In WAL mode NORMAL skips the
// fsync at commit but keeps the database consistent (https://sqlite.org/pragma.html#pragma_synchronous):
// an expiry step that a crash undoes is simply done again, and the writer's next FULL commit
// fsyncs the WAL with the step's frames in it. This keeps expiry from adding an fsync per step
// to the disk that the batch commits wait on.
class RelaxedSync {
public:
  explicit RelaxedSync(sqlite3* db) noexcept : db_(db) {
    sqlite3_exec(db_, "PRAGMA synchronous = NORMAL", nullptr, nullptr, nullptr);
  }
  RelaxedSync(const RelaxedSync&) = delete;
  RelaxedSync& operator=(const RelaxedSync&) = delete;
  RelaxedSync(RelaxedSync&&) = delete;
  RelaxedSync& operator=(RelaxedSync&&) = delete;
  ~RelaxedSync() { sqlite3_exec(db_, "PRAGMA synchronous = FULL", nullptr, nullptr, nullptr); }

private:
  sqlite3* db_;
};

}  // namespace

struct FlowExpiry::Impl {
  sqlite3* db{nullptr};
  SqliteStmt walk;
  SqliteStmt keep;
  SqliteStmt delete_range;
  SqliteStmt pending_chunk;
  SqliteStmt delete_pending_flows;
  SqliteStmt forget_pending;
  SqliteStmt delete_spans;
  SqliteStmt delete_gaps;
  SqliteStmt delete_runs;
  SqliteStmt write_meta;
  SqliteStmt next_id;
  std::chrono::nanoseconds period{};

  std::int64_t cursor{0};
  std::optional<Timestamp> stored_horizon;
  // The pass over retention_pending under way: the last id it has looked at. nullopt: no pass.
  std::optional<std::int64_t> pending_cursor;
  // The horizon at which the last pass began; none yet in this process, so the first step starts
  // one (the remembered rows of an earlier run may have expired meanwhile).
  std::optional<Timestamp> pass_horizon;

  Result<void> writeMeta(std::string_view key, std::int64_t value) const;
  Result<void> walkChunk(Timestamp horizon, Timestamp now, std::size_t max_rows, ExpiryStep& step);
  Result<void> pendingChunk(Timestamp horizon, std::size_t max_rows, ExpiryStep& step);
  Result<void> clampCursor();
};

// Called in the step's transaction after its deletions: if they removed the newest rows, the rows
// inserted next will take ids from max(id) + 1 on, which may be below the cursor, where the walk
// would never see them. Nothing lies between max(id) + 1 and the cursor now, so moving the cursor
// down to it skips nothing.
Result<void> FlowExpiry::Impl::clampCursor() {
  std::int64_t next = 0;
  {
    const StatementReset reset(next_id);
    if (sqlite3_step(next_id.get()) != SQLITE_ROW) {
      return sqliteFailure(db, "cannot read the newest flow id");
    }
    next = sqlite3_column_int64(next_id.get(), 0);
  }
  if (next >= cursor) {
    return {};
  }
  cursor = next;
  return writeMeta(kCursorKey, cursor);
}

Result<void> FlowExpiry::Impl::writeMeta(std::string_view key, std::int64_t value) const {
  const StatementReset reset(write_meta);
  const std::string text = std::to_string(value);
  if (bindText(write_meta.get(), 1, key) != SQLITE_OK || bindText(write_meta.get(), 2, text) != SQLITE_OK ||
      sqlite3_step(write_meta.get()) != SQLITE_DONE) {
    return sqliteFailure(db, "cannot write meta '" + std::string(key) + "'");
  }
  return {};
}

Result<void> FlowExpiry::Impl::walkChunk(Timestamp horizon, Timestamp now, std::size_t max_rows, ExpiryStep& step) {
  // Rows store whole milliseconds, the end rounded up: a row is deleted only when its stored end is
  // before the horizon's millisecond, so never one that ended at or after the horizon.
  const std::int64_t horizon_ms = startMillis(horizon);
  const std::int64_t future_ms = startMillis(now + kFutureSlack);
  std::int64_t end_id = cursor;  // the walk covers [cursor, end_id)
  bool frontier = false;
  std::size_t rows = 0;
  {
    const StatementReset reset(walk);
    sqlite3_bind_int64(walk.get(), 1, cursor);
    sqlite3_bind_int64(walk.get(), 2, static_cast<std::int64_t>(max_rows));
    int rc = SQLITE_OK;
    while ((rc = sqlite3_step(walk.get())) == SQLITE_ROW) {
      const std::int64_t id = sqlite3_column_int64(walk.get(), 0);
      const std::int64_t start_ms = sqlite3_column_int64(walk.get(), 1);
      if (start_ms >= horizon_ms && start_ms <= future_ms) {
        frontier = true;
        end_id = id;
        break;
      }
      ++rows;
      end_id = id + 1;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return sqliteFailure(db, "cannot walk the flows for expiry");
    }
  }
  step.rows_examined += rows;
  if (end_id > cursor) {
    auto kept = run<3>(db, keep, {cursor, end_id, horizon_ms}, "cannot remember the flows that stay");
    if (!kept) {
      return Unexpected{kept.error()};
    }
    auto deleted = run<3>(db, delete_range, {cursor, end_id, horizon_ms}, "cannot delete expired flows");
    if (!deleted) {
      return Unexpected{deleted.error()};
    }
    step.flows_deleted += *deleted;
    cursor = end_id;
    if (auto done = writeMeta(kCursorKey, cursor); !done) {
      return done;
    }
  }
  // Fewer rows than asked for and no frontier: the walk is at the end of the table.
  step.caught_up = frontier || rows < max_rows;
  return {};
}

Result<void> FlowExpiry::Impl::pendingChunk(Timestamp horizon, std::size_t max_rows, ExpiryStep& step) {
  const std::int64_t from = pending_cursor.value_or(0);
  std::int64_t to = from;
  std::size_t rows = 0;
  {
    const StatementReset reset(pending_chunk);
    sqlite3_bind_int64(pending_chunk.get(), 1, from);
    sqlite3_bind_int64(pending_chunk.get(), 2, static_cast<std::int64_t>(max_rows));
    if (sqlite3_step(pending_chunk.get()) != SQLITE_ROW) {
      return sqliteFailure(db, "cannot read the remembered flows");
    }
    to = sqlite3_column_int64(pending_chunk.get(), 0);
    rows = static_cast<std::size_t>(sqlite3_column_int64(pending_chunk.get(), 1));
  }
  step.rows_examined += rows;
  if (rows > 0) {
    auto deleted = run<3>(db, delete_pending_flows, {from, to, startMillis(horizon)}, "cannot delete expired flows");
    if (!deleted) {
      return Unexpected{deleted.error()};
    }
    step.flows_deleted += *deleted;
    if (auto forgot = run<2>(db, forget_pending, {from, to}, "cannot forget deleted flows"); !forgot) {
      return Unexpected{forgot.error()};
    }
  }
  if (rows < max_rows) {
    pending_cursor.reset();  // the pass is complete
  } else {
    pending_cursor = to;
  }
  return {};
}

FlowExpiry::FlowExpiry(std::unique_ptr<Impl> impl) noexcept : impl_(std::move(impl)) {}

FlowExpiry::~FlowExpiry() = default;

Result<std::unique_ptr<FlowExpiry>> FlowExpiry::open(sqlite3* db, std::chrono::nanoseconds period) {
  if (period <= std::chrono::nanoseconds::zero()) {
    return fail(Errc::Config, "the retention period must be positive");
  }
  if (auto created = execute(db, std::string(kCreatePending)); !created) {
    return Unexpected{created.error()};
  }
  auto impl = std::make_unique<Impl>();
  impl->db = db;
  impl->period = period;
  const std::array<std::pair<SqliteStmt*, std::string_view>, 11> statements{{
      {&impl->delete_spans, kDeleteSpansSql},
      {&impl->walk, kWalkSql},
      {&impl->keep, kKeepSql},
      {&impl->delete_range, kDeleteRangeSql},
      {&impl->pending_chunk, kPendingChunkSql},
      {&impl->delete_pending_flows, kDeletePendingFlowsSql},
      {&impl->forget_pending, kForgetPendingSql},
      {&impl->delete_gaps, kDeleteGapsSql},
      {&impl->delete_runs, kDeleteRunsSql},
      {&impl->write_meta, kWriteMetaSql},
      {&impl->next_id, kNextIdSql},
  }};
  for (const auto& [stmt, sql] : statements) {
    auto prepared = prepare(db, sql, SQLITE_PREPARE_PERSISTENT);
    if (!prepared) {
      return Unexpected{prepared.error()};
    }
    *stmt = std::move(*prepared);
  }
  auto cursor = readMetaInteger(db, kCursorKey);
  if (!cursor) {
    return Unexpected{cursor.error()};
  }
  impl->cursor = cursor->value_or(0);
  auto horizon = readRetentionHorizon(db);
  if (!horizon) {
    return Unexpected{horizon.error()};
  }
  if (*horizon) {
    impl->stored_horizon = (*horizon)->horizon;
  }
  // make_unique cannot reach the private constructor; the new'd object is owned at once.
  return std::unique_ptr<FlowExpiry>(new FlowExpiry(std::move(impl)));
}

Result<ExpiryStep> FlowExpiry::step(Timestamp now, std::size_t max_rows) {
  Impl& self = *impl_;
  sqlite3* db = self.db;
  max_rows = std::max<std::size_t>(max_rows, 1);
  ExpiryStep step;
  step.horizon = now - self.period;
  if (self.stored_horizon && *self.stored_horizon > step.horizon) {
    step.horizon = *self.stored_horizon;
  }
  // Copies of the state the transaction changes, restored when it does not commit.
  const auto saved = std::make_tuple(self.cursor, self.pending_cursor, self.pass_horizon);

  const RelaxedSync relaxed(db);
  Transaction tx(db);
  if (!tx.begun()) {
    return sqliteFailure(db, "cannot lock the database for expiry");
  }
  const auto body = [&]() -> Result<void> {
    if (!self.pending_cursor && (!self.pass_horizon || step.horizon - *self.pass_horizon >= kPendingPassInterval)) {
      self.pending_cursor = 0;
      self.pass_horizon = step.horizon;
    }
    if (self.pending_cursor) {
      if (auto done = self.pendingChunk(step.horizon, max_rows, step); !done) {
        return done;
      }
    } else if (auto done = self.walkChunk(step.horizon, now, max_rows, step); !done) {
      return done;
    }
    if (step.flows_deleted > 0) {
      if (auto done = self.clampCursor(); !done) {
        return done;
      }
      if (auto spans = run<1>(db, self.delete_spans, {static_cast<std::int64_t>(max_rows)}, "cannot delete stale spans");
          !spans) {
        return Unexpected{spans.error()};
      }
    }
    step.caught_up = step.caught_up && !self.pending_cursor;
    const std::int64_t horizon_ns = toUnixNanos(step.horizon);
    const auto limit = static_cast<std::int64_t>(max_rows);
    auto gaps = run<2>(db, self.delete_gaps, {horizon_ns, limit}, "cannot delete expired gaps");
    if (!gaps) {
      return Unexpected{gaps.error()};
    }
    step.gaps_deleted = *gaps;
    auto runs = run<2>(db, self.delete_runs, {horizon_ns, limit}, "cannot delete expired runs");
    if (!runs) {
      return Unexpected{runs.error()};
    }
    step.runs_deleted = *runs;
    if (auto done = self.writeMeta(kHorizonKey, horizon_ns); !done) {
      return done;
    }
    return self.writeMeta(kPeriodKey, self.period.count());
  };
  auto done = body();
  if (done && tx.commit() != SQLITE_OK) {
    done = sqliteFailure(db, "cannot commit an expiry step");
  }
  if (!done) {
    std::tie(self.cursor, self.pending_cursor, self.pass_horizon) = saved;
    return Unexpected{done.error()};
  }
  self.stored_horizon = step.horizon;
  return step;
}

std::int64_t FlowExpiry::cursor() const noexcept { return impl_->cursor; }

Result<std::optional<RetentionHorizon>> readRetentionHorizon(sqlite3* db) {
  auto horizon = readMetaInteger(db, kHorizonKey);
  if (!horizon) {
    return Unexpected{horizon.error()};
  }
  if (!*horizon) {
    return std::optional<RetentionHorizon>{};
  }
  auto period = readMetaInteger(db, kPeriodKey);
  if (!period) {
    return Unexpected{period.error()};
  }
  RetentionHorizon result{fromUnixNanos(**horizon), std::nullopt};
  if (*period && **period > 0) {
    result.period = std::chrono::nanoseconds{**period};
  }
  return std::optional<RetentionHorizon>{result};
}

}  // namespace ctaudit::storage
