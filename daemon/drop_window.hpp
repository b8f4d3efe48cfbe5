// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "flow/gap_record.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// Accumulates records that were dropped, as an exact count and the window of their event times,
// until they are reported as one GapRecord. Used for queue overflows (EventReader) and for the
// records a failing sink could not keep (Batcher). A plain value; not thread-safe.
class DropWindow {
public:
  // Counts one dropped record whose event happened at `event_time`; `now` is when it was dropped.
  void add(Timestamp event_time, Timestamp now) noexcept { add(event_time, event_time, now, 1); }
  // Counts `count` lost records whose events happened somewhere in [earliest, latest].
  void add(Timestamp earliest, Timestamp latest, Timestamp now, std::uint64_t count) noexcept;

  [[nodiscard]] bool empty() const noexcept { return count_ == 0; }
  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  // The earliest event time of the window's records. Precondition: !empty().
  [[nodiscard]] Timestamp earliest() const noexcept { return earliest_; }
  // When the first and the last record of the window were dropped (not their event times).
  [[nodiscard]] Timestamp firstDropAt() const noexcept { return first_drop_; }
  [[nodiscard]] Timestamp lastDropAt() const noexcept { return last_drop_; }

  // The window as a gap, [earliest, latest event time] with the count, and starts a new window.
  // Precondition: !empty().
  [[nodiscard]] GapRecord take(GapReason reason, std::string sink = {});

private:
  std::uint64_t count_{0};
  Timestamp earliest_{};
  Timestamp latest_{};
  Timestamp first_drop_{};
  Timestamp last_drop_{};
};

}  // namespace ctaudit::daemon
