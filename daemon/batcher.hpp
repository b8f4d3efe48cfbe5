// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include "flow/flow_record.hpp"
#include "storage/sink.hpp"

namespace ctaudit::daemon {

// The write policy in front of every sink: records are collected into a batch that is handed to
// the sinks when it holds max_rows records or is max_age old, and the sinks are flushed (made
// durable) at least every max_age. Each sink has its own lane: a sink that answers Retry keeps its
// records pending and gets them again at the next tick while the other sinks go on; a batch that
// Failed is retried record by record to isolate and count the bad record. Owned by the Daemon,
// which owns the sinks and outlives this object; one thread.
class Batcher {
public:
  struct NamedSink {
    std::string name;
    storage::FlowSink* sink;  // not owned
  };
  struct Options {
    std::size_t max_rows{8192};
    std::chrono::milliseconds max_age{1000};
    // Records a lane may hold for a sink that keeps failing, before the oldest are dropped.
    std::size_t max_pending_per_sink{std::size_t{1} << 20U};
  };
  struct LaneStats {
    std::uint64_t dropped{0};
  };

  Batcher(std::vector<NamedSink> sinks, Options options, std::shared_ptr<spdlog::logger> log);

  // Queues one record; writes the batch at once if it is full.
  void add(FlowRecord&& record, Timestamp now);
  // Writes the batch and flushes the sinks if the interval has passed since the last flush.
  void tick(Timestamp now);
  // Writes and flushes everything pending now (shutdown, SIGHUP). Returns true when no sink has
  // records left pending.
  bool flushAll(Timestamp now);
  // When tick() next has work to do.
  [[nodiscard]] Timestamp nextDeadline() const noexcept { return last_flush_ + options_.max_age; }
  [[nodiscard]] std::size_t queued() const noexcept { return batch_.size(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept;

private:
  struct Lane {
    NamedSink target;
    std::vector<FlowRecord> pending;  // records this sink has not accepted yet
    std::uint64_t dropped{0};
    bool failing{false};
  };

  void writeBatch();
  void writeLane(Lane& lane);
  void isolateFailure(Lane& lane);
  void flushSinks(Timestamp now);

  std::vector<Lane> lanes_;
  Options options_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<FlowRecord> batch_;
  Timestamp last_flush_{};
};

}  // namespace ctaudit::daemon
