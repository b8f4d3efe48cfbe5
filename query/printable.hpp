// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <iosfwd>
#include <string>
#include <string_view>

namespace ctaudit::query {

// `text` with its control characters shown as \xNN: C0 (below 0x20), DEL, and the C1 controls
// U+0080..U+009F as UTF-8 (0xC2 0x80..0x9F, a terminal's CSI among them); and each byte that is
// not part of well-formed UTF-8 (a Latin-1 byte, a cut or overlong sequence). An error message echoes
// what was typed and what the database holds, and an escape sequence pasted from a report must
// not reach the terminal as one.
[[nodiscard]] std::string printable(std::string_view text);

// Writes "ctaudit: DETAIL" and a newline to `err`, DETAIL through printable(): the query tool's
// error lines.
void printErrorLine(std::ostream& err, std::string_view detail);

}  // namespace ctaudit::query
