// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/batcher.hpp"

#include <iterator>

namespace ctaudit::daemon {

using storage::SinkStatus;

Batcher::Batcher(std::vector<NamedSink> sinks, Options options, std::shared_ptr<spdlog::logger> log)
    : options_(options), log_(std::move(log)) {
  for (auto& sink : sinks) {
    lanes_.push_back(Lane{std::move(sink), {}, 0, false});
  }
  batch_.reserve(options_.max_rows);
}

void Batcher::add(FlowRecord&& record, Timestamp now) {
  if (batch_.empty() && last_flush_ == Timestamp{}) {
    last_flush_ = now;
  }
  batch_.push_back(std::move(record));
  if (batch_.size() >= options_.max_rows) {
    writeBatch();
  }
}

void Batcher::tick(Timestamp now) {
  if (now >= nextDeadline()) {
    writeBatch();
    flushSinks(now);
  }
}

bool Batcher::flushAll(Timestamp now) {
  writeBatch();
  flushSinks(now);
  bool drained = true;
  for (const Lane& lane : lanes_) {
    drained = drained && lane.pending.empty();
  }
  return drained;
}

std::uint64_t Batcher::dropped() const noexcept {
  std::uint64_t total = 0;
  for (const Lane& lane : lanes_) {
    total += lane.dropped;
  }
  return total;
}

void Batcher::writeBatch() {
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    // The last lane may take the batch's records; the others copy them.
    if (i + 1 == lanes_.size()) {
      lane.pending.insert(lane.pending.end(), std::make_move_iterator(batch_.begin()),
                          std::make_move_iterator(batch_.end()));
    } else {
      lane.pending.insert(lane.pending.end(), batch_.begin(), batch_.end());
    }
    writeLane(lane);
  }
  batch_.clear();
}

void Batcher::writeLane(Lane& lane) {
  if (lane.pending.empty()) {
    return;
  }
  switch (lane.target.sink->write(lane.pending)) {
    case SinkStatus::Ok:
      if (lane.failing) {
        log_->info("{}: writing again", lane.target.name);
        lane.failing = false;
      }
      lane.pending.clear();
      return;
    case SinkStatus::Retry:
      break;
    case SinkStatus::Failed:
      isolateFailure(lane);
      break;
  }
  if (!lane.failing && !lane.pending.empty()) {
    log_->error("{}: cannot write {} record(s) now; keeping them and retrying", lane.target.name,
                lane.pending.size());
    lane.failing = true;
  }
  if (lane.pending.size() > options_.max_pending_per_sink) {
    const std::size_t excess = lane.pending.size() - options_.max_pending_per_sink;
    lane.pending.erase(lane.pending.begin(), lane.pending.begin() + static_cast<std::ptrdiff_t>(excess));
    lane.dropped += excess;
    log_->error("{}: dropped the {} oldest pending record(s) ({} in all): the sink has not accepted "
                "writes for too long",
                lane.target.name, excess, lane.dropped);
  }
}

void Batcher::isolateFailure(Lane& lane) {
  // Write record by record. A record that fails while others succeed is bad on its own: it is
  // counted and dropped. When the first two records both fail, the sink itself is failing (disk
  // full, database locked for writing): everything stays pending for the next tick.
  std::vector<FlowRecord> failed;
  bool any_ok = false;
  std::size_t next = 0;
  for (; next < lane.pending.size(); ++next) {
    const auto status = lane.target.sink->write(std::span<const FlowRecord>(&lane.pending[next], 1));
    if (status == SinkStatus::Ok) {
      any_ok = true;
      continue;
    }
    if (status == SinkStatus::Retry || (!any_ok && failed.size() == 1)) {
      break;
    }
    failed.push_back(lane.pending[next]);
  }
  std::vector<FlowRecord> rest(std::make_move_iterator(lane.pending.begin() + static_cast<std::ptrdiff_t>(next)),
                               std::make_move_iterator(lane.pending.end()));
  if (any_ok) {
    lane.dropped += failed.size();
    for (const FlowRecord& bad : failed) {
      log_->error("{}: dropped a record that cannot be written (conntrack id {}); {} dropped in all",
                  lane.target.name, bad.ct_id, lane.dropped);
    }
    lane.pending = std::move(rest);
    return;
  }
  failed.insert(failed.end(), std::make_move_iterator(rest.begin()), std::make_move_iterator(rest.end()));
  lane.pending = std::move(failed);
}

void Batcher::flushSinks(Timestamp now) {
  for (Lane& lane : lanes_) {
    writeLane(lane);
    if (lane.target.sink->flush() != SinkStatus::Ok && !lane.failing) {
      log_->error("{}: flush failed; records may not be durable yet", lane.target.name);
    }
  }
  last_flush_ = now;
}

}  // namespace ctaudit::daemon
