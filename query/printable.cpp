// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/printable.hpp"

#include <ostream>

namespace ctaudit::query {
namespace {

void appendEscaped(std::string& out, unsigned char byte) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out += "\\x";
  out += kHex[byte >> 4U];
  out += kHex[byte & 0xFU];
}

// The length of the well-formed UTF-8 sequence at the start of `text` (Unicode 15, table 3-7: no
// overlong forms, no surrogates, nothing above U+10FFFF), or 0 when its first byte begins none.
std::size_t utf8SequenceLength(std::string_view text) noexcept {
  const auto at = [&text](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  const unsigned char lead = at(0);
  std::size_t length = 0;
  unsigned char low = 0x80;
  unsigned char high = 0xBF;  // the range of the second byte; later ones are always 80..BF
  if (lead >= 0xC2 && lead <= 0xDF) {
    length = 2;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    length = 3;
    low = lead == 0xE0 ? 0xA0 : 0x80;
    high = lead == 0xED ? 0x9F : 0xBF;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    length = 4;
    low = lead == 0xF0 ? 0x90 : 0x80;
    high = lead == 0xF4 ? 0x8F : 0xBF;
  }
  if (length == 0 || text.size() < length || at(1) < low || at(1) > high) {
    return 0;
  }
  for (std::size_t i = 2; i < length; ++i) {
    if (at(i) < 0x80 || at(i) > 0xBF) {
      return 0;
    }
  }
  return length;
}

}  // namespace

std::string printable(std::string_view text) {
  std::string shown;
  shown.reserve(text.size());
  for (std::size_t i = 0; i < text.size();) {
    const auto byte = static_cast<unsigned char>(text[i]);
    if (byte < 0x80) {
      if (byte < 0x20 || byte == 0x7F) {
        appendEscaped(shown, byte);
      } else {
        shown += text[i];
      }
      ++i;
      continue;
    }
    const std::size_t length = utf8SequenceLength(text.substr(i));
    const bool c1 = length == 2 && byte == 0xC2 && static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (length == 0 || c1) {
      // A byte that begins no character (a Latin-1 é pasted from a report, a cut sequence) would
      // reach the terminal as whatever its charset makes of it; a C1 control as one.
      const std::size_t escaped = c1 ? 2 : 1;
      for (std::size_t k = 0; k < escaped; ++k) {
        appendEscaped(shown, static_cast<unsigned char>(text[i + k]));
      }
      i += escaped;
      continue;
    }
    shown.append(text.substr(i, length));
    i += length;
  }
  return shown;
}

void printErrorLine(std::ostream& err, std::string_view detail) { err << "ctaudit: " << printable(detail) << '\n'; }

}  // namespace ctaudit::query
