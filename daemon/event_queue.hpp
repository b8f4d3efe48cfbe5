// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "daemon/pipeline_item.hpp"
#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

// The bounded hand-over between the reader thread (one producer) and the pipeline thread (one
// consumer). Owned by the Daemon; shared by reference with the EventReader, which it outlives.
//
// Two buffers are swapped rather than items moved one by one: the producer appends a whole
// recvmmsg batch to `waiting_` under the lock, and the consumer swaps `waiting_` with its own
// empty vector under the lock and works through the batch without it. So the lock is held for a
// move of one batch or a vector swap, never while a record is decoded or written, and there is
// no per-record syscall. Each buffer holds at most `capacity` records, so the queue's memory is
// at most two buffers (ReaderQueueBudget, docs/operations.md).
//
// Wake-ups: an eventfd (fd()) that the producer signals when `waiting_` goes from empty to
// non-empty, and on close; the consumer polls it and resets it before it swaps. A producer that
// must wait for space (WhenFull::Wait) sleeps on a condition variable the consumer signals after
// a swap.
//
// Markers (everything but FlowRecord) always fit: they are few and carry what makes the record
// whole (resynchronisation, gaps); only records count against the capacity.
//
// Thread safety: every member function may be called from either thread, except that push(),
// publish() and close() belong to the producer and take() to the consumer.
// Lock: mutex_ guards waiting_, max_waiting_, closed_, failure_, stats_, producer_waiting_ and
// abandoned_. It is a leaf lock: nothing else is locked while it is held.
class EventQueue {
public:
  enum class WhenFull : std::uint8_t {
    DropNewest,  // what does not fit stays in the caller's vector, to be counted as dropped
    Wait,        // block until the consumer makes room (or the queue is abandoned)
  };

  // Errors: Errc::Io when the eventfd cannot be created. Precondition: capacity > 0.
  [[nodiscard]] static Result<std::unique_ptr<EventQueue>> open(std::size_t capacity);

  EventQueue(const EventQueue&) = delete;
  EventQueue& operator=(const EventQueue&) = delete;
  EventQueue(EventQueue&&) = delete;
  EventQueue& operator=(EventQueue&&) = delete;
  ~EventQueue() = default;

  // Readable (POLLIN) when items wait or the queue was closed.
  [[nodiscard]] int fd() const noexcept { return wake_.get(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

  // Producer. Moves `items` into the queue in order and erases them from `items`. With DropNewest,
  // records that do not fit stay in `items` (markers are always taken), so the caller can count
  // them and note their times; with Wait, everything is taken, waiting for room as needed, unless
  // the queue was abandoned, in which case what remains stays in `items`. Returns how many records
  // stayed behind. After close() nothing is taken.
  std::size_t push(std::vector<PipelineItem>& items, WhenFull when_full);
  // Producer. Makes `stats` the reader's published counters.
  void publish(const ReaderStats& stats);
  // Producer. No more items will come; `failure` says why the reader stopped early, if it did.
  void close(std::optional<Error> failure = std::nullopt);

  // Consumer. Precondition: `out` is empty. Swaps the waiting items into `out`.
  struct Taken {
    bool closed{false};  // the producer is done, and `out` holds its last items
    std::optional<Error> failure;
  };
  Taken take(std::vector<PipelineItem>& out);
  // Consumer (or its owner). Makes push(Wait) return instead of waiting: the consumer is gone.
  void abandon();

  struct Stats {
    std::size_t waiting{0};      // records waiting for the consumer now
    std::size_t max_waiting{0};  // the most that ever waited
    ReaderStats reader;
  };
  [[nodiscard]] Stats stats() const;

private:
  EventQueue(UniqueFd wake, std::size_t capacity) noexcept : wake_(std::move(wake)), capacity_(capacity) {}
  void signal() const noexcept;

  UniqueFd wake_;
  const std::size_t capacity_;

  mutable std::mutex mutex_;
  std::condition_variable room_;  // the consumer took a batch, or the queue was abandoned
  std::vector<PipelineItem> waiting_;
  std::size_t waiting_records_{0};
  std::size_t max_waiting_{0};
  bool closed_{false};
  bool abandoned_{false};
  bool producer_waiting_{false};
  std::optional<Error> failure_;
  ReaderStats stats_{};
};

}  // namespace ctaudit::daemon
