// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <atomic>
#include <cstdint>

#include "flow/time.hpp"

namespace ctaudit::testing {

// A Clock that only moves when told to. The sinks' worker threads (the JSON archiver, the
// pipeline) read it while the test moves it, so the time is an atomic: a plain member is a data
// race that ThreadSanitizer reports.
class ManualClock final : public Clock {
public:
  explicit ManualClock(Timestamp start = fromUnixNanos(1'795'617'349'000'000'000))
      : nanos_(toUnixNanos(start)) {}
  [[nodiscard]] Timestamp now() const noexcept override { return fromUnixNanos(nanos_.load()); }
  void set(Timestamp t) noexcept { nanos_.store(toUnixNanos(t)); }
  void advance(std::chrono::nanoseconds d) noexcept { nanos_.fetch_add(d.count()); }

private:
  std::atomic<std::int64_t> nanos_;
};

}  // namespace ctaudit::testing
