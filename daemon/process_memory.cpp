// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/process_memory.hpp"

#include <charconv>
#include <fstream>
#include <string>

namespace ctaudit::daemon {
namespace {

// The value of a "Name:    123 kB" line in bytes.
std::optional<std::uint64_t> kibField(std::string_view status, std::string_view name) noexcept {
  for (std::size_t at = 0; at < status.size();) {
    const std::size_t end = std::min(status.find('\n', at), status.size());
    std::string_view line = status.substr(at, end - at);
    at = end + 1;
    if (!line.starts_with(name) || line.size() <= name.size() || line[name.size()] != ':') {
      continue;
    }
    line.remove_prefix(name.size() + 1);
    const std::size_t digits = line.find_first_not_of(" \t");
    if (digits == std::string_view::npos) {
      return std::nullopt;
    }
    line.remove_prefix(digits);
    std::uint64_t kib = 0;
    const auto [rest, ec] = std::from_chars(line.data(), line.data() + line.size(), kib);
    if (ec != std::errc{} || std::string_view(rest, line.data() + line.size()) != " kB" ||
        kib > (UINT64_MAX >> 10U)) {
      return std::nullopt;
    }
    return kib << 10U;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessMemory> parseProcessMemory(std::string_view status) noexcept {
  const auto resident = kibField(status, "VmRSS");
  const auto peak = kibField(status, "VmHWM");
  if (!resident || !peak) {
    return std::nullopt;
  }
  return ProcessMemory{*resident, *peak};
}

std::optional<ProcessMemory> readProcessMemory() {
  std::ifstream in("/proc/self/status");
  std::string text;
  for (std::string line; std::getline(in, line);) {
    text += line;
    text += '\n';
  }
  return parseProcessMemory(text);
}

}  // namespace ctaudit::daemon
