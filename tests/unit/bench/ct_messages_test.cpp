// SPDX-License-Identifier: GPL-2.0-or-later
// The generator's requests are read back with the daemon's own decoder: a create carries the same
// tuple attributes as a NEW event, so what ct_loadgen asks for is what ctauditd would record
// (before the kernel applies the translation, which only the real kernel does: netns tests).
#include "bench/ct_messages.hpp"

#include <arpa/inet.h>

#include <cstring>

#include <gtest/gtest.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "daemon/conntrack_decoder.hpp"

namespace ctaudit::bench {
namespace {

std::vector<std::span<const std::byte>> split(std::span<const std::byte> batch) {
  std::vector<std::span<const std::byte>> messages;
  std::size_t offset = 0;
  while (offset < batch.size()) {
    nlmsghdr header{};
    std::memcpy(&header, batch.data() + offset, sizeof header);
    messages.push_back(batch.subspan(offset, header.nlmsg_len));
    offset += (header.nlmsg_len + 3U) & ~std::size_t{3};
  }
  return messages;
}

nlmsghdr headerOf(std::span<const std::byte> message) {
  nlmsghdr header{};
  std::memcpy(&header, message.data(), sizeof header);
  return header;
}

// The attributes in `length` bytes from `start` (libmnl's walking macros use C casts).
std::vector<const nlattr*> attributesIn(const void* start, std::size_t length) {
  std::vector<const nlattr*> found;
  const auto* attribute = static_cast<const nlattr*>(start);
  auto remaining = static_cast<int>(length);
  while (mnl_attr_ok(attribute, remaining)) {
    found.push_back(attribute);
    remaining -= static_cast<int>((attribute->nla_len + 3U) & ~3U);
    attribute = mnl_attr_next(attribute);
  }
  return found;
}

std::vector<const nlattr*> nested(const nlattr* nest) {
  return attributesIn(mnl_attr_get_payload(nest), mnl_attr_get_payload_len(nest));
}

// The top-level attribute of `type`, or nullptr.
const nlattr* findAttribute(std::span<const std::byte> message, std::uint16_t type) {
  const auto* header = reinterpret_cast<const nlmsghdr*>(message.data());
  const std::size_t offset = NLMSG_HDRLEN + sizeof(nfgenmsg);
  for (const nlattr* attribute : attributesIn(mnl_nlmsg_get_payload_offset(header, sizeof(nfgenmsg)),
                                              header->nlmsg_len - offset)) {
    if (mnl_attr_get_type(attribute) == type) {
      return attribute;
    }
  }
  return nullptr;
}

TEST(MessageBatchTest, PacksCreatesAndDeletesWithTheirSequenceNumbers) {
  const FlowPlan plan({});
  MessageBatch batch(4);
  batch.addCreate(plan.at(0), 100, CreateSettings{});
  batch.addCreate(plan.at(1), 101, CreateSettings{});
  batch.addDelete(plan.at(0), 102, true);
  ASSERT_EQ(batch.size(), 3U);
  const auto messages = split(batch.bytes());
  ASSERT_EQ(messages.size(), 3U);
  EXPECT_EQ(headerOf(messages[0]).nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_NEW);
  EXPECT_EQ(headerOf(messages[0]).nlmsg_flags, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK);
  EXPECT_EQ(headerOf(messages[1]).nlmsg_seq, 101U);
  EXPECT_EQ(headerOf(messages[2]).nlmsg_type, (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_DELETE);
  EXPECT_EQ(headerOf(messages[2]).nlmsg_flags, NLM_F_REQUEST | NLM_F_ACK);
  EXPECT_EQ(headerOf(messages[2]).nlmsg_seq, 102U);
  batch.clear();
  EXPECT_EQ(batch.size(), 0U);
  EXPECT_TRUE(batch.bytes().empty());
}

TEST(MessageBatchTest, CreateDecodesAsTheFlowWithItsSourceNatRequest) {
  const FlowPlan plan({ProtocolMix::Tcp, FamilyMix::V4, 1000, 40000, 40999});
  MessageBatch batch(1);
  batch.addCreate(plan.at(5), 1, CreateSettings{77, false});
  const auto decoded = daemon::decodeConntrack(batch.bytes(), daemon::DecodeContext{});
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(decoded->event, EventType::New);
  EXPECT_EQ(decoded->original.src.toString(), "100.64.0.6");
  EXPECT_EQ(decoded->original.src_port, 10000);
  EXPECT_EQ(decoded->original.dst.toString(), "198.51.100.10");
  EXPECT_EQ(decoded->original.dst_port, 443);
  // The reply tuple is the plain inverse: the kernel rewrites it from CTA_NAT_SRC.
  EXPECT_EQ(decoded->reply.dst.toString(), "100.64.0.6");
  EXPECT_EQ(decoded->status, IPS_CONFIRMED | IPS_SEEN_REPLY | IPS_ASSURED);
  EXPECT_EQ(decoded->tcp_state, 3);  // ESTABLISHED

  const auto* timeout = findAttribute(batch.bytes(), CTA_TIMEOUT);
  ASSERT_NE(timeout, nullptr);
  EXPECT_EQ(ntohl(mnl_attr_get_u32(timeout)), 77U);
  const auto* nat = findAttribute(batch.bytes(), CTA_NAT_SRC);
  ASSERT_NE(nat, nullptr);
  std::uint32_t min_ip = 0;
  std::uint16_t min_port = 0;
  std::uint16_t max_port = 0;
  for (const nlattr* attribute : nested(nat)) {
    if (mnl_attr_get_type(attribute) == CTA_NAT_V4_MINIP) {
      min_ip = ntohl(mnl_attr_get_u32(attribute));
    } else if (mnl_attr_get_type(attribute) == CTA_NAT_PROTO) {
      for (const nlattr* port : nested(attribute)) {
        (mnl_attr_get_type(port) == CTA_PROTONAT_PORT_MIN ? min_port : max_port) = ntohs(mnl_attr_get_u16(port));
      }
    }
  }
  EXPECT_EQ(min_ip, 0xCB007101U);  // 203.0.113.1
  EXPECT_EQ(min_port, 40005);
  EXPECT_EQ(max_port, 40005);
}

TEST(MessageBatchTest, Ipv6UdpCreateHasNoTcpState) {
  const FlowPlan plan({ProtocolMix::Udp, FamilyMix::V6, 1000, 1024, 65535});
  MessageBatch batch(1);
  batch.addCreate(plan.at(0), 1, CreateSettings{});
  ASSERT_LE(batch.bytes().size(), MessageBatch::kMaxMessageBytes);
  const auto decoded = daemon::decodeConntrack(batch.bytes(), daemon::DecodeContext{});
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(decoded->original.src.toString(), "2001:db8:1::1");
  EXPECT_EQ(decoded->original.protocol, Protocol::Udp);
  EXPECT_FALSE(decoded->tcp_state);
  EXPECT_EQ(findAttribute(batch.bytes(), CTA_PROTOINFO), nullptr);
}

TEST(MessageBatchTest, DeleteCarriesOnlyTheOriginalTuple) {
  const FlowPlan plan({});
  MessageBatch batch(1);
  batch.addDelete(plan.at(3), 9, false);
  EXPECT_EQ(headerOf(batch.bytes()).nlmsg_flags, NLM_F_REQUEST);
  EXPECT_NE(findAttribute(batch.bytes(), CTA_TUPLE_ORIG), nullptr);
  EXPECT_EQ(findAttribute(batch.bytes(), CTA_TUPLE_REPLY), nullptr);
  EXPECT_EQ(findAttribute(batch.bytes(), CTA_NAT_SRC), nullptr);
}

}  // namespace
}  // namespace ctaudit::bench
