// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "flow/result.hpp"
#include "storage/sqlite_handles.hpp"

// The `spans` table: which rowids of `flows` hold which start times (docs/schema.md, "Spans").
//
// The indexes of `flows` carry no times, only their key and the rowid, which keeps them at about
// 15 bytes a flow. A lookup "at time T" then needs the rowids of the rows that started near T:
// rows are inserted roughly in start order (the sink inserts each batch sorted by start), so a
// few rowid ranges hold them, and `spans` says which. Every row of `flows` lies in at least one
// span whose [min_start_ms, max_start_ms] holds its start_ms, and no span is wider than
// kSpanWidthMs, so "the rows that started in [A, B]" are inside the spans with
// min_start_ms in [A - kSpanWidthMs, B] and max_start_ms >= A: one range scan of spans_start.
//
// Flows that started before the window but were still alive in it are those open or longer than
// kLongFlowMs; the flows_open_* and flows_long_* indexes find them (flow_query_sql.hpp).
// Internal to storage/.
namespace ctaudit::storage {

// A flow that lasted longer than this is in the flows_long_* indexes with its times. Part of the
// schema: the partial indexes name it, and a query must spell it the same way to use them.
inline constexpr std::int64_t kLongFlowMs = 3'600'000;

// No span is wider than this; a lookup reads the spans that start up to this much before its
// window.
inline constexpr std::int64_t kSpanWidthMs = 60'000;

// `a - b` clamped to int64's range instead of wrapping: a window's bound moved earlier by a width
// (kSpanWidthMs, kLongFlowMs) stays the earliest time for a window open towards the past, and a
// span's width stays large for starts far apart.
[[nodiscard]] inline std::int64_t saturatingSub(std::int64_t a, std::int64_t b) noexcept {
  std::int64_t out = 0;
  if (!__builtin_sub_overflow(a, b, &out)) {
    return out;
  }
  return b > 0 ? std::numeric_limits<std::int64_t>::min() : std::numeric_limits<std::int64_t>::max();
}

// Rowids first..last, both included.
struct IdRange {
  std::int64_t first{0};
  std::int64_t last{0};
  friend bool operator==(const IdRange&, const IdRange&) = default;
};

// Records the spans of the rows one writer inserts. Rows are added in rowid order; consecutive
// rows whose starts fit in kSpanWidthMs share a span, also across transactions, so a quiet
// gateway writes a span row a minute and a busy one about one per batch. The writer's
// transaction decides: commit() keeps what was written, rollback() forgets it.
class SpanWriter {
public:
  // Statements are prepared on `db`, which must outlive the writer.
  [[nodiscard]] static Result<SpanWriter> open(sqlite3* db);

  // Row `id` (greater than every id added before) starts at `start_ms`. May write the previous
  // span. Returns the SQLite error code of a failed write, or SQLITE_OK.
  [[nodiscard]] int add(std::int64_t id, std::int64_t start_ms) noexcept;
  // Row `id`, added earlier, now starts at `start_ms`: it gets a span of its own.
  [[nodiscard]] int moved(std::int64_t id, std::int64_t start_ms) noexcept;
  // Writes the span being built, if it changed. Call before the transaction commits.
  [[nodiscard]] int finish() noexcept;
  void commit() noexcept { committed_ = current_; }
  void rollback() noexcept { current_ = committed_; }

private:
  struct Span {
    std::optional<std::int64_t> rowid;  // its row in `spans`, once written
    std::int64_t first_id{0};
    std::int64_t last_id{0};
    std::int64_t min_start_ms{0};
    std::int64_t max_start_ms{0};
    bool dirty{false};
  };
  SpanWriter(sqlite3* db, SqliteStmt insert, SqliteStmt update) noexcept;
  [[nodiscard]] int write(Span& span) noexcept;

  sqlite3* db_;
  SqliteStmt insert_;
  SqliteStmt update_;
  std::optional<Span> current_;
  std::optional<Span> committed_;
};

// The rowid ranges that hold every row whose start_ms lies in [from_ms, to_ms], merged and in
// order; they may hold other rows too.
[[nodiscard]] Result<std::vector<IdRange>> rowsStartedBetween(sqlite3* db, std::int64_t from_ms, std::int64_t to_ms);

// `ranges` (merged and in order, as rowsStartedBetween returns them) with the rows from `first` on
// added: every range that reaches first - 1 or beyond is merged into one that ends at the larger of
// its last and `last`. For the rows that may be open outside flows_open_* (kOpenIndexFromKey).
void addTailRange(std::vector<IdRange>& ranges, std::int64_t first, std::int64_t last);

// The rowid ranges a lookup whose recent window is [from_ms, to_ms] searches by rowid: those of
// rowsStartedBetween, and the rows from meta.open_index_from to the last, which may be open
// without being in flows_open_* (schema.hpp), whenever they started. Call it in the read
// transaction of the lookup itself, so that both see the same rows.
[[nodiscard]] Result<std::vector<IdRange>> rowsToSearch(sqlite3* db, std::int64_t from_ms, std::int64_t to_ms);

}  // namespace ctaudit::storage
