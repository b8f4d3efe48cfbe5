// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/page_cache.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow/unique_c.hpp"

namespace ctaudit::testing {

std::size_t cachedPages(const std::filesystem::path& path) {
  const UniqueFd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  struct stat st {};
  if (!fd.valid() || ::fstat(fd.get(), &st) != 0) {
    ADD_FAILURE() << "cannot open " << path << ": " << std::strerror(errno);
    return 0;
  }
  if (st.st_size == 0) {
    return 0;
  }
  const auto length = static_cast<std::size_t>(st.st_size);
  void* map = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (map == MAP_FAILED) {
    ADD_FAILURE() << "cannot map " << path << ": " << std::strerror(errno);
    return 0;
  }
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((length + page - 1) / page);
  EXPECT_EQ(::mincore(map, length, resident.data()), 0) << std::strerror(errno);
  ::munmap(map, length);
  return static_cast<std::size_t>(
      std::count_if(resident.begin(), resident.end(), [](unsigned char flags) { return (flags & 1U) != 0; }));
}

bool directWritesWork(const std::filesystem::path& directory) {
  const std::filesystem::path probe = directory / ".o_direct_probe";
  const UniqueFd fd{::open(probe.c_str(), O_RDWR | O_CREAT | O_DIRECT | O_CLOEXEC, 0600)};
  ::unlink(probe.c_str());
  return fd.valid();
}

}  // namespace ctaudit::testing
