// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <compare>
#include <cstdint>

#include "flow/ip_address.hpp"
#include "flow/protocol.hpp"

namespace ctaudit {

// One direction of a conntrack entry, as ctnetlink's CTA_TUPLE_ORIG / CTA_TUPLE_REPLY carry it.
// For port-carrying protocols src_port/dst_port are set; for ICMP and ICMPv6 they are zero and
// icmp_type/icmp_code/icmp_id are set instead (the id plays the port's role in NAT). Ports and the
// id are in host order.
struct FlowTuple {
  IpAddress src;
  IpAddress dst;
  Protocol protocol{Protocol::Tcp};
  std::uint16_t src_port{0};
  std::uint16_t dst_port{0};
  std::uint8_t icmp_type{0};
  std::uint8_t icmp_code{0};
  std::uint16_t icmp_id{0};

  // The value that NAT rewrites on the source side: the source port, or the ICMP id.
  [[nodiscard]] std::uint16_t sourceKey() const noexcept { return isIcmp(protocol) ? icmp_id : src_port; }
  // The value that NAT rewrites on the destination side: the destination port, or the ICMP id.
  [[nodiscard]] std::uint16_t destinationKey() const noexcept {
    return isIcmp(protocol) ? icmp_id : dst_port;
  }

  friend auto operator<=>(const FlowTuple&, const FlowTuple&) = default;
};

}  // namespace ctaudit
