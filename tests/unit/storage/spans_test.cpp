// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/spans.hpp"

#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <vector>

#include "storage/schema.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/storage/sqlite_test_util.hpp"

namespace ctaudit::storage {
namespace {

using ctaudit::testing::TempDir;
using testing::count;
using testing::openRaw;
using testing::scalar;

// A real ctaudit database and a SpanWriter on it, each add() in a transaction of its own unless
// the test opens one.
class SpansTest : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(applySchema(db_.get(), "gw1", fromUnixNanos(0)));
    auto writer = SpanWriter::open(db_.get());
    ASSERT_TRUE(writer) << writer.error().detail;
    writer_.emplace(std::move(*writer));
  }

  // Adds rows (id, start_ms) in one committed transaction, as SqliteSink writes a batch.
  void batch(const std::vector<std::pair<std::int64_t, std::int64_t>>& rows) {
    ASSERT_TRUE(execute(db_.get(), "BEGIN"));
    for (const auto& [id, start_ms] : rows) {
      ASSERT_EQ(writer_->add(id, start_ms), SQLITE_OK);
    }
    ASSERT_EQ(writer_->finish(), SQLITE_OK);
    ASSERT_TRUE(execute(db_.get(), "COMMIT"));
    writer_->commit();
  }

  // The spans as "first-last:min-max", in first_id order.
  std::vector<std::string> spans() {
    std::vector<std::string> out;
    const auto n = count(db_.get(), "SELECT count(*) FROM spans");
    for (std::int64_t i = 0; i < n; ++i) {
      out.push_back(scalar(db_.get(), "SELECT first_id || '-' || last_id || ':' || min_start_ms || '-' || max_start_ms "
                                      "FROM spans ORDER BY first_id, rowid LIMIT 1 OFFSET " +
                                          std::to_string(i)));
    }
    return out;
  }

  std::vector<IdRange> started(std::int64_t from_ms, std::int64_t to_ms) {
    auto ranges = rowsStartedBetween(db_.get(), from_ms, to_ms);
    EXPECT_TRUE(ranges) << ranges.error().detail;
    return ranges ? *ranges : std::vector<IdRange>{};
  }

  TempDir dir_;
  SqliteDb db_ = openRaw(dir_ / "flows.db");
  std::optional<SpanWriter> writer_;
};

TEST(SaturatingSubTest, ClampsTowardsTheSideItOverflows) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  EXPECT_EQ(saturatingSub(5, 7), -2);
  EXPECT_EQ(saturatingSub(kMin + 10, kSpanWidthMs), kMin);  // a window open towards the past
  EXPECT_EQ(saturatingSub(kMax, -1), kMax);                 // a width too large to hold
  EXPECT_EQ(saturatingSub(kMax - 5, kMin), kMax);
}

// The rows that may be open outside flows_open_* join the ranges of a lookup: merged with every
// range they overlap or touch, after the ranges below them.
TEST(AddTailRangeTest, MergesWhatItOverlapsOrTouchesAndKeepsWhatLiesBelow) {
  std::vector<IdRange> ranges{{1, 10}, {20, 30}, {40, 50}};
  addTailRange(ranges, 31, 100);
  EXPECT_EQ(ranges, (std::vector<IdRange>{{1, 10}, {20, 100}}));

  ranges = {{1, 10}, {20, 30}};
  addTailRange(ranges, 32, 40);
  EXPECT_EQ(ranges, (std::vector<IdRange>{{1, 10}, {20, 30}, {32, 40}}));

  ranges = {{1, 10}, {20, 300}};
  addTailRange(ranges, 5, 100);  // a range may reach beyond the last row the caller saw
  EXPECT_EQ(ranges, (std::vector<IdRange>{{1, 300}}));

  ranges = {};
  addTailRange(ranges, 7, 7);
  EXPECT_EQ(ranges, (std::vector<IdRange>{{7, 7}}));
  addTailRange(ranges, 9, 8);  // no rows from 9 on
  EXPECT_EQ(ranges, (std::vector<IdRange>{{7, 7}}));
}

TEST_F(SpansTest, ConsecutiveRowsWithinTheWidthShareOneSpanAcrossBatches) {
  batch({{1, 1000}, {2, 1500}});
  batch({{3, 900}, {4, 1000 + kSpanWidthMs - 100}});
  EXPECT_EQ(spans(), std::vector<std::string>{"1-4:900-" + std::to_string(1000 + kSpanWidthMs - 100)});
}

TEST_F(SpansTest, AStartBeyondTheWidthOrAGapInIdsStartsANewSpan) {
  batch({{1, 0}, {2, kSpanWidthMs}, {3, kSpanWidthMs + 1}});  // 3 would make it wider than allowed
  batch({{5, kSpanWidthMs + 2}});                            // id 4 is not in this writer's rows
  const std::string w = std::to_string(kSpanWidthMs);
  EXPECT_EQ(spans(), (std::vector<std::string>{"1-2:0-" + w, "3-3:" + std::to_string(kSpanWidthMs + 1) + "-" +
                                                                 std::to_string(kSpanWidthMs + 1),
                                               "5-5:" + std::to_string(kSpanWidthMs + 2) + "-" +
                                                   std::to_string(kSpanWidthMs + 2)}));
  EXPECT_EQ(count(db_.get(), "SELECT count(*) FROM spans WHERE max_start_ms - min_start_ms > " + w), 0);
}

TEST_F(SpansTest, ARolledBackBatchLeavesTheSpansAsCommitted) {
  batch({{1, 1000}});
  ASSERT_TRUE(execute(db_.get(), "BEGIN"));
  ASSERT_EQ(writer_->add(2, 1100), SQLITE_OK);
  ASSERT_EQ(writer_->add(3, 1000 + 2 * kSpanWidthMs), SQLITE_OK);  // writes span 1-2, starts another
  ASSERT_EQ(writer_->finish(), SQLITE_OK);
  ASSERT_TRUE(execute(db_.get(), "ROLLBACK"));
  writer_->rollback();
  EXPECT_EQ(spans(), std::vector<std::string>{"1-1:1000-1000"});
  // The writer goes on from the committed span: the retried batch extends it in place.
  batch({{2, 1100}});
  EXPECT_EQ(spans(), std::vector<std::string>{"1-2:1000-1100"});
}

TEST_F(SpansTest, AMovedStartGetsASpanOfItsOwn) {
  batch({{1, 5000}, {2, 5001}});
  ASSERT_TRUE(execute(db_.get(), "BEGIN"));
  ASSERT_EQ(writer_->moved(1, 10), SQLITE_OK);
  ASSERT_TRUE(execute(db_.get(), "COMMIT"));
  EXPECT_EQ(spans(), (std::vector<std::string>{"1-2:5000-5001", "1-1:10-10"}));
  EXPECT_EQ(started(0, 100), (std::vector<IdRange>{{1, 1}}));
}

TEST_F(SpansTest, RangesOfTheSpansThatMayHoldAStartInTheWindowAreMerged) {
  const std::int64_t w = kSpanWidthMs;
  batch({{1, 0}, {2, 10}});                // span A: 1-2 at 0-10
  batch({{3, 2 * w}, {4, 2 * w + 5}});     // span B: 3-4
  batch({{5, 4 * w}});                     // span C: 5
  batch({{6, 10}});                        // span D: 6, an old start inserted late (a backlog)
  EXPECT_EQ(started(0, 10), (std::vector<IdRange>{{1, 2}, {6, 6}}));
  EXPECT_EQ(started(2 * w, 4 * w), (std::vector<IdRange>{{3, 5}}));  // B and C touch: one range
  EXPECT_EQ(started(2 * w + 6, 4 * w - 1), std::vector<IdRange>{});
  EXPECT_EQ(started(5, 4), std::vector<IdRange>{});  // an empty window
  EXPECT_EQ(started(std::numeric_limits<std::int64_t>::min(), std::numeric_limits<std::int64_t>::max()),
            (std::vector<IdRange>{{1, 6}}));
}

// Spans are read from a file someone may have edited: extreme ids merge without overflowing.
TEST_F(SpansTest, ExtremeIdsInAnEditedFileAreMergedWithoutOverflow) {
  const std::string max = std::to_string(std::numeric_limits<std::int64_t>::max());
  ASSERT_TRUE(execute(db_.get(), "INSERT INTO spans VALUES (0, 0, 1, " + max + "), (0, 0, " + max + ", " + max + ")"));
  EXPECT_EQ(started(0, 0), (std::vector<IdRange>{{1, std::numeric_limits<std::int64_t>::max()}}));
}

TEST_F(SpansTest, ManyRangesBecomeOneThatCoversThemAll) {
  // Every other row an old start: as many ranges as rows, until they are merged.
  std::vector<std::pair<std::int64_t, std::int64_t>> rows;
  for (std::int64_t id = 1; id <= 60; ++id) {
    rows.emplace_back(id, id % 2 == 0 ? 0 : 10 * kSpanWidthMs);
  }
  batch(rows);
  EXPECT_EQ(started(0, 0), (std::vector<IdRange>{{2, 60}}));
}

}  // namespace
}  // namespace ctaudit::storage
