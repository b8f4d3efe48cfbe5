// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ctaudit {

// A size as operators write it in flags and the config file: "512K", "64M", "1G", "2GiB" (powers
// of 1024), or plain bytes ("4096").
struct ByteSize {
  std::uint64_t bytes{};
  bool has_unit{};
};

// nullopt for anything else: an empty text, other unit letters ("5MB", "1T"), a sign, a number
// that does not fit in 64 bits once scaled. Range checks are the caller's: each setting has its own.
[[nodiscard]] std::optional<ByteSize> parseByteSize(std::string_view text) noexcept;

}  // namespace ctaudit
