// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/event_counter.hpp"

#include <cstring>
#include <vector>

#include <gtest/gtest.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>

namespace ctaudit::bench {
namespace {

// Appends a netlink message of `type` with `payload` bytes of zeros; `claimed_length` overrides
// nlmsg_len (for broken headers).
void appendMessage(std::vector<std::byte>& datagram, std::uint16_t type, std::size_t payload,
                   std::uint32_t claimed_length = 0) {
  nlmsghdr header{};
  header.nlmsg_len = claimed_length != 0 ? claimed_length : static_cast<std::uint32_t>(NLMSG_HDRLEN + payload);
  header.nlmsg_type = type;
  const std::size_t at = datagram.size();
  datagram.resize(at + NLMSG_ALIGN(NLMSG_HDRLEN + payload));
  std::memcpy(datagram.data() + at, &header, sizeof header);
}

constexpr std::uint16_t kNew = (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_NEW;
constexpr std::uint16_t kDelete = (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_DELETE;
constexpr std::uint16_t kExpectNew = (NFNL_SUBSYS_CTNETLINK_EXP << 8U) | IPCTNL_MSG_EXP_NEW;

TEST(EventCounterTest, CountsNewAndDestroyByType) {
  std::vector<std::byte> datagram;
  appendMessage(datagram, kNew, 120);
  EventCounts counts;
  countMessages(datagram, counts);
  datagram.clear();
  appendMessage(datagram, kDelete, 201);  // an odd length: the next message starts aligned
  appendMessage(datagram, kNew, 64);
  countMessages(datagram, counts);
  EXPECT_EQ(counts.new_events, 2U);
  EXPECT_EQ(counts.destroy_events, 1U);
  EXPECT_EQ(counts.other_messages, 0U);
}

TEST(EventCounterTest, OtherSubsystemsAreNotEvents) {
  std::vector<std::byte> datagram;
  appendMessage(datagram, kExpectNew, 40);
  appendMessage(datagram, NLMSG_ERROR, sizeof(nlmsgerr));
  EventCounts counts;
  countMessages(datagram, counts);
  EXPECT_EQ(counts.new_events, 0U);
  EXPECT_EQ(counts.destroy_events, 0U);
  EXPECT_EQ(counts.other_messages, 2U);
}

TEST(EventCounterTest, ALengthPastTheDatagramStopsCounting) {
  std::vector<std::byte> datagram;
  appendMessage(datagram, kNew, 16);
  appendMessage(datagram, kDelete, 16, 4096);  // claims more than there is
  appendMessage(datagram, kNew, 16);           // not reached
  EventCounts counts;
  countMessages(datagram, counts);
  EXPECT_EQ(counts.new_events, 1U);
  EXPECT_EQ(counts.destroy_events, 0U);
  EXPECT_EQ(counts.other_messages, 1U);
}

TEST(EventCounterTest, ATruncatedHeaderIsIgnored) {
  std::vector<std::byte> datagram(NLMSG_HDRLEN - 1);
  EventCounts counts;
  countMessages(datagram, counts);
  countMessages({}, counts);
  EXPECT_EQ(counts.new_events + counts.destroy_events + counts.other_messages, 0U);
}

}  // namespace
}  // namespace ctaudit::bench
