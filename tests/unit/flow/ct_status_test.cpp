// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/ct_status.hpp"

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

using Names = std::vector<std::string_view>;

TEST(CtStatusTest, NamesTheBitsLowestFirstAndUnknownOnesByNumber) {
  EXPECT_EQ(statusNames(0), Names{});
  EXPECT_EQ(statusNames((1U << 1U) | (1U << 3U) | (1U << 4U)), (Names{"SEEN_REPLY", "CONFIRMED", "SRC_NAT"}));
  EXPECT_EQ(statusNames(1U << 31U), Names{"BIT_31"});
}

// Bit 12 of an entry in the table is a NAT clash (Linux 5.6: IPS_NAT_CLASH_BIT = IPS_UNTRACKED_BIT),
// never an untracked packet, whose conntrack is not in the table: named UNTRACKED, a SIEM's filter
// dropped such flows as untracked traffic (an exploratory run).
TEST(CtStatusTest, BitTwelveOfATableEntryIsANatClash) {
  EXPECT_EQ(statusNames((1U << 3U) | (1U << 12U)), (Names{"CONFIRMED", "NAT_CLASH"}));
}

}  // namespace
}  // namespace ctaudit
