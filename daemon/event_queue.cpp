// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/event_queue.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>

#include <sys/eventfd.h>
#include <unistd.h>

namespace ctaudit::daemon {
namespace {

// Grows `buffer` for `extra` more items without letting doubling take it far past `limit`: the
// queue's memory bound is two buffers of `limit` records.
void reserveFor(std::vector<PipelineItem>& buffer, std::size_t extra, std::size_t limit) {
  const std::size_t needed = buffer.size() + extra;
  if (needed <= buffer.capacity()) {
    return;
  }
  constexpr std::size_t kFirstReserve = 1024;
  buffer.reserve(std::max(needed, std::min(std::max(buffer.capacity() * 2, kFirstReserve), limit)));
}

}  // namespace

Result<std::unique_ptr<EventQueue>> EventQueue::open(std::size_t capacity) {
  UniqueFd wake{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (!wake.valid()) {
    const int err = errno;
    return fail(Errc::Io, std::string("cannot create an eventfd for the event queue: ") + std::strerror(err), err);
  }
  return std::unique_ptr<EventQueue>(new EventQueue(std::move(wake), std::max<std::size_t>(capacity, 1)));
}

void EventQueue::signal() const noexcept {
  const std::uint64_t one = 1;
  // EAGAIN only when the counter is at its maximum, i.e. already readable.
  (void)!::write(wake_.get(), &one, sizeof one);
}

std::size_t EventQueue::push(std::vector<PipelineItem>& items, WhenFull when_full) {
  if (items.empty()) {
    return 0;
  }
  bool wake = false;
  std::size_t next = 0;  // items[0, next) have been taken or kept
  std::size_t kept = 0;  // items[0, kept) are the records left behind (DropNewest)
  {
    std::unique_lock lock(mutex_);
    while (!closed_) {
      const bool was_empty = waiting_.empty();
      reserveFor(waiting_, std::min(items.size() - next, capacity_ - std::min(capacity_, waiting_records_)),
                 capacity_);
      for (; next < items.size(); ++next) {
        const bool record = isRecord(items[next]);
        if (!record || waiting_records_ < capacity_) {
          waiting_.push_back(std::move(items[next]));
          if (record) {
            ++waiting_records_;
          }
        } else if (when_full == WhenFull::DropNewest) {
          if (kept != next) {
            items[kept] = std::move(items[next]);
          }
          ++kept;
        } else {
          break;  // Wait: keep the order, wait for room below
        }
      }
      max_waiting_ = std::max(max_waiting_, waiting_records_);
      wake = wake || (was_empty && !waiting_.empty());
      if (next == items.size() || abandoned_) {
        break;
      }
      // The consumer must know there is something to take before this thread sleeps.
      if (wake) {
        signal();
        wake = false;
      }
      producer_waiting_ = true;
      room_.wait(lock, [this] { return waiting_records_ < capacity_ || abandoned_ || closed_; });
    }
  }
  if (wake) {
    signal();
  }
  // What was not taken: the dropped records at the front, then whatever a Wait could not place.
  if (next < items.size() && kept != next) {
    std::move(items.begin() + static_cast<std::ptrdiff_t>(next), items.end(),
              items.begin() + static_cast<std::ptrdiff_t>(kept));
  }
  items.erase(items.begin() + static_cast<std::ptrdiff_t>(kept + (items.size() - next)), items.end());
  return static_cast<std::size_t>(std::count_if(items.begin(), items.end(), isRecord));
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

EventQueue::Taken EventQueue::take(std::vector<PipelineItem>& out) {
  std::uint64_t count = 0;
  (void)!::read(wake_.get(), &count, sizeof count);  // reset before looking, so no wake-up is lost
  Taken taken;
  bool wake_producer = false;
  {
    const std::lock_guard lock(mutex_);
    out.swap(waiting_);
    waiting_records_ = 0;
    wake_producer = std::exchange(producer_waiting_, false);
    taken.closed = closed_;
    taken.failure = failure_;
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
  return {waiting_records_, max_waiting_, stats_};
}

}  // namespace ctaudit::daemon
