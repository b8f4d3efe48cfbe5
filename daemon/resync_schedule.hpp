// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "flow/gap_record.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// The events that arrive at `events_per_second` while a dump takes `dump_time`.
[[nodiscard]] double eventsQueuedDuring(double events_per_second, std::chrono::nanoseconds dump_time) noexcept;

// Whether a dump that takes `dump_time` would queue more than half of the `buffer_events` the
// event socket holds, at `events_per_second`: the reader reads no events while it dumps. A sweep
// is put off then; a resync, which repairs a loss, is not. False when `buffer_events` is 0 (not
// known).
[[nodiscard]] bool dumpWouldCrowdTheSocket(double events_per_second, std::chrono::nanoseconds dump_time,
                                           std::size_t buffer_events) noexcept;

// Decides when the reader dumps the conntrack table to repair what lost events broke, and keeps
// the overrun window that becomes a KernelOverrun gap. Pure: the EventReader tells it what the
// socket did and when; it answers with times and gaps. Owned by the EventReader; one thread.
//
// The overrun window opens at the last moment nothing was known to be lost: the start of the last
// read that succeeded before the first ENOBUFS (a drop sets the socket error, which the next read
// reports before any queued data, so the drop came after that read began), or the last time the
// kernel's drop counter (SO_MEMINFO) was seen unchanged. It closes when a resync settles with no
// loss since its dump began: [start, settle time]. Losses during a resync (more ENOBUFS, a rising
// drop counter, records dropped by the queue) keep the window open and schedule another resync, so
// several overruns coalesce into one window.
//
// A resync waits until no loss has been seen for `quiet` (the kernel's GC sweeps and bursts pass;
// dumping during one only loses more) but no longer than `max_wait` after the first loss, so a
// sustained overload still closes its windows. After a failed dump it waits `max_wait`.
class ResyncSchedule {
public:
  struct Options {
    std::chrono::nanoseconds quiet{std::chrono::seconds{1}};
    std::chrono::nanoseconds max_wait{std::chrono::seconds{30}};
  };

  // `start`: when the event socket was subscribed; `drops`: the kernel's drop counter then.
  ResyncSchedule(Options options, Timestamp start, std::uint64_t drops) noexcept;

  // A read that began at `read_start` returned data without an error (default mode only: with
  // NETLINK_NO_ENOBUFS a read proves nothing).
  void noteCleanRead(Timestamp read_start) noexcept;
  // The event socket reported ENOBUFS at `now`.
  void noteOverrun(Timestamp now) noexcept;
  // The kernel's drop counter for the socket was `drops` at `now` (monotonic).
  void noteDrops(Timestamp now, std::uint64_t drops) noexcept;
  // Records were dropped at `now` before they reached the pipeline (the queue was full): the flow
  // table needs a resync, but the gap is the queue's to report.
  void noteQueueLoss(Timestamp now) noexcept;
  // A dump is wanted at `now` though nothing was lost: a sweep for flows that may never report
  // their end. Ignored while a resync is due or under way, which serves as well.
  void requestSweep(Timestamp now) noexcept;
  // The resync due is only a sweep: no loss was noted since it was asked for.
  [[nodiscard]] bool sweepOnly() const noexcept { return need_resync_ && sweep_only_; }

  // When the next resync is due; nullopt when none is needed or one is in progress.
  [[nodiscard]] std::optional<Timestamp> nextResyncAt() const noexcept;
  [[nodiscard]] bool resyncDue(Timestamp now) const noexcept;

  void dumpStarted(Timestamp now) noexcept;
  void dumpFailed(Timestamp now) noexcept;
  void dumpFinished(Timestamp now) noexcept;
  // A dump has finished and the socket has not been read empty since.
  [[nodiscard]] bool settling() const noexcept { return phase_ == Phase::Settling; }

  struct Settled {
    bool settled{false};            // a dump settled: the reader pushes ResyncSettled
    std::optional<GapRecord> gap;   // the overrun window closed with it
  };
  // The event socket was read empty at `now`, its drop counter being `drops`.
  [[nodiscard]] Settled noteEmpty(Timestamp now, std::uint64_t drops) noexcept;

  // At shutdown: the overrun window, if one is open, as a gap ending at `now`.
  [[nodiscard]] std::optional<GapRecord> abandon(Timestamp now, std::uint64_t drops) noexcept;

  [[nodiscard]] bool windowOpen() const noexcept { return window_open_; }
  // Where the open overrun window starts, while one is open: its gap is pushed only when it closes.
  [[nodiscard]] std::optional<Timestamp> openWindowStart() const noexcept {
    return window_open_ ? std::optional<Timestamp>(window_start_) : std::nullopt;
  }

private:
  enum class Phase : std::uint8_t { Idle, Dumping, Settling };
  void openWindow() noexcept;
  void noteLoss(Timestamp now) noexcept;
  [[nodiscard]] GapRecord closeWindow(Timestamp now) noexcept;

  Options options_;
  Phase phase_{Phase::Idle};

  // Evidence: until this time nothing was lost (while no window is open).
  Timestamp clean_since_;
  std::uint64_t last_drops_;

  bool window_open_{false};
  Timestamp window_start_{};
  std::uint64_t window_drops_base_{0};
  std::uint64_t window_overruns_{0};

  bool need_resync_{false};
  bool sweep_only_{false};
  bool dumping_sweep_{false};  // the dump under way is a sweep
  bool loss_during_resync_{false};
  Timestamp first_loss_{};
  Timestamp last_loss_{};
  Timestamp not_before_{};
};

}  // namespace ctaudit::daemon
