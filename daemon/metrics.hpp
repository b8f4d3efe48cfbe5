// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "daemon/batcher.hpp"
#include "daemon/expiry_runner.hpp"
#include "daemon/pipeline.hpp"
#include "daemon/pipeline_item.hpp"
#include "daemon/process_memory.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// Everything the stats file reports, gathered by the Daemon on the pipeline thread: the reader's
// counters as last published through the EventQueue, the queue, the pipeline, the sinks.
struct MetricsSnapshot {
  Timestamp start_time{};
  bool reliable{false};
  ReaderStats reader;
  std::size_t queue_records{0};      // waiting in the queue plus being worked through
  std::size_t queue_records_max{0};  // the most that ever waited
  std::size_t queue_bytes{0};           // packed size of the records waiting in the queue
  std::size_t queue_capacity_bytes{0};  // what the queue may hold
  PipelineStats pipeline;
  std::size_t open_flows{0};
  std::vector<Batcher::SinkState> sinks;
  std::uint64_t sink_failure_gaps{0};
  // Unknown without /proc; then no memory metric is written.
  std::optional<ProcessMemory> memory;
  // With --retention only; without it no retention metric is written.
  std::optional<ExpiryRunner::Stats> retention;
};

// The snapshot in the Prometheus text exposition format (version 0.0.4), as node_exporter's
// textfile collector reads it. Every metric is named ctauditd_*; docs/operations.md lists them.
[[nodiscard]] std::string formatMetrics(const MetricsSnapshot& snapshot);

}  // namespace ctaudit::daemon
