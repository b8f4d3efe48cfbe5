// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/batcher.hpp"

#include <algorithm>
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
    complete = complete && !lane.gone_logged;
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
    if (!lane.gaps.empty() && !lane.gone_logged) {
      log_->error("{}: {} gap record(s) could not be written before the stop", lane.target.name, lane.gaps.size());
    }
    (void)lane.target.sink->flush();
  }
  // A sync that failed in that very last flush, or a line cut by a full disk whose rest never
  // found room: the gap can still reach the other sinks. (A sync that failed in flushAll above
  // went out with the gaps already.)
  for (Lane& lane : lanes_) {
    if (lane.target.sink->abandonUnfinished()) {
      complete = false;  // a record given up, like those dropped above
    }
    if (raiseSyncLossGap(lane)) {
      for (Lane& other : lanes_) {
        if (&other != &lane) {
          writeGaps(other);
          (void)other.target.sink->flush();
        }
      }
    }
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
                      lane.gaps_written, lane.pending.size(), lane.failing, lane.busy, lane.gaps.size()});
  }
  return states;
}

void Batcher::writeBatch(Timestamp now) {
  for (Lane& lane : lanes_) {
    writeLane(lane, now, false, batch_);
  }
  batch_.clear();
}

void Batcher::writeGaps(Lane& lane) {
  while (!lane.gaps.empty()) {
    const SinkStatus status = lane.target.sink->writeGap(lane.gaps.front());
    lane.busy = status == SinkStatus::Retry;
    if (status == SinkStatus::Rejected) {
      lane.gaps.erase(lane.gaps.begin());  // the sink logged why; it would refuse it forever
      continue;
    }
    if (status != SinkStatus::Ok) {
      return;  // kept for the next try; the records' status says whether the sink is failing
    }
    lane.gaps.erase(lane.gaps.begin());
    ++lane.gaps_written;
  }
}

void Batcher::writeLane(Lane& lane, Timestamp now, bool retry_failing, std::span<const FlowRecord> fresh) {
  if (lane.target.sink->gone()) {
    giveUpForGood(lane, fresh, now);
  } else if (!lane.failing || retry_failing) {
    // A failing sink is tried once per flush interval, not for every full batch: a locked database
    // makes each try wait for the busy timeout, and the other sinks must not wait with it.
    writeGaps(lane);
    // Nothing waits for this sink (the common case): the sink gets the fresh records where they
    // are, and the lane copies them only if the sink does not take them. One batch in memory
    // instead of a copy per sink: at 131072 records that is 34 MiB a sink.
    const bool direct = lane.pending.empty();
    if (!direct) {
      lane.pending.insert(lane.pending.end(), fresh.begin(), fresh.end());
    }
    const std::span<const FlowRecord> records = direct ? fresh : std::span<const FlowRecord>(lane.pending);
    if (!records.empty()) {
      const SinkStatus status = lane.target.sink->write(records);
      lane.busy = status == SinkStatus::Retry;
      // What the sink took of a batch it could not finish (the JSON lines on a disk that filled
      // part way) is not passed again: written twice, a shipper would read it twice.
      const std::size_t accepted = status == SinkStatus::Retry || status == SinkStatus::Failed
                                       ? std::min(lane.target.sink->acceptedOfFailedBatch(), records.size())
                                       : 0;
      if (status != SinkStatus::Ok && direct) {
        lane.pending.assign(fresh.begin() + static_cast<std::ptrdiff_t>(accepted), fresh.end());
      } else if (accepted > 0) {
        lane.pending.erase(lane.pending.begin(), lane.pending.begin() + static_cast<std::ptrdiff_t>(accepted));
      }
      switch (status) {
        case SinkStatus::Ok:
          lane.pending.clear();
          break;
        case SinkStatus::Retry:
        case SinkStatus::Failed:
          break;  // the sink cannot write now: the rest stays pending
        case SinkStatus::Rejected:
          isolateFailure(lane, now);
          break;
      }
    }
    if (!lane.pending.empty() && lane.target.sink->gone()) {
      giveUpForGood(lane, {}, now);
    } else if (lane.pending.empty()) {
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
  } else {
    lane.pending.insert(lane.pending.end(), fresh.begin(), fresh.end());
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

void Batcher::giveUpForGood(Lane& lane, std::span<const FlowRecord> fresh, Timestamp now) {
  if (!lane.gone_logged) {
    log_->error("{}: can never be written again (its reader is gone); its records are given up as they come, "
                "and recorded as gaps in the other sinks; restart ctauditd to write it again",
                lane.target.name);
    lane.gone_logged = true;
    lane.failing = true;
    lane.drop_logged = true;
  }
  drop(lane, lane.pending.size(), now);
  countDropped(lane, fresh, now);
  lane.gaps.clear();  // nor its own gap lines
}

void Batcher::drop(Lane& lane, std::size_t count, Timestamp now) {
  // The front of the lane goes: the oldest records.
  countDropped(lane, std::span<const FlowRecord>(lane.pending.data(), count), now);
  lane.pending.erase(lane.pending.begin(), lane.pending.begin() + static_cast<std::ptrdiff_t>(count));
}

void Batcher::countDropped(Lane& lane, std::span<const FlowRecord> records, Timestamp now) {
  for (const FlowRecord& record : records) {
    lane.drops.add(record.event_time, now);
  }
  lane.dropped += records.size();
}

void Batcher::raiseDropGap(Lane& lane) {
  const GapRecord gap = lane.drops.take(GapReason::SinkFailure, labelOf(lane.target));
  ++sink_failure_gaps_;
  log_->warn("{}: {} record(s) with event times {} .. {} were not written; recorded as a gap ({} in all)",
             lane.target.name, gap.lost_records, formatRfc3339(gap.start), formatRfc3339(gap.end), lane.dropped);
  addGap(gap);
}

void Batcher::isolateFailure(Lane& lane, Timestamp now) {
  // A record of the batch was refused for its content: write record by record to find it. Each
  // record the sink rejects is dropped and counted; should the sink fail as a whole meanwhile (a
  // disk that fills up part way), everything from there on stays pending for the next tick. A
  // sink-wide failure is never taken for a bad record: a disk freed between two writes must not
  // cost the record that met it full.
  std::vector<std::size_t> bad;
  std::size_t keep_from = lane.pending.size();
  for (std::size_t i = 0; i < lane.pending.size(); ++i) {
    const auto status = lane.target.sink->write(std::span<const FlowRecord>(&lane.pending[i], 1));
    if (status == SinkStatus::Rejected) {
      bad.push_back(i);
    } else if (status != SinkStatus::Ok) {
      keep_from = i + std::min<std::size_t>(lane.target.sink->acceptedOfFailedBatch(), 1);
      break;
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
    writeLane(lane, now, true, {});
    // An I/O error on every sync fails every flush: said once an episode (the sink logs why, and
    // each flush's unsynced records still come as a gap below), and once when it works again. A
    // lane whose writes fail says so itself, and when they work again.
    const bool flushed = lane.target.sink->flush() == SinkStatus::Ok;
    if (lane.failing || lane.target.sink->gone()) {
      lane.flush_failing = false;
    } else if (!flushed && !lane.flush_failing) {
      log_->error("{}: flush failed; records may not be durable yet", lane.target.name);
      lane.flush_failing = true;
    } else if (flushed && lane.flush_failing) {
      log_->info("{}: flushing works again", lane.target.name);
      lane.flush_failing = false;
    }
    raiseSyncLossGap(lane);
  }
  last_flush_ = now;
}

bool Batcher::raiseSyncLossGap(Lane& lane) {
  // Also after a rotation whose sync failed within a write: asked at every flush.
  const auto gap = takeSyncLossGap(lane);
  if (gap) {
    addGap(*gap);
  }
  return gap.has_value();
}

std::optional<GapRecord> Batcher::takeSyncLossGap(Lane& lane) {
  const auto loss = lane.target.sink->takeSyncLoss();
  if (!loss) {
    return std::nullopt;
  }
  GapRecord gap;
  gap.reason = GapReason::SinkFailure;
  gap.start = loss->earliest;
  gap.end = loss->latest;
  gap.lost_records = loss->records;
  gap.sink = labelOf(lane.target);
  ++sink_failure_gaps_;
  log_->error("{}: {} record(s) with event times {} .. {} may not be kept (a failed sync, or a file deleted under "
              "the daemon: the sink said which); recorded as a gap",
              lane.target.name, loss->records, formatRfc3339(gap.start), formatRfc3339(gap.end));
  return gap;
}

}  // namespace ctaudit::daemon
