// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "daemon/drop_window.hpp"
#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "storage/sink.hpp"

namespace ctaudit::daemon {

// The write policy in front of every sink: records are collected into a batch that is handed to
// the sinks when it holds max_rows records or is max_age old, and the sinks are flushed (made
// durable) at least every max_age. Each sink has its own lane, so one failing sink never stops
// another: a sink that answers Retry, or Failed for the whole batch, keeps its records pending and
// gets them again at the next flush tick (not before: a locked database makes every try wait for
// its busy timeout); a batch that Failed while single records go through is retried record by
// record to isolate and drop the bad record.
//
// Losses are on the record: when a lane holds more than max_pending_per_sink records (a sink that
// has refused writes for long: disk full, database locked), the oldest are dropped, and every
// dropped record counts towards a SinkFailure gap (the sink's label, the exact count, the window of
// the records' event times). The gap goes to every sink, the failing one included, where it waits
// until the sink writes again. It is raised when the sink recovers, at least every gap_interval
// while it keeps dropping, and at finish(). Gaps from elsewhere (addGap) take the same way.
// A failure is logged once when it starts and once when it ends, not per batch.
//
// Owned by the Daemon, which owns the sinks and outlives this object; pipeline thread only.
class Batcher {
public:
  struct NamedSink {
    std::string name;          // for messages: "sqlite /var/lib/ctaudit/flows.db"
    storage::FlowSink* sink;   // not owned
    std::string label{};       // for gap records and metrics: "sqlite"; the name when empty
  };
  struct Options {
    std::size_t max_rows{131072};
    std::chrono::milliseconds max_age{1000};
    // Records a lane may hold for a sink that keeps failing, before the oldest are dropped
    // (recordBudget(): derived from --queue-max).
    std::size_t max_pending_per_sink{std::size_t{1} << 20U};
    std::chrono::nanoseconds gap_interval{std::chrono::seconds{60}};
  };
  // One sink's state, for the stats file.
  struct SinkState {
    std::string label;
    std::uint64_t written{0};       // records the sink accepted
    std::uint64_t dropped{0};       // records given up for this sink
    std::uint64_t gaps_written{0};  // gap records the sink accepted
    std::size_t pending{0};         // records waiting for this sink
    bool failing{false};
    bool busy{false};  // its last write answered Retry (a locked database, a full pipe): it may pass
    std::size_t pending_gaps{0};  // gap records waiting for this sink
  };

  Batcher(std::vector<NamedSink> sinks, Options options, std::shared_ptr<spdlog::logger> log);

  // Queues one record; writes the batch at once if it is full.
  void add(FlowRecord&& record, Timestamp now);
  // Queues a gap record for every sink; it is written with the next batch or flush.
  void addGap(const GapRecord& gap);
  // Writes the batch and flushes the sinks if the interval has passed since the last flush.
  void tick(Timestamp now);
  // Writes and flushes everything pending now (SIGHUP, shutdown). Returns true when no sink has
  // records left pending.
  bool flushAll(Timestamp now);
  // At shutdown: flushAll(), then gives up what a sink still holds, counting it and recording it
  // as a SinkFailure gap in the sinks that still write. Returns true when nothing was given up.
  bool finish(Timestamp now);

  // When tick() next has work to do.
  [[nodiscard]] Timestamp nextDeadline() const noexcept { return last_flush_ + options_.max_age; }
  [[nodiscard]] std::uint64_t dropped() const noexcept;
  [[nodiscard]] std::uint64_t sinkFailureGaps() const noexcept { return sink_failure_gaps_; }
  [[nodiscard]] std::vector<SinkState> sinks() const;

private:
  struct Lane {
    NamedSink target;
    std::vector<FlowRecord> pending;  // records this sink has not accepted yet
    std::vector<GapRecord> gaps;      // gap records this sink has not accepted yet
    DropWindow drops;                 // records dropped since this sink's last SinkFailure gap
    std::uint64_t dropped{0};
    std::uint64_t gaps_written{0};
    bool failing{false};
    bool busy{false};           // SinkState::busy
    bool flush_failing{false};  // its last flush failed: logged once an episode
    bool drop_logged{false};
    bool gone_logged{false};  // the sink said it can never write again (FlowSink::gone)
  };

  void writeBatch(Timestamp now);
  // Writes what the lane holds and then `fresh` (records no lane has seen) to the lane's sink;
  // whatever the sink does not take stays in the lane.
  void writeLane(Lane& lane, Timestamp now, bool retry_failing, std::span<const FlowRecord> fresh);
  void writeGaps(Lane& lane);
  void isolateFailure(Lane& lane, Timestamp now);
  void drop(Lane& lane, std::size_t count, Timestamp now);
  // Counts `records` as dropped for the lane's next SinkFailure gap.
  void countDropped(Lane& lane, std::span<const FlowRecord> records, Timestamp now);
  // For a sink that can never write again: drops what the lane holds and `fresh` (logged once).
  void giveUpForGood(Lane& lane, std::span<const FlowRecord> fresh, Timestamp now);
  void raiseDropGap(Lane& lane);
  // The sink's SyncLoss, if a sync failed, as a sink_failure gap to every sink (logged); true if
  // there was one.
  bool raiseSyncLossGap(Lane& lane);
  [[nodiscard]] std::optional<GapRecord> takeSyncLossGap(Lane& lane);
  void flushSinks(Timestamp now);

  std::vector<Lane> lanes_;
  Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<FlowRecord> batch_;
  Timestamp last_flush_{};
  std::uint64_t sink_failure_gaps_{0};
};

}  // namespace ctaudit::daemon
