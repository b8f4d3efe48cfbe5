// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_budget.hpp"

#include <algorithm>

#include "daemon/event_queue.hpp"
#include "flow/flow_record.hpp"

namespace ctaudit::daemon {

RecordBudget recordBudget(std::size_t queue_max_bytes) noexcept {
  return {std::max(queue_max_bytes - std::min(queue_max_bytes, EventQueue::kChunkBytes), queue_max_bytes / 2),
          std::max<std::size_t>(1, queue_max_bytes / (2 * sizeof(FlowRecord)))};
}

}  // namespace ctaudit::daemon
