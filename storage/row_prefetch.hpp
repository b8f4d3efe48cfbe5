// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <thread>
#include <vector>

#include "flow/result.hpp"

struct sqlite3;

namespace ctaudit::storage {

// Reads the table rows of `ids` from several connections at once, beside a query that is about to
// read them, so that a cold disk serves their pages in parallel. SQLite reads a page when it needs
// it, one read at a time: one subscriber's flows over a day are thousands of rows, each on a page
// of its own in a file of many gigabytes, and a query whose pages are not in the page cache waits
// for each read in turn (100M flows, 3,349 rows: about 350 ms, docs/benchmarks.md). The rows are
// read and dropped; their pages stay in the kernel's page cache, where the query's own connection
// finds them. The threads take the ids in the order given, which is the order the query reads them
// in, so they stay just ahead of it.
//
// Worth starting only when the rows are not in the page cache (rowsLookCached); its threads stop
// when the rest turn out to be (kCachedRowTime). On a disk that answers in less than
// kCachedRowTime there is nothing to gain, and it never starts. Only a cache warmer: a thread
// whose connection cannot be opened or read stops, and the query reports whatever is wrong with
// the file. Owned by one thread; stops and joins its threads when destroyed. Starts no thread in
// a SQLite built without thread safety.
class RowPrefetch {
public:
  // Fewer ids than this are not worth threads: at about 0.1 ms a cold read they cost the query a
  // few milliseconds at most. FlowReader's threshold.
  static constexpr std::size_t kMinRows = 64;
  // The most ids worth reading ahead (512 KiB of them): a larger answer, a whole block of
  // subscribers, is mostly rows that lie together, which the disk reads ahead by itself, and its
  // ids alone would cost the query a pass through that many index entries.
  static constexpr std::size_t kMaxRows = std::size_t{1} << 16;
  // Reads in flight: on the 2-core test machine's virtual disk 8 and 16 readers were as fast as
  // each other, 32 and 64 slower (docs/benchmarks.md).
  static constexpr unsigned kThreads = 8;

  // kStretchRows lookups in a row that each took less than kCachedRowTime were answered from the
  // page cache (a read from the test machine's disk takes about 0.1 ms, one from the page cache a
  // few microseconds). Each, not on average: a stretch whose first rows share one page read is
  // fast on average and still cold. A thread stops after that many in a row.
  static constexpr std::size_t kStretchRows = 16;
  static constexpr std::chrono::microseconds kCachedRowTime{20};

  // True when the first kStretchRows of `ids` (or all, if fewer), looked up on `db` (the query's
  // own connection, whose rows they are anyway), each took less than `cached_row_time`: the page
  // cache holds the rows, and the query reads them as fast as threads could. An error when a lookup
  // fails: SQLite then also ends the read transaction the query runs in.
  [[nodiscard]] static Result<bool> rowsLookCached(sqlite3* db, std::span<const std::int64_t> ids,
                                                   std::chrono::nanoseconds cached_row_time = kCachedRowTime);

  // Starts min(kThreads, ids.size()) threads. `cached_row_time` is a parameter for tests: zero
  // never stops early.
  RowPrefetch(std::filesystem::path path, std::vector<std::int64_t> ids,
              std::chrono::nanoseconds cached_row_time = kCachedRowTime);
  RowPrefetch(const RowPrefetch&) = delete;
  RowPrefetch& operator=(const RowPrefetch&) = delete;
  RowPrefetch(RowPrefetch&&) = delete;
  RowPrefetch& operator=(RowPrefetch&&) = delete;
  ~RowPrefetch();

  // The threads started (0 for no ids, or when none could start).
  [[nodiscard]] std::size_t threads() const noexcept { return threads_.size(); }
  // Blocks until every id has been taken and read, or its thread gave up; for tests.
  void wait() noexcept;
  // Ids looked up so far, by all threads (an id without a row counts too).
  [[nodiscard]] std::size_t rowsRead() const noexcept { return rows_read_.load(); }

private:
  void run() noexcept;
  void readAhead();

  std::filesystem::path path_;
  std::vector<std::int64_t> ids_;
  std::chrono::nanoseconds cached_row_time_;
  std::atomic<std::size_t> next_{0};  // the next id to take
  std::atomic<std::size_t> rows_read_{0};
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

}  // namespace ctaudit::storage
