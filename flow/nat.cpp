// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/nat.hpp"

namespace ctaudit {

NatMapping deriveNat(std::uint32_t status, const FlowTuple& original, const FlowTuple& reply) noexcept {
  // Without NAT the reply tuple is the original one inverted: reply.dst == orig.src and
  // reply.src == orig.dst. A translation shows as a difference on that side.
  const bool source_differs =
      reply.dst != original.src || reply.destinationKey() != original.sourceKey();
  // ICMP has one id for both directions: a rewritten id is evidence of SNAT only (a DNAT that
  // also rewrote the id is indistinguishable here, and rare).
  const bool destination_differs =
      reply.src != original.dst || (!isIcmp(original.protocol) && reply.sourceKey() != original.destinationKey());
  const bool status_known = status != 0;

  NatMapping mapping;
  const bool snat = status_known ? (status & ct_status::kSrcNat) != 0 : source_differs;
  const bool dnat = status_known ? (status & ct_status::kDstNat) != 0 : destination_differs;
  if (snat) {
    mapping.translated_source = Endpoint{reply.dst, reply.destinationKey()};
  }
  if (dnat) {
    mapping.translated_destination = Endpoint{reply.src, reply.sourceKey()};
  }
  return mapping;
}

}  // namespace ctaudit
