// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ctaudit {

// An IP protocol number (IANA "Assigned Internet Protocol Numbers"). The named values are the
// ones conntrack tracks with their own state; any other number is still a valid Protocol.
enum class Protocol : std::uint8_t {
  Icmp = 1,
  Tcp = 6,
  Udp = 17,
  Dccp = 33,
  Gre = 47,
  Icmpv6 = 58,
  Sctp = 132,
  UdpLite = 136,
};

// Lower-case name as used by ECS network.transport and conntrack(8): "tcp", "icmp", "ipv6-icmp";
// a number without a name is rendered as its decimal value.
[[nodiscard]] std::string protocolName(Protocol protocol);
// Accepts the names above in any case (and "icmpv6", "udplite") or a decimal number 0-255.
[[nodiscard]] std::optional<Protocol> parseProtocol(std::string_view text);
// True for ICMP and ICMPv6, whose tuples carry type/code/id instead of ports.
[[nodiscard]] constexpr bool isIcmp(Protocol protocol) noexcept {
  return protocol == Protocol::Icmp || protocol == Protocol::Icmpv6;
}
// True when the tuple carries source and destination ports.
[[nodiscard]] constexpr bool hasPorts(Protocol protocol) noexcept {
  return protocol == Protocol::Tcp || protocol == Protocol::Udp || protocol == Protocol::UdpLite ||
         protocol == Protocol::Sctp || protocol == Protocol::Dccp;
}

}  // namespace ctaudit
