// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/file_text.hpp"

#include <fstream>
#include <system_error>

namespace ctaudit::testing {

std::string readFile(const std::filesystem::path& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) {
    return {};
  }
  std::string text(size, '\0');
  std::ifstream(path, std::ios::binary).read(text.data(), static_cast<std::streamsize>(size));
  return text;
}

}  // namespace ctaudit::testing
