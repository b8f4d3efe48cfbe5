// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/byte_size.hpp"

#include <charconv>
#include <limits>
#include <system_error>

namespace ctaudit {

std::optional<ByteSize> parseByteSize(std::string_view text) noexcept {
  std::uint64_t value = 0;
  const char* const last = text.data() + text.size();
  const auto [end, ec] = std::from_chars(text.data(), last, value);
  if (ec != std::errc{} || end == text.data()) {
    return std::nullopt;
  }
  const std::string_view unit(end, static_cast<std::size_t>(last - end));
  unsigned shift = 0;
  if (unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else if (!unit.empty()) {
    return std::nullopt;
  }
  if (value > std::numeric_limits<std::uint64_t>::max() >> shift) {
    return std::nullopt;
  }
  return ByteSize{value << shift, !unit.empty()};
}

}  // namespace ctaudit
