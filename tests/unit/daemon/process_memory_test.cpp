// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/process_memory.hpp"

#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::daemon {
namespace {

// The lines around the two that matter, as Linux 6.18 writes them.
constexpr std::string_view kStatus =
    "Name:\tctauditd\n"
    "VmPeak:\t  912344 kB\n"
    "VmSize:\t  901232 kB\n"
    "VmHWM:\t  620460 kB\n"
    "VmRSS:\t  331860 kB\n"
    "RssAnon:\t  320000 kB\n"
    "Threads:\t3\n";

TEST(ProcessMemoryTest, ReadsResidentAndPeakFromProcStatus) {
  const auto memory = parseProcessMemory(kStatus);
  ASSERT_TRUE(memory);
  EXPECT_EQ(memory->resident_bytes, std::uint64_t{331860} * 1024);
  EXPECT_EQ(memory->peak_resident_bytes, std::uint64_t{620460} * 1024);
}

TEST(ProcessMemoryTest, AMissingOrMalformedLineIsUnknown) {
  const std::string status(kStatus);
  const std::vector<std::pair<std::string, std::string>> breakages{
      {"VmRSS:\t  331860 kB\n", ""},                      // missing
      {"VmHWM:\t  620460 kB\n", "VmHWM:\t  620460 MB\n"},  // another unit
      {"VmHWM:\t  620460 kB\n", "VmHWM:\t\n"},             // no number
      {"VmRSS:\t  331860 kB\n", "VmRSS:\t  -3 kB\n"},      // not a size
      {"VmRSS:\t  331860 kB\n", "VmRSS:\t  99999999999999999999 kB\n"},
  };
  for (const auto& [line, replacement] : breakages) {
    std::string broken = status;
    broken.replace(broken.find(line), line.size(), replacement);
    EXPECT_FALSE(parseProcessMemory(broken)) << broken;
  }
  EXPECT_FALSE(parseProcessMemory(""));
}

TEST(ProcessMemoryTest, ThisProcessHasSome) {
  const auto memory = readProcessMemory();
  ASSERT_TRUE(memory) << "no /proc/self/status";
  EXPECT_GT(memory->resident_bytes, 0U);
  EXPECT_GE(memory->peak_resident_bytes, memory->resident_bytes);
}

}  // namespace
}  // namespace ctaudit::daemon
