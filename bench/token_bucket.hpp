// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>

namespace ctaudit::bench {

// Paces operations at a fixed rate: tokens accrue at `rate_per_second` up to `capacity` (a
// couple of sends' worth, so a stall is not made up for with one long burst). A rate of 0
// means no limit: every request is granted at once. Times are passed in, so the bucket holds no
// clock and is tested without sleeping. A value type; one thread.
class TokenBucket {
public:
  using Clock = std::chrono::steady_clock;

  TokenBucket(double rate_per_second, std::size_t capacity, Clock::time_point now) noexcept
      : rate_(rate_per_second), capacity_(static_cast<double>(std::max<std::size_t>(capacity, 1))), last_(now) {}

  [[nodiscard]] bool unlimited() const noexcept { return rate_ <= 0.0; }

  // Whole tokens available at `now` (at most the capacity).
  [[nodiscard]] std::size_t available(Clock::time_point now) noexcept {
    if (unlimited()) {
      return static_cast<std::size_t>(capacity_);
    }
    refill(now);
    return static_cast<std::size_t>(tokens_);
  }

  // Spends `count` tokens; precondition: count <= available(now) for the same `now`.
  void take(std::size_t count) noexcept {
    if (!unlimited()) {
      tokens_ -= static_cast<double>(count);
    }
  }

  // The earliest time at which `count` tokens (at most the capacity) will be available.
  [[nodiscard]] Clock::time_point readyAt(std::size_t count, Clock::time_point now) noexcept {
    if (unlimited()) {
      return now;
    }
    refill(now);
    const double missing = std::min(static_cast<double>(count), capacity_) - tokens_;
    if (missing <= 0.0) {
      return now;
    }
    const std::chrono::duration<double> wait{missing / rate_};
    return now + std::chrono::ceil<Clock::duration>(wait);
  }

private:
  void refill(Clock::time_point now) noexcept {
    if (now > last_) {
      const std::chrono::duration<double> elapsed = now - last_;
      tokens_ = std::min(capacity_, tokens_ + elapsed.count() * rate_);
      last_ = now;
    }
  }

  double rate_;
  double capacity_;
  double tokens_{0.0};
  Clock::time_point last_;
};

}  // namespace ctaudit::bench
