// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>

namespace ctaudit::daemon {

// How many records the daemon may hold in memory on their way to the sinks, from --queue-max.
//  - The EventQueue has two buffers that the reader and the pipeline thread swap (one filling,
//    one being worked through), so each may hold SIZE / (2 × sizeof(PipelineItem)) records: the
//    queue never takes more than SIZE.
//  - Each sink's lane in the Batcher, where records wait while that sink cannot write, may hold
//    SIZE / (2 × sizeof(FlowRecord)) records: SIZE/2 per sink.
// So with both sinks the daemon holds at most about 2 × SIZE of records (docs/operations.md).
struct RecordBudget {
  std::size_t queue_records{0};  // per queue buffer
  std::size_t lane_records{0};   // per sink
};

[[nodiscard]] RecordBudget recordBudget(std::size_t queue_max_bytes) noexcept;

}  // namespace ctaudit::daemon
