// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <algorithm>

#include "daemon/event_queue.hpp"
#include "flow/flow_record.hpp"

namespace ctaudit::daemon {

RecordBudget recordBudget(std::size_t queue_max_bytes) noexcept {
  // Beside the waiting records the queue holds the pipeline's chunk, the spare ones and the newest
  // chunk's unused room (EventQueue); one chunk more covers the few hundred bytes each full chunk
  // leaves unused. At 10M and more that is 5 MiB; below, 3/8 of SIZE waits, in chunks of a quarter
  // of that.
  constexpr std::size_t kBeside = (1 + EventQueue::kSpareChunks + 1 + 1) * EventQueue::kChunkBytes;
  constexpr std::size_t kLarge = 2 * kBeside;
  const std::size_t queue = queue_max_bytes >= kLarge ? queue_max_bytes - kBeside : queue_max_bytes / 8 * 3;
  return {queue,
          std::max<std::size_t>(1, queue_max_bytes / (2 * sizeof(FlowRecord)))};
}

}  // namespace ctaudit::daemon
