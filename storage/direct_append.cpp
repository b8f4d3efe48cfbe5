// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/direct_append.hpp"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <chrono>
#include <cstring>

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ctaudit::storage {
namespace {

bool sameFile(int a, int b) noexcept {
  struct stat sa {};
  struct stat sb {};
  return ::fstat(a, &sa) == 0 && ::fstat(b, &sb) == 0 && sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace

AppendOutcome appendWholeLines(int fd, std::string_view bytes, std::chrono::milliseconds wait_for_room) noexcept {
  AppendOutcome outcome;
  while (outcome.written < bytes.size()) {
    const std::string_view rest = bytes.substr(outcome.written);
    // As many whole lines as fit in PIPE_BUF; a longer line on its own.
    std::size_t piece = 0;
    while (piece < rest.size() && piece < PIPE_BUF) {
      const std::size_t newline = rest.find('\n', piece);
      const std::size_t line_end = newline == std::string_view::npos ? rest.size() : newline + 1;
      if (piece != 0 && line_end > PIPE_BUF) {
        break;
      }
      piece = line_end;
    }
    const AppendOutcome part = appendBuffered(fd, rest.substr(0, piece), wait_for_room);
    outcome.written += part.written;
    if (part.error != 0) {
      outcome.error = part.error;
      return outcome;
    }
  }
  return outcome;
}

AppendOutcome appendBuffered(int fd, std::string_view bytes, std::chrono::milliseconds wait_for_room) noexcept {
  AppendOutcome outcome;
  // From the last write that made progress: a reader that is slow but reads is waited for as long
  // as it takes (as a blocking write would), one that stopped for `wait_for_room` no longer.
  auto deadline = std::chrono::steady_clock::now() + wait_for_room;
  while (outcome.written < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + outcome.written, bytes.size() - outcome.written);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() > 0) {
          pollfd room{fd, POLLOUT, 0};
          const int ready = ::poll(&room, 1, static_cast<int>(left.count()));
          if (ready > 0 || (ready < 0 && errno == EINTR)) {
            continue;  // room, or an error the next write(2) reports
          }
        }
        outcome.error = EAGAIN;
        return outcome;
      }
      outcome.error = errno;
      return outcome;
    }
    if (n == 0) {  // write(2) never returns 0 for a non-empty buffer on files or pipes; do not spin
      outcome.error = EIO;
      return outcome;
    }
    outcome.written += static_cast<std::size_t>(n);
    deadline = std::chrono::steady_clock::now() + wait_for_room;
  }
  return outcome;
}

std::unique_ptr<DirectAppend> DirectAppend::open(const std::filesystem::path& path, int append_fd) noexcept {
  UniqueFd fd{::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC)};
  if (!fd.valid() || !sameFile(fd.get(), append_fd)) {
    return nullptr;
  }
  char* staging = static_cast<char*>(std::aligned_alloc(kBlock, kStaging));
  if (staging == nullptr) {
    return nullptr;
  }
  return std::make_unique<DirectAppend>(std::move(fd), staging);
}

DirectAppend::DirectAppend(UniqueFd direct_fd, char* staging) noexcept
    : fd_(std::move(direct_fd)), staging_(staging) {}

bool DirectAppend::loadTail(int append_fd) noexcept {
  file_end_ = -1;
  struct stat st {};
  if (::fstat(append_fd, &st) != 0) {
    return false;
  }
  block_start_ = st.st_size / static_cast<off_t>(kBlock) * static_cast<off_t>(kBlock);
  staged_ = static_cast<std::size_t>(st.st_size - block_start_);
  if (staged_ > 0) {
    // A direct read of the last block returns the bytes up to the end of the file.
    ssize_t n = 0;
    do {
      n = ::pread(fd_.get(), staging_.get(), kBlock, block_start_);
    } while (n < 0 && errno == EINTR);
    if (n < 0 || static_cast<std::size_t>(n) < staged_) {
      return false;
    }
  }
  file_end_ = st.st_size;
  return true;
}

int DirectAppend::writeBlocks(std::size_t length) noexcept {
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pwrite(fd_.get(), staging_.get() + done, length - done, block_start_ + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      const int error = n < 0 ? errno : EIO;
      block_start_ += static_cast<off_t>(done);  // what did reach the file counts as written
      return error;
    }
    // A short write is followed by another for the rest, which says why it stopped. (Direct
    // writes stop at block boundaries; tmpfs, which takes O_DIRECT through its cache, anywhere.)
    done += static_cast<std::size_t>(n);
  }
  block_start_ += static_cast<off_t>(length);
  staged_ -= length;
  std::memmove(staging_.get(), staging_.get() + length, staged_);
  return 0;
}

AppendOutcome DirectAppend::append(int append_fd, std::string_view bytes) noexcept {
  struct stat st {};
  const bool in_step = file_end_ >= 0 && ::fstat(append_fd, &st) == 0 && st.st_size == file_end_;
  if (!in_step && !loadTail(append_fd)) {
    return appendBuffered(append_fd, bytes);  // the end cannot be read back: the ordinary way this time
  }
  const off_t start_end = file_end_;
  file_end_ = -1;  // until this append has succeeded
  // Bytes of `bytes` in the file once the blocks up to `block_start_` are.
  const auto writtenBy = [&](off_t file_size) {
    return static_cast<std::size_t>(std::max<off_t>(0, file_size - start_end));
  };

  // Fill the staging buffer and hand its whole blocks to the disk, until what is left is less
  // than a block.
  std::size_t taken = 0;
  bool wrote = false;
  for (;;) {
    const std::size_t n = std::min(kStaging - staged_, bytes.size() - taken);
    std::memcpy(staging_.get() + staged_, bytes.data() + taken, n);
    staged_ += n;
    taken += n;
    const std::size_t whole = staged_ / kBlock * kBlock;
    if (whole == 0) {
      break;
    }
    const off_t before = block_start_;
    if (const int error = writeBlocks(whole); error != 0) {
      if (error == EINVAL && !wrote && block_start_ == before) {
        // Turned down before anything of this append reached the file: by a file system that
        // accepts O_DIRECT at open and not in writes, or by a file size limit that would cut the
        // write off mid-block. The ordinary way then, which writes what fits and says why not
        // the rest.
        return appendBuffered(append_fd, bytes);
      }
      return AppendOutcome{writtenBy(block_start_), error};
    }
    wrote = true;
    if (taken == bytes.size()) {
      break;
    }
  }

  // staging_ holds the new last partial block; what of it is beyond the file's end goes the
  // ordinary way, landing where the direct writes ended.
  const off_t on_disk = std::max(start_end, block_start_);
  const auto skip = static_cast<std::size_t>(on_disk - block_start_);
  const AppendOutcome tail = appendBuffered(append_fd, std::string_view{staging_.get() + skip, staged_ - skip});
  if (tail.error != 0) {
    return AppendOutcome{writtenBy(on_disk + static_cast<off_t>(tail.written)), tail.error};
  }
  file_end_ = block_start_ + static_cast<off_t>(staged_);
  return AppendOutcome{bytes.size(), 0};
}

}  // namespace ctaudit::storage
