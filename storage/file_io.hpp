// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <string_view>

#include <sys/stat.h>
#include <sys/types.h>

namespace ctaudit::storage {

// The mode of the log files the daemon creates (JSON lines, their archives, a torn line's file):
// the owner writes, the `ctaudit` group of analysts reads (docs/operations.md).
inline constexpr mode_t kLogFileMode = 0640;

// write(2) until every byte of `bytes` is taken, retrying EINTR: 0, or the errno of the call that
// stopped it (EIO for a write that took nothing). For a descriptor that blocks; a non-blocking
// pipe's EAGAIN is returned like any other error (appendBuffered waits for room instead).
[[nodiscard]] int writeFull(int fd, std::string_view bytes) noexcept;

// pread(2) until `size` bytes or the end of the file, retrying EINTR: the count read, or -1 with
// errno set.
[[nodiscard]] ssize_t preadFull(int fd, char* data, std::size_t size, off_t offset) noexcept;

// fdatasync(2), retried after EINTR: 0, or the errno of the call that failed.
[[nodiscard]] int syncData(int fd) noexcept;

// An exclusive flock(2) on the file open at `fd`, without waiting, held as long as that open file
// (retrying EINTR): 0, EWOULDBLOCK when another open file holds it, or the errno of a file system
// that does not lock.
[[nodiscard]] int lockExclusively(int fd) noexcept;

// Whether `fd` is open on a regular file (not a FIFO, a device or a socket).
[[nodiscard]] bool isRegularFile(int fd) noexcept;

}  // namespace ctaudit::storage
