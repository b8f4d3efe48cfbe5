// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "flow/tuple.hpp"

namespace ctaudit::storage {

// The Community ID v1 of a flow (https://github.com/corelight/community-id-spec): a direction-free
// hash of the 5-tuple that Zeek, Suricata, Elastic's ingest processor and others compute the same
// way, so that a SIEM can join our NAT records with their flow logs by one string compare.
//
//   "1:" + base64(SHA-1(seed | addr_a | addr_b | proto | 0 | port_a | port_b))
//
// with every field in network byte order (seed 2 bytes, addresses 4 or 16, proto 1, one zero
// padding byte, ports 2 each), and the endpoints ordered so that the smaller (address, then port)
// comes first; a flow and its reverse therefore get the same id.
//
// Which protocols hash ports follows the spec, not hasPorts(): TCP, UDP and SCTP hash their ports;
// ICMP and ICMPv6 hash type and code mapped to ports the way Zeek does (a request and its reply
// share an id; one-way messages such as errors hash type and code unswapped); every other protocol,
// DCCP and UDP-Lite included, hashes addresses and protocol only. The ICMP id is never hashed.
//
// `original` is the conntrack original tuple; both addresses must be of one family (conntrack
// guarantees it). Returns "" only if libcrypto fails to compute SHA-1 (the spec's "no id" value),
// which does not happen with the default provider. Pure and thread-safe.
[[nodiscard]] std::string communityId(const FlowTuple& original, std::uint16_t seed = 0);

// The length of a Community ID v1: "1:" and 28 base64 characters.
inline constexpr std::size_t kCommunityIdSize = 30;
// The same id written to `out` without allocating (the JSON mapping computes one per record).
// Returns true, or false (and `out` unspecified) when libcrypto fails to compute SHA-1.
[[nodiscard]] bool communityId(const FlowTuple& original, std::span<char, kCommunityIdSize> out,
                               std::uint16_t seed = 0) noexcept;

}  // namespace ctaudit::storage
