// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/event_queue.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <variant>

#include <sys/eventfd.h>
#include <unistd.h>

namespace ctaudit::daemon {
Result<std::unique_ptr<EventQueue>> EventQueue::open(std::size_t capacity_bytes, std::size_t wake_records) {
  UniqueFd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (!wake.valid()) {
    const int err = errno;
    return fail(Errc::Io, std::string("cannot create an eventfd for the event queue: ") + std::strerror(err), err);
  }
  return std::unique_ptr<EventQueue>(new EventQueue(std::move(wake), capacity_bytes, wake_records));
}

void EventQueue::signal() const noexcept {
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum, i.e. already readable.
  (void)!::write(wake_.get(), &one, sizeof one);
}

bool EventQueue::fits(std::size_t size) const noexcept {
  return waiting_records_ == 0 || waiting_bytes_ + size <= capacity_bytes_;
}

std::size_t EventQueue::chunkBytesFor(std::size_t capacity_bytes) noexcept {
  return std::clamp(capacity_bytes / 4, kMinChunkBytes, kChunkBytes);
}

PipelineBatch& EventQueue::chunkWithRoom(std::size_t bytes) {
  if (waiting_.empty() || (bytes > 0 && waiting_.back().recordBytes() + bytes > chunk_bytes_)) {
    if (spare_.empty()) {
      waiting_.emplace_back().reserveBytes(chunk_bytes_);
    } else {
      waiting_.push_back(std::move(spare_.back()));
      spare_.pop_back();
    }
  }
  return waiting_.back();
}

std::size_t EventQueue::push(PipelineBatch& items, WhenFull when_full) {
  if (items.empty()) {
    return 0;
  }
  bool wake = false;
  PipelineBatch::Cursor next(items);  // what is before it has been taken or kept
  PipelineBatch kept;                  // the records left behind (DropNewest)
  // DropNewest: once one record did not fit, neither does any later one of this batch, so that
  // what is dropped is the newest records, whatever their sizes.
  bool dropping = false;
  {
    std::unique_lock lock(mutex_);
    while (!closed_) {
      const std::size_t chunks_before = waiting_.size();
      const std::size_t records_before = waiting_records_;
      for (; !next.done(); next.skip()) {
        const PipelineBatch::Entry entry = next.peek();
        if (entry.marker != nullptr) {
          chunkWithRoom(0).append(entry);
          // ReaderDrained only bounds the heartbeat, and LossNoticed only matters to the records
          // after it: they wait for the next wake like a record.
          wake = wake || !(std::holds_alternative<ReaderDrained>(*entry.marker) ||
                           std::holds_alternative<LossNoticed>(*entry.marker));
        } else if (!dropping && fits(entry.record.size())) {
          chunkWithRoom(entry.record.size()).append(entry);
          ++waiting_records_;
          waiting_bytes_ += entry.record.size();
        } else if (when_full == WhenFull::DropNewest) {
          dropping = true;
          kept.append(entry);
        } else {
          break;  // Wait: keep the order, wait for room below
        }
      }
      max_waiting_ = std::max(max_waiting_, waiting_records_);
      // A second chunk waiting means the first is full: the consumer has not been told of it yet
      // unless two waited before. Likewise for wake_records_.
      wake = wake || dropping || (chunks_before < 2 && waiting_.size() >= 2) ||
             (records_before < wake_records_ && waiting_records_ >= wake_records_);
      if (next.done() || abandoned_) {
        break;
      }
      // The consumer must know there is something to take before this thread sleeps.
      signal();
      wake = false;
      producer_waiting_ = true;
      const std::size_t size = next.peek().record.size();
      room_.wait(lock, [&] { return fits(size) || abandoned_ || closed_; });
    }
  }
  if (wake) {
    signal();
  }
  // What was not taken: the dropped records, then whatever a Wait could not place.
  for (; !next.done(); next.skip()) {
    kept.append(next.peek());
  }
  if (kept.empty()) {
    items.clear();  // keeps its buffer for the producer's next batch
  } else {
    items.swap(kept);
  }
  return items.records();
}

void EventQueue::publish(const ReaderStats& stats) {
  const std::lock_guard lock(mutex_);
  stats_ = stats;
}

void EventQueue::close(std::optional<Error> failure) {
  {
    const std::lock_guard lock(mutex_);
    closed_ = true;
    failure_ = std::move(failure);
  }
  signal();
}

EventQueue::Taken EventQueue::take(PipelineBatch& out) {
  std::uint64_t count = 0;
  (void)!::read(wake_.get(), &count, sizeof count);  // reset before looking, so no wake-up is lost
  Taken taken;
  bool wake_producer = false;
  bool more = false;
  {
    const std::lock_guard lock(mutex_);
    if (!waiting_.empty()) {
      if (spare_.size() < kSpareChunks && out.reservedBytes() >= chunk_bytes_) {
        spare_.push_back(std::move(out));  // the consumer's last chunk, emptied
        out = PipelineBatch{};
      }
      out.swap(waiting_.front());
      waiting_.pop_front();
      waiting_records_ -= out.records();
      waiting_bytes_ -= out.recordBytes();
      wake_producer = std::exchange(producer_waiting_, false);
    }
    more = !waiting_.empty();
    taken.closed = closed_ && !more;
    taken.failure = failure_;
  }
  if (more) {
    signal();  // come back for the next chunk
  }
  if (wake_producer) {
    room_.notify_one();
  }
  return taken;
}

void EventQueue::abandon() {
  {
    const std::lock_guard lock(mutex_);
    abandoned_ = true;
  }
  room_.notify_all();
}

EventQueue::Stats EventQueue::stats() const {
  const std::lock_guard lock(mutex_);
  return {waiting_records_, waiting_bytes_, max_waiting_, !waiting_.empty(), stats_};
}

}  // namespace ctaudit::daemon
