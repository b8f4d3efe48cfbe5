// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "flow/ip_address.hpp"
#include "flow/protocol.hpp"
#include "flow/time.hpp"

namespace ctaudit::storage {

// A typed description of which stored flows to return. Every set field narrows the result (AND).
// Built by the query tool from its flags; turned into SQL only inside storage/.
struct FlowQuery {
  // Translated source (SNAT/masquerade) address, and port (or ICMP id) when set.
  std::optional<IpAddress> nat_source_address;
  std::optional<std::uint16_t> nat_source_port;
  // Original source address inside this block (the subscriber).
  std::optional<IpNetwork> source;
  // Original destination address, and port when set.
  std::optional<IpAddress> destination_address;
  std::optional<std::uint16_t> destination_port;
  // The destination filter matches where the packets went instead: the DNAT target when the flow
  // has one (a hairpin, a redirect to an outside resolver), else the original destination. For
  // `who --dst`, whose victim received them there.
  bool destination_reached{false};
  // The public side of a port forward: the original destination of a flow with DNAT (its
  // translated destination set), and its port when set. `ctaudit who` asks this when a report's
  // address and port were a port forward's, which no flow had as its translated source.
  std::optional<IpAddress> forwarded_address;
  std::optional<std::uint16_t> forwarded_port;
  // Either translation: the translated source or the translated destination equals this address
  // (and port when set).
  std::optional<IpAddress> nat_address;
  std::optional<std::uint16_t> nat_port;
  std::optional<Protocol> protocol;
  // The conntrack zone: one inside address in two zones (VRFs behind one gateway) is two hosts.
  std::optional<std::uint16_t> zone;
  // Lifetime overlap: a flow matches when start <= to and (end >= from, or it has no end yet).
  // A flow with no start is taken to have started at its end.
  std::optional<Timestamp> from;
  std::optional<Timestamp> to;
  // At most this many rows; the result is ordered by start time, oldest first.
  std::optional<std::size_t> limit;
};

}  // namespace ctaudit::storage
