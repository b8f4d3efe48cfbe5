// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/ip_address.hpp"

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

TEST(IpAddressTest, ParsesAndPrintsBothFamilies) {
  const auto v4 = IpAddress::parse("203.0.113.7");
  ASSERT_TRUE(v4);
  EXPECT_TRUE(v4->isV4());
  EXPECT_EQ(v4->toString(), "203.0.113.7");
  EXPECT_EQ(*v4, IpAddress::v4(0xCB007107U));
  const auto v6 = IpAddress::parse("2001:DB8:0::1");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->family(), Family::Ipv6);
  EXPECT_EQ(v6->toString(), "2001:db8::1");
  EXPECT_EQ(v6->bytes().size(), 16U);
  EXPECT_FALSE(IpAddress::parse("203.0.113"));
  EXPECT_FALSE(IpAddress::parse(""));
  EXPECT_FALSE(IpAddress::parse("[2001:db8::1]"));
}

TEST(IpNetworkTest, ContainsAndClearsHostBits) {
  const auto net = IpNetwork::parse("100.64.3.9/10");
  ASSERT_TRUE(net);
  EXPECT_EQ(net->toString(), "100.64.0.0/10");
  EXPECT_EQ(net->last().toString(), "100.127.255.255");
  EXPECT_TRUE(net->contains(*IpAddress::parse("100.100.1.1")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("100.128.0.1")));
  EXPECT_FALSE(net->contains(*IpAddress::parse("2001:db8::1")));
  const auto host = IpNetwork::parse("100.64.3.7");
  ASSERT_TRUE(host);
  EXPECT_EQ(host->prefixLength(), 32U);
  const auto v6 = IpNetwork::parse("2001:db8:1::/48");
  ASSERT_TRUE(v6);
  EXPECT_TRUE(v6->contains(*IpAddress::parse("2001:db8:1:ffff::5")));
  EXPECT_FALSE(v6->contains(*IpAddress::parse("2001:db8:2::5")));
  EXPECT_FALSE(IpNetwork::parse("10.0.0.0/33"));
  EXPECT_FALSE(IpNetwork::parse("10.0.0.0/"));
}

TEST(EndpointTest, ParsesV4V6AndRejectsAmbiguity) {
  const auto v4 = Endpoint::parse("203.0.113.7:40001", false);
  ASSERT_TRUE(v4);
  EXPECT_EQ(v4->port, 40001);
  const auto v6 = Endpoint::parse("[2001:db8::7]:443", false);
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->address.toString(), "2001:db8::7");
  EXPECT_EQ(v6->port, 443);
  EXPECT_FALSE(Endpoint::parse("2001:db8::7", false));
  EXPECT_FALSE(Endpoint::parse("203.0.113.7", false));
  EXPECT_FALSE(Endpoint::parse("203.0.113.7:70000", false));
  const auto bare = Endpoint::parse("2001:db8::7", true);
  ASSERT_TRUE(bare);
  EXPECT_FALSE(bare->port);
  EXPECT_EQ((Endpoint{*IpAddress::parse("2001:db8::7"), 80}.toString()), "[2001:db8::7]:80");
}

// A link-local address copied from `ip addr` carries its interface; conntrack's addresses do not.
TEST(EndpointTest, AZoneIdIsNamedInTheError) {
  const auto zoned = Endpoint::parse("[fe80::1%eth0]:1", false);
  ASSERT_FALSE(zoned);
  EXPECT_NE(zoned.error().detail.find("has a zone id (%eth0)"), std::string::npos) << zoned.error().detail;
  EXPECT_FALSE(Endpoint::parse("fe80::1%eth0", true));
}

}  // namespace
}  // namespace ctaudit
