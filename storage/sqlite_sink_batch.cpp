// SPDX-License-Identifier: GPL-2.0-or-later
// SqliteSink's write of one batch: its events folded per flow, then the finished and new flows
// inserted kInsertRows to a statement, and the open rows they change updated kUpdateRows to a
// statement.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "storage/schema.hpp"
#include "storage/sqlite_sink_impl.hpp"

namespace ctaudit::storage {
namespace {

// Columns an event can change, split by the indexes they feed, so that an update rewrites an
// index entry only when that entry's value changes (SQLite rewrites the entries of every index
// that has a column named in the SET list, in its key or in its WHERE). The flow key (ct_id, zone,
// original tuple) is never updated; the protocol and the zone, parts of the key, share a column
// with values that change (packed, zone_mark), which no index holds.
// `counters` is in the main group: the write that closes a row sets it without its open padding
// (flow_row.hpp, kOpenCountersBytes), so the space comes back in the same statement.
constexpr std::array kMainColumns{
    FlowColumn::Packed, FlowColumn::ZoneMark, FlowColumn::Icmp, FlowColumn::Reply, FlowColumn::Counters,
};
// flows_long_*, and the row's span; dur_ms is relative to start_ms, so both move.
constexpr std::array kStartColumns{FlowColumn::StartMs, FlowColumn::DurMs};
// flows_open_* and flows_long_* (their WHERE): the common DESTROY that ends a flow whose start is
// settled. flows_nat_src and flows_orig_src hold no time and stay as they are.
constexpr std::array kEndColumns{FlowColumn::DurMs};
// The translations: flows_nat_src, flows_open_nat and flows_long_nat by nat_src, the flows_dnat
// family by its condition on nat_dst. A translation is known from a flow's first event nearly
// always, so the UPDATEs that carry counters and ends leave these indexes alone (with nat_dst in
// the main group, every such UPDATE of a DNAT'd row rewrote its three flows_dnat entries: a review).
constexpr std::array kNatColumns{FlowColumn::NatSrc, FlowColumn::NatDst};
constexpr std::array kKeyColumns{FlowColumn::CtId, FlowColumn::OrigSrc, FlowColumn::OrigDst};
static_assert(kMainColumns.size() + kStartColumns.size() + kNatColumns.size() + kKeyColumns.size() ==
                  kFlowColumnCount,
              "every column is either part of the key or in exactly one update group");

// The update groups as bits of a mask; kStartGroup carries the end (dur_ms) too.
constexpr unsigned kMainGroup = 1;
constexpr unsigned kEndGroup = 2;
constexpr unsigned kStartGroup = 4;
constexpr unsigned kNatGroup = 8;
static_assert(kUpdateMasks == 2 * kNatGroup, "one statement slot for every mask of the four groups");

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
  if ((mask & kNatGroup) != 0) {
    set.add(kNatColumns);
  }
  return set;
}

}  // namespace

FlowKey SqliteSink::Impl::storedKey(const FlowRecord& record) noexcept {
  FlowKey key = record.key();
  key.original.src_port = record.original.sourceKey();
  key.original.dst_port = record.original.destinationKey();
  key.original.icmp_id = 0;
  return key;
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
  mask |= changed(kNatColumns) ? kNatGroup : 0U;
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

}  // namespace ctaudit::storage
