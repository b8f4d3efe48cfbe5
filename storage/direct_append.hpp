// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>

#include <sys/types.h>

#include "flow/unique_c.hpp"

namespace ctaudit::storage {

// What one attempt to append did: how many of its bytes reached the file, and the errno of the
// call that stopped it (0 when all of them did).
struct AppendOutcome {
  std::size_t written{0};
  int error{0};
};

// write(2) until every byte of `bytes` is taken or a call fails (EINTR is retried). `fd` is
// usually O_APPEND. A non-blocking pipe that is full (EAGAIN) is waited on (poll) for up to
// `wait_for_room` after the last write that made progress before EAGAIN is returned: a reader
// that is slow still gets every byte, one that stopped holds the caller up for no longer than that.
[[nodiscard]] AppendOutcome appendBuffered(int fd, std::string_view bytes,
                                           std::chrono::milliseconds wait_for_room = std::chrono::milliseconds{0}) noexcept;

// appendBuffered() in writes of whole lines (newline-terminated), each at most PIPE_BUF bytes
// where the lines allow (a longer line is written alone): for a pipe or FIFO, where a write of at
// most PIPE_BUF bytes is atomic, also non-blocking (all of it, or EAGAIN). So the pipe never holds
// part of a line: a daemon killed after a partial write left its reader half a line, which the
// next run's first line, its daemon_down gap, was glued to (an exploratory run). On a pipe a
// failure leaves `written` at a line's end, but in a line longer than PIPE_BUF; on other outputs
// (a terminal, a stream socket) a write may take part of a piece, as appendBuffered's.
[[nodiscard]] AppendOutcome appendWholeLines(int fd, std::string_view bytes,
                                             std::chrono::milliseconds wait_for_room = std::chrono::milliseconds{0}) noexcept;

// Appends to a regular file without going through the page cache: whole 4 KiB blocks go from an
// aligned buffer straight to the disk with O_DIRECT, and only the last, partial block of each
// append is written the ordinary way, through the caller's O_APPEND descriptor.
//
// Why: the JSON lines are written once, read at most once soon after by a shipper, and grow by
// ≈ 900 bytes an event, ≈ 135 MB/s at 150k events/s. Through the page cache each of those bytes is
// copied into a new page-cache page; on virtual machines whose free memory goes back to the host
// (virtio-balloon free page reporting) a new page also costs a fault on the host, and that copy was
// the largest single item of the daemon's CPU profile (docs/benchmarks.md "What the kernel did for
// the daemon"). O_DIRECT has the device read the bytes from our buffer: no copy, no page. The
// fdatasync of a flush still makes everything durable.
//
// What a reader of the file sees is the same as with plain appends: the file only ever holds whole
// bytes that were written; a block written again holds the same bytes it held, plus new ones after
// them, and the file's size moves only forwards. The kernel writes back and drops a cached copy of
// a block before writing it directly, so readers never see stale data.
//
// The file's last partial block is kept in memory so that the next append can write it out whole
// together with what follows. Before each append the file's size is checked against what this
// object wrote; when someone else changed it (truncated, appended) the partial block is read again
// from the file. While an append runs, nothing else may write to the file: unlike O_APPEND, a
// block written at an offset would overwrite what another writer appended in the meantime (the
// daemon is the file's only writer; copytruncate is not supported, docs/operations.md).
//
// One per open file; not thread-safe.
class DirectAppend {
public:
  static constexpr std::size_t kBlock = 4096;          // alignment of offsets, lengths and memory
  static constexpr std::size_t kStaging = 256 * kBlock;  // bytes handed to the disk per pwrite(2)

  // A second descriptor on the file that `append_fd` has open at `path`, opened O_RDWR | O_DIRECT.
  // Null when the file system refuses O_DIRECT or `path` no longer names that file: the caller
  // then writes through the page cache (appendBuffered).
  [[nodiscard]] static std::unique_ptr<DirectAppend> open(const std::filesystem::path& path, int append_fd) noexcept;

  // Use open().
  DirectAppend(UniqueFd direct_fd, char* staging) noexcept;

  // Appends `bytes` at the end of the file `append_fd` (O_APPEND, the one given to open()) has open.
  // On a failure `written` counts the bytes of `bytes` now in the file, as appendBuffered does, so
  // the caller can cut them off again; the next append reads the file's end afresh. An append whose
  // direct write is turned down (EINVAL) before any of it is written goes through appendBuffered.
  [[nodiscard]] AppendOutcome append(int append_fd, std::string_view bytes) noexcept;

private:
  // Reads the file's last partial block into the staging buffer. False when it cannot.
  [[nodiscard]] bool loadTail(int append_fd) noexcept;
  // Writes staging_[0, length) (length a multiple of kBlock) at block_start_ and moves what follows
  // it in the buffer to the front. The errno on failure, 0 on success.
  [[nodiscard]] int writeBlocks(std::size_t length) noexcept;

  UniqueFd fd_;  // O_RDWR | O_DIRECT
  std::unique_ptr<char, CFree<std::free>> staging_;  // kStaging bytes, kBlock-aligned
  off_t block_start_{0};   // file offset of staging_[0]
  std::size_t staged_{0};  // bytes in staging_
  off_t file_end_{-1};     // the file's size after our last append; -1: unknown, read it again
};

}  // namespace ctaudit::storage
