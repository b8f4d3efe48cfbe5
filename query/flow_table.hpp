// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <span>
#include <string>

#include "flow/flow_record.hpp"

namespace ctaudit::query {

// The human-readable table of flows, in the order given:
//
//   START  END  PROTO  INSIDE  TRANSLATED  DESTINATION  [DNAT_TO]  CT_ID  BYTES_OUT  BYTES_IN  [GAP]
//
// INSIDE is the original source, TRANSLATED the SNAT/masquerade source the outside saw ("-" when
// the flow was not source-translated), DESTINATION the original destination. DNAT_TO (the address
// the packets were really sent to) appears only when some flow was destination-translated. For
// ICMP the port is the ICMP id, as in `ctaudit who`; protocols without ports show bare addresses.
// Times are RFC 3339 UTC truncated to microseconds; END is "open" for a flow that has not ended.
// A time taken from ctauditd's clock rather than the kernel's is marked '~', the START of a
// flow first seen in the table dump at ctauditd's start '*', and an END that is only a bound (the
// DESTROY was lost; TimeSource::Bound) '^'; a footnote after the table explains each mark used. Counters missing from the record are "-".
//
// `gaps` is empty, or holds one signed distance per flow (see gapToLifetime), shown in a GAP column
// as "0", "+1.5s" (the flow began that long after the asked time) or "-0.25s" (ended before it).
// How `who` found a flow: by its translated source (SNAT, masquerade), or as one that came in
// through a port forward (DNAT) of the asked address and port.
enum class WhoMatch : std::uint8_t { TranslatedSource, PortForward };

// `matches` is empty, or says per flow how `who` found it: a MATCH column ("snat", "forward") when
// some flow came through a port forward, since the INSIDE column of such a flow holds the outside
// host that connected, and DNAT_TO the inside one.
// Returns the whole text, every line ending in '\n'; empty when `flows` is.
[[nodiscard]] std::string renderFlowTable(std::span<const FlowRecord> flows,
                                          std::span<const std::chrono::nanoseconds> gaps,
                                          std::span<const WhoMatch> matches = {});

}  // namespace ctaudit::query
