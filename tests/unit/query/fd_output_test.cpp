// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/fd_output.hpp"

#include <cerrno>
#include <ostream>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "flow/unique_c.hpp"
#include "tests/support/file_text.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::query {
namespace {

TEST(FdOutputBufferTest, WritesEverythingPastItsBufferInOrder) {
  testing::TempDir dir;
  const auto path = dir / "out.txt";
  std::string expected;
  {
    const UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    ASSERT_TRUE(fd.valid());
    FdOutputBuffer buffer(fd.get());
    std::ostream out(&buffer);
    for (int line = 0; line < 20000; ++line) {  // ≈ 290 KB: several times the 64 KiB buffer
      const std::string text = "line " + std::to_string(line) + " of the listing\n";
      out << text;
      expected += text;
    }
    out.flush();
    EXPECT_TRUE(out);
    EXPECT_EQ(buffer.error(), 0);
  }
  EXPECT_EQ(testing::readFile(path), expected);
}

TEST(FdOutputBufferTest, KeepsTheErrnoOfAFailedWrite) {
  const UniqueFd fd(::open("/dev/full", O_WRONLY | O_CLOEXEC));
  ASSERT_TRUE(fd.valid()) << "/dev/full is part of every Linux system";
  FdOutputBuffer buffer(fd.get());
  std::ostream out(&buffer);
  out << "a listing\n";
  EXPECT_TRUE(out) << "still in the buffer";
  out.flush();
  EXPECT_FALSE(out);
  EXPECT_EQ(buffer.error(), ENOSPC);
}

TEST(FdOutputBufferTest, ABadDescriptorIsAnError) {
  FdOutputBuffer buffer(-1);
  std::ostream out(&buffer);
  out << std::string(70000, 'x');  // past the buffer: the write happens here
  EXPECT_FALSE(out);
  EXPECT_EQ(buffer.error(), EBADF);
}

}  // namespace
}  // namespace ctaudit::query
