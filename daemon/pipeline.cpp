// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/pipeline.hpp"

#include <type_traits>
#include <utility>
#include <variant>

namespace ctaudit::daemon {

Pipeline::Pipeline(FlowTable& table, Batcher& batcher, std::shared_ptr<spdlog::logger> log)
    : table_(table), batcher_(batcher), log_(std::move(log)) {}

void Pipeline::restore(std::span<const FlowRecord> open_flows, std::optional<Timestamp> previous_alive,
                       Timestamp now) {
  for (const FlowRecord& open : open_flows) {
    table_.restore(open);
  }
  if (!open_flows.empty()) {
    log_->info("{} flow(s) open in the database from the previous run; the start-up dump tells which are "
               "still alive",
               open_flows.size());
  }
  if (previous_alive && *previous_alive < now) {
    GapRecord down;
    down.reason = GapReason::DaemonDown;
    down.start = *previous_alive;
    down.end = now;
    gap(down);
  }
}

void Pipeline::handle(PipelineItem&& item, Timestamp now) {
  std::visit(
      [&](auto&& value) {
        using T = std::decay_t<decltype(value)>;
        if constexpr (std::is_same_v<T, FlowRecord>) {
          record(std::move(value), now);
        } else if constexpr (std::is_same_v<T, ResyncBegin>) {
          // The first resync is the dump at start (Daemon::dumpAtStart).
          table_.beginResync(stats_.resyncs_settled == 0 && !in_resync_, value.sweep);
          in_resync_ = true;
          sweeping_ = value.sweep;
          dump_failed_ = false;
          dump_end_.reset();
        } else if constexpr (std::is_same_v<T, ResyncEnd>) {
          dump_failed_ = !value.complete;
          if (in_resync_ && value.complete && value.close_unseen) {
            dump_end_ = value.time;
          }
        } else if constexpr (std::is_same_v<T, ResyncSettled>) {
          settle(now);
        } else if constexpr (std::is_same_v<T, ReaderDrained>) {
          drained_up_to_ = value.time;
        } else if constexpr (std::is_same_v<T, LossNoticed>) {
          table_.noteLoss();
        } else {
          gap(value.gap);
        }
      },
      std::move(item));
}

void Pipeline::record(FlowRecord&& record, Timestamp now) {
  ++stats_.records;
  const bool from_dump = record.event == EventType::Dump;
  if (from_dump && sweeping_ && in_resync_ && !table_.sweepMayTouch(record)) {
    return;  // nothing was lost: the events queued behind the dump say what happened to it
  }
  auto replaced = table_.endIfReplaced(record);
  if (replaced.stale) {
    log_->debug("conntrack id {}: a late event of an entry its successor has replaced; dropped", record.ct_id);
    return;
  }
  if (replaced.ended) {
    // The old entry's DESTROY was lost (the daemon was down, or events were dropped): counted as
    // a flow closed unseen, which it is.
    log_->debug("conntrack id {} replaced an entry whose end was not seen (its id came back with another reply "
                "tuple or a later kernel start, or its original tuple was held by conntrack id {} without end "
                "events): that flow is closed with a bound end",
                record.ct_id, replaced.ended->ct_id);
    writeClosedUnseen(std::move(*replaced.ended), now);
  }
  if (!table_.apply(record)) {
    return;
  }
  if (from_dump && in_resync_ && stats_.resyncs_settled > 0) {
    // Not the start-up dump: a flow this daemon should have seen through its NEW event.
    ++stats_.recovered;
  }
  ++stats_.written;
  batcher_.add(std::move(record), now);
}

void Pipeline::settle(Timestamp now) {
  if (!in_resync_) {
    return;
  }
  in_resync_ = false;
  const bool sweep = std::exchange(sweeping_, false);
  ++stats_.resyncs_settled;
  // Flows without end events whose successor came while the dump settled (FlowTable::noteSettled).
  for (FlowRecord& ended : table_.noteSettled()) {
    writeClosedUnseen(std::move(ended), now);
  }
  if (!dump_end_) {
    if (dump_failed_) {
      log_->warn("the table dump was incomplete; flows it did not show are kept open until the next one");
    }
    publishWithoutEndEvents();
    return;
  }
  auto closed = table_.closeUnseen(*dump_end_, sweep);
  if (!closed.empty() && sweep) {
    log_->info("{} flow(s) from a start-up dump that may have no end event (made before nf_conntrack_events was "
               "1) were no longer in the kernel's table at {}: closed with that time as the bound of their end",
               closed.size(), formatRfc3339(*dump_end_));
  } else if (!closed.empty()) {
    log_->info("{} flow(s) were no longer in the kernel's table at {}: their DESTROY was lost; closed with that "
               "time as the bound of their end",
               closed.size(), formatRfc3339(*dump_end_));
  }
  for (FlowRecord& record : closed) {
    writeClosedUnseen(std::move(record), now);
  }
  dump_end_.reset();
  publishWithoutEndEvents();
}

void Pipeline::writeClosedUnseen(FlowRecord&& ended, Timestamp now) {
  ++stats_.closed_unseen;
  ++stats_.written;
  batcher_.add(std::move(ended), now);
}

void Pipeline::publishWithoutEndEvents() noexcept {
  if (sweeps_) {  // a walk of the table: only when someone reads it
    without_end_events_.store(table_.openWithoutEndEvents(), std::memory_order_relaxed);
  }
}

void Pipeline::gap(const GapRecord& gap) {
  ++stats_.gaps.at(static_cast<std::size_t>(gap.reason));
  if (gap.reason == GapReason::DaemonDown) {
    log_->warn("no daemon recorded flows from {} to {}: flows that began and ended then are not in the log; "
               "recorded as a gap",
               formatRfc3339(gap.start), formatRfc3339(gap.end));
  }
  batcher_.addGap(gap);
}

}  // namespace ctaudit::daemon
