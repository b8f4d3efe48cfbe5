// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ctaudit::daemon {

// The daemon's memory as the kernel counts it (proc(5), /proc/PID/status): what an operator sizes
// the machine by, next to the bounds --queue-max and the batch settings set (docs/operations.md,
// "Memory: --queue-max").
struct ProcessMemory {
  std::uint64_t resident_bytes{0};       // VmRSS: resident now
  std::uint64_t peak_resident_bytes{0};  // VmHWM: the most that was ever resident
  friend bool operator==(const ProcessMemory&, const ProcessMemory&) = default;
};

// From the text of a /proc/PID/status file; nullopt when either line is missing or malformed.
[[nodiscard]] std::optional<ProcessMemory> parseProcessMemory(std::string_view status) noexcept;

// This process's, from /proc/self/status; nullopt when it cannot be read (no /proc mounted).
[[nodiscard]] std::optional<ProcessMemory> readProcessMemory();

}  // namespace ctaudit::daemon
