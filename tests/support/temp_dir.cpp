// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/temp_dir.hpp"

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <system_error>

namespace ctaudit::testing {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "ctaudit-test-XXXXXX").string();
  if (::mkdtemp(pattern.data()) == nullptr) {
    throw std::runtime_error("mkdtemp failed for " + pattern);
  }
  path_ = pattern;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace ctaudit::testing
