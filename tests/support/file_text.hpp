// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <string>

namespace ctaudit::testing {

// The whole content of the file at `path`, byte for byte; empty when it does not exist.
[[nodiscard]] std::string readFile(const std::filesystem::path& path);

}  // namespace ctaudit::testing
