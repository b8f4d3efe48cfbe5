// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <filesystem>

namespace ctaudit::testing {

// How many pages of the file at `path` the page cache holds now (mincore(2) over a mapping, which
// reads nothing in by itself).
[[nodiscard]] std::size_t cachedPages(const std::filesystem::path& path);

// Whether a file in `directory` can be opened with O_DIRECT (tmpfs and some FUSE file systems
// refuse it), so that tests of direct writes can say why they skip.
[[nodiscard]] bool directWritesWork(const std::filesystem::path& directory);

}  // namespace ctaudit::testing
