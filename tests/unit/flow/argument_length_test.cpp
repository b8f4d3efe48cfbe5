// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/argument_length.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit {
namespace {

TEST(ArgumentLengthTest, APathFitsAndAPasteGoneWrongIsRefusedWithoutBeingEchoed) {
  const std::string path = "--db=/" + std::string(4095, 'a');  // PATH_MAX and the option's name
  const std::string pasted(100'000, 'x');
  std::vector<std::string_view> args{"flows", path};
  EXPECT_TRUE(checkArgumentLengths(args, "ctaudit"));
  args.emplace_back(pasted);
  const auto refused = checkArgumentLengths(args, "ctaudit");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::Usage);
  EXPECT_EQ(refused.error().detail, "argument 3 is 100000 bytes long, beginning '" + std::string(32, 'x') +
                                        "'; no ctaudit argument is longer than 4160 bytes");
}

}  // namespace
}  // namespace ctaudit
