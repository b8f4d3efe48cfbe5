// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "flow/result.hpp"

namespace ctaudit {

// The longest command-line argument either program takes: a path (PATH_MAX) with its option name.
inline constexpr std::size_t kMaxArgumentBytes = 4096 + 64;

// Refuses an argument longer than kMaxArgumentBytes before anything parses it (Errc::Usage,
// naming its position and its first bytes). Every message of the two programs echoes the
// argument it is about, and a 100 kB one (a paste gone wrong, a fuzzer) filled the terminal or
// the journal line. `program` is "ctaudit" or "ctauditd".
[[nodiscard]] Result<void> checkArgumentLengths(std::span<const std::string_view> args, std::string_view program);

}  // namespace ctaudit
