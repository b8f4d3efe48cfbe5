// SPDX-License-Identifier: GPL-2.0-or-later
// SqliteSink's open rows: the map from a flow's key to its open row (loaded at open, kept with
// each transaction, undone with a rollback), and the pass that puts rows open for kOpenIndexAfter
// into flows_open_nat and flows_open_src (and flows_open_dnat, for a row with DNAT).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "storage/schema.hpp"
#include "storage/sqlite_sink_impl.hpp"

namespace ctaudit::storage {
namespace {

// An open row goes into flows_open_* once it has been open this long
// (docs/schema.md, "Open rows"). Those indexes are keyed by address, so each entry lands on its own
// leaf somewhere in them, and a flow that had one cost two inserts and two deletes all over two:
// with 100k flows open, 40 % of the sink's CPU (sink_bench --live 100000). Most flows end within
// minutes and now never touch them; until then a lookup finds the row as it finds any recent one.
// Longer means fewer entries, but a start-up after a crash reads the rows of this period to find
// their open ones (forEachOpenRow).
constexpr std::chrono::minutes kOpenIndexAfter{5};
// How often the sink looks for rows that have been open that long: each look walks the map of
// open rows.
constexpr std::chrono::seconds kOpenIndexEvery{10};

}  // namespace

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

}  // namespace ctaudit::storage
