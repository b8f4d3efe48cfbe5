// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <algorithm>

#include "daemon/event_queue.hpp"
#include "flow/flow_record.hpp"

namespace ctaudit::daemon {

RecordBudget recordBudget(std::size_t queue_max_bytes) noexcept {
  // Beside the waiting records the queue holds up to four chunks (EventQueue): at 10M and more,
  // five 1 MiB chunks' worth is left for them and the chunks' slack; below, 3/8 of SIZE waits, in
  // chunks of a quarter of that.
  constexpr std::size_t kLarge = 10 * EventQueue::kChunkBytes;
  const std::size_t queue = queue_max_bytes >= kLarge ? queue_max_bytes - 5 * EventQueue::kChunkBytes
                                                      : queue_max_bytes / 8 * 3;
  return {queue,
          std::max<std::size_t>(1, queue_max_bytes / (2 * sizeof(FlowRecord)))};
}

}  // namespace ctaudit::daemon
