// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/printable.hpp"

#include <ostream>

#include "flow/utf8.hpp"

namespace ctaudit::query {
namespace {

void appendEscaped(std::string& out, unsigned char byte) {
  constexpr std::string_view kHex = "0123456789abcdef";
  out += "\\x";
  out += kHex[byte >> 4U];
  out += kHex[byte & 0xFU];
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
