// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <functional>
#include <optional>

#include "flow/ip_address.hpp"
#include "flow/nat.hpp"
#include "flow/time.hpp"
#include "flow/tuple.hpp"

namespace ctaudit {

// What the kernel told us about a flow in one message.
enum class EventType : std::uint8_t {
  New,      // IPCTNL_MSG_CT_NEW multicast with NLM_F_CREATE: the entry was confirmed
  Update,   // IPCTNL_MSG_CT_NEW multicast for an existing entry: state, status or mark changed
  Destroy,  // IPCTNL_MSG_CT_DELETE: the entry is gone; carries counters and start/stop times
  Dump,     // a row of a table dump (IPCTNL_MSG_CT_NEW in answer to IPCTNL_MSG_CT_GET + NLM_F_DUMP)
};

// Where a time in a record came from. Kernel times are the conntrack timestamp extension
// (CTA_TIMESTAMP start/stop) or the per-event time (CTA_TIMESTAMP_EVENT, Linux >= 6.14); receive
// times are the daemon's realtime clock when it read the message, later than the truth by the
// socket's queueing delay.
// A bound is neither: the event that would have carried the time was lost (ENOBUFS, or the daemon
// was down), and the flow is known to have ended at or before this time, after it was last seen.
enum class TimeSource : std::uint8_t { Kernel = 0, Receive = 1, Bound = 2 };

struct Counters {
  std::uint64_t packets{0};
  std::uint64_t bytes{0};
  friend bool operator==(const Counters&, const Counters&) = default;
};

// Identifies one conntrack entry while it lives: the kernel's id is only unique among live entries,
// so the zone and original tuple are part of the key.
struct FlowKey {
  std::uint32_t ct_id{0};
  std::uint16_t zone{0};
  FlowTuple original;
  friend bool operator==(const FlowKey&, const FlowKey&) = default;
};

struct FlowKeyHash {
  [[nodiscard]] std::size_t operator()(const FlowKey& key) const noexcept;
};

// Everything known about one conntrack entry at one event: the unit that flows from the netlink
// decoder through the pipeline to every sink. A plain value; optional fields are the ones that
// only some messages carry (counters and start/stop only on DESTROY and dumps, with the acct and
// timestamp extensions on).
struct FlowRecord {
  EventType event{EventType::New};
  std::uint32_t ct_id{0};
  FlowTuple original;
  FlowTuple reply;
  NatMapping nat;  // derived from status and the tuples by deriveNat()
  std::uint16_t zone{0};
  std::uint32_t mark{0};
  std::uint32_t status{0};
  std::optional<std::uint8_t> tcp_state;  // enum tcp_conntrack, TCP only
  std::optional<Counters> counters_original;
  std::optional<Counters> counters_reply;

  // When the flow began and ended. For a NEW the start is the event time; a DESTROY or dump with
  // the timestamp extension carries the kernel's confirmation time. The end is the destroy time:
  // the last packet plus the protocol timeout, so an upper bound of activity.
  std::optional<Timestamp> start;
  TimeSource start_source{TimeSource::Receive};
  std::optional<Timestamp> end;
  TimeSource end_source{TimeSource::Receive};

  // When this event happened (kernel event time if sent, else receive time).
  Timestamp event_time{};
  TimeSource event_time_source{TimeSource::Receive};

  // First seen in the table dump at daemon start rather than through its NEW event.
  bool observed_at_start{false};

  [[nodiscard]] Family family() const noexcept { return original.src.family(); }
  [[nodiscard]] FlowKey key() const noexcept { return {ct_id, zone, original}; }

  friend bool operator==(const FlowRecord&, const FlowRecord&) = default;
};

}  // namespace ctaudit
