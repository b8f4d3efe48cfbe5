// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>

#include <spdlog/logger.h>

#include "daemon/batcher.hpp"
#include "daemon/flow_table.hpp"
#include "daemon/pipeline_item.hpp"
#include "flow/gap_record.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// What the pipeline has done since start.
struct PipelineStats {
  std::uint64_t records{0};         // flow records taken from the queue (events and dump rows)
  std::uint64_t written{0};         // records handed to the Batcher
  std::uint64_t recovered{0};       // flows first seen in a resync dump: their NEW was lost (or
                                    // was still queued behind the dump)
  std::uint64_t closed_unseen{0};   // flows closed with a bound end: their DESTROY was lost, or
                                    // they had none (a sweep)
  std::uint64_t resyncs_settled{0};
  // Gaps that came through the pipeline, by GapReason (the Batcher counts the SinkFailure gaps it
  // raises itself).
  std::array<std::uint64_t, kGapReasonCount> gaps{};
};

// The pipeline thread's work on each item from the EventQueue: records through the FlowTable to the
// Batcher, resync markers into the table's reconciliation, gaps to every sink. Pure logic over the
// table and the batcher (both owned by the Daemon, which outlives this object); pipeline thread
// only. See docs/operations.md, "Resynchronisation" and "Restart".
class Pipeline {
public:
  Pipeline(FlowTable& table, Batcher& batcher, std::shared_ptr<spdlog::logger> log);

  // Sweeps are on (EventReader::Options::sweep_while): openWithoutEndEvents() is kept up to date.
  void enableSweeps() noexcept { sweeps_ = true; }

  // At start, before any item: the flows the database still has open from the previous run are
  // known (their dump rows are not written again), and the time no daemon ran is a DaemonDown
  // gap [`previous_alive`, `now`] in every sink when there was a previous run.
  void restore(std::span<const FlowRecord> open_flows, std::optional<Timestamp> previous_alive, Timestamp now);

  // Handles one item; `now` is the pipeline's clock for the Batcher.
  void handle(PipelineItem&& item, Timestamp now);

  [[nodiscard]] const PipelineStats& stats() const noexcept { return stats_; }
  // The time of the last ReaderDrained handled: every event that happened before it has been
  // handled. Nullopt before the first.
  [[nodiscard]] std::optional<Timestamp> drainedUpTo() const noexcept { return drained_up_to_; }
  // FlowTable::openWithoutEndEvents() as of the last settled dump: while it is not zero, flows may
  // be open that never report their end, and the reader sweeps the table now and then
  // (EventReader::Options::sweep_while). Read from the reader thread.
  [[nodiscard]] const std::atomic<std::size_t>& openWithoutEndEvents() const noexcept { return without_end_events_; }

private:
  void record(FlowRecord&& record, Timestamp now);
  void settle(Timestamp now);
  void gap(const GapRecord& gap);
  // Writes the Destroy record of a flow whose end was not seen (FlowTable's bound ends), counted.
  void writeClosedUnseen(FlowRecord&& ended, Timestamp now);

  FlowTable& table_;
  Batcher& batcher_;
  std::shared_ptr<spdlog::logger> log_;
  // Set by a complete ResyncEnd of the current resync that closes unseen flows; cleared when it
  // settles.
  std::optional<Timestamp> dump_end_;
  bool in_resync_{false};
  bool dump_failed_{false};
  std::optional<Timestamp> drained_up_to_;
  bool sweeps_{false};
  bool sweeping_{false};  // the resync under way is a sweep (ResyncBegin::sweep)
  std::atomic<std::size_t> without_end_events_{0};
  void publishWithoutEndEvents() noexcept;
  PipelineStats stats_{};
};

}  // namespace ctaudit::daemon
