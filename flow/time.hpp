// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "flow/result.hpp"

namespace ctaudit {

// A point in UTC with nanosecond resolution: the unit of ctnetlink's CTA_TIMESTAMP_* attributes.
using Timestamp = std::chrono::sys_time<std::chrono::nanoseconds>;

[[nodiscard]] constexpr Timestamp fromUnixNanos(std::int64_t ns) noexcept {
  return Timestamp{std::chrono::nanoseconds{ns}};
}
[[nodiscard]] constexpr std::int64_t toUnixNanos(Timestamp t) noexcept { return t.time_since_epoch().count(); }

// RFC 3339 in UTC with a `Z` and nine fractional digits: "2026-11-25T10:00:03.123456789Z".
[[nodiscard]] std::string formatRfc3339(Timestamp t);

// The size of formatRfc3339's text: every Timestamp (years 1677 to 2262) has a four-digit year.
inline constexpr std::size_t kRfc3339Size = 30;
// Writes formatRfc3339(t) to `out` without allocating (the JSON mapping writes two or three per
// record); returns the end of what it wrote.
char* formatRfc3339(Timestamp t, std::span<char, kRfc3339Size> out) noexcept;

// Parses what an operator types for a point in time:
//  - RFC 3339 with `Z` or a numeric offset, fractional seconds optional, `T` or a space between
//    date and time: "2026-11-25T10:00:03Z", "2026-11-25 12:00:03.5+02:00";
//  - Unix seconds after an `@`, fraction optional: "@1795617349.21".
// A time with no zone is refused with a message that says how to write one: guessing the zone of
// an abuse report is how the wrong subscriber gets named.
[[nodiscard]] Result<Timestamp> parseTime(std::string_view text);

// Parses a duration such as "2s", "500ms", "1m30s", "1h", "2d", "250us", "0". A bare number is
// seconds.
[[nodiscard]] Result<std::chrono::nanoseconds> parseDuration(std::string_view text);

// Reads the realtime clock. Behind an interface so that tests can inject time.
class Clock {
public:
  virtual ~Clock() = default;
  [[nodiscard]] virtual Timestamp now() const noexcept = 0;
};

class SystemClock final : public Clock {
public:
  [[nodiscard]] Timestamp now() const noexcept override;
};

}  // namespace ctaudit
