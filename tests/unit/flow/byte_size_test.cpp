// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/byte_size.hpp"

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

TEST(ByteSizeTest, UnitsArePowersOf1024) {
  EXPECT_EQ(parseByteSize("4096")->bytes, 4096U);
  EXPECT_FALSE(parseByteSize("4096")->has_unit);
  EXPECT_EQ(parseByteSize("512K")->bytes, 512U << 10U);
  EXPECT_EQ(parseByteSize("64M")->bytes, 64U << 20U);
  EXPECT_EQ(parseByteSize("2GiB")->bytes, std::uint64_t{2} << 30U);
  EXPECT_EQ(parseByteSize("1KiB")->bytes, 1024U);
  EXPECT_TRUE(parseByteSize("1G")->has_unit);
  EXPECT_EQ(parseByteSize("0")->bytes, 0U);
}

TEST(ByteSizeTest, AnythingElseIsRefused) {
  for (const char* text : {"", "M", "-1M", "+1M", "1.5G", "5MB", "1T", "1k", "1 M", "1M ", "0x10"}) {
    EXPECT_FALSE(parseByteSize(text)) << text;
  }
}

TEST(ByteSizeTest, OverflowOnceScaledIsRefused) {
  EXPECT_TRUE(parseByteSize("18446744073709551615"));
  EXPECT_FALSE(parseByteSize("18446744073709551616"));
  EXPECT_TRUE(parseByteSize("17179869183G"));
  EXPECT_FALSE(parseByteSize("17179869184G"));
}

}  // namespace
}  // namespace ctaudit
