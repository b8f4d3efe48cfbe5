// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_rotation.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <ctime>
#include <limits>

#include "flow/byte_size.hpp"

namespace ctaudit::storage {
namespace {

using std::chrono::seconds;

constexpr std::uint64_t kMinRotateBytes = 1024;
constexpr seconds kDay{86400};

// "512M", "64K", "1G", "2GiB": powers of 1024, unit required (a bare number could be seconds).
std::optional<std::uint64_t> parseRotateSize(std::string_view text) {
  const auto size = parseByteSize(text);
  if (!size || !size->has_unit || size->bytes == 0 || size->bytes > (std::uint64_t{1} << 50U)) {
    return std::nullopt;
  }
  return size->bytes;
}

// A size is what ends in an uppercase unit letter or "iB"; a period ends in a lowercase one.
bool looksLikeSize(std::string_view text) {
  return !text.empty() && (std::isupper(static_cast<unsigned char>(text.back())) != 0 || text.ends_with("iB"));
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && text.front() == ' ') {
    text.remove_prefix(1);
  }
  while (!text.empty() && text.back() == ' ') {
    text.remove_suffix(1);
  }
  return text;
}

std::int64_t floorSeconds(Timestamp t) noexcept {
  return std::chrono::floor<seconds>(t.time_since_epoch()).count();
}
std::int64_t ceilSeconds(Timestamp t) noexcept { return std::chrono::ceil<seconds>(t.time_since_epoch()).count(); }

// "20261125T170000Z" for whole Unix seconds.
std::string basicUtc(std::int64_t unix_seconds) {
  const auto time = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  ::gmtime_r(&time, &tm);
  std::array<char, 32> text{};
  const std::size_t n = std::strftime(text.data(), text.size(), "%Y%m%dT%H%M%SZ", &tm);
  return {text.data(), n};
}

// Reads exactly "YYYYMMDDTHHMMSSZ" (16 characters) back into Unix seconds.
std::optional<std::int64_t> parseBasicUtc(std::string_view text) {
  if (text.size() != 16 || text[8] != 'T' || text[15] != 'Z') {
    return std::nullopt;
  }
  const auto number = [&](std::size_t at, std::size_t length) -> std::optional<int> {
    int value = 0;
    const auto [end, ec] = std::from_chars(text.data() + at, text.data() + at + length, value);
    if (ec != std::errc{} || end != text.data() + at + length) {
      return std::nullopt;
    }
    return value;
  };
  const auto year = number(0, 4);
  const auto month = number(4, 2);
  const auto day = number(6, 2);
  const auto hour = number(9, 2);
  const auto minute = number(11, 2);
  const auto second = number(13, 2);
  if (!year || !month || !day || !hour || !minute || !second) {
    return std::nullopt;
  }
  const std::chrono::year_month_day date{std::chrono::year{*year}, std::chrono::month{static_cast<unsigned>(*month)},
                                         std::chrono::day{static_cast<unsigned>(*day)}};
  if (!date.ok() || *hour > 23 || *minute > 59 || *second > 59) {
    return std::nullopt;
  }
  const std::int64_t unix_seconds = std::chrono::sys_days{date}.time_since_epoch() / seconds{1} +
                                    std::int64_t{*hour} * 3600 + std::int64_t{*minute} * 60 + *second;
  // Four digits reach years that a Timestamp (nanoseconds in 64 bits, 1677-2262) cannot hold; no
  // file of ours has such a name, and converting it would overflow.
  constexpr std::int64_t kLimit = std::numeric_limits<std::int64_t>::max() / 1'000'000'000;
  if (unix_seconds > kLimit || unix_seconds < -kLimit) {
    return std::nullopt;
  }
  return unix_seconds;
}

// The active file's name split where the closed names put their times: "flows" and ".jsonl".
std::pair<std::string, std::string> stemAndExtension(const std::filesystem::path& active) {
  return {active.stem().string(), active.extension().string()};
}

}  // namespace

Result<RotationPolicy> parseRotationPolicy(std::string_view text) {
  RotationPolicy policy;
  if (trim(text) == "none") {
    return policy;
  }
  const auto bad = [&](std::string_view part, std::string_view why) {
    return fail(Errc::Usage, "bad jsonl-rotate '" + std::string(text) + "': '" + std::string(part) + "' " +
                                 std::string(why) +
                                 "; write 'none', a UTC period such as 1h or 1d, a size such as 512M, or both: 1d,512M");
  };
  std::string_view rest = text;
  while (true) {
    const auto comma = rest.find(',');
    const std::string_view part = trim(rest.substr(0, comma));
    if (part.empty()) {
      return bad(part, "is empty");
    }
    if (looksLikeSize(part)) {
      const auto bytes = parseRotateSize(part);
      if (!bytes) {
        return bad(part, "is not a size (units K, M, G)");
      }
      if (*bytes < kMinRotateBytes) {
        return bad(part, "is smaller than 1K");
      }
      if (policy.max_bytes) {
        return bad(part, "is a second size");
      }
      policy.max_bytes = *bytes;
    } else {
      const auto duration = parseDuration(part);
      if (!duration || part.find_first_not_of("0123456789") == std::string_view::npos) {
        return bad(part, "is neither a period with a unit (s, m, h, d) nor a size with a unit (K, M, G)");
      }
      const auto period = std::chrono::duration_cast<seconds>(*duration);
      if (period != *duration || period < seconds{1} || period > kDay || kDay % period != seconds{0}) {
        return bad(part, "does not divide a day into whole seconds (e.g. 1m, 15m, 1h, 6h, 1d)");
      }
      if (policy.period) {
        return bad(part, "is a second period");
      }
      policy.period = period;
    }
    if (comma == std::string_view::npos) {
      break;
    }
    rest.remove_prefix(comma + 1);
  }
  return policy;
}

std::string formatRotationPolicy(const RotationPolicy& policy) {
  if (!policy.enabled()) {
    return "none";
  }
  std::string text;
  if (policy.period) {
    const auto s = policy.period->count();
    text = s % 86400 == 0 ? std::to_string(s / 86400) + "d"
           : s % 3600 == 0 ? std::to_string(s / 3600) + "h"
           : s % 60 == 0   ? std::to_string(s / 60) + "m"
                           : std::to_string(s) + "s";
  }
  if (policy.max_bytes) {
    const std::uint64_t b = *policy.max_bytes;
    text += text.empty() ? "" : ",";
    text += b % (1U << 30U) == 0 ? std::to_string(b >> 30U) + "G"
            : b % (1U << 20U) == 0 ? std::to_string(b >> 20U) + "M"
            : b % (1U << 10U) == 0 ? std::to_string(b >> 10U) + "K"
                                   : std::to_string(b) + "B";
  }
  return text;
}

Result<Compression> parseCompression(std::string_view text) {
  if (text == "none") {
    return Compression::None;
  }
  if (text == "gzip") {
    return Compression::Gzip;
  }
  if (text == "zstd") {
    return Compression::Zstd;
  }
  return fail(Errc::Usage, "bad jsonl-compress '" + std::string(text) + "'; use gzip, zstd or none");
}

std::string_view compressionName(Compression compression) noexcept {
  switch (compression) {
    case Compression::Gzip:
      return "gzip";
    case Compression::Zstd:
      return "zstd";
    case Compression::None:
      break;
  }
  return "none";
}

std::string_view compressionSuffix(Compression compression) noexcept {
  switch (compression) {
    case Compression::Gzip:
      return ".gz";
    case Compression::Zstd:
      return ".zst";
    case Compression::None:
      break;
  }
  return "";
}

Timestamp periodStart(Timestamp t, std::chrono::seconds period) noexcept {
  const auto since_epoch = std::chrono::floor<seconds>(t.time_since_epoch());
  const auto into = since_epoch % period;
  // % keeps the sign of the dividend: before 1970 step back one more period.
  const auto start = since_epoch - into - (into < seconds{0} ? period : seconds{0});
  return Timestamp{start};
}

RotateReason rotationDue(const RotationPolicy& policy, Timestamp file_start, std::uint64_t file_bytes,
                         std::uint64_t incoming_bytes, Timestamp now) noexcept {
  if (file_bytes == 0) {
    return RotateReason::None;
  }
  if (policy.period && periodStart(now, *policy.period) > periodStart(file_start, *policy.period)) {
    return RotateReason::Age;
  }
  if (policy.max_bytes && file_bytes + incoming_bytes > *policy.max_bytes) {
    return RotateReason::Size;
  }
  return RotateReason::None;
}

Timestamp closedEnd(const RotationPolicy& policy, RotateReason reason, Timestamp file_start, Timestamp now) noexcept {
  Timestamp end = Timestamp{seconds{ceilSeconds(now)}};
  if (reason == RotateReason::Age && policy.period) {
    end = std::min(end, periodStart(file_start, *policy.period) + *policy.period);
  }
  return std::max(end, Timestamp{seconds{floorSeconds(file_start)}});
}

std::filesystem::path closedFilePath(const std::filesystem::path& active, Timestamp start, Timestamp end) {
  const auto [stem, extension] = stemAndExtension(active);
  return active.parent_path() /
         (stem + "-" + basicUtc(floorSeconds(start)) + "-" + basicUtc(ceilSeconds(end)) + extension);
}

std::optional<ClosedFile> parseClosedFileName(const std::filesystem::path& active, std::string_view file_name) {
  const auto [stem, extension] = stemAndExtension(active);
  ClosedFile file;
  std::string_view name = file_name;
  if (name.ends_with(".tmp")) {
    file.temporary = true;
    name.remove_suffix(4);
  }
  for (const Compression c : {Compression::Gzip, Compression::Zstd}) {
    if (name.ends_with(compressionSuffix(c))) {
      file.compression = c;
      name.remove_suffix(compressionSuffix(c).size());
      break;
    }
  }
  if (file.temporary && file.compression == Compression::None) {
    return std::nullopt;  // only compressions use temporaries
  }
  // stem "-" 16 "-" 16 extension
  if (name.size() != stem.size() + 34 + extension.size() || !name.starts_with(stem) || !name.ends_with(extension) ||
      name[stem.size()] != '-' || name[stem.size() + 17] != '-') {
    return std::nullopt;
  }
  const auto start = parseBasicUtc(name.substr(stem.size() + 1, 16));
  const auto end = parseBasicUtc(name.substr(stem.size() + 18, 16));
  if (!start || !end || *end < *start) {
    return std::nullopt;
  }
  file.path = active.parent_path() / std::string(file_name);
  file.base = std::string(name);
  file.start = Timestamp{seconds{*start}};
  file.end = Timestamp{seconds{*end}};
  return file;
}

}  // namespace ctaudit::storage
