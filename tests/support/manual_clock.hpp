// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "flow/time.hpp"

namespace ctaudit::testing {

// A Clock that only moves when told to.
class ManualClock final : public Clock {
public:
  explicit ManualClock(Timestamp start = fromUnixNanos(1'795'617'349'000'000'000)) : now_(start) {}
  [[nodiscard]] Timestamp now() const noexcept override { return now_; }
  void set(Timestamp t) noexcept { now_ = t; }
  void advance(std::chrono::nanoseconds d) noexcept { now_ += d; }

private:
  Timestamp now_;
};

}  // namespace ctaudit::testing
