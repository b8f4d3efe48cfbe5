// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>

namespace ctaudit::daemon {

// How much the daemon may hold in memory on its way to the sinks, from --queue-max.
//  - The EventQueue's waiting chunks may hold SIZE less 5 MiB of packed records (record_codec.hpp;
//    3/8 of SIZE below 10M): with the pipeline thread's chunk, the spare ones and their unused
//    room, the queue never takes more than SIZE.
//  - Each sink's lane in the Batcher, where records wait while that sink cannot write, may hold
//    SIZE / (2 × sizeof(FlowRecord)) records: SIZE/2 per sink.
// So with both sinks the daemon holds at most about 2 × SIZE of records (docs/operations.md).
struct RecordBudget {
  std::size_t queue_bytes{0};   // waiting in the queue's chunks
  std::size_t lane_records{0};  // per sink
};

[[nodiscard]] RecordBudget recordBudget(std::size_t queue_max_bytes) noexcept;

}  // namespace ctaudit::daemon
