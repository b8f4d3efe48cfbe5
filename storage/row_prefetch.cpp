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

// Times lookups in stretches of kStretchRows: a stretch in which every one was faster than
// `cached_row_time` was answered from the page cache.
class CacheCheck {
public:
  explicit CacheCheck(std::chrono::nanoseconds cached_row_time) noexcept : cached_row_time_(cached_row_time) {}

  // Looks up `id`, timed. False when SQLite fails.
  bool lookUp(sqlite3_stmt* stmt, std::int64_t id) noexcept {
    const auto start = std::chrono::steady_clock::now();
    if (!lookUpRow(stmt, id)) {
      return false;
    }
    all_fast_ = all_fast_ && std::chrono::steady_clock::now() - start < cached_row_time_;
    ++rows_;
    return true;
  }
  // True at the end of a stretch whose rows were all fast; starts the next stretch.
  bool stretchWasCached() noexcept {
    if (rows_ < RowPrefetch::kStretchRows) {
      return false;
    }
    const bool cached = all_fast_;
    rows_ = 0;
    all_fast_ = true;
    return cached;
  }
  [[nodiscard]] bool allFast() const noexcept { return all_fast_; }

private:
  std::chrono::nanoseconds cached_row_time_;
  std::size_t rows_ = 0;
  bool all_fast_ = true;
};

// sqlite3_progress_handler callback: a statement of a thread told to stop ends at once.
int interruptWhenStopped(void* stop) noexcept {
  return static_cast<const std::atomic<bool>*>(stop)->load(std::memory_order_relaxed) ? 1 : 0;
}

}  // namespace

bool RowPrefetch::rowsLookCached(sqlite3* db, std::span<const std::int64_t> ids,
                                 std::chrono::nanoseconds cached_row_time) {
  auto stmt = prepare(db, kLookupSql);
  if (!stmt) {
    return true;
  }
  CacheCheck check(cached_row_time);
  for (const std::int64_t id : ids.first(std::min(ids.size(), kStretchRows))) {
    if (!check.lookUp(stmt->get(), id)) {
      return true;
    }
  }
  return check.allFast();
}

RowPrefetch::RowPrefetch(std::filesystem::path path, std::vector<std::int64_t> ids,
                         std::chrono::nanoseconds cached_row_time)
    : path_(std::move(path)), ids_(std::move(ids)), cached_row_time_(cached_row_time) {
  const auto count = std::min<std::size_t>(kThreads, ids_.size());
  threads_.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    try {
      threads_.emplace_back([this] { run(); });
    } catch (...) {  // NOLINT(bugprone-empty-catch): out of threads or memory; the query reads on its own
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
  // A stretch read from the page cache means the query finds its rows there as well, and reading
  // them again would only take a core from it.
  CacheCheck check(cached_row_time_);
  for (std::size_t i = next_.fetch_add(1); i < ids_.size() && !stop_.load(std::memory_order_relaxed);
       i = next_.fetch_add(1)) {
    if (!check.lookUp(stmt->get(), ids_[i])) {
      return;
    }
    rows_read_.fetch_add(1, std::memory_order_relaxed);
    if (cached_row_time_.count() > 0 && check.stretchWasCached()) {
      return;
    }
  }
}

}  // namespace ctaudit::storage
