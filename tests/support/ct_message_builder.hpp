// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "flow/flow_record.hpp"
#include "flow/ip_address.hpp"
#include "flow/time.hpp"
#include "flow/tuple.hpp"

namespace ctaudit::testing {

// Tuples for the builder and for expected values. Addresses are text ("100.64.0.2",
// "2001:db8::1"); an unparsable one throws std::invalid_argument (a bug in the test).
[[nodiscard]] FlowTuple tcpTuple(std::string_view src, std::uint16_t src_port, std::string_view dst,
                                 std::uint16_t dst_port);
[[nodiscard]] FlowTuple udpTuple(std::string_view src, std::uint16_t src_port, std::string_view dst,
                                 std::uint16_t dst_port);
// ICMP for IPv4 addresses, ICMPv6 for IPv6 ones.
[[nodiscard]] FlowTuple icmpTuple(std::string_view src, std::string_view dst, std::uint8_t type, std::uint8_t code,
                                  std::uint16_t id);
// GRE: conntrack keeps the keys (PPTP call ids; 0 for plain GRE) where other protocols keep ports.
[[nodiscard]] FlowTuple greTuple(std::string_view src, std::string_view dst, std::uint16_t src_key,
                                 std::uint16_t dst_key);
// Any other protocol: addresses only.
[[nodiscard]] FlowTuple protocolTuple(std::string_view src, std::string_view dst, Protocol protocol);
// The reply tuple of an entry without NAT, as the kernel inverts it: addresses and ports swapped;
// ICMP echo/timestamp/info/mask requests and ICMPv6 echo/node-info queries become their replies.
[[nodiscard]] FlowTuple invertTuple(const FlowTuple& original);

// A path of attribute types from the top level down to one attribute, e.g.
// {CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_SRC}, {CTA_STATUS}, or {} for the top level itself.
using CtAttrPath = std::vector<std::uint16_t>;

// Builds one ctnetlink conntrack message (nlmsghdr + nfgenmsg + attributes) in memory with libmnl,
// laid out as the kernel's ctnetlink_conntrack_event() / ctnetlink_fill_info() lay it out, for
// decoder and pipeline tests. A value type: set what the test cares about, copy it to make
// variants (the NEW and the DESTROY of one flow), call build() as often as needed.
//
// Defaults: a NEW event (IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL) for
// TCP 100.64.0.2:33000 -> 198.51.100.1:80, reply = invertTuple(original) (no NAT), status
// IPS_CONFIRMED, id 1, mark 0, nfgenmsg family from the original tuple; no zone, TCP state,
// counters or timestamps. CTA_ID, CTA_STATUS, CTA_TIMEOUT (120 s) and CTA_MARK are always
// written, as the kernel does.
//
// The "breaking" setters make malformed messages on purpose; they address attributes by path and
// apply to whatever the normal setters produce.
//
// Not thread-safe; build() is const and may be called from several threads if nothing mutates.
class CtMessageBuilder {
public:
  CtMessageBuilder();

  // --- Which message -----------------------------------------------------------------------
  CtMessageBuilder& newEvent();      // IPCTNL_MSG_CT_NEW, NLM_F_CREATE|NLM_F_EXCL (IPCT_NEW)
  CtMessageBuilder& updateEvent();   // IPCTNL_MSG_CT_NEW, no flags (IPCT_* changes)
  CtMessageBuilder& destroyEvent();  // IPCTNL_MSG_CT_DELETE, no flags
  CtMessageBuilder& dumpRow();       // IPCTNL_MSG_CT_NEW, NLM_F_MULTI (decode with MessageOrigin::Dump)
  // Raw header fields, for messages the decoder must refuse (other subsystems, NLMSG_DONE, ...).
  CtMessageBuilder& nlmsgType(std::uint16_t type);
  CtMessageBuilder& nlmsgFlags(std::uint16_t flags);
  // nfgenmsg family (AF_INET, AF_INET6, or anything); default: the original tuple's family.
  CtMessageBuilder& family(std::uint8_t nfgen_family);

  // --- The entry ---------------------------------------------------------------------------
  CtMessageBuilder& original(const FlowTuple& tuple);
  // An explicit reply tuple; replaces the default (invertTuple(original)) and the tuple changes of
  // snat/dnat (their status bits are still added).
  CtMessageBuilder& reply(const FlowTuple& tuple);
  // Source NAT to `translated` (address, and port or ICMP id): the reply tuple's destination, and
  // status bits IPS_SRC_NAT|IPS_SRC_NAT_DONE, as nf_nat_setup_info() leaves them.
  CtMessageBuilder& snat(const Endpoint& translated);
  // Destination NAT to `real_destination`: the reply tuple's source, IPS_DST_NAT|IPS_DST_NAT_DONE.
  CtMessageBuilder& dnat(const Endpoint& real_destination);
  CtMessageBuilder& status(std::uint32_t status);  // replaces the bits; snat/dnat bits are added on top
  CtMessageBuilder& mark(std::uint32_t mark);
  CtMessageBuilder& id(std::uint32_t id);
  CtMessageBuilder& zone(std::uint16_t zone);               // CTA_ZONE
  CtMessageBuilder& originalTupleZone(std::uint16_t zone);  // CTA_TUPLE_ZONE in CTA_TUPLE_ORIG
  CtMessageBuilder& replyTupleZone(std::uint16_t zone);     // CTA_TUPLE_ZONE in CTA_TUPLE_REPLY
  CtMessageBuilder& tcpState(std::uint8_t state);           // CTA_PROTOINFO/CTA_PROTOINFO_TCP/..._STATE
  CtMessageBuilder& countersOriginal(std::uint64_t packets, std::uint64_t bytes);  // 64-bit attributes
  CtMessageBuilder& countersReply(std::uint64_t packets, std::uint64_t bytes);
  // The old 32-bit CTA_COUNTERS32_* attributes instead of the 64-bit ones.
  CtMessageBuilder& counters32Original(std::uint32_t packets, std::uint32_t bytes);
  CtMessageBuilder& counters32Reply(std::uint32_t packets, std::uint32_t bytes);
  CtMessageBuilder& timestampStart(Timestamp start);  // CTA_TIMESTAMP/CTA_TIMESTAMP_START
  CtMessageBuilder& timestampStop(Timestamp stop);    // CTA_TIMESTAMP/CTA_TIMESTAMP_STOP
  CtMessageBuilder& eventTimestamp(Timestamp time);   // CTA_TIMESTAMP_EVENT (Linux >= 6.14)
  // Writes the zero-length CTA_TIMESTAMP_PAD (type 3) before CTA_TIMESTAMP_EVENT that kernels on
  // architectures without efficient unaligned access emit.
  CtMessageBuilder& eventTimestampPadding();

  // --- A whole flow from the builder's tuples ----------------------------------------------
  // The FlowTuple the message's reply tuple will carry (explicit, or inverted plus snat/dnat).
  [[nodiscard]] FlowTuple replyTuple() const;
  [[nodiscard]] const FlowTuple& originalTuple() const noexcept { return original_; }

  // --- Breaking it -------------------------------------------------------------------------
  // Leaves out the attribute at `path` (and everything nested in it).
  CtMessageBuilder& omit(CtAttrPath path);
  // Writes the attribute at `path` with a payload of `bytes` bytes (0xA5 filler) instead of its
  // real value or nested attributes: a wrong-size attribute.
  CtMessageBuilder& payloadSize(CtAttrPath path, std::size_t bytes);
  // After building, overwrites the nla_len of the attribute at `path` (a corrupt length).
  CtMessageBuilder& attributeLength(CtAttrPath path, std::uint16_t nla_len);
  // Appends an attribute inside the nest at `parent` ({} = top level, before CTA_TIMESTAMP_EVENT),
  // e.g. an attribute type this decoder does not know.
  CtMessageBuilder& extraAttribute(CtAttrPath parent, std::uint16_t type, std::vector<std::byte> payload);
  // Cuts the built message to its first `bytes` bytes; nlmsg_len keeps the full length.
  CtMessageBuilder& truncateTo(std::size_t bytes);

  // The message bytes: exactly nlmsg_len of them unless truncateTo() cut them.
  [[nodiscard]] std::vector<std::byte> build() const;

private:
  struct CountersSpec {
    std::uint64_t packets{0};
    std::uint64_t bytes{0};
    bool legacy32{false};
  };
  struct SizeOverride {
    CtAttrPath path;
    std::size_t bytes{0};
  };
  struct LengthOverride {
    CtAttrPath path;
    std::uint16_t nla_len{0};
  };
  struct Extra {
    CtAttrPath parent;
    std::uint16_t type{0};
    std::vector<std::byte> payload;
  };
  class Writer;

  std::uint16_t nlmsg_type_;
  std::uint16_t nlmsg_flags_;
  std::optional<std::uint8_t> family_;
  FlowTuple original_;
  std::optional<FlowTuple> reply_;
  std::optional<Endpoint> snat_;
  std::optional<Endpoint> dnat_;
  std::uint32_t status_;
  std::uint32_t mark_{0};
  std::uint32_t id_{1};
  std::optional<std::uint16_t> zone_;
  std::optional<std::uint16_t> original_zone_;
  std::optional<std::uint16_t> reply_zone_;
  std::optional<std::uint8_t> tcp_state_;
  std::optional<CountersSpec> counters_original_;
  std::optional<CountersSpec> counters_reply_;
  std::optional<Timestamp> start_;
  std::optional<Timestamp> stop_;
  std::optional<Timestamp> event_time_;
  bool event_time_padding_{false};
  std::vector<CtAttrPath> omitted_;
  std::vector<SizeOverride> sizes_;
  std::vector<LengthOverride> lengths_;
  std::vector<Extra> extras_;
  std::optional<std::size_t> truncate_to_;
};

}  // namespace ctaudit::testing
