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

}  // namespace

std::string printable(std::string_view text) {
  std::string shown;
  shown.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    const auto byte = static_cast<unsigned char>(text[i]);
    const bool c1 = byte == 0xC2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) >= 0x80 &&
                    static_cast<unsigned char>(text[i + 1]) <= 0x9F;
    if (c1) {
      appendEscaped(shown, byte);
      appendEscaped(shown, static_cast<unsigned char>(text[++i]));
    } else if (byte < 0x20 || byte == 0x7F) {
      appendEscaped(shown, byte);
    } else {
      shown += text[i];
    }
  }
  return shown;
}

void printErrorLine(std::ostream& err, std::string_view detail) { err << "ctaudit: " << printable(detail) << '\n'; }

}  // namespace ctaudit::query
