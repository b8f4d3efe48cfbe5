// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/read_pacing.hpp"

#include <algorithm>
#include <cstdint>

namespace ctaudit::daemon {
namespace {

// `nanos` within [pacing.min, pacing.max] (max never below min). In double until then: an idle
// hour times the target, or a buffer of terabytes, need not fit in 64 bits.
std::chrono::nanoseconds bounded(const ReadPacing& pacing, double nanos) noexcept {
  const std::chrono::nanoseconds top = std::max(pacing.max, pacing.min);
  if (nanos >= static_cast<double>(top.count())) {
    return top;
  }
  return std::max(std::chrono::nanoseconds{static_cast<std::int64_t>(nanos)}, pacing.min);
}

}  // namespace

std::chrono::nanoseconds ReadPacing::next(std::size_t records, std::chrono::nanoseconds interval) const noexcept {
  if (records == 0) {
    return std::max(max, min);
  }
  // interval / records is the time one record took to arrive; `target_records` of them is the wait.
  return bounded(*this, static_cast<double>(interval.count()) * static_cast<double>(target_records) /
                            static_cast<double>(records));
}

std::chrono::nanoseconds ReadPacing::maxFor(std::size_t bytes) const noexcept {
  return bounded(*this, static_cast<double>(bytes) / 4.0 / kKernelQueueBytesPerSecond * 1e9);
}

}  // namespace ctaudit::daemon
