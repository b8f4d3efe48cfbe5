// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "flow/result.hpp"
#include "flow/time.hpp"

// The built-in rotation of the JSON-lines file: the policy (`jsonl-rotate`), the names of closed
// files, and the pure decisions the sink and the archiver take from them. No I/O here, so that
// every rule is tested with a ManualClock (tests/unit/storage/jsonl_rotation_test.cpp).
// docs/operations.md, "JSON lines: rotation and shippers", is the operator's side of this.
namespace ctaudit::storage {

// How closed files are compressed (`jsonl-compress`).
enum class Compression : std::uint8_t { None, Gzip, Zstd };

// When the active file is closed (`jsonl-rotate`): at the end of each UTC period (`1h`: at every
// full hour; `1d`: at 00:00 UTC), and/or before a write that would take it past `max_bytes`.
// Neither set: no built-in rotation (logrotate's rename + SIGHUP still works).
struct RotationPolicy {
  std::optional<std::chrono::seconds> period;
  std::optional<std::uint64_t> max_bytes;

  [[nodiscard]] bool enabled() const noexcept { return period.has_value() || max_bytes.has_value(); }
  friend bool operator==(const RotationPolicy&, const RotationPolicy&) = default;
};

// What the JSON-lines sink does besides writing: rotation, and what happens to closed files.
struct RotationSettings {
  RotationPolicy policy{};
  // Closed files kept (plain or compressed); older ones are deleted. nullopt: keep all.
  std::optional<std::size_t> keep{};
  Compression compression{Compression::None};
  // A closed file is compressed or deleted only this long after it was closed, so that a shipper
  // that lags or restarts can still finish it (docs/operations.md).
  std::chrono::seconds grace{std::chrono::minutes{5}};

  friend bool operator==(const RotationSettings&, const RotationSettings&) = default;
};

// Parses `jsonl-rotate`: "none", or a comma-separated list of at most one period and one size,
// e.g. "1d", "1h", "15m", "512M", "1h,512M". A period is a duration with a lowercase unit (s, m,
// h, d) that divides a day evenly (1s to 1d), so that periods line up with UTC days. A size has an
// uppercase unit K, M or G (or KiB, MiB, GiB; powers of 1024) and is at least 1K. Errors:
// Errc::Usage naming the bad part and what to write instead.
[[nodiscard]] Result<RotationPolicy> parseRotationPolicy(std::string_view text);
// The policy written back as parseRotationPolicy reads it ("none", "1h,512M"), for --help and logs.
[[nodiscard]] std::string formatRotationPolicy(const RotationPolicy& policy);

// Parses `jsonl-compress`: "gzip", "zstd" or "none".
[[nodiscard]] Result<Compression> parseCompression(std::string_view text);
[[nodiscard]] std::string_view compressionName(Compression compression) noexcept;
// ".gz", ".zst", or "" for None.
[[nodiscard]] std::string_view compressionSuffix(Compression compression) noexcept;

// The start of the UTC period of length `period` that holds `t`; periods are counted from the
// Unix epoch, which with a period dividing a day puts their boundaries on the UTC day's grid.
[[nodiscard]] Timestamp periodStart(Timestamp t, std::chrono::seconds period) noexcept;

// Why the active file should be closed before the next write.
enum class RotateReason : std::uint8_t { None, Age, Size };

// The rotation decision, taken before each write and at each flush. `file_start`: when the active
// file was begun; `file_bytes`: its size; `incoming_bytes`: what is about to be appended (0 at a
// flush). An empty file is never closed. Age: `now` is in a later period than `file_start`. Size:
// the write would take a non-empty file past max_bytes (so a file exceeds it only when one batch
// alone does).
[[nodiscard]] RotateReason rotationDue(const RotationPolicy& policy, Timestamp file_start, std::uint64_t file_bytes,
                                       std::uint64_t incoming_bytes, Timestamp now) noexcept;

// The end a closed file's name carries: for an Age rotation the period boundary that closed it
// (every line in it was written before that), for Size the closing time rounded up to the second.
// Never before `file_start`.
[[nodiscard]] Timestamp closedEnd(const RotationPolicy& policy, RotateReason reason, Timestamp file_start,
                                  Timestamp now) noexcept;

// A closed file's name, in the active file's directory: the active name's stem, the UTC start and
// end in ISO 8601 basic format (no colons; second resolution, start rounded down and end up), and
// the active name's extension: "flows.jsonl" -> "flows-20261125T170000Z-20261125T180000Z.jsonl".
// Names sort in the order the files were closed.
[[nodiscard]] std::filesystem::path closedFilePath(const std::filesystem::path& active, Timestamp start,
                                                   Timestamp end);

// A file in the active file's directory that the rotation made, as parseClosedFileName reads it.
struct ClosedFile {
  std::filesystem::path path;
  std::string base;  // the plain closed name, without compression or .tmp suffix
  Timestamp start;
  Timestamp end;
  Compression compression{Compression::None};  // which suffix it has
  bool temporary{false};                        // an unfinished compression (".gz.tmp", ".zst.tmp")
};

// Reads a name made by closedFilePath (plus ".gz"/".zst", plus ".tmp") for the active file
// `active`; nullopt for any other name (the active file, "<active>.torn", logrotate's ".1").
[[nodiscard]] std::optional<ClosedFile> parseClosedFileName(const std::filesystem::path& active,
                                                            std::string_view file_name);

}  // namespace ctaudit::storage
