// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/row_prefetch.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <numeric>
#include <span>
#include <vector>

#include "tests/support/temp_dir.hpp"
#include "tests/unit/storage/sqlite_test_util.hpp"

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::TempDir;

// RowPrefetch reads flows(id, start_ms) only; a table of just those, with rows 1..`rows`.
class RowPrefetchTest : public ::testing::Test {
protected:
  void fill(int rows) {
    testing::execute(path_, "CREATE TABLE flows (id INTEGER PRIMARY KEY, start_ms INTEGER NOT NULL);"
                            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < " +
                                std::to_string(rows) + ") INSERT INTO flows SELECT i, i * 1000 FROM n;");
  }
  static std::vector<std::int64_t> idsUpTo(std::int64_t last) {
    std::vector<std::int64_t> ids(static_cast<std::size_t>(last));
    std::iota(ids.begin(), ids.end(), 1);
    return ids;
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "flows.db";
};

TEST_F(RowPrefetchTest, NoMoreThreadsThanIds) {
  fill(100);
  const RowPrefetch none(path_, {});
  EXPECT_EQ(none.threads(), 0U);
  RowPrefetch three(path_, idsUpTo(3), 0ns);
  EXPECT_EQ(three.threads(), 3U);
  three.wait();
  EXPECT_EQ(three.rowsRead(), 3U);
}

TEST_F(RowPrefetchTest, ReadsEveryRowOnceAcrossItsThreads) {
  fill(1000);
  std::vector<std::int64_t> ids = idsUpTo(1000);
  ids.push_back(5000);  // no such row: read as nothing, and the rest goes on
  RowPrefetch prefetch(path_, ids, /*cached_row_time=*/0ns);
  EXPECT_EQ(prefetch.threads(), RowPrefetch::kThreads);
  prefetch.wait();
  EXPECT_EQ(prefetch.rowsRead(), ids.size());
}

// Rows that come back faster than a disk could serve them are in the page cache already: each
// thread stops after its first stretch rather than read them all a second time beside the query.
TEST_F(RowPrefetchTest, StopsWhenTheRowsAreAlreadyCached) {
  fill(1000);
  RowPrefetch prefetch(path_, idsUpTo(1000), /*cached_row_time=*/1h);
  prefetch.wait();
  EXPECT_GT(prefetch.rowsRead(), 0U);
  EXPECT_LE(prefetch.rowsRead(), prefetch.threads() * RowPrefetch::kStretchRows);
}

// The probe on the query's own connection: rows that came back faster than `cached_row_time` each.
TEST_F(RowPrefetchTest, ThePageCacheIsToldByHowFastTheFirstRowsComeBack) {
  fill(100);
  const SqliteDb db = testing::openRaw(path_);
  const auto ids = idsUpTo(100);
  const auto cached = [&](std::span<const std::int64_t> probe, std::chrono::nanoseconds cached_row_time) {
    const auto answer = RowPrefetch::rowsLookCached(db.get(), probe, cached_row_time);
    EXPECT_TRUE(answer) << answer.error().detail;
    return answer && *answer;
  };
  EXPECT_TRUE(cached(ids, 1h));
  EXPECT_FALSE(cached(ids, 0ns));
  EXPECT_TRUE(cached({}, 0ns)) << "nothing to read is nothing to read ahead";
  // A lookup that fails is the query's error: SQLite may have ended its read transaction.
  testing::execute(path_, "DROP TABLE flows");
  EXPECT_FALSE(RowPrefetch::rowsLookCached(db.get(), ids, 0ns));
}

// Only a cache warmer: a file it cannot read ends it quietly, and the query says what is wrong.
TEST_F(RowPrefetchTest, AFileItCannotReadEndsItQuietly) {
  RowPrefetch missing(dir_ / "missing.db", idsUpTo(1000), 0ns);
  missing.wait();
  EXPECT_EQ(missing.rowsRead(), 0U);
  testing::execute(path_, "CREATE TABLE other (x)");
  RowPrefetch no_table(path_, idsUpTo(1000), 0ns);
  no_table.wait();
  EXPECT_EQ(no_table.rowsRead(), 0U);
}

}  // namespace
}  // namespace ctaudit::storage
