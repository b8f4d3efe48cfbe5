// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/ct_messages.hpp"

#include <cassert>
#include <cstdlib>
#include <cstring>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_conntrack_tcp.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ctaudit::bench {
namespace {

nlmsghdr* putHeader(void* where, std::uint8_t kind, std::uint16_t flags, std::uint32_t seq, std::uint8_t family) {
  nlmsghdr* header = mnl_nlmsg_put_header(where);
  header->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8U) | kind);
  header->nlmsg_flags = static_cast<std::uint16_t>(NLM_F_REQUEST | flags);
  header->nlmsg_seq = seq;
  auto* generic = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(nfgenmsg)));
  generic->nfgen_family = family;
  generic->version = NFNETLINK_V0;
  generic->res_id = 0;
  return header;
}

void putAddress(nlmsghdr* header, std::uint16_t v4_type, std::uint16_t v6_type, std::uint8_t family,
                const std::array<std::uint8_t, 16>& address) {
  if (family == AF_INET6) {
    mnl_attr_put(header, v6_type, 16, address.data());
  } else {
    mnl_attr_put(header, v4_type, 4, address.data());
  }
}

// CTA_TUPLE_* { CTA_TUPLE_IP { src, dst }, CTA_TUPLE_PROTO { num, sport, dport } }
void putTuple(nlmsghdr* header, std::uint16_t type, const FlowSpec& flow, bool reply) {
  const auto& src = reply ? flow.server : flow.inside;
  const auto& dst = reply ? flow.inside : flow.server;
  const std::uint16_t sport = reply ? flow.server_port : flow.inside_port;
  const std::uint16_t dport = reply ? flow.inside_port : flow.server_port;
  nlattr* tuple = mnl_attr_nest_start(header, type);
  nlattr* ip = mnl_attr_nest_start(header, CTA_TUPLE_IP);
  putAddress(header, CTA_IP_V4_SRC, CTA_IP_V6_SRC, flow.family, src);
  putAddress(header, CTA_IP_V4_DST, CTA_IP_V6_DST, flow.family, dst);
  mnl_attr_nest_end(header, ip);
  nlattr* proto = mnl_attr_nest_start(header, CTA_TUPLE_PROTO);
  mnl_attr_put_u8(header, CTA_PROTO_NUM, flow.protocol);
  mnl_attr_put_u16(header, CTA_PROTO_SRC_PORT, htons(sport));
  mnl_attr_put_u16(header, CTA_PROTO_DST_PORT, htons(dport));
  mnl_attr_nest_end(header, proto);
  mnl_attr_nest_end(header, tuple);
}

// CTA_NAT_SRC { MINIP, MAXIP, CTA_NAT_PROTO { PORT_MIN, PORT_MAX } }: one address, one port.
void putSourceNat(nlmsghdr* header, const FlowSpec& flow) {
  nlattr* nat = mnl_attr_nest_start(header, CTA_NAT_SRC);
  putAddress(header, CTA_NAT_V4_MINIP, CTA_NAT_V6_MINIP, flow.family, flow.translated);
  putAddress(header, CTA_NAT_V4_MAXIP, CTA_NAT_V6_MAXIP, flow.family, flow.translated);
  nlattr* proto = mnl_attr_nest_start(header, CTA_NAT_PROTO);
  mnl_attr_put_u16(header, CTA_PROTONAT_PORT_MIN, htons(flow.translated_port));
  mnl_attr_put_u16(header, CTA_PROTONAT_PORT_MAX, htons(flow.translated_port));
  mnl_attr_nest_end(header, proto);
  mnl_attr_nest_end(header, nat);
}

}  // namespace

MessageBatch::MessageBatch(std::size_t max_messages)
    : buffer_(max_messages * kMaxMessageBytes), capacity_(max_messages) {}

void MessageBatch::clear() noexcept {
  used_ = 0;
  count_ = 0;
}

void* MessageBatch::next() noexcept {
  assert(count_ < capacity_);
  return buffer_.data() + used_;
}

void MessageBatch::commit(std::size_t message_bytes) noexcept {
  // Every message is far below the slot size; a larger one would have written past the buffer.
  if (message_bytes > kMaxMessageBytes) {
    std::abort();
  }
  used_ += (message_bytes + 3U) & ~std::size_t{3};  // MNL_ALIGN, without its sign conversion
  ++count_;
}

void MessageBatch::addCreate(const FlowSpec& flow, std::uint32_t seq, const CreateSettings& settings) {
  const std::uint16_t ack = settings.ack_every_message ? NLM_F_ACK : 0;
  nlmsghdr* header = putHeader(next(), IPCTNL_MSG_CT_NEW, static_cast<std::uint16_t>(NLM_F_CREATE | NLM_F_EXCL | ack),
                               seq, flow.family);
  putTuple(header, CTA_TUPLE_ORIG, flow, false);
  putTuple(header, CTA_TUPLE_REPLY, flow, true);
  mnl_attr_put_u32(header, CTA_TIMEOUT, htonl(settings.timeout_seconds));
  // CONFIRMED must be there: the kernel has set it by now and refuses (EBUSY) a status that would
  // clear it (nf_ct_change_status_common).
  mnl_attr_put_u32(header, CTA_STATUS, htonl(IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED));
  if (flow.protocol == IPPROTO_TCP) {
    nlattr* info = mnl_attr_nest_start(header, CTA_PROTOINFO);
    nlattr* tcp = mnl_attr_nest_start(header, CTA_PROTOINFO_TCP);
    mnl_attr_put_u8(header, CTA_PROTOINFO_TCP_STATE, TCP_CONNTRACK_ESTABLISHED);
    mnl_attr_nest_end(header, tcp);
    mnl_attr_nest_end(header, info);
  }
  putSourceNat(header, flow);
  commit(header->nlmsg_len);
}

void MessageBatch::addDelete(const FlowSpec& flow, std::uint32_t seq, bool ack) {
  nlmsghdr* header = putHeader(next(), IPCTNL_MSG_CT_DELETE, ack ? NLM_F_ACK : 0, seq, flow.family);
  putTuple(header, CTA_TUPLE_ORIG, flow, false);
  commit(header->nlmsg_len);
}

}  // namespace ctaudit::bench
