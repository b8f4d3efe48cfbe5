// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>

namespace ctaudit {

// Unsigned LEB128, the varint both compact record forms use (the daemon's packed queue records and
// the `counters` column): 7 bits a byte, low bits first, the high bit set on every byte but the
// last; at most 10 bytes for 64 bits. Hands each byte to `append(std::uint8_t)`. Their readers
// differ on purpose: the queue reads bytes it wrote itself, the database reader checks every byte.
template <class Append>
void writeVarint(std::uint64_t value, Append&& append) {
  constexpr unsigned kPayloadBits = 7;
  constexpr std::uint64_t kMore = 0x80;
  while (value >= kMore) {
    append(static_cast<std::uint8_t>(value | kMore));
    value >>= kPayloadBits;
  }
  append(static_cast<std::uint8_t>(value));
}

}  // namespace ctaudit
