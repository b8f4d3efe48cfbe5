// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/flow_plan.hpp"

#include <set>
#include <tuple>

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ctaudit::bench {
namespace {

TEST(FlowPlanTest, FirstFlowIsTheDocumentedOne) {
  const FlowPlan plan({});
  EXPECT_EQ(describe(plan.at(0)), "tcp 100.64.0.1:10000 -> 198.51.100.10:443 as 203.0.113.1:1024");
  EXPECT_EQ(describe(plan.at(1)), "udp 100.64.0.2:10000 -> 198.51.100.10:443 as 203.0.113.1:1025");
  EXPECT_EQ(describe(plan.at(1000)), "tcp 100.64.0.1:10001 -> 198.51.100.10:443 as 203.0.113.1:2024");
}

TEST(FlowPlanTest, Ipv6UsesDocumentationPrefixes) {
  const FlowPlan plan({ProtocolMix::Udp, FamilyMix::V6, 10, 40000, 40999});
  EXPECT_EQ(describe(plan.at(12)), "udp [2001:db8:1::3]:10001 -> [2001:db8:2::10]:443 as [2001:db8:2::1]:40012");
}

TEST(FlowPlanTest, MixedFamiliesAlternatePairs) {
  const FlowPlan plan({ProtocolMix::Mixed, FamilyMix::Mixed, 1000, 1024, 65535});
  EXPECT_EQ(plan.at(0).family, AF_INET);
  EXPECT_EQ(plan.at(1).family, AF_INET);
  EXPECT_EQ(plan.at(2).family, AF_INET6);
  EXPECT_EQ(plan.at(3).family, AF_INET6);
  EXPECT_EQ(plan.at(2).protocol, IPPROTO_TCP);
  EXPECT_EQ(plan.at(3).protocol, IPPROTO_UDP);
}

TEST(FlowPlanTest, HighHostNumbersStayInsideTheSharedAddressSpace) {
  const FlowPlan plan({ProtocolMix::Tcp, FamilyMix::V4, FlowPlan::kMaxHosts, 1024, 65535});
  const FlowSpec last = plan.at(FlowPlan::kMaxHosts - 1);
  EXPECT_EQ(describe(last).substr(0, 20), "tcp 100.127.255.254:");
}

// Any window of natPorts() consecutive flows has distinct original tuples and distinct
// translated ports per protocol and family: what --live relies on.
TEST(FlowPlanTest, AWindowOfNatPortsFlowsIsCollisionFree) {
  const FlowPlan plan({ProtocolMix::Mixed, FamilyMix::Mixed, 7, 2000, 2999});
  using Key = std::tuple<int, int, std::array<std::uint8_t, 16>, int>;
  std::set<Key> originals;
  std::set<std::tuple<int, int, int>> translated;
  const std::uint64_t first = 123456;
  for (std::uint64_t n = first; n < first + plan.natPorts(); ++n) {
    const FlowSpec flow = plan.at(n);
    EXPECT_TRUE(originals.emplace(flow.family, flow.protocol, flow.inside, flow.inside_port).second) << n;
    EXPECT_TRUE(translated.emplace(flow.family, flow.protocol, flow.translated_port).second) << n;
    EXPECT_GE(flow.translated_port, 2000);
    EXPECT_LE(flow.translated_port, 2999);
  }
}

}  // namespace
}  // namespace ctaudit::bench
