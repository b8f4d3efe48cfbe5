// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "daemon/pipeline_batch.hpp"
#include "daemon/pipeline_item.hpp"
#include "daemon/record_codec.hpp"
#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

// The bounded hand-over between the reader thread (one producer) and the pipeline thread (one
// consumer). Owned by the Daemon; shared by reference with the EventReader, which it outlives.
//
// Records travel packed (record_codec.hpp, about 60-70 bytes each) in chunks of chunkBytesFor():
// the producer appends a whole recvmmsg batch to the newest chunk under the lock (a copy of its
// packed bytes), and the consumer swaps the oldest chunk for its own empty PipelineBatch under the
// lock and works through it without the lock. So the lock is held for a copy of one batch or a
// swap, never while a record is decoded or written, and there is no per-record syscall. The chunks
// waiting hold at most `capacity_bytes` of packed records; beside them the consumer holds one
// chunk, up to kSpareChunks emptied ones wait for reuse, and the newest chunk has unused room, so
// the queue's memory is at most capacity_bytes + 4 chunks + a chunk's 1/4000 of slack per chunk
// (recordBudget() keeps that within --queue-max, docs/operations.md). A burst can thus fill nearly
// all of --queue-max while the pipeline works through the oldest records.
//
// Wake-ups: an eventfd (fd()) that the producer signals when a chunk is full (the next one is
// started while it waits) or `wake_records` records wait, with every marker but ReaderDrained and
// LossNoticed (which only matter to the records around them), when it drops records
// or must wait for room, and on close. A partly filled chunk does not wake the consumer: the
// consumer takes whatever waits at every wake it has anyway, and it has one at least at each flush
// deadline, before it writes the batch, so a record is written no later than it would be had it
// woken the consumer at once. Each wake then works through up to a chunk of records, not one
// read's worth (at 20k events/s about 2,000, ten times a second), which spends less CPU per record
// (docs/benchmarks.md, "Waking the pipeline once a chunk"). The consumer polls the eventfd and
// resets it before it takes a chunk, and take() signals it again while more chunks wait. A
// producer that must wait for space (WhenFull::Wait) sleeps on a condition variable the consumer
// signals after a take.
//
// Markers (everything but FlowRecord) always fit: they are few and carry what makes the record
// whole (resynchronisation, gaps); only records count against the capacity.
//
// Thread safety: every member function may be called from either thread, except that push(),
// publish() and close() belong to the producer and take() to the consumer.
// Lock: mutex_ guards waiting_, spare_, the counts, closed_, failure_, stats_, producer_waiting_
// and abandoned_. It is a leaf lock: nothing else is locked while it is held.
class EventQueue {
public:
  enum class WhenFull : std::uint8_t {
    DropNewest,  // what does not fit stays in the caller's vector, to be counted as dropped
    Wait,        // block until the consumer makes room (or the queue is abandoned)
  };

  // Errors: Errc::Io when the eventfd cannot be created. The queue always takes at least one record,
  // however small `capacity_bytes` is. The consumer is also woken once `wake_records` records wait
  // (the batcher's --max-batch-rows, so that a batch that small is written when it is full).
  [[nodiscard]] static Result<std::unique_ptr<EventQueue>> open(std::size_t capacity_bytes,
                                                                std::size_t wake_records = SIZE_MAX);

  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;
  EventQueue(EventQueue&&) = delete;
  EventQueue& operator=(EventQueue&&) = delete;
  ~EventQueue() = default;

  // Readable (POLLIN) when items wait or the queue was closed.
  [[nodiscard]] int fd() const noexcept { return wake_.get(); }
  [[nodiscard]] std::size_t capacityBytes() const noexcept { return capacity_bytes_; }
  // The chunk size for a queue of `capacity_bytes`: a quarter of it, within [kMinChunkBytes,
  // kChunkBytes], so that the chunks beside the waiting records stay small next to them.
  [[nodiscard]] static std::size_t chunkBytesFor(std::size_t capacity_bytes) noexcept;

  // Producer. Moves `items` into the queue in order and erases them from `items`. With DropNewest,
  // records that do not fit stay in `items` (markers are always taken), so the caller can count
  // them and note their times; with Wait, everything is taken, waiting for room as needed, unless
  // the queue was abandoned, in which case what remains stays in `items`. Returns how many records
  // stayed behind. After close() nothing is taken.
  std::size_t push(PipelineBatch& items, WhenFull when_full);
  // Producer. Makes `stats` the reader's published counters.
  void publish(const ReaderStats& stats);
  // Producer. No more items will come; `failure` says why the reader stopped early, if it did.
  void close(std::optional<Error> failure = std::nullopt);

  // The largest chunk: big enough that the lock and the wake-up are rare (about 16k records),
  // small enough that the chunks outside the waiting records are a small part of the budget.
  static constexpr std::size_t kChunkBytes = std::size_t{1} << 20U;
  static constexpr std::size_t kMinChunkBytes = 4 * kMaxPackedRecordBytes;
  // Emptied chunks kept for the producer to reuse: enough that a steady stream allocates none.
  static constexpr std::size_t kSpareChunks = 2;

  // Consumer. Precondition: `out` is empty. Swaps the oldest waiting chunk into `out` (nothing
  // when nothing waits).
  struct Taken {
    bool closed{false};  // the producer is done, and `out` holds its last items
    std::optional<Error> failure;
  };
  Taken take(PipelineBatch& out);
  // Consumer (or its owner). Makes push(Wait) return instead of waiting: the consumer is gone.
  void abandon();

  struct Stats {
    std::size_t waiting{0};        // records waiting for the consumer now
    std::size_t waiting_bytes{0};  // their packed size
    std::size_t max_waiting{0};    // the most records that ever waited
    bool items_waiting{false};     // records or markers wait (a gap's marker counts as no record)
    ReaderStats reader;
  };
  [[nodiscard]] Stats stats() const;

private:
  EventQueue(UniqueFd wake, std::size_t capacity_bytes, std::size_t wake_records) noexcept
      : wake_(std::move(wake)),
        capacity_bytes_(capacity_bytes),
        chunk_bytes_(chunkBytesFor(capacity_bytes)),
        wake_records_(wake_records) {}
  void signal() const noexcept;
  // Under the lock: whether a record of `size` bytes fits in the queue.
  [[nodiscard]] bool fits(std::size_t size) const noexcept;
  // Under the lock: the chunk to append `bytes` to (a marker takes none), the newest one if it
  // has the room.
  PipelineBatch& chunkWithRoom(std::size_t bytes);

  UniqueFd wake_;
  const std::size_t capacity_bytes_;
  const std::size_t chunk_bytes_;
  const std::size_t wake_records_;

  mutable std::mutex mutex_;
  std::condition_variable room_;  // the consumer took a batch, or the queue was abandoned
  std::deque<PipelineBatch> waiting_;  // oldest first; none is empty
  std::vector<PipelineBatch> spare_;   // emptied chunks, kept for reuse (a few)
  std::size_t waiting_records_{0};
  std::size_t waiting_bytes_{0};
  std::size_t max_waiting_{0};
  bool closed_{false};
  bool abandoned_{false};
  bool producer_waiting_{false};
  std::optional<Error> failure_;
  ReaderStats stats_{};
};

}  // namespace ctaudit::daemon
