// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// CTA_TIMESTAMP_EVENT: the per-event kernel timestamp, a top-level ctnetlink attribute added in
// Linux 6.14 (commit "netfilter: conntrack: add conntrack event timestamp") right after
// CTA_STATUS_MASK = 26. Debian 12's <linux/netfilter/nfnetlink_conntrack.h> predates it, so the
// number is defined here. Verified on Linux 6.18 (docs/netlink.md, "CTA_TIMESTAMP_EVENT"): with
// net.netfilter.nf_conntrack_timestamp=1 in a fresh network namespace, every NEW, UPDATE and
// DESTROY event carried attribute type 27 with an 8-byte payload, a big-endian count of
// nanoseconds since the Unix epoch (CLOCK_REALTIME), 20-200 us before the listener's own
// realtime clock read the message; table dumps did not carry it. The kernel writes it with
// nla_put_be64(..., CTA_TIMESTAMP_PAD), so on architectures without efficient unaligned access a
// zero-length top-level attribute of type 3 (CTA_TIMESTAMP_PAD's value, which at the top level
// collides with CTA_STATUS) may precede it as alignment padding.
inline constexpr std::uint16_t kCtaTimestampEvent = 27;

// Whether a message arrived as a multicast event or as a row of a table dump (the answer to
// IPCTNL_MSG_CT_GET with NLM_F_DUMP). Both arrive as IPCTNL_MSG_CT_NEW; only the socket the
// caller read it from tells them apart.
enum class MessageOrigin : std::uint8_t { Event, Dump };

// What the caller knows about a message that the message itself does not say.
struct DecodeContext {
  Timestamp receive_time;  // the realtime clock when the datagram was read
  MessageOrigin origin{MessageOrigin::Event};
  // When the reader learnt the socket held data, if it then waited before reading (read pacing,
  // up to 224 ms at low rates): the message arrived no earlier than about then. Netlink gives no
  // per-message receive time (SO_TIMESTAMPNS is ignored on it).
  std::optional<Timestamp> woke{};
};

// Decodes ONE ctnetlink conntrack message into a FlowRecord.
//
// `message` must hold exactly one netlink message: it starts at the nlmsghdr and its size equals
// nlmsg_len (a caller walking a datagram slices each message with its own nlmsg_len). The bytes
// must be 4-byte aligned (NLMSG_ALIGNTO), as a recv() buffer and every message inside it are; the
// function only reads inside the span and keeps no pointer into it.
//
// Accepted: subsystem NFNL_SUBSYS_CTNETLINK, message IPCTNL_MSG_CT_NEW or IPCTNL_MSG_CT_DELETE,
// nfgenmsg family AF_INET or AF_INET6. The event type:
//   IPCTNL_MSG_CT_DELETE                                   -> Destroy
//   IPCTNL_MSG_CT_NEW, origin Dump                         -> Dump (observed_at_start = true)
//   IPCTNL_MSG_CT_NEW, origin Event, NLM_F_CREATE set      -> New (the kernel sends IPCT_NEW as
//                                                             NLM_F_CREATE|NLM_F_EXCL)
//   IPCTNL_MSG_CT_NEW, origin Event, otherwise             -> Update
// Times: event_time is CTA_TIMESTAMP_EVENT (Kernel) when present, else (Receive) for a NEW or an
// UPDATE context.woke when set, and context.receive_time otherwise: a beginning is taken at the
// earliest the message can have arrived, an end at the latest, so that the stored lifetime covers
// the flow's (an exploratory run found every receive-time start 224 ms late at 1 event a second,
// the read-pacing wait, and lookups in a flow's first 0.2 s missing it). start is CTA_TIMESTAMP_START when present and non-zero (Kernel); else, for New, the
// event time with its source; otherwise unset (a Dump row without it began at a time nothing tells). end is set
// for Destroy only: CTA_TIMESTAMP_STOP when present and non-zero (Kernel), else the event time.
// Counters are set only when the message carries them. nat = deriveNat(status, original, reply).
// Unknown attributes are skipped, so newer kernels decode.
//
// Errors (Errc::Decode; the detail names the attribute by its path, e.g.
// "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC: payload is 3 bytes, expected 4"): a truncated
// header, nfgenmsg or attribute; an nlmsg_len that disagrees with the span or is not a multiple of
// 4; a known attribute of the wrong size; a missing original or reply tuple, or a tuple without
// its addresses or protocol number; an address of the other family; a timestamp beyond 2262; an
// unknown family; a message that is not a conntrack NEW or DELETE (NLMSG_ERROR, NLMSG_DONE,
// expectation messages, ...). The success path allocates nothing.
[[nodiscard]] Result<FlowRecord> decodeConntrack(std::span<const std::byte> message,
                                                 const DecodeContext& context) noexcept;

}  // namespace ctaudit::daemon
