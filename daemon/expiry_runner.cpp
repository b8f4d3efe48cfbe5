// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/expiry_runner.hpp"

#include <algorithm>
#include <utility>

namespace ctaudit::daemon {
namespace {

// While a backlog is being expired, and in steady state, progress is logged at most this often.
constexpr std::chrono::minutes kLogInterval{60};

// While the pipeline has work, a step that took d is followed by at least kBusySpacing * d without
// one: expiry takes at most a third of the pipeline thread. Measured on a 3M-row database at 10k
// flows/s, half was too much: with ingest needing more than the other half, the queue overflowed.
constexpr int kBusySpacing = 2;

double milliseconds(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

}  // namespace

ExpiryRunner::ExpiryRunner(StepFunction step, const Clock& clock, Options options, std::shared_ptr<spdlog::logger> log)
    : step_(std::move(step)),
      clock_(clock),
      options_(options),
      log_(std::move(log)),
      rows_(std::clamp(options.initial_rows, options.min_rows, options.max_rows)) {}

void ExpiryRunner::runIfDue(Timestamp now, bool pipeline_idle) noexcept {
  if (now < next_due_ && !(pipeline_idle && backlog_)) {
    return;
  }
  const Timestamp began = clock_.now();
  const auto step = step_(now, rows_);
  const Timestamp ended = clock_.now();
  const auto took = std::max(ended - began, std::chrono::nanoseconds::zero());
  ++stats_.steps;
  stats_.longest_step = std::max(stats_.longest_step, took);
  if (!step) {
    ++stats_.failures;
    if (!failure_logged_) {
      log_->warn("retention: an expiry step failed, trying again every {}s: {}",
                 std::chrono::duration_cast<std::chrono::seconds>(options_.retry_interval).count(),
                 step.error().detail);
      failure_logged_ = true;
    }
    next_due_ = ended + options_.retry_interval;
    backlog_ = false;
    return;
  }
  if (failure_logged_) {
    log_->info("retention: expiring again");
    failure_logged_ = false;
  }
  stats_.flows_deleted += step->flows_deleted;
  stats_.gaps_deleted += step->gaps_deleted;
  stats_.runs_deleted += step->runs_deleted;
  stats_.horizon = step->horizon;

  // Adapt the row budget to the time a step takes on this disk and database size.
  if (took > options_.step_budget) {
    rows_ = std::max(options_.min_rows, rows_ / 2);
  } else if (took < options_.step_budget / 2 && step->rows_examined >= rows_) {
    rows_ = std::min(options_.max_rows, rows_ * 2);
  }
  next_due_ = step->caught_up ? ended + options_.idle_interval : ended + kBusySpacing * took;
  backlog_ = !step->caught_up;
  logProgress(ended, step->caught_up);
}

void ExpiryRunner::logProgress(Timestamp now, bool caught_up) {
  const bool first_catch_up = caught_up && !caught_up_once_;
  if (!next_log_) {
    next_log_ = now + kLogInterval;
  }
  if (!first_catch_up && now < *next_log_) {
    return;
  }
  caught_up_once_ = caught_up_once_ || caught_up;
  next_log_ = now + kLogInterval;
  log_->info("retention: {} {} flow(s) that ended before {} ({} in total, {} gap(s) and {} run(s); {} steps, the "
             "longest {:.1f} ms)",
             caught_up ? "caught up, expired" : "still expiring, expired", stats_.flows_deleted - logged_flows_,
             stats_.horizon ? formatRfc3339(*stats_.horizon) : std::string{"?"}, stats_.flows_deleted,
             stats_.gaps_deleted, stats_.runs_deleted, stats_.steps, milliseconds(stats_.longest_step));
  logged_flows_ = stats_.flows_deleted;
}

}  // namespace ctaudit::daemon
