// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/printable.hpp"

#include <gtest/gtest.h>

namespace ctaudit::query {
namespace {

TEST(PrintableTest, ShowsControlCharactersAsHex) {
  EXPECT_EQ(printable("100.64.0.7"), "100.64.0.7");
  EXPECT_EQ(printable("a\x1b[2Jb"), "a\\x1b[2Jb");       // ESC: a C0 control
  EXPECT_EQ(printable("line\nnext\x7f"), "line\\x0anext\\x7f");
  EXPECT_EQ(printable("\xc2\x9b" "2J"), "\\xc2\\x9b2J");  // U+009B, CSI: a C1 control in UTF-8
  EXPECT_EQ(printable("caf\xc3\xa9 \xc2\xb5s"), "caf\xc3\xa9 \xc2\xb5s");  // other UTF-8 stays as it is
}

// Found by an exploratory run: `--at $'\xff\xfe'` reached the terminal raw.
TEST(PrintableTest, ShowsBytesThatAreNotUtf8AsHex) {
  EXPECT_EQ(printable("\xff\xfe"), "\\xff\\xfe");
  EXPECT_EQ(printable("\xc2"), "\\xc2");                        // a lead byte cut off
  EXPECT_EQ(printable("caf\xe9!"), "caf\\xe9!");                // Latin-1 é
  EXPECT_EQ(printable("\xc0\xaf"), "\\xc0\\xaf");                // an overlong '/'
  EXPECT_EQ(printable("\xed\xa0\x80"), "\\xed\\xa0\\x80");        // a surrogate
  EXPECT_EQ(printable("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");  // above U+10FFFF
  EXPECT_EQ(printable("\xe2\x82\xac \xf0\x9f\x98\x80"), "\xe2\x82\xac \xf0\x9f\x98\x80");  // € and an emoji stay
}

}  // namespace
}  // namespace ctaudit::query
