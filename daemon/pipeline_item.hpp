// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <variant>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/time.hpp"

// What travels from the reader thread to the pipeline thread through the EventQueue: flow records,
// and the markers that let the pipeline reconcile its flow table with a dump of the kernel's table
// (docs/operations.md, "Resynchronisation"). Plain values.
namespace ctaudit::daemon {

// The reader is about to dump the conntrack table: after an overrun, after records were dropped on
// the way to the pipeline, or at start. Flows touched from here on count as seen.
struct ResyncBegin {
  Timestamp time{};
  // A sweep (EventReader::Options::sweep_while): nothing was lost, so a dump row of a flow the
  // table does not know is left to its NEW, queued behind the dump, and only flows that may have
  // no end event are closed (FlowTable::closeUnseen).
  bool sweep{false};
  friend bool operator==(const ResyncBegin&, const ResyncBegin&) = default;
};

// The dump has ended at `time`; every row of it is ahead of this marker. `complete` is false when
// the dump failed part-way: then the rows that did arrive are used, but no flow is closed for
// being absent from it. `close_unseen` is false when flows absent from the dump must not be closed
// even so: in reliable mode the kernel resends a DESTROY it could not deliver, and the entry is
// already out of the table while its DESTROY waits, so closing it with a bound would record the
// flow twice.
struct ResyncEnd {
  Timestamp time{};
  bool complete{true};
  bool close_unseen{true};
  friend bool operator==(const ResyncEnd&, const ResyncEnd&) = default;
};

// After the dump the event socket was read empty once: every event the kernel queued before the
// dump ended is ahead of this marker (or was lost, which a later resync repairs). A flow that is
// open in the table and was not seen since ResyncBegin was not in the kernel's table when the dump
// ended, so it ended at or before ResyncEnd::time and its DESTROY was lost.
struct ResyncSettled {
  Timestamp time{};
  friend bool operator==(const ResyncSettled&, const ResyncSettled&) = default;
};

// A read found the event socket empty at `time`: every event that happened before then is ahead of
// this marker, or was lost in a window whose gap is ahead of it too: while a loss is not reported
// yet, `time` is where it began. The pipeline keeps the last one it handled as the
// bound of its heartbeat while it is behind (Daemon::recordedUpTo): a receive time of the records
// themselves would not do, since a backlog is read long after its events happened. Pushed after a
// turn that pushed records; it does not wake the pipeline.
struct ReaderDrained {
  Timestamp time{};
  friend bool operator==(const ReaderDrained&, const ReaderDrained&) = default;
};

// Events were lost just before the records that follow: the kernel dropped some for the socket
// (ENOBUFS), or the queue to the pipeline was full. Pushed at once, where the loss is noticed, while
// the resync that repairs it comes later: an entry whose DESTROY was among the lost may have a
// successor with the same key whose events follow, and the flow table must know before it merges
// them into the old flow (FlowTable::noteLoss). Does not wake the pipeline.
struct LossNoticed {
  Timestamp time{};
  friend bool operator==(const LossNoticed&, const LossNoticed&) = default;
};

// A window in which records were lost, to be written to every sink.
struct GapReport {
  GapRecord gap;
  friend bool operator==(const GapReport&, const GapReport&) = default;
};

using PipelineItem =
    std::variant<FlowRecord, ResyncBegin, ResyncEnd, ResyncSettled, GapReport, ReaderDrained, LossNoticed>;

[[nodiscard]] inline bool isRecord(const PipelineItem& item) noexcept {
  return std::holds_alternative<FlowRecord>(item);
}

// What the reader thread has counted, published to the pipeline thread through the EventQueue
// (under its lock) for the stats file.
struct ReaderStats {
  std::uint64_t datagrams{0};      // read from the event socket
  std::uint64_t messages{0};       // ctnetlink messages in them and in dumps
  std::uint64_t decoded{0};        // turned into records
  std::uint64_t malformed{0};      // refused by the decoder, or truncated datagrams
  std::uint64_t from_user_space{0};  // datagrams to the event groups not sent by the kernel: ignored
  std::uint64_t overruns{0};       // ENOBUFS errors on the event socket
  std::uint64_t kernel_drops{0};   // events the kernel could not queue for the socket (SO_MEMINFO)
  std::uint64_t dump_entries{0};   // rows read from table dumps
  std::uint64_t resyncs{0};        // table dumps after the one at start
  std::uint64_t queue_dropped{0};  // records dropped because the queue was full
  // The earliest time of a loss whose gap is not pushed yet (an overrun window still open, queue
  // drops not reported yet): the heartbeat must not pass it (Daemon::recordedUpTo).
  std::optional<Timestamp> unreported_loss_since;
  friend bool operator==(const ReaderStats&, const ReaderStats&) = default;
};

}  // namespace ctaudit::daemon
