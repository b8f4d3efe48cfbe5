// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/nat.hpp"

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

FlowTuple tcp(const char* src, std::uint16_t sport, const char* dst, std::uint16_t dport) {
  FlowTuple t;
  t.src = *IpAddress::parse(src);
  t.dst = *IpAddress::parse(dst);
  t.protocol = Protocol::Tcp;
  t.src_port = sport;
  t.dst_port = dport;
  return t;
}

constexpr std::uint32_t kBase = ct_status::kConfirmed | ct_status::kSeenReply;

TEST(NatTest, SnatTakesReplyDestination) {
  const auto orig = tcp("100.64.0.2", 33000, "198.51.100.1", 80);
  const auto reply = tcp("198.51.100.1", 80, "203.0.113.1", 40001);
  const auto nat = deriveNat(kBase | ct_status::kSrcNat, orig, reply);
  ASSERT_TRUE(nat.translated_source);
  EXPECT_EQ(nat.translated_source->toString(), "203.0.113.1:40001");
  EXPECT_FALSE(nat.translated_destination);
}

TEST(NatTest, DnatTakesReplySource) {
  const auto orig = tcp("198.51.100.9", 51000, "203.0.113.1", 8080);
  const auto reply = tcp("100.64.0.2", 80, "198.51.100.9", 51000);
  const auto nat = deriveNat(kBase | ct_status::kDstNat, orig, reply);
  EXPECT_FALSE(nat.translated_source);
  ASSERT_TRUE(nat.translated_destination);
  EXPECT_EQ(nat.translated_destination->toString(), "100.64.0.2:80");
}

TEST(NatTest, BothDirections) {
  const auto orig = tcp("100.64.0.2", 33000, "203.0.113.1", 8080);
  const auto reply = tcp("192.0.2.5", 80, "203.0.113.1", 61000);
  const auto nat = deriveNat(kBase | ct_status::kSrcNat | ct_status::kDstNat, orig, reply);
  ASSERT_TRUE(nat.translated_source);
  ASSERT_TRUE(nat.translated_destination);
  EXPECT_EQ(nat.translated_source->toString(), "203.0.113.1:61000");
  EXPECT_EQ(nat.translated_destination->toString(), "192.0.2.5:80");
}

TEST(NatTest, NoneWhenStatusSaysNone) {
  const auto orig = tcp("100.64.0.2", 33000, "198.51.100.1", 80);
  const auto reply = tcp("198.51.100.1", 80, "100.64.0.2", 33000);
  EXPECT_EQ(deriveNat(kBase, orig, reply), NatMapping{});
}

TEST(NatTest, Ipv6MasqueradeAndIcmpId) {
  auto orig = tcp("2001:db8:1::2", 40000, "2001:db8:2::1", 443);
  auto reply = tcp("2001:db8:2::1", 443, "2001:db8:2::fe", 40000);
  auto nat = deriveNat(kBase | ct_status::kSrcNat, orig, reply);
  ASSERT_TRUE(nat.translated_source);
  EXPECT_EQ(nat.translated_source->toString(), "[2001:db8:2::fe]:40000");

  FlowTuple ping_orig;
  ping_orig.src = *IpAddress::parse("100.64.0.2");
  ping_orig.dst = *IpAddress::parse("198.51.100.1");
  ping_orig.protocol = Protocol::Icmp;
  ping_orig.icmp_type = 8;
  ping_orig.icmp_id = 77;
  FlowTuple ping_reply = ping_orig;
  ping_reply.src = ping_orig.dst;
  ping_reply.dst = *IpAddress::parse("203.0.113.1");
  ping_reply.icmp_type = 0;
  ping_reply.icmp_id = 1024;
  nat = deriveNat(kBase | ct_status::kSrcNat, ping_orig, ping_reply);
  ASSERT_TRUE(nat.translated_source);
  EXPECT_EQ(nat.translated_source->toString(), "203.0.113.1:1024");
}

TEST(NatTest, FallsBackToTupleComparisonWithoutStatus) {
  const auto orig = tcp("100.64.0.2", 33000, "198.51.100.1", 80);
  const auto reply = tcp("198.51.100.1", 80, "203.0.113.1", 40001);
  const auto nat = deriveNat(0, orig, reply);
  ASSERT_TRUE(nat.translated_source);
  EXPECT_FALSE(nat.translated_destination);
}

TEST(NatTest, IcmpIdRewriteWithoutStatusIsSnatOnly) {
  FlowTuple orig;
  orig.src = *IpAddress::parse("100.64.0.2");
  orig.dst = *IpAddress::parse("198.51.100.1");
  orig.protocol = Protocol::Icmp;
  orig.icmp_type = 8;
  orig.icmp_id = 77;
  FlowTuple reply = orig;
  reply.src = orig.dst;
  reply.dst = *IpAddress::parse("203.0.113.1");
  reply.icmp_type = 0;
  reply.icmp_id = 1024;
  const auto nat = deriveNat(0, orig, reply);
  ASSERT_TRUE(nat.translated_source);
  EXPECT_EQ(nat.translated_source->toString(), "203.0.113.1:1024");
  EXPECT_FALSE(nat.translated_destination);
}

}  // namespace
}  // namespace ctaudit
