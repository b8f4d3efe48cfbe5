// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>

namespace ctaudit::daemon {

// How long the reader thread waits after its socket turns readable before it reads it empty
// (EventReader): long enough that one wake takes about `target_records` at the rate the last turn
// saw, within [min, max]. Each wake costs the reader two context switches and the pipeline one,
// which at a low rate are most of what an event costs: at 1k events/s the loader's 32-event bursts
// woke the reader 31 times a second for 10 ms waits, and the switches were the largest single item
// of its profile. At 150k events/s a 10 ms wait already takes 1,500 events, and the wait stays
// near `min`. `max` is above what the default 256 MiB receive buffer allows (maxFor: 224 ms), so
// that the buffer, not a round number, sets the longest wait: at 1k and 5k events/s the 224 ms
// wait cost 2-9 % and 6 % less CPU per event than a 100 ms one (bench/cpu_ab.sh, 2026-11-27).
struct ReadPacing {
  std::chrono::nanoseconds min{std::chrono::milliseconds{10}};
  std::chrono::nanoseconds max{std::chrono::milliseconds{250}};
  std::size_t target_records{2048};

  // The wait before the next turn, after a turn that read `records` in the `interval` since the
  // turn before it ended.
  [[nodiscard]] std::chrono::nanoseconds next(std::size_t records, std::chrono::nanoseconds interval) const noexcept;

  // The longest wait a receive buffer of `bytes` allows: what the kernel queues at its fastest
  // (kKernelQueueBytesPerSecond) in the wait must leave three quarters of the buffer free, for a
  // burst that starts during it. Never below `min` nor above `max`.
  [[nodiscard]] std::chrono::nanoseconds maxFor(std::size_t bytes) const noexcept;

  // ~250k events a second (the fastest this machine's kernel made them, docs/benchmarks.md) of
  // ~1.2 KiB each as the receive buffer counts them (the skb's truesize, not the message's ~400
  // bytes).
  static constexpr double kKernelQueueBytesPerSecond = 300e6;
};

}  // namespace ctaudit::daemon
