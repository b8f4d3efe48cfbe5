// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/row_prefetch.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <utility>

#include "storage/read_only_db.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// start_ms is in the row's first bytes: the leaf page, without the overflow pages of a large row.
constexpr const char* kLookupSql = "SELECT start_ms FROM flows WHERE id = ?1";

// Each row is read once: a small cache reuses its pages' memory, where the default 2 MiB would be
// allocated afresh, page by page, in each thread's own malloc arena (an mprotect(2) a page).
constexpr int kCachePages = 32;

// Looks up one row; false when SQLite fails (or was interrupted).
bool lookUpRow(sqlite3_stmt* stmt, std::int64_t id) noexcept {
  if (sqlite3_bind_int64(stmt, 1, id) != SQLITE_OK) {
    return false;
  }
  const int rc = sqlite3_step(stmt);
  sqlite3_reset(stmt);
  return rc == SQLITE_ROW || rc == SQLITE_DONE;
}

// Times lookups and counts the fast ones in a row: a lookup faster than `cached_row_time` was
// answered from the page cache.
class CacheCheck {
public:
  explicit CacheCheck(std::chrono::nanoseconds cached_row_time) noexcept : cached_row_time_(cached_row_time) {}

  // Looks up `id`, timed. False when SQLite fails.
  bool lookUp(sqlite3_stmt* stmt, std::int64_t id) noexcept {
    const auto start = std::chrono::steady_clock::now();
    if (!lookUpRow(stmt, id)) {
      return false;
    }
    fast_in_a_row_ = std::chrono::steady_clock::now() - start < cached_row_time_ ? fast_in_a_row_ + 1 : 0;
    return true;
  }
  [[nodiscard]] std::size_t fastInARow() const noexcept { return fast_in_a_row_; }

private:
  std::chrono::nanoseconds cached_row_time_;
  std::size_t fast_in_a_row_ = 0;
};

// sqlite3_progress_handler callback: a statement of a thread told to stop ends at once.
int interruptWhenStopped(void* stop) noexcept {
  return static_cast<const std::atomic<bool>*>(stop)->load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace

Result<bool> RowPrefetch::rowsLookCached(sqlite3* db, std::span<const std::int64_t> ids,
                                         std::chrono::nanoseconds cached_row_time) {
  auto stmt = prepare(db, kLookupSql);
  if (!stmt) {
    return Unexpected{stmt.error()};
  }
  const auto probe = ids.first(std::min(ids.size(), kStretchRows));
  CacheCheck check(cached_row_time);
  for (const std::int64_t id : probe) {
    if (!check.lookUp(stmt->get(), id)) {
      // An I/O or memory error also ends the caller's read transaction: the query cannot go on.
      return sqliteFailure(db, "cannot read flows");
    }
  }
  return check.fastInARow() == probe.size();
}

RowPrefetch::RowPrefetch(std::filesystem::path path, std::vector<std::int64_t> ids,
                         std::chrono::nanoseconds cached_row_time)
    : path_(std::move(path)), ids_(std::move(ids)), cached_row_time_(cached_row_time) {
  // Several connections in threads need a thread-safe SQLite (Debian's is: SQLITE_THREADSAFE=1).
  const auto count = sqlite3_threadsafe() == 0 ? 0 : std::min<std::size_t>(kThreads, ids_.size());
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    try {
      threads_.emplace_back([this] { run(); });
    } catch (...) {  // out of threads or memory: the query reads on its own
      break;
    }
  }
}

RowPrefetch::~RowPrefetch() {
  stop_.store(true);
  wait();
}

void RowPrefetch::wait() noexcept {
  for (std::thread& thread : threads_) {
    if (thread.joinable()) {
      thread.join();
    }
  }
}

void RowPrefetch::run() noexcept {
  try {
    readAhead();
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory; a cache warmer must not end the query
  }
}

void RowPrefetch::readAhead() {
  // A connection of its own: one connection reads one page at a time. Its read transaction may see
  // a later commit than the query's; a row that changed meanwhile is only a page read for nothing.
  // No busy wait: a locked file is the query's to wait for, not a reason to hold up its end.
  auto db = openReadOnly(path_, std::chrono::milliseconds{0}, kCachePages);
  if (!db || stop_.load()) {
    return;
  }
  // A stop interrupts a statement that runs long (a file changed under the path since the query
  // opened it), so that the owner's join never waits on SQLite.
  sqlite3_progress_handler(db->get(), 1000, interruptWhenStopped, &stop_);
  auto stmt = prepare(db->get(), kLookupSql);
  if (!stmt) {
    return;
  }
  // One read transaction for all the rows: each lookup alone would begin and end its own, a check
  // of the WAL index and its locks every time.
  const ReadSnapshot snapshot(db->get());
  if (!snapshot.begun()) {
    return;
  }
  // Rows coming from the page cache mean the query finds them there as well, and reading them again
  // would only take a core from it.
  CacheCheck check(cached_row_time_);
  for (std::size_t i = next_.fetch_add(1); i < ids_.size() && !stop_.load(std::memory_order_relaxed);
       i = next_.fetch_add(1)) {
    if (!check.lookUp(stmt->get(), ids_[i])) {
      return;
    }
    rows_read_.fetch_add(1, std::memory_order_relaxed);
    if (cached_row_time_.count() > 0 && check.fastInARow() >= kStretchRows) {
      return;
    }
  }
}

}  // namespace ctaudit::storage
