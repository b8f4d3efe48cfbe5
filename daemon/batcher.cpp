// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/batcher.hpp"

#include <iterator>
#include <utility>

namespace ctaudit::daemon {
namespace {

// Gap records a lane keeps for a sink that cannot write them; a sink down for months raises about
// one an hour (gap_interval), so this is never reached in practice.
constexpr std::size_t kMaxPendingGaps = 10'000;

std::string labelOf(const Batcher::NamedSink& sink) { return sink.label.empty() ? sink.name : sink.label; }

}  // namespace

using storage::SinkStatus;

Batcher::Batcher(std::vector<NamedSink> sinks, Options options, std::shared_ptr<spdlog::logger> log)
    : options_(options), log_(std::move(log)) {
  for (auto& sink : sinks) {
    Lane lane;
    lane.target = std::move(sink);
    lanes_.push_back(std::move(lane));
  }
  batch_.reserve(options_.max_rows);
}

void Batcher::add(FlowRecord&& record, Timestamp now) {
  if (batch_.empty() && last_flush_ == Timestamp{}) {
    last_flush_ = now;
  }
  batch_.push_back(std::move(record));
  if (batch_.size() >= options_.max_rows) {
    writeBatch(now);
  }
}

void Batcher::addGap(const GapRecord& gap) {
  for (Lane& lane : lanes_) {
    if (lane.gaps.size() >= kMaxPendingGaps) {
      log_->error("{}: too many gap records wait for this sink; the oldest is dropped", lane.target.name);
      lane.gaps.erase(lane.gaps.begin());
    }
    lane.gaps.push_back(gap);
  }
}

void Batcher::tick(Timestamp now) {
  if (now >= nextDeadline()) {
    writeBatch(now);
    flushSinks(now);
  }
}

bool Batcher::flushAll(Timestamp now) {
  writeBatch(now);
  flushSinks(now);
  bool drained = true;
  for (const Lane& lane : lanes_) {
    drained = drained && lane.pending.empty();
  }
  return drained;
}

bool Batcher::finish(Timestamp now) {
  bool complete = flushAll(now);
  for (Lane& lane : lanes_) {
    if (!lane.pending.empty()) {
      log_->error("{}: giving up {} record(s) the sink did not accept before the stop", lane.target.name,
                  lane.pending.size());
      drop(lane, lane.pending.size(), now);
      complete = false;
    }
  }
  for (Lane& lane : lanes_) {
    if (!lane.drops.empty()) {
      raiseDropGap(lane);
    }
  }
  for (Lane& lane : lanes_) {
    writeGaps(lane);
    if (!lane.gaps.empty()) {
      log_->error("{}: {} gap record(s) could not be written before the stop", lane.target.name, lane.gaps.size());
    }
    (void)lane.target.sink->flush();
  }
  return complete;
}

std::uint64_t Batcher::dropped() const noexcept {
  std::uint64_t total = 0;
  for (const Lane& lane : lanes_) {
    total += lane.dropped;
  }
  return total;
}

std::vector<Batcher::SinkState> Batcher::sinks() const {
  std::vector<SinkState> states;
  states.reserve(lanes_.size());
  for (const Lane& lane : lanes_) {
    states.push_back({labelOf(lane.target), lane.target.sink->stats().records_written, lane.dropped,
                      lane.gaps_written, lane.pending.size(), lane.failing});
  }
  return states;
}

void Batcher::writeBatch(Timestamp now) {
  for (std::size_t i = 0; i < lanes_.size(); ++i) {
    Lane& lane = lanes_[i];
    // The last lane may take the batch's records; the others copy them.
    if (i + 1 == lanes_.size()) {
      lane.pending.insert(lane.pending.end(), std::make_move_iterator(batch_.begin()),
                          std::make_move_iterator(batch_.end()));
    } else {
      lane.pending.insert(lane.pending.end(), batch_.begin(), batch_.end());
    }
    writeLane(lane, now, false);
  }
  batch_.clear();
}

void Batcher::writeGaps(Lane& lane) {
  while (!lane.gaps.empty()) {
    if (lane.target.sink->writeGap(lane.gaps.front()) != SinkStatus::Ok) {
      return;  // kept for the next try; the records' status says whether the sink is failing
    }
    lane.gaps.erase(lane.gaps.begin());
    ++lane.gaps_written;
  }
}

void Batcher::writeLane(Lane& lane, Timestamp now, bool retry_failing) {
  // A failing sink is tried once per flush interval, not for every full batch: a locked database
  // makes each try wait for the busy timeout, and the other sinks must not wait with it.
  if (!lane.failing || retry_failing) {
    writeGaps(lane);
    if (!lane.pending.empty()) {
      switch (lane.target.sink->write(lane.pending)) {
        case SinkStatus::Ok:
          lane.pending.clear();
          break;
        case SinkStatus::Retry:
          break;
        case SinkStatus::Failed:
          isolateFailure(lane, now);
          break;
      }
    }
    if (lane.pending.empty()) {
      if (lane.failing) {
        log_->info("{}: writing again", lane.target.name);
        lane.failing = false;
        lane.drop_logged = false;
        if (!lane.drops.empty()) {
          raiseDropGap(lane);
        }
        writeGaps(lane);
      }
    } else if (!lane.failing) {
      log_->error("{}: cannot write {} record(s) now; keeping up to {} and retrying", lane.target.name,
                  lane.pending.size(), options_.max_pending_per_sink);
      lane.failing = true;
    }
  }
  if (lane.pending.size() > options_.max_pending_per_sink) {
    if (!lane.drop_logged) {
      log_->error("{}: dropping the oldest pending records: the sink has not accepted writes for too long "
                  "(the loss is recorded as a gap)",
                  lane.target.name);
      lane.drop_logged = true;
    }
    drop(lane, lane.pending.size() - options_.max_pending_per_sink, now);
  }
  // A sink that writes gets its gap at once; a failing one when it recovers, or every gap_interval
  // so that the other sinks hear of the loss during a long outage.
  if (!lane.drops.empty() && (!lane.failing || now - lane.drops.firstDropAt() >= options_.gap_interval)) {
    raiseDropGap(lane);
  }
}

void Batcher::drop(Lane& lane, std::size_t count, Timestamp now) {
  // The front of the lane goes: the oldest records.
  for (std::size_t i = 0; i < count; ++i) {
    lane.drops.add(lane.pending[i].event_time, now);
  }
  lane.pending.erase(lane.pending.begin(), lane.pending.begin() + static_cast<std::ptrdiff_t>(count));
  lane.dropped += count;
}

void Batcher::raiseDropGap(Lane& lane) {
  const GapRecord gap = lane.drops.take(GapReason::SinkFailure, labelOf(lane.target));
  ++sink_failure_gaps_;
  log_->warn("{}: {} record(s) with event times {} .. {} were not written; recorded as a gap ({} in all)",
             lane.target.name, gap.lost_records, formatRfc3339(gap.start), formatRfc3339(gap.end), lane.dropped);
  addGap(gap);
}

void Batcher::isolateFailure(Lane& lane, Timestamp now) {
  // Write record by record to tell a bad record from a failing sink. A record that fails while the
  // record after it is written is bad on its own: it is dropped and counted. Two failures in a row
  // mean the sink is failing (a full disk lets a few records through before it refuses the rest;
  // a database locked for writing refuses all): from the first of them on, everything stays
  // pending for the next tick. A failing last record is bad if others of this pass were written,
  // and kept otherwise.
  constexpr std::size_t kNone = static_cast<std::size_t>(-1);
  std::vector<std::size_t> bad;
  std::size_t unjudged = kNone;  // a failed record whose successor has not been tried yet
  bool any_ok = false;
  std::size_t keep_from = lane.pending.size();
  for (std::size_t i = 0; i < lane.pending.size(); ++i) {
    const auto status = lane.target.sink->write(std::span<const FlowRecord>(&lane.pending[i], 1));
    if (status == SinkStatus::Ok) {
      any_ok = true;
      if (unjudged != kNone) {
        bad.push_back(std::exchange(unjudged, kNone));
      }
      continue;
    }
    if (status == SinkStatus::Retry || unjudged != kNone) {
      keep_from = unjudged != kNone ? unjudged : i;
      unjudged = kNone;
      break;
    }
    unjudged = i;
  }
  if (unjudged != kNone) {
    if (any_ok) {
      bad.push_back(unjudged);
    } else {
      keep_from = unjudged;
    }
  }
  for (const std::size_t i : bad) {
    log_->error("{}: dropped a record that cannot be written (conntrack id {})", lane.target.name,
                lane.pending[i].ct_id);
    lane.drops.add(lane.pending[i].event_time, now);
  }
  lane.dropped += bad.size();
  lane.pending.erase(lane.pending.begin(), lane.pending.begin() + static_cast<std::ptrdiff_t>(keep_from));
}

void Batcher::flushSinks(Timestamp now) {
  for (Lane& lane : lanes_) {
    writeLane(lane, now, true);
    if (lane.target.sink->flush() != SinkStatus::Ok && !lane.failing) {
      log_->error("{}: flush failed; records may not be durable yet", lane.target.name);
    }
  }
  last_flush_ = now;
}

}  // namespace ctaudit::daemon
