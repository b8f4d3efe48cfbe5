// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/direct_append.hpp"

#include <array>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <random>
#include <string>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/file_text.hpp"
#include "tests/support/page_cache.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::storage {
namespace {

using ctaudit::testing::readFile;

using ctaudit::testing::TempDir;
constexpr std::size_t kBlock = DirectAppend::kBlock;

// `size` bytes of text lines, different for each `seed`, so that a byte in the wrong place shows.
std::string lines(std::size_t size, unsigned seed) {
  std::string text;
  std::mt19937 random(seed);
  while (text.size() < size) {
    text += "line " + std::to_string(random()) + " of batch " + std::to_string(seed) + '\n';
  }
  text.resize(size);
  return text;
}

// A file opened the way JsonLinesSink opens it, and a DirectAppend on it.
struct AppendedFile {
  explicit AppendedFile(const std::filesystem::path& file)
      : path(file), fd(::open(file.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)),
        direct(DirectAppend::open(file, fd.get())) {}
  std::filesystem::path path;
  UniqueFd fd;
  std::unique_ptr<DirectAppend> direct;
};

class DirectAppendTest : public ::testing::Test {
protected:
  void SetUp() override {
    if (!ctaudit::testing::directWritesWork(dir_.path())) {
      GTEST_SKIP() << dir_.path() << " is on a file system without O_DIRECT (tmpfs?); set TMPDIR to a disk";
    }
  }
  TempDir dir_;
};

// A full pipe takes no part of a line: a reader of a daemon killed then got half a line, and the
// next run's first line glued to it (an exploratory run).
TEST(AppendWholeLinesTest, AFullPipeTakesWholeLinesOnly) {
  std::array<int, 2> ends{};
  ASSERT_EQ(::pipe2(ends.data(), O_NONBLOCK), 0);
  const int capacity = ::fcntl(ends[1], F_SETPIPE_SZ, 4096);
  ASSERT_GE(capacity, 4096);
  const std::string line(1499, 'x');
  std::string lines;
  const std::size_t fit = static_cast<std::size_t>(capacity) / 1500;  // whole lines the pipe holds
  for (std::size_t i = 0; i < fit + 1; ++i) {
    lines += line + '\n';
  }
  const AppendOutcome outcome = appendWholeLines(ends[1], lines);
  EXPECT_EQ(outcome.error, EAGAIN);
  EXPECT_EQ(outcome.written, fit * 1500) << "whole lines, though the pipe had room for part of the next";
  std::string read_back(static_cast<std::size_t>(capacity), '\0');
  const ssize_t n = ::read(ends[0], read_back.data(), read_back.size());
  ASSERT_EQ(n, static_cast<ssize_t>(fit * 1500));
  EXPECT_EQ(read_back[static_cast<std::size_t>(n) - 1], '\n');
  // With room again, the rest goes whole; a line longer than PIPE_BUF is written on its own.
  EXPECT_EQ(appendWholeLines(ends[1], std::string_view(lines).substr(fit * 1500)).written, 1500U);
  ::close(ends[0]);
  ::close(ends[1]);
}

TEST_F(DirectAppendTest, AppendsOfEverySizeMakeTheSameFileAsWrite) {
  AppendedFile file(dir_ / "flows.jsonl");
  ASSERT_NE(file.direct, nullptr);
  // Empty, smaller than a block, exactly blocks, across the staging buffer's size, and more than it.
  const std::size_t sizes[] = {0,         1,         kBlock - 1,     kBlock,         1,
                               kBlock + 1, 3 * kBlock, DirectAppend::kStaging - 7, 5,
                               DirectAppend::kStaging, 2 * DirectAppend::kStaging + 123, 17};
  std::string expected;
  unsigned seed = 0;
  for (const std::size_t size : sizes) {
    const std::string bytes = lines(size, ++seed);
    const AppendOutcome outcome = file.direct->append(file.fd.get(), bytes);
    EXPECT_EQ(outcome.error, 0) << "append of " << size;
    EXPECT_EQ(outcome.written, size);
    expected += bytes;
    ASSERT_EQ(readFile(file.path), expected) << "after an append of " << size;
  }
}

TEST_F(DirectAppendTest, WholeBlocksBypassThePageCache) {
  AppendedFile file(dir_ / "flows.jsonl");
  ASSERT_NE(file.direct, nullptr);
  std::size_t total = 0;
  for (unsigned seed = 1; seed <= 4; ++seed) {
    const std::string bytes = lines(2 * 1024 * 1024 + seed * 1000, seed);
    ASSERT_EQ(file.direct->append(file.fd.get(), bytes).error, 0);
    total += bytes.size();
  }
  // Only the last, partial block went through the page cache.
  EXPECT_LE(ctaudit::testing::cachedPages(file.path), 1U) << "of " << total / kBlock << " pages";
}

TEST_F(DirectAppendTest, GoesOnFromWhereTheFileEndsWhenSomeoneElseChangedIt) {
  AppendedFile file(dir_ / "flows.jsonl");
  ASSERT_NE(file.direct, nullptr);
  std::string expected = lines(kBlock + 100, 1);
  ASSERT_EQ(file.direct->append(file.fd.get(), expected).error, 0);

  // Another writer appends: its bytes stay, ours follow them.
  const std::string theirs = lines(300, 2);
  {
    const UniqueFd other{::open(file.path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC)};
    ASSERT_EQ(::write(other.get(), theirs.data(), theirs.size()), static_cast<ssize_t>(theirs.size()));
  }
  expected += theirs;
  std::string ours = lines(3 * kBlock, 3);
  ASSERT_EQ(file.direct->append(file.fd.get(), ours).error, 0);
  expected += ours;
  ASSERT_EQ(readFile(file.path), expected);

  // The file is cut back into an earlier block: the next append starts at the new end.
  ASSERT_EQ(::truncate(file.path.c_str(), 1000), 0);
  expected.resize(1000);
  ours = lines(2 * kBlock + 5, 4);
  ASSERT_EQ(file.direct->append(file.fd.get(), ours).error, 0);
  expected += ours;
  EXPECT_EQ(readFile(file.path), expected);
}

// The file size limit refuses part of a large append (EFBIG), as a disk filling up would: the
// outcome counts exactly the bytes that reached the file, so the caller can cut them off again,
// and the next append, once there is room, carries on from the file's real end. In a forked child,
// since the limit and SIGXFSZ are per process.
TEST_F(DirectAppendTest, AFailedAppendSaysHowMuchOfItIsInTheFile) {
  AppendedFile file(dir_ / "flows.jsonl");
  ASSERT_NE(file.direct, nullptr);
  const std::string first = lines(kBlock + 10, 1);
  ASSERT_EQ(file.direct->append(file.fd.get(), first).error, 0);
  const std::string big = lines(DirectAppend::kStaging + 5 * kBlock, 2);
  const auto limit = static_cast<rlim_t>(first.size() + DirectAppend::kStaging / 2);

  const auto in_child = [&] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{limit, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 2;
    }
    const AppendOutcome failed = file.direct->append(file.fd.get(), big);
    struct stat st {};
    if (failed.error == 0 || ::fstat(file.fd.get(), &st) != 0 ||
        static_cast<std::size_t>(st.st_size) != first.size() + failed.written ||
        readFile(file.path) != first + big.substr(0, failed.written)) {
      return 1;
    }
    // What the caller does: cut the partial append off, then try again with room.
    if (::ftruncate(file.fd.get(), static_cast<off_t>(first.size())) != 0) {
      return 3;
    }
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 4;
    }
    const AppendOutcome retried = file.direct->append(file.fd.get(), big);
    return retried.error == 0 && readFile(file.path) == first + big ? 0 : 5;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ctaudit::storage
