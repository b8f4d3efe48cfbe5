// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <spdlog/logger.h>

#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/retention.hpp"

namespace ctaudit::daemon {

// Decides when the pipeline thread runs a retention step (storage::FlowExpiry via
// SqliteSink::expire) and how big it is (docs/operations.md, "Retention").
//
// Why on the pipeline thread, between batches, and not on a thread of its own: SQLite lets one
// connection write at a time. An expiry thread with its own connection would hold the write lock
// for each of its transactions, and the sink's BEGIN IMMEDIATE would wait for it (up to its 250 ms
// busy timeout, then Retry): the same serialisation, only with lock waits and timeouts instead of
// a schedule. On the pipeline thread a step simply runs between two batch commits, and the reader
// thread keeps filling the queue meanwhile, so the kernel's socket never waits for it.
//
// The schedule keeps steps short and ingest first:
//  - a step's row budget adapts to its measured time: halved when a step took longer than
//    `step_budget`, doubled (up to `max_rows`) when a full step took less than half of it;
//  - while the pipeline has records to work through, after a step that took d the next is not due
//    before 2d has passed, so expiry takes at most about a third of the pipeline thread and the
//    queue is worked through between any two steps (the Daemon runs no step while it works
//    through a large batch at all); while the pipeline is idle (the queue was empty), a backlog
//    is expired step after step;
//  - once caught up, the next step is due `idle_interval` later; after a failure (the database
//    busy or refusing) `retry_interval` later.
// Owned by the Daemon; not thread-safe (the pipeline thread calls it).
class ExpiryRunner {
public:
  using StepFunction = std::function<Result<storage::ExpiryStep>(Timestamp now, std::size_t max_rows)>;

  struct Options {
    // Deleting in time order hits the indexes at random, so larger steps share more index pages
    // (fewer pages rewritten per row); 20 ms is still far below what the queue absorbs.
    std::chrono::nanoseconds step_budget{std::chrono::milliseconds{20}};
    std::size_t min_rows{64};
    std::size_t max_rows{16384};
    std::size_t initial_rows{1024};
    std::chrono::nanoseconds idle_interval{std::chrono::seconds{10}};
    std::chrono::nanoseconds retry_interval{std::chrono::seconds{5}};
  };

  // Counters for logs and tests.
  struct Stats {
    std::uint64_t steps{0};
    std::uint64_t failures{0};
    std::uint64_t flows_deleted{0};
    std::uint64_t gaps_deleted{0};
    std::uint64_t runs_deleted{0};
    std::chrono::nanoseconds longest_step{0};
    std::optional<Timestamp> horizon;
  };

  // `step` runs one expiry step (SqliteSink::expire); `clock` measures steps and must outlive the
  // runner; `log` is the "sqlite" logger. The first step is due at once.
  ExpiryRunner(StepFunction step, const Clock& clock, Options options, std::shared_ptr<spdlog::logger> log);

  // When the next step is due while the pipeline is busy: for the poll timeout of the daemon's loop.
  [[nodiscard]] Timestamp nextDue() const noexcept { return next_due_; }
  // The last step left work for this horizon (and did not fail): an idle pipeline may run the
  // next one at once.
  [[nodiscard]] bool hasBacklog() const noexcept { return backlog_; }

  // Runs one step when `now` is at or after nextDue(), or when `pipeline_idle` (the pipeline had
  // no records to work through) and hasBacklog(); does nothing otherwise. Never throws
  // (formatting a log line may allocate: as on the rest of the pipeline thread, running out of
  // memory ends the process).
  void runIfDue(Timestamp now, bool pipeline_idle = false) noexcept;

  [[nodiscard]] const Stats& stats() const noexcept { return stats_; }
  [[nodiscard]] std::size_t rowsPerStep() const noexcept { return rows_; }

private:
  void logProgress(Timestamp now, bool caught_up);

  StepFunction step_;
  const Clock& clock_;
  Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::size_t rows_;
  Timestamp next_due_{};
  bool backlog_{false};
  Stats stats_;
  // What the last log line reported, so the next one says what happened since.
  std::uint64_t logged_flows_{0};
  std::optional<Timestamp> next_log_;
  bool caught_up_once_{false};
  bool failure_logged_{false};
};

}  // namespace ctaudit::daemon
