// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <string_view>

// Well-formed UTF-8 as Unicode 15, table 3-7 defines it: no overlong forms, no surrogates, nothing
// above U+10FFFF. The JSON mapping replaces what is not (U+FFFD) and the query tool's error lines
// escape it (\xNN); both judge it here.
namespace ctaudit {

// How many continuation bytes the UTF-8 sequence led by `lead` needs and the range its first one
// must be in; every later one is 0x80..0xBF. needed == 0: `lead` cannot start a sequence.
struct Utf8Lead {
  std::size_t needed{0};
  unsigned char low{0x80U};
  unsigned char high{0xBFU};
};

constexpr Utf8Lead utf8Lead(unsigned char lead) noexcept {
  if (lead >= 0xC2U && lead <= 0xDFU) {
    return {1, 0x80U, 0xBFU};
  }
  if (lead == 0xE0U) {
    return {2, 0xA0U, 0xBFU};
  }
  if (lead == 0xEDU) {
    return {2, 0x80U, 0x9FU};
  }
  if (lead >= 0xE1U && lead <= 0xEFU) {
    return {2, 0x80U, 0xBFU};
  }
  if (lead == 0xF0U) {
    return {3, 0x90U, 0xBFU};
  }
  if (lead >= 0xF1U && lead <= 0xF3U) {
    return {3, 0x80U, 0xBFU};
  }
  if (lead == 0xF4U) {
    return {3, 0x80U, 0x8FU};
  }
  return {};
}

// The length of the well-formed multi-byte sequence at the start of `text`, or 0 when there is
// none there (an ASCII byte, a byte that leads nothing, a sequence cut short or ill-formed).
constexpr std::size_t utf8SequenceLength(std::string_view text) noexcept {
  if (text.empty()) {
    return 0;
  }
  const Utf8Lead lead = utf8Lead(static_cast<unsigned char>(text[0]));
  if (lead.needed == 0 || text.size() <= lead.needed) {
    return 0;
  }
  for (std::size_t i = 1; i <= lead.needed; ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < (i == 1 ? lead.low : 0x80U) || byte > (i == 1 ? lead.high : 0xBFU)) {
      return 0;
    }
  }
  return lead.needed + 1;
}

}  // namespace ctaudit
