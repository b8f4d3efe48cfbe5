// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <filesystem>
#include <string>

#include <sys/types.h>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

// Opening, locking and repairing the file a JsonLinesSink appends to.
namespace ctaudit::storage {

// How much of the file the torn-line repair reads at a time.
inline constexpr std::size_t kRepairChunk = 64 * 1024;

// Creates the missing parents of `path`, then opens it for appending (a FIFO or a device
// non-blocking: jsonl_file.cpp says why).
[[nodiscard]] Result<UniqueFd> openForAppend(const std::filesystem::path& path);

// A descriptor of the sink's own for standard output (a pipe or terminal gets an open file
// description of its own, non-blocking; anything else a duplicate), or -1 with errno set.
[[nodiscard]] int standardOutputForSink() noexcept;

// An exclusive flock(2) on the regular file open at `fd`, held as long as the descriptor; fails
// only when another open file holds it (another ctauditd on the same --jsonl).
[[nodiscard]] Result<void> lockAgainstOtherWriters(int fd, const std::filesystem::path& path);

// Whether the file open at `fd` is a SQLite database, which must never be appended to.
[[nodiscard]] bool holdsSqliteDatabase(int fd);

// The offset just past the last '\n' of the `size` bytes that `fd` holds (0 when there is none),
// or -1 with errno set; `buffer` is scratch space.
[[nodiscard]] off_t endOfLastLine(int fd, off_t size, std::string& buffer) noexcept;

}  // namespace ctaudit::storage
