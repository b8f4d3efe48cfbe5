// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/resync_schedule.hpp"

#include <algorithm>

namespace ctaudit::daemon {

double eventsQueuedDuring(double events_per_second, std::chrono::nanoseconds dump_time) noexcept {
  return events_per_second * std::chrono::duration<double>(dump_time).count();
}

bool dumpWouldCrowdTheSocket(double events_per_second, std::chrono::nanoseconds dump_time,
                             std::size_t buffer_events) noexcept {
  return buffer_events != 0 &&
         eventsQueuedDuring(events_per_second, dump_time) > static_cast<double>(buffer_events) / 2;
}

ResyncSchedule::ResyncSchedule(Options options, Timestamp start, std::uint64_t drops) noexcept
    : options_(options), clean_since_(start), last_drops_(drops) {}

void ResyncSchedule::noteCleanRead(Timestamp read_start) noexcept {
  if (!window_open_) {
    clean_since_ = std::max(clean_since_, read_start);
  }
}

void ResyncSchedule::openWindow() noexcept {
  if (window_open_) {
    return;
  }
  window_open_ = true;
  window_start_ = clean_since_;
  window_drops_base_ = last_drops_;
  window_overruns_ = 0;
}

void ResyncSchedule::noteLoss(Timestamp now) noexcept {
  if (!need_resync_) {
    first_loss_ = now;
  }
  need_resync_ = true;
  sweep_only_ = false;
  last_loss_ = now;
  if (phase_ != Phase::Idle) {
    loss_during_resync_ = true;
  }
}

void ResyncSchedule::noteOverrun(Timestamp now) noexcept {
  openWindow();
  ++window_overruns_;
  noteLoss(now);
}

void ResyncSchedule::noteDrops(Timestamp now, std::uint64_t drops) noexcept {
  if (drops > last_drops_) {
    openWindow();  // with the count from before these drops as its base
    last_drops_ = drops;
    noteLoss(now);
  } else if (!window_open_) {
    clean_since_ = std::max(clean_since_, now);
  }
}

void ResyncSchedule::noteQueueLoss(Timestamp now) noexcept { noteLoss(now); }

void ResyncSchedule::requestSweep(Timestamp now) noexcept {
  if (phase_ != Phase::Idle || need_resync_) {
    return;
  }
  need_resync_ = true;
  sweep_only_ = true;
  first_loss_ = now;
  last_loss_ = now - options_.quiet;  // due at once
}

std::optional<Timestamp> ResyncSchedule::nextResyncAt() const noexcept {
  if (phase_ != Phase::Idle || !need_resync_) {
    return std::nullopt;
  }
  const Timestamp due = std::min(last_loss_ + options_.quiet, first_loss_ + options_.max_wait);
  return std::max(due, not_before_);
}

bool ResyncSchedule::resyncDue(Timestamp now) const noexcept {
  const auto next = nextResyncAt();
  return next && now >= *next;
}

void ResyncSchedule::dumpStarted(Timestamp /*now*/) noexcept {
  phase_ = Phase::Dumping;
  dumping_sweep_ = need_resync_ && sweep_only_;
  need_resync_ = false;
  loss_during_resync_ = false;
}

void ResyncSchedule::dumpFailed(Timestamp now) noexcept {
  phase_ = Phase::Idle;
  if (dumping_sweep_ && !loss_during_resync_) {
    requestSweep(now);  // still a sweep: nothing was lost
  } else {
    noteLoss(now);
  }
  not_before_ = now + options_.max_wait;
}

void ResyncSchedule::dumpFinished(Timestamp /*now*/) noexcept { phase_ = Phase::Settling; }

GapRecord ResyncSchedule::closeWindow(Timestamp now) noexcept {
  GapRecord gap;
  gap.reason = GapReason::KernelOverrun;
  gap.start = window_start_;
  gap.end = now;
  gap.lost_records = last_drops_ - window_drops_base_;
  gap.overruns = window_overruns_;
  window_open_ = false;
  clean_since_ = now;
  return gap;
}

ResyncSchedule::Settled ResyncSchedule::noteEmpty(Timestamp now, std::uint64_t drops) noexcept {
  noteDrops(now, drops);
  Settled result;
  if (phase_ != Phase::Settling) {
    return result;
  }
  phase_ = Phase::Idle;
  result.settled = true;
  if (window_open_ && !loss_during_resync_) {
    result.gap = closeWindow(now);
  }
  return result;
}

std::optional<GapRecord> ResyncSchedule::abandon(Timestamp now, std::uint64_t drops) noexcept {
  noteDrops(now, drops);
  if (!window_open_) {
    return std::nullopt;
  }
  return closeWindow(now);
}

}  // namespace ctaudit::daemon
