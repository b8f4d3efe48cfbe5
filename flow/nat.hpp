// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>

#include "flow/ct_status.hpp"
#include "flow/ip_address.hpp"
#include "flow/tuple.hpp"

namespace ctaudit {


// The address translation one conntrack entry performs.
struct NatMapping {
  // SNAT/masquerade: the source the outside world saw (the reply tuple's destination).
  std::optional<Endpoint> translated_source;
  // DNAT/redirect: the destination the packets were really sent to (the reply tuple's source).
  std::optional<Endpoint> translated_destination;

  friend bool operator==(const NatMapping&, const NatMapping&) = default;
};

// Derives the mapping from the status bits and both tuples. The kernel sets IPS_SRC_NAT and
// IPS_DST_NAT when it sets up a translation (nf_nat_setup_info); for ICMP the "port" is the id.
// When status is not known (0), a tuple mismatch is taken as the evidence instead, so that an entry
// whose status attribute was missing still yields its mapping.
[[nodiscard]] NatMapping deriveNat(std::uint32_t status, const FlowTuple& original, const FlowTuple& reply) noexcept;

}  // namespace ctaudit
