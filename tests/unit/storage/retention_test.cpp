// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/retention.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>
#include <vector>

#include "storage/flow_reader.hpp"
#include "storage/sqlite_sink.hpp"
#include "tests/support/flow_builders.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/storage/sqlite_test_util.hpp"

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::at;
using ctaudit::testing::flowEvent;
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::TempDir;
using ctaudit::testing::withSnat;
using testing::count;
using testing::openRaw;
using testing::scalar;

// Retention of 500 s: at now = at(1000s) the horizon is at(500s).
constexpr std::chrono::nanoseconds kPeriod = 500s;

class RetentionTest : public ::testing::Test {
protected:
  void SetUp() override { reopen(); }

  void reopen() {
    sink_.reset();
    auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
    ASSERT_TRUE(sink) << sink.error().detail;
    sink_ = std::move(*sink);
    ASSERT_TRUE(sink_->enableRetention(kPeriod));
  }

  // Flow number `n` (its own conntrack id and source port), opened at `start` and, unless
  // `end` is nullopt, closed at `end`. Returns its row id.
  std::int64_t flow(std::uint32_t n, Timestamp start, std::optional<Timestamp> end) {
    const auto tuple = portTuple(Protocol::Tcp, "100.64.0.2", static_cast<std::uint16_t>(1000 + n), "198.51.100.1", 443);
    const auto reply = withSnat(replyOf(tuple), "203.0.113.1", static_cast<std::uint16_t>(1000 + n));
    std::vector<FlowRecord> batch{flowEvent(EventType::New, n, tuple, reply, start)};
    if (end) {
      batch.push_back(flowEvent(EventType::Destroy, n, tuple, reply, *end));
    }
    EXPECT_EQ(sink_->write(batch), SinkStatus::Ok);
    const SqliteDb db = openRaw(path_);
    return count(db.get(), "SELECT max(id) FROM flows");
  }

  // Steps until caught up; returns the steps taken (at most `limit`).
  std::vector<ExpiryStep> expireAll(Timestamp now, std::size_t max_rows = 1000, std::size_t limit = 10000) {
    std::vector<ExpiryStep> steps;
    while (steps.size() < limit) {
      auto step = sink_->expire(now, max_rows);
      EXPECT_TRUE(step) << step.error().detail;
      if (!step) {
        break;
      }
      steps.push_back(*step);
      if (step->caught_up) {
        break;
      }
    }
    return steps;
  }

  std::set<std::int64_t> ids() {
    const SqliteDb db = openRaw(path_);
    std::set<std::int64_t> result;
    sqlite3_stmt* raw = nullptr;
    sqlite3_prepare_v2(db.get(), "SELECT id FROM flows", -1, &raw, nullptr);
    const SqliteStmt stmt(raw);
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
      result.insert(sqlite3_column_int64(stmt.get(), 0));
    }
    return result;
  }

  std::string meta(const std::string& key) {
    const SqliteDb db = openRaw(path_);
    return scalar(db.get(), "SELECT value FROM meta WHERE key = '" + key + "'");
  }

  static std::size_t deleted(const std::vector<ExpiryStep>& steps) {
    std::size_t total = 0;
    for (const auto& step : steps) {
      total += step.flows_deleted;
    }
    return total;
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "flows.db";
  std::unique_ptr<SqliteSink> sink_;
};

TEST_F(RetentionTest, DeletesExactlyTheFlowsThatEndedBeforeTheHorizon) {
  const auto ended_early = flow(1, at(10s), at(20s));
  const auto spans_horizon = flow(2, at(30s), at(700s));  // started long before, ended after: stays whole
  const auto open_old = flow(3, at(40s), std::nullopt);    // open since long before: stays
  // Rows keep whole milliseconds with the end rounded up, so "just before" is a millisecond: an end
  // 1 ns before the horizon is stored as the horizon's millisecond and stays until the next one.
  const auto ended_just_before = flow(4, at(100s), at(500s) - 1ms);
  const auto ends_at_horizon = flow(5, at(110s), at(500s));  // not before the horizon: stays
  const auto recent = flow(6, at(600s), at(650s));
  const auto recent_open = flow(7, at(800s), std::nullopt);

  const auto steps = expireAll(at(1000s));
  ASSERT_FALSE(steps.empty());
  EXPECT_TRUE(steps.back().caught_up);
  EXPECT_EQ(steps.back().horizon, at(500s));
  EXPECT_EQ(deleted(steps), 2U);
  EXPECT_EQ(ids(), (std::set{spans_horizon, open_old, ends_at_horizon, recent, recent_open}));
  EXPECT_FALSE(ids().contains(ended_early));
  EXPECT_FALSE(ids().contains(ended_just_before));
}

// The spans of expired rows go with them (spans.hpp), and every row left still lies in a span.
TEST_F(RetentionTest, DropsTheSpansOfExpiredRowsAndKeepsTheOthers) {
  // Starts over a minute apart: a span each.
  for (std::uint32_t n = 1; n <= 8; ++n) {
    flow(n, at(std::chrono::seconds(70 * n)), at(std::chrono::seconds(70 * n + 5)));
  }
  flow(9, at(700s), at(750s));
  const SqliteDb db = openRaw(path_);
  ASSERT_EQ(count(db.get(), "SELECT count(*) FROM spans"), 9);
  expireAll(at(1000s));  // the horizon at 500 s: flows 1 to 7 ended before it (7 at 495 s)
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows"), 2);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM spans"), 2);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows f WHERE NOT EXISTS (SELECT 1 FROM spans s WHERE f.id BETWEEN "
                            "s.first_id AND s.last_id AND f.start_ms BETWEEN s.min_start_ms AND s.max_start_ms)"),
            0);
}

TEST_F(RetentionTest, ALongFlowGoesOnceTheHorizonPassesItsEndAndAnOpenOneNever) {
  const auto spans = flow(1, at(10s), at(700s));
  const auto open_old = flow(2, at(20s), std::nullopt);
  const auto recent = flow(3, at(900s), at(950s));
  expireAll(at(1000s));
  ASSERT_EQ(ids(), (std::set{spans, open_old, recent}));
  // The walk is past both old rows: they are remembered, not walked again.
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM retention_pending"), 2);

  // Horizon at(701s): the long flow ended before it.
  const auto steps = expireAll(at(1201s));
  EXPECT_EQ(deleted(steps), 1U);
  EXPECT_EQ(ids(), (std::set{open_old, recent}));
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM retention_pending"), 1);

  // A year later the open flow is still there; the recent one is gone.
  expireAll(at(1000s) + 8760h);
  EXPECT_EQ(ids(), (std::set{open_old}));
}

TEST_F(RetentionTest, WalkStopsAtTheFirstFlowThatStartedAfterTheHorizon) {
  flow(1, at(10s), at(20s));
  const auto frontier = flow(2, at(600s), at(610s));
  // Inserted after the frontier; ended before the horizon only on paper (a clock stepped back).
  const auto behind = flow(3, at(30s), at(40s));
  const auto steps = expireAll(at(1000s));
  EXPECT_EQ(deleted(steps), 1U);
  EXPECT_EQ(sink_->expire(at(1000s), 1000)->rows_examined, 0U);  // nothing to walk until the horizon moves
  EXPECT_TRUE(ids().contains(frontier));
  EXPECT_TRUE(ids().contains(behind));
  // Once the frontier row is older than the horizon the walk passes it and finds the other.
  expireAll(at(1200s));
  EXPECT_EQ(ids(), (std::set<std::int64_t>{}));
}

// SQLite gives a new row max(rowid) + 1: after the newest rows were deleted, ids are reused below
// where the walk has been. The cursor must come back down, or those rows would never expire.
TEST_F(RetentionTest, RowsThatReuseTheIdsOfDeletedOnesStillExpire) {
  flow(1, at(10s), at(20s));
  const auto open_row = flow(2, at(30s), std::nullopt);
  flow(3, at(40s), at(50s));
  expireAll(at(1000s));
  ASSERT_EQ(ids(), (std::set{open_row}));
  EXPECT_EQ(std::stoll(meta("retention_cursor_id")), open_row + 1);
  const auto reused = flow(4, at(600s), at(610s));
  EXPECT_EQ(reused, open_row + 1);  // the id of the deleted row 3
  expireAll(at(1200s));
  EXPECT_EQ(ids(), (std::set{open_row}));
}

TEST_F(RetentionTest, ARowDatedIntoTheFutureDoesNotBlockTheWalk) {
  const auto future = flow(1, at(1000s) + 72h, std::nullopt);  // a clock running days ahead
  flow(2, at(10s), at(20s));
  expireAll(at(1000s));
  EXPECT_EQ(ids(), (std::set{future}));
}

TEST_F(RetentionTest, EachStepLooksAtNoMoreThanItsRows) {
  std::vector<FlowRecord> batch;
  for (std::uint32_t n = 0; n < 5000; ++n) {
    const auto tuple = portTuple(Protocol::Udp, "100.64.0.3", static_cast<std::uint16_t>(10000 + n), "198.51.100.1", 53);
    batch.push_back(flowEvent(EventType::Destroy, n, tuple, replyOf(tuple), at(std::chrono::milliseconds{n})));
  }
  ASSERT_EQ(sink_->write(batch), SinkStatus::Ok);
  const auto steps = expireAll(at(1000s), 700);
  ASSERT_GE(steps.size(), 5000U / 700U);
  for (const auto& step : steps) {
    EXPECT_LE(step.rows_examined, 700U);
    EXPECT_LE(step.flows_deleted, 700U);
  }
  EXPECT_EQ(deleted(steps), 5000U);
  EXPECT_TRUE(ids().empty());
}

TEST_F(RetentionTest, TheCursorSurvivesARestart) {
  for (std::uint32_t n = 0; n < 30; ++n) {
    flow(n, at(std::chrono::seconds{n}), at(std::chrono::seconds{n} + 1s));
  }
  const auto spans = flow(100, at(40s), at(900s));
  flow(101, at(600s), std::nullopt);
  // The first step is a (empty) pass over remembered rows; then 10 rows per step.
  ASSERT_TRUE(sink_->expire(at(1000s), 10));
  ASSERT_TRUE(sink_->expire(at(1000s), 10));
  const std::string cursor = meta("retention_cursor_id");
  ASSERT_FALSE(cursor.empty());
  EXPECT_EQ(std::stoll(cursor), 11);  // rows 1..10 walked
  EXPECT_EQ(ids().size(), 22U);

  reopen();
  {
    const SqliteDb second = openRaw(path_);  // another connection reads the same cursor
    auto expiry = FlowExpiry::open(second.get(), kPeriod);
    ASSERT_TRUE(expiry);
    EXPECT_EQ((*expiry)->cursor(), 11);
  }
  const auto steps = expireAll(at(1000s), 10);
  EXPECT_EQ(deleted(steps), 20U);
  EXPECT_EQ(ids().size(), 2U);
  EXPECT_TRUE(ids().contains(spans));
}

TEST_F(RetentionTest, RecordsTheHorizonAndNeverMovesItBack) {
  flow(1, at(10s), at(20s));
  expireAll(at(1000s));
  EXPECT_EQ(meta("retention_horizon_ns"), std::to_string(toUnixNanos(at(500s))));
  EXPECT_EQ(meta("retention_period_ns"), std::to_string(kPeriod.count()));

  // The clock stepped back a minute: the horizon stays.
  auto step = sink_->expire(at(940s), 1000);
  ASSERT_TRUE(step);
  EXPECT_EQ(step->horizon, at(500s));
  EXPECT_EQ(meta("retention_horizon_ns"), std::to_string(toUnixNanos(at(500s))));

  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  const auto horizon = (*reader)->retentionHorizon();
  ASSERT_TRUE(horizon);
  ASSERT_TRUE(*horizon);
  EXPECT_EQ(**horizon, (RetentionHorizon{at(500s), kPeriod}));
}

TEST_F(RetentionTest, AReaderOfAFileNeverExpiredSeesNoHorizon) {
  flow(1, at(10s), at(20s));
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  const auto horizon = (*reader)->retentionHorizon();
  ASSERT_TRUE(horizon);
  EXPECT_FALSE(*horizon);
}

TEST_F(RetentionTest, AMalformedHorizonIsAnError) {
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "INSERT INTO meta VALUES ('retention_horizon_ns', 'soon')", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  const auto horizon = (*reader)->retentionHorizon();
  ASSERT_FALSE(horizon);
  EXPECT_NE(horizon.error().detail.find("retention_horizon_ns"), std::string::npos);
}

TEST_F(RetentionTest, ExpiresGapsAndRunsThatEndedBeforeTheHorizon) {
  GapRecord old_gap;
  old_gap.reason = GapReason::KernelOverrun;
  old_gap.start = at(10s);
  old_gap.end = at(20s);
  GapRecord spanning = old_gap;
  spanning.start = at(490s);
  spanning.end = at(510s);
  ASSERT_EQ(sink_->writeGap(old_gap), SinkStatus::Ok);
  ASSERT_EQ(sink_->writeGap(spanning), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(),
                           ("INSERT INTO runs (started_ns, alive_ns, stopped_ns, version, observer_hostname) VALUES (" +
                            std::to_string(toUnixNanos(at(0s))) + ", " + std::to_string(toUnixNanos(at(100s))) + ", " +
                            std::to_string(toUnixNanos(at(100s))) + ", 't', 'h'), (" +
                            std::to_string(toUnixNanos(at(200s))) + ", " + std::to_string(toUnixNanos(at(600s))) +
                            ", NULL, 't', 'h'), (" + std::to_string(toUnixNanos(at(300s))) + ", " +
                            std::to_string(toUnixNanos(at(300s))) + ", NULL, 't', 'h')")
                               .c_str(),
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  const auto steps = expireAll(at(1000s));
  std::size_t gaps = 0;
  std::size_t runs = 0;
  for (const auto& step : steps) {
    gaps += step.gaps_deleted;
    runs += step.runs_deleted;
  }
  EXPECT_EQ(gaps, 1U);
  EXPECT_EQ(runs, 1U);  // the run logged up to 100 s; the newest run (alive at 300 s) is never deleted
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM gaps WHERE start_ns = " + std::to_string(toUnixNanos(at(490s)))), 1);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM runs"), 2);
}

TEST_F(RetentionTest, ABusyDatabaseKeepsNothingOfTheStep) {
  flow(1, at(10s), at(20s));
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto step = sink_->expire(at(1000s), 1000);
  ASSERT_FALSE(step);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(ids().size(), 1U);
  EXPECT_EQ(meta("retention_horizon_ns"), "");
  expireAll(at(1000s));
  EXPECT_TRUE(ids().empty());
}

TEST(RetentionDisabledTest, ExpireWithoutRetentionIsAnError) {
  TempDir dir;
  auto sink = SqliteSink::open(dir / "flows.db", "h", testing::nullLogger());
  ASSERT_TRUE(sink);
  const auto step = (*sink)->expire(at(0s), 10);
  ASSERT_FALSE(step);
  EXPECT_EQ(step.error().code, Errc::Config);
}

TEST(RetentionDisabledTest, APeriodMustBePositive) {
  TempDir dir;
  auto sink = SqliteSink::open(dir / "flows.db", "h", testing::nullLogger());
  ASSERT_TRUE(sink);
  EXPECT_FALSE((*sink)->enableRetention(0s));
}

}  // namespace
}  // namespace ctaudit::storage
