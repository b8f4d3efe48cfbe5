// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/expiry_runner.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include <vector>

#include "tests/support/manual_clock.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using storage::ExpiryStep;

// A fake expiry: each call takes `cost_per_row * max_rows` of clock time (the clock moves during
// the step, as a real one would) and reports a backlog until `backlog_rows` are used up.
class ExpiryRunnerTest : public ::testing::Test {
protected:
  ExpiryRunner make(ExpiryRunner::Options options = {}) {
    return ExpiryRunner(
        [this](Timestamp now, std::size_t max_rows) -> Result<ExpiryStep> {
          calls.emplace_back(now, max_rows);
          if (fail_next) {
            fail_next = false;
            return fail(Errc::Storage, "database is locked");
          }
          clock.advance(cost_per_row * static_cast<std::int64_t>(max_rows));
          ExpiryStep step;
          step.horizon = now - 24h;
          step.rows_examined = std::min(max_rows, backlog_rows);
          step.flows_deleted = step.rows_examined;
          backlog_rows -= step.rows_examined;
          step.caught_up = backlog_rows == 0;
          return step;
        },
        clock, options, std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>()));
  }

  testing::ManualClock clock;
  std::chrono::nanoseconds cost_per_row{1us};
  std::size_t backlog_rows{100'000};
  bool fail_next{false};
  std::vector<std::pair<Timestamp, std::size_t>> calls;
};

TEST_F(ExpiryRunnerTest, TheFirstStepIsDueAtOnceAndOnlyWhenDue) {
  auto runner = make();
  EXPECT_LE(runner.nextDue(), clock.now());
  runner.runIfDue(clock.now());
  ASSERT_EQ(calls.size(), 1U);
  runner.runIfDue(clock.now());  // the step took time: the next is due as long after it
  EXPECT_EQ(calls.size(), 1U);
  EXPECT_GT(runner.nextDue(), clock.now());
}

TEST_F(ExpiryRunnerTest, RowsAdaptToTheStepBudgetAndStayWithinBounds) {
  ExpiryRunner::Options options;
  options.step_budget = 10ms;
  options.initial_rows = 1000;
  options.max_rows = 8192;
  options.min_rows = 64;
  cost_per_row = 50us;  // 1000 rows = 50 ms: too slow
  auto runner = make(options);
  for (int i = 0; i < 20; ++i) {
    clock.set(std::max(clock.now(), runner.nextDue()));
    runner.runIfDue(clock.now());
  }
  // 10 ms / 50 us = 200 rows: it settles between 100 and 200, each step within twice the budget.
  EXPECT_LE(runner.rowsPerStep(), 200U);
  EXPECT_GE(runner.rowsPerStep(), 100U);
  for (std::size_t i = 5; i < calls.size(); ++i) {
    EXPECT_LE(cost_per_row * static_cast<std::int64_t>(calls[i].second), 2 * options.step_budget);
  }

  cost_per_row = 100ns;  // a fast disk: grows up to max_rows and no further
  for (int i = 0; i < 20; ++i) {
    clock.set(std::max(clock.now(), runner.nextDue()));
    runner.runIfDue(clock.now());
  }
  EXPECT_EQ(runner.rowsPerStep(), 8192U);
}

TEST_F(ExpiryRunnerTest, ABacklogTakesAtMostAThirdOfABusyPipelineAndCaughtUpWaitsTheIdleInterval) {
  ExpiryRunner::Options options;
  options.idle_interval = 10s;
  backlog_rows = 50'000;
  auto runner = make(options);
  const Timestamp began = clock.now();
  std::chrono::nanoseconds busy{0};
  std::chrono::nanoseconds last{0};
  while (backlog_rows > 0) {
    clock.set(std::max(clock.now(), runner.nextDue()));
    const Timestamp before = clock.now();
    runner.runIfDue(clock.now());
    last = clock.now() - before;
    busy += last;
  }
  // Each step but the last was followed by a pause twice as long.
  const auto elapsed = clock.now() - began;
  EXPECT_EQ(busy * 3 - 2 * last, elapsed);
  EXPECT_GT(calls.size(), 3U);
  EXPECT_EQ(runner.stats().flows_deleted, 50'000U);
  EXPECT_EQ(runner.nextDue(), clock.now() + 10s);
}

TEST_F(ExpiryRunnerTest, AnIdlePipelineLetsABacklogRunStepAfterStep) {
  ExpiryRunner::Options options;
  options.idle_interval = 10s;
  backlog_rows = 3000;
  options.initial_rows = 1000;
  options.max_rows = 1000;
  auto runner = make(options);
  runner.runIfDue(clock.now());
  ASSERT_TRUE(runner.hasBacklog());
  runner.runIfDue(clock.now(), false);  // busy: waits as long as the step took
  EXPECT_EQ(calls.size(), 1U);
  runner.runIfDue(clock.now(), true);  // idle: at once
  EXPECT_EQ(calls.size(), 2U);
  runner.runIfDue(clock.now(), true);
  EXPECT_EQ(calls.size(), 3U);
  EXPECT_FALSE(runner.hasBacklog());
  runner.runIfDue(clock.now(), true);  // caught up: the idle interval holds even when idle
  EXPECT_EQ(calls.size(), 3U);
  clock.advance(10s);
  runner.runIfDue(clock.now(), false);
  EXPECT_EQ(calls.size(), 4U);
}

TEST_F(ExpiryRunnerTest, AFailureIsRetriedLater) {
  ExpiryRunner::Options options;
  options.retry_interval = 5s;
  auto runner = make(options);
  fail_next = true;
  runner.runIfDue(clock.now());
  EXPECT_EQ(runner.stats().failures, 1U);
  EXPECT_EQ(runner.nextDue(), clock.now() + 5s);
  clock.advance(5s);
  runner.runIfDue(clock.now());
  EXPECT_EQ(runner.stats().steps, 2U);
  EXPECT_GT(runner.stats().flows_deleted, 0U);
}

}  // namespace
}  // namespace ctaudit::daemon
