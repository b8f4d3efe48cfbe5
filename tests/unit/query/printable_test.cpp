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
  EXPECT_EQ(printable("\xc2"), "\xc2");                     // a lone lead byte is no control
}

}  // namespace
}  // namespace ctaudit::query
