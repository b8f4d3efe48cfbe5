// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/spans.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <limits>
#include <string_view>
#include <utility>

#include "storage/schema.hpp"

namespace ctaudit::storage {
namespace {

constexpr std::string_view kInsertSql =
    "INSERT INTO spans (min_start_ms, max_start_ms, first_id, last_id) VALUES (?1, ?2, ?3, ?4)";
constexpr std::string_view kUpdateSql =
    "UPDATE spans SET min_start_ms = ?1, max_start_ms = ?2, first_id = ?3, last_id = ?4 WHERE rowid = ?5";
constexpr std::string_view kLookupSql =
    "SELECT first_id, last_id FROM spans WHERE min_start_ms BETWEEN ?1 AND ?2 AND max_start_ms >= ?3 ORDER BY first_id";

// More ranges than this are merged into one covering them all: a lookup then reads more index
// entries, but never builds a statement with hundreds of arms. A window normally yields one
// range, and a second one per daemon restart or backlog that inserted old starts late.
constexpr std::size_t kMaxRanges = 16;

}  // namespace

SpanWriter::SpanWriter(sqlite3* db, SqliteStmt insert, SqliteStmt update) noexcept
    : db_(db), insert_(std::move(insert)), update_(std::move(update)) {}

Result<SpanWriter> SpanWriter::open(sqlite3* db) {
  auto insert = prepare(db, kInsertSql, SQLITE_PREPARE_PERSISTENT);
  if (!insert) {
    return Unexpected{insert.error()};
  }
  auto update = prepare(db, kUpdateSql, SQLITE_PREPARE_PERSISTENT);
  if (!update) {
    return Unexpected{update.error()};
  }
  return SpanWriter(db, std::move(*insert), std::move(*update));
}

int SpanWriter::write(Span& span) noexcept {
  sqlite3_stmt* stmt = span.rowid ? update_.get() : insert_.get();
  const StatementReset reset(stmt);
  int rc = sqlite3_bind_int64(stmt, 1, span.min_start_ms);
  rc = rc == SQLITE_OK ? sqlite3_bind_int64(stmt, 2, span.max_start_ms) : rc;
  rc = rc == SQLITE_OK ? sqlite3_bind_int64(stmt, 3, span.first_id) : rc;
  rc = rc == SQLITE_OK ? sqlite3_bind_int64(stmt, 4, span.last_id) : rc;
  if (span.rowid) {
    rc = rc == SQLITE_OK ? sqlite3_bind_int64(stmt, 5, *span.rowid) : rc;
  }
  if (rc != SQLITE_OK) {
    return rc;
  }
  if (sqlite3_step(stmt) != SQLITE_DONE) {
    return sqlite3_extended_errcode(db_);
  }
  if (!span.rowid) {
    span.rowid = sqlite3_last_insert_rowid(db_);
  }
  span.dirty = false;
  return SQLITE_OK;
}

int SpanWriter::add(std::int64_t id, std::int64_t start_ms) noexcept {
  if (current_ && id == current_->last_id + 1) {
    const std::int64_t low = std::min(current_->min_start_ms, start_ms);
    const std::int64_t high = std::max(current_->max_start_ms, start_ms);
    if (saturatingSub(high, low) <= kSpanWidthMs) {
      current_->last_id = id;
      current_->min_start_ms = low;
      current_->max_start_ms = high;
      current_->dirty = true;
      return SQLITE_OK;
    }
  }
  if (current_ && current_->dirty) {
    if (const int rc = write(*current_); rc != SQLITE_OK) {
      return rc;
    }
  }
  current_ = Span{std::nullopt, id, id, start_ms, start_ms, true};
  return SQLITE_OK;
}

int SpanWriter::moved(std::int64_t id, std::int64_t start_ms) noexcept {
  Span own{std::nullopt, id, id, start_ms, start_ms, true};
  return write(own);
}

int SpanWriter::finish() noexcept {
  if (current_ && current_->dirty) {
    return write(*current_);
  }
  return SQLITE_OK;
}

Result<std::vector<IdRange>> rowsStartedBetween(sqlite3* db, std::int64_t from_ms, std::int64_t to_ms) {
  std::vector<IdRange> ranges;
  if (to_ms < from_ms) {
    return ranges;
  }
  auto lookup = prepare(db, kLookupSql);
  if (!lookup) {
    return Unexpected{lookup.error()};
  }
  sqlite3_stmt* stmt = lookup->get();
  if (sqlite3_bind_int64(stmt, 1, saturatingSub(from_ms, kSpanWidthMs)) != SQLITE_OK ||
      sqlite3_bind_int64(stmt, 2, to_ms) != SQLITE_OK || sqlite3_bind_int64(stmt, 3, from_ms) != SQLITE_OK) {
    return sqliteFailure(db, "cannot bind the span lookup");
  }
  int rc = SQLITE_OK;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    const IdRange range{sqlite3_column_int64(stmt, 0), sqlite3_column_int64(stmt, 1)};
    // In first_id order, so a range overlaps or touches only the one before it (or lies inside it:
    // the span of a row whose start moved). The file is untrusted: no id is assumed below the
    // largest integer.
    const bool touches = !ranges.empty() &&
                         (range.first <= ranges.back().last ||
                          (ranges.back().last < std::numeric_limits<std::int64_t>::max() &&
                           range.first == ranges.back().last + 1));
    if (touches) {
      ranges.back().last = std::max(ranges.back().last, range.last);
    } else {
      ranges.push_back(range);
    }
  }
  if (rc != SQLITE_DONE) {
    return sqliteFailure(db, "cannot read the spans");
  }
  if (ranges.size() > kMaxRanges) {
    ranges = {IdRange{ranges.front().first, ranges.back().last}};
  }
  return ranges;
}

void addTailRange(std::vector<IdRange>& ranges, std::int64_t first, std::int64_t last) {
  if (last < first) {
    return;
  }
  IdRange tail{first, last};
  // A range touches the tail when it reaches first - 1; first is a rowid, at least 1.
  while (!ranges.empty() && ranges.back().last >= first - 1) {
    tail.first = std::min(tail.first, ranges.back().first);
    tail.last = std::max(tail.last, ranges.back().last);
    ranges.pop_back();
  }
  ranges.push_back(tail);
}

Result<std::vector<IdRange>> rowsToSearch(sqlite3* db, std::int64_t from_ms, std::int64_t to_ms) {
  auto ranges = rowsStartedBetween(db, from_ms, to_ms);
  if (!ranges) {
    return ranges;
  }
  auto unindexed_from = openIndexFrom(db);
  if (!unindexed_from) {
    return Unexpected{unindexed_from.error()};
  }
  auto last_id = lastFlowId(db);
  if (!last_id) {
    return Unexpected{last_id.error()};
  }
  addTailRange(*ranges, *unindexed_from, *last_id);
  return ranges;
}

}  // namespace ctaudit::storage
