// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/packet_flood.hpp"

#include <array>
#include <set>
#include <tuple>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::bench {
namespace {

std::uint16_t u16(const std::vector<std::byte>& p, std::size_t at) {
  return static_cast<std::uint16_t>((std::to_integer<unsigned>(p[at]) << 8U) | std::to_integer<unsigned>(p[at + 1]));
}

struct Tuple {
  std::array<unsigned, 4> source;
  std::uint16_t sport;
  std::uint16_t dport;
  auto operator<=>(const Tuple&) const = default;
};

Tuple tupleOf(const FloodPlan& plan, std::uint64_t flow) {
  std::vector<std::byte> packet(floodPacketBytes(plan));
  buildFloodPacket(plan, flow, packet);
  Tuple t{};
  for (std::size_t i = 0; i < 4; ++i) {
    t.source[i] = std::to_integer<unsigned>(packet[12 + i]);
  }
  t.sport = u16(packet, 20);
  t.dport = u16(packet, 22);
  return t;
}

TEST(PacketFloodTest, FirstPacketIsTheDocumentedOne) {
  const FloodPlan plan;
  std::vector<std::byte> packet(floodPacketBytes(plan));
  ASSERT_EQ(packet.size(), 20U + 8U + 16U);
  buildFloodPacket(plan, 0, packet);
  EXPECT_EQ(std::to_integer<unsigned>(packet[0]), 0x45U);
  EXPECT_EQ(u16(packet, 2), 44U);
  EXPECT_EQ(std::to_integer<unsigned>(packet[9]), 17U);  // UDP
  EXPECT_EQ((std::array<unsigned, 4>{std::to_integer<unsigned>(packet[12]), std::to_integer<unsigned>(packet[13]),
                                      std::to_integer<unsigned>(packet[14]), std::to_integer<unsigned>(packet[15])}),
            (std::array<unsigned, 4>{100, 64, 1, 1}));
  EXPECT_EQ((std::array<unsigned, 4>{std::to_integer<unsigned>(packet[16]), std::to_integer<unsigned>(packet[17]),
                                      std::to_integer<unsigned>(packet[18]), std::to_integer<unsigned>(packet[19])}),
            (std::array<unsigned, 4>{198, 51, 100, 10}));
  EXPECT_EQ(u16(packet, 20), 1024U);   // source port
  EXPECT_EQ(u16(packet, 22), 10000U);  // destination port
  EXPECT_EQ(u16(packet, 24), 24U);     // UDP length
  EXPECT_EQ(u16(packet, 26), 0U);      // no checksum
}

TEST(PacketFloodTest, DestinationPortVariesFastestThenSourcePortThenHost) {
  FloodPlan plan;
  plan.hosts = 2;
  plan.sport_min = 5000;
  plan.sport_max = 5001;
  plan.dport_min = 7000;
  plan.dport_max = 7002;
  EXPECT_EQ(plan.tupleSpace(), 12U);
  EXPECT_EQ(tupleOf(plan, 1).dport, 7001U);
  EXPECT_EQ(tupleOf(plan, 3).sport, 5001U);
  EXPECT_EQ(tupleOf(plan, 3).dport, 7000U);
  EXPECT_EQ(tupleOf(plan, 6).source, (std::array<unsigned, 4>{100, 64, 1, 2}));
  EXPECT_EQ(tupleOf(plan, 12), tupleOf(plan, 0));  // the plan wraps after its tuple space
}

TEST(PacketFloodTest, EveryFlowOfTheSpaceIsDistinct) {
  FloodPlan plan;
  plan.hosts = 3;
  plan.sport_min = 1;
  plan.sport_max = 10;
  plan.dport_min = 1;
  plan.dport_max = 7;
  std::set<Tuple> seen;
  for (std::uint64_t flow = 0; flow < plan.tupleSpace(); ++flow) {
    seen.insert(tupleOf(plan, flow));
  }
  EXPECT_EQ(seen.size(), plan.tupleSpace());
}

TEST(PacketFloodTest, ATooSmallBufferIsLeftAlone) {
  const FloodPlan plan;
  std::vector<std::byte> packet(10, std::byte{0xab});
  buildFloodPacket(plan, 0, packet);
  EXPECT_EQ(std::to_integer<unsigned>(packet[0]), 0xabU);
}

}  // namespace
}  // namespace ctaudit::bench
