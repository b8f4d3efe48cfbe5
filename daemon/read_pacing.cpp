// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/read_pacing.hpp"

#include <algorithm>
#include <cstdint>

namespace ctaudit::daemon {

std::chrono::nanoseconds ReadPacing::next(std::size_t records, std::chrono::nanoseconds interval) const noexcept {
  if (records == 0) {
    return max;
  }
  // interval / records is the time one record took to arrive; `target_records` of them is the wait.
  // In double: an idle hour times the target would still fit in 64 bits, but need not be trusted to.
  const double wait = static_cast<double>(interval.count()) * static_cast<double>(target_records) /
                      static_cast<double>(records);
  if (wait >= static_cast<double>(max.count())) {
    return std::max(max, min);
  }
  return std::clamp(std::chrono::nanoseconds{static_cast<std::int64_t>(wait)}, min, std::max(max, min));
}

std::chrono::nanoseconds ReadPacing::maxFor(std::size_t bytes) const noexcept {
  const double seconds = static_cast<double>(bytes) / 4.0 / kKernelQueueBytesPerSecond;
  const double limit = seconds * 1e9;
  if (limit >= static_cast<double>(max.count())) {
    return std::max(max, min);
  }
  return std::clamp(std::chrono::nanoseconds{static_cast<std::int64_t>(limit)}, min, std::max(max, min));
}

}  // namespace ctaudit::daemon
