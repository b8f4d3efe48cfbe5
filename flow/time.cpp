// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/time.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <cstdint>
#include <optional>

namespace ctaudit {
namespace {

using std::chrono::days;
using std::chrono::nanoseconds;

// Reads exactly `width` decimal digits at `pos`; advances pos.
bool readDigits(std::string_view text, std::size_t& pos, std::size_t width, int& out) {
  if (pos + width > text.size()) {
    return false;
  }
  int value = 0;
  for (std::size_t i = 0; i < width; ++i) {
    const char c = text[pos + i];
    if (std::isdigit(static_cast<unsigned char>(c)) == 0) {
      return false;
    }
    value = value * 10 + (c - '0');
  }
  out = value;
  pos += width;
  return true;
}

bool expect(std::string_view text, std::size_t& pos, char c) {
  if (pos < text.size() && text[pos] == c) {
    ++pos;
    return true;
  }
  return false;
}

// Reads ".digits" (any count; digits past the ninth, below a nanosecond, are dropped) as
// nanoseconds: 0 without a separator, nullopt for a separator with no digit after it. A comma
// separates too where `comma` says so (ISO 8601 allows it; Unix seconds are not ISO 8601).
std::optional<std::int64_t> readFraction(std::string_view text, std::size_t& pos, bool comma) {
  std::int64_t ns = 0;
  if (!expect(text, pos, '.') && !(comma && expect(text, pos, ','))) {
    return 0;
  }
  if (pos == text.size() || std::isdigit(static_cast<unsigned char>(text[pos])) == 0) {
    return std::nullopt;
  }
  int digits = 0;
  while (pos < text.size() && std::isdigit(static_cast<unsigned char>(text[pos])) != 0) {
    if (digits < 9) {
      ns = ns * 10 + (text[pos] - '0');
      ++digits;
    }
    ++pos;
  }
  for (; digits < 9; ++digits) {
    ns *= 10;
  }
  return ns;
}

// Nanoseconds in one `unit` of a duration (none: "s"), or 0 for a unit that is not one.
std::int64_t unitNanos(std::string_view unit) noexcept {
  constexpr std::int64_t kSecond = 1'000'000'000;
  if (unit.empty() || unit == "s") {
    return kSecond;
  }
  if (unit == "ns") {
    return 1;
  }
  // Also with the micro sign (U+00B5) or the Greek mu (U+03BC), as people write it.
  if (unit == "us" || unit == "\u00B5s" || unit == "\u03BCs") {
    return 1'000;
  }
  if (unit == "ms") {
    return 1'000'000;
  }
  if (unit == "m") {
    return 60 * kSecond;
  }
  if (unit == "h") {
    return 3600 * kSecond;
  }
  if (unit == "d") {
    return 86'400 * kSecond;
  }
  return 0;
}

Unexpected badTime(std::string_view text, std::string_view why) {
  return fail(Errc::Usage, "bad time '" + std::string(text) + "': " + std::string(why) +
                               "; write RFC 3339 with a zone, e.g. 2026-11-25T10:00:03Z or "
                               "2026-11-25T12:00:03+02:00, or Unix seconds as @1795617349");
}

// A Timestamp counts nanoseconds in 64 bits: 1677-09-21T00:12:43.145224192Z to
// 2262-04-11T23:47:16.854775807Z. A time outside is refused rather than wrapped around into
// another century, which would answer a question about a time nobody asked about.
Unexpected outOfRange(std::string_view text) {
  return fail(Errc::Usage, "bad time '" + std::string(text) +
                               "': out of range; times from 1677-09-21T00:12:43.145224192Z to "
                               "2262-04-11T23:47:16.854775807Z (@-9223372036.854775808 to "
                               "@9223372036.854775807) can be given");
}

// seconds * 10^9 + fraction (|fraction| < 10^9), or nothing when that does not fit in 64 bits.
std::optional<std::int64_t> nanosOf(std::int64_t seconds, std::int64_t fraction) noexcept {
  if (seconds < 0 && fraction > 0) {
    // 1677-09-21T00:12:43.5Z: the seconds alone, times 10^9, would not fit; their sum does.
    seconds += 1;
    fraction -= 1'000'000'000;
  }
  std::int64_t ns = 0;
  if (__builtin_mul_overflow(seconds, std::int64_t{1'000'000'000}, &ns) || __builtin_add_overflow(ns, fraction, &ns)) {
    return std::nullopt;
  }
  return ns;
}

Result<Timestamp> parseUnix(std::string_view text) {
  std::string_view body = text.substr(1);
  bool negative = false;
  if (!body.empty() && body.front() == '-') {
    negative = true;
    body.remove_prefix(1);
  }
  // Digits next: from_chars would take a second sign ('@--5' as 5, or INT64_MIN to negate).
  if (body.empty() || std::isdigit(static_cast<unsigned char>(body.front())) == 0) {
    return badTime(text, "expected digits after '@'");
  }
  std::int64_t seconds = 0;
  const auto [end, ec] = std::from_chars(body.data(), body.data() + body.size(), seconds);
  if (ec == std::errc::result_out_of_range) {
    return outOfRange(text);
  }
  if (ec != std::errc{} || end == body.data()) {
    return badTime(text, "expected digits after '@'");
  }
  std::size_t pos = static_cast<std::size_t>(end - body.data());
  const auto fraction = readFraction(body, pos, false);
  if (!fraction) {
    return badTime(text, "expected digits after the '.'");
  }
  if (pos != body.size()) {
    return badTime(text, "unexpected characters after the seconds");
  }
  const auto ns = nanosOf(negative ? -seconds : seconds, negative ? -*fraction : *fraction);
  if (!ns) {
    return outOfRange(text);
  }
  return fromUnixNanos(*ns);
}

}  // namespace

std::string formatRfc3339(Timestamp t) {
  std::array<char, kRfc3339Size> buffer{};
  const char* end = formatRfc3339(t, buffer);
  return {buffer.data(), static_cast<std::size_t>(end - buffer.data())};
}

char* formatRfc3339(Timestamp t, std::span<char, kRfc3339Size> out) noexcept {
  // Split into whole seconds and nanoseconds from the count itself: floor<days>(t) of a time on
  // 1677-09-21, the first day a Timestamp holds, is a midnight before INT64_MIN nanoseconds.
  const std::int64_t ns = toUnixNanos(t);
  std::int64_t whole_seconds = ns / 1'000'000'000;
  std::int64_t subsecond = ns % 1'000'000'000;
  if (subsecond < 0) {
    whole_seconds -= 1;
    subsecond += 1'000'000'000;
  }
  const std::chrono::sys_seconds seconds{std::chrono::seconds{whole_seconds}};
  const auto day = std::chrono::floor<days>(seconds);
  const std::chrono::year_month_day ymd{day};
  const std::chrono::hh_mm_ss<std::chrono::seconds> tod{seconds - day};
  char* p = out.data();
  // Fixed-width decimal, most significant digit first.
  const auto put = [&p](std::uint64_t value, int width) {
    for (int i = width - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + value % 10);
      value /= 10;
    }
    p += width;
  };
  // sys_time<nanoseconds> spans the years 1677 to 2262, so the year has four digits.
  put(static_cast<std::uint64_t>(static_cast<int>(ymd.year())), 4);
  *p++ = '-';
  put(static_cast<unsigned>(ymd.month()), 2);
  *p++ = '-';
  put(static_cast<unsigned>(ymd.day()), 2);
  *p++ = 'T';
  put(static_cast<std::uint64_t>(tod.hours().count()), 2);
  *p++ = ':';
  put(static_cast<std::uint64_t>(tod.minutes().count()), 2);
  *p++ = ':';
  put(static_cast<std::uint64_t>(tod.seconds().count()), 2);
  *p++ = '.';
  put(static_cast<std::uint64_t>(subsecond), 9);
  *p++ = 'Z';
  return p;
}

Result<Timestamp> parseTime(std::string_view text) {
  if (!text.empty() && text.front() == '@') {
    return parseUnix(text);
  }
  std::size_t pos = 0;
  int year = 0;
  int month = 0;
  int day = 0;
  int hour = 0;
  int minute = 0;
  int second = 0;
  if (!readDigits(text, pos, 4, year) || !expect(text, pos, '-') || !readDigits(text, pos, 2, month) ||
      !expect(text, pos, '-') || !readDigits(text, pos, 2, day)) {
    return badTime(text, "expected a date YYYY-MM-DD");
  }
  if (!(expect(text, pos, 'T') || expect(text, pos, 't') || expect(text, pos, ' ')) ||
      !readDigits(text, pos, 2, hour) || !expect(text, pos, ':') || !readDigits(text, pos, 2, minute) ||
      !expect(text, pos, ':') || !readDigits(text, pos, 2, second)) {
    return badTime(text, "expected a time of day hh:mm:ss after the date");
  }
  const auto fraction = readFraction(text, pos, true);
  if (!fraction) {
    return badTime(text, "expected digits after the seconds' decimal separator");
  }
  if (pos == text.size()) {
    return badTime(text, "the time has no zone");
  }
  std::int64_t offset_minutes = 0;
  if (expect(text, pos, 'Z') || expect(text, pos, 'z')) {
    offset_minutes = 0;
  } else if (text[pos] == '+' || text[pos] == '-') {
    const bool west = text[pos] == '-';
    ++pos;
    int off_h = 0;
    int off_m = 0;
    if (!readDigits(text, pos, 2, off_h) || !expect(text, pos, ':') || !readDigits(text, pos, 2, off_m) ||
        off_h > 23 || off_m > 59) {
      return badTime(text, "the zone offset must be +hh:mm or -hh:mm");
    }
    offset_minutes = (west ? -1 : 1) * (off_h * 60 + off_m);
  } else {
    return badTime(text, "unexpected characters where the zone should be");
  }
  if (pos != text.size()) {
    return badTime(text, "unexpected characters after the zone");
  }
  const std::chrono::year_month_day ymd{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                                        std::chrono::day{static_cast<unsigned>(day)}};
  if (!ymd.ok() || hour > 23 || minute > 59 || second > 60) {
    return badTime(text, "no such date or time of day");
  }
  if (second == 60) {
    // Unix time, which the kernel's timestamps count, has no leap seconds: hh:mm:60 has no value
    // of its own, and rolling it over to the next minute would answer about another second.
    const auto two = [](int value) { return std::string(value < 10 ? "0" : "") + std::to_string(value); };
    return badTime(text, "second 60 (a leap second) has no Unix time; in Unix time it is " + two(hour) + ":" +
                             two(minute) + ":59 or the next minute's :00");
  }
  // In seconds first, which hold any four-digit year, then in nanoseconds if they fit.
  const std::int64_t seconds = std::int64_t{std::chrono::sys_days{ymd}.time_since_epoch().count()} * 86'400 +
                               std::int64_t{hour} * 3600 + std::int64_t{minute} * 60 + second - offset_minutes * 60;
  const auto ns = nanosOf(seconds, *fraction);
  if (!ns) {
    return outOfRange(text);
  }
  return fromUnixNanos(*ns);
}

Result<nanoseconds> parseDuration(std::string_view text) {
  if (text.empty()) {
    return fail(Errc::Usage, "empty duration; write e.g. 2s, 500ms, 1m30s");
  }
  // Nanoseconds in 64 bits: a sum or product past that is refused, not wrapped around (a retention
  // of 213505d would otherwise become a day).
  const auto too_long = [text] {
    return fail(Errc::Usage, "bad duration '" + std::string(text) +
                                 "': too long; the longest is 106751d23h47m16s (about 292 years)");
  };
  std::int64_t total = 0;
  std::size_t pos = 0;
  std::int64_t last_unit_ns = 0;  // units go from the largest down, each once: "1h30m", not "1s1m"
  while (pos < text.size()) {
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data() + pos, text.data() + text.size(), value);
    if (ec == std::errc::result_out_of_range) {
      return too_long();
    }
    if (ec != std::errc{} || value < 0) {
      return fail(Errc::Usage, "bad duration '" + std::string(text) + "'; write e.g. 2s, 500ms, 1m30s, 1h, 2d");
    }
    pos = static_cast<std::size_t>(end - text.data());
    // A unit is letters, and the bytes of a UTF-8 "µ".
    std::size_t unit_end = pos;
    while (unit_end < text.size() && (std::isalpha(static_cast<unsigned char>(text[unit_end])) != 0 ||
                                      static_cast<unsigned char>(text[unit_end]) >= 0x80)) {
      ++unit_end;
    }
    const std::string_view unit = text.substr(pos, unit_end - pos);
    pos = unit_end;
    if (unit.empty() && pos != text.size()) {
      return fail(Errc::Usage, "bad duration '" + std::string(text) + "': " +
                                   (text[pos] == '.' || text[pos] == ','
                                        ? "no fractions; write e.g. 1500ms for 1.5s"
                                        : "unexpected '" + std::string(1, text[pos]) + "' after " +
                                              std::to_string(value) + "; write e.g. 2s, 500ms, 1m30s"));
    }
    if (unit.empty() && last_unit_ns != 0) {
      // "1h30" is 1h30m more often than 1h0m30s: a bare number is seconds only on its own.
      return fail(Errc::Usage, "bad duration '" + std::string(text) + "': " + std::to_string(value) +
                                   " after a unit needs its own unit, e.g. 1h30m or 1m30s");
    }
    const std::int64_t unit_ns = unitNanos(unit);
    if (unit_ns == 0) {
      return fail(Errc::Usage, "bad duration unit '" + std::string(unit) + "' in '" + std::string(text) +
                                   "'; use ns, us, ms, s, m, h or d");
    }
    if (last_unit_ns != 0 && unit_ns >= last_unit_ns) {
      return fail(Errc::Usage, "bad duration '" + std::string(text) +
                                   "': give each unit once, the largest first, e.g. 1h30m or 1m30s");
    }
    last_unit_ns = unit_ns;
    std::int64_t term = 0;
    if (__builtin_mul_overflow(value, unit_ns, &term) || __builtin_add_overflow(total, term, &total)) {
      return too_long();
    }
  }
  return nanoseconds{total};
}

Timestamp SystemClock::now() const noexcept {
  return std::chrono::time_point_cast<nanoseconds>(std::chrono::system_clock::now());
}

}  // namespace ctaudit
