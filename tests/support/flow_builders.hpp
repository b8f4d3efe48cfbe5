// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string_view>

#include "flow/flow_record.hpp"

// Builders for the FlowRecords that tests feed to sinks and compare with what comes back. Addresses
// are text so that a test reads like `conntrack -L`; a malformed literal aborts the test binary.
namespace ctaudit::testing {

// 2026-11-25T10:00:00Z, a fixed origin for test times.
inline constexpr Timestamp kTestEpoch = fromUnixNanos(1'795'600'800'000'000'000);

// kTestEpoch + `offset`, e.g. at(90s).
[[nodiscard]] constexpr Timestamp at(std::chrono::nanoseconds offset) noexcept { return kTestEpoch + offset; }

[[nodiscard]] IpAddress ip(std::string_view text);

// A tuple of a port-carrying protocol (TCP, UDP, …).
[[nodiscard]] FlowTuple portTuple(Protocol protocol, std::string_view src, std::uint16_t src_port, std::string_view dst,
                                  std::uint16_t dst_port);
// An ICMP or ICMPv6 tuple.
[[nodiscard]] FlowTuple icmpTuple(Protocol protocol, std::string_view src, std::string_view dst, std::uint8_t type,
                                  std::uint8_t code, std::uint16_t id);

// The reply tuple of `original` without translation: endpoints swapped; an ICMP echo request
// becomes an echo reply (type 8 → 0, 128 → 129), as conntrack's invert_tuple does.
[[nodiscard]] FlowTuple replyOf(const FlowTuple& original);
// `reply` after SNAT/masquerade to address:port (the ICMP id for ICMP): the reply's destination.
[[nodiscard]] FlowTuple withSnat(FlowTuple reply, std::string_view address, std::uint16_t port);
// `reply` after DNAT to address:port: the reply's source.
[[nodiscard]] FlowTuple withDnat(FlowTuple reply, std::string_view address, std::uint16_t port);

// A record as the decoder would build it for `event` of the flow (ct_id, original, reply) received
// at `time`:
//  - status CONFIRMED | SEEN_REPLY | ASSURED, plus SRC_NAT/DST_NAT (and the _DONE bits) where the
//    tuples show a translation; `nat` from deriveNat();
//  - tcp_state for TCP: SYN_SENT (New), ESTABLISHED (Update, Dump), TIME_WAIT (Destroy);
//  - New and Dump: start = time; Update: no start; Destroy: end = time, no start, counters
//    10 packets / 1000 bytes original and 8 / 4000 reply; Dump: the same counters;
//  - every time is TimeSource::Receive; event_time = time; Dump sets observed_at_start.
[[nodiscard]] FlowRecord flowEvent(EventType event, std::uint32_t ct_id, const FlowTuple& original,
                                   const FlowTuple& reply, Timestamp time);

}  // namespace ctaudit::testing

namespace ctaudit {

// Lets GoogleTest print a FlowRecord field by field instead of as bytes (found by ADL).
void PrintTo(const FlowRecord& record, std::ostream* out);

}  // namespace ctaudit
