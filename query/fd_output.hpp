// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <streambuf>

namespace ctaudit::query {

// An output stream buffer over a file descriptor that keeps the errno of the write that failed.
// std::cout only says that output failed; an operator whose `ctaudit flows … > file` stopped
// needs to read "No space left on device" rather than a guess. Not copyable; flushes when
// destroyed (a failure then is kept in error(), nobody is left to read it). One thread, like the
// stream over it.
class FdOutputBuffer final : public std::streambuf {
public:
  explicit FdOutputBuffer(int fd) noexcept;
  ~FdOutputBuffer() override;
  FdOutputBuffer(const FdOutputBuffer&) = delete;
  FdOutputBuffer& operator=(const FdOutputBuffer&) = delete;
  FdOutputBuffer(FdOutputBuffer&&) = delete;
  FdOutputBuffer& operator=(FdOutputBuffer&&) = delete;

  // The errno of the first write(2) that failed, or 0. After one failure nothing more is written.
  [[nodiscard]] int error() const noexcept { return error_; }

protected:
  int_type overflow(int_type ch) override;
  int sync() override;

private:
  // Writes what the buffer holds, through partial writes and EINTR; false once a write failed.
  bool drain() noexcept;

  int fd_;
  int error_{0};
  std::array<char, 64 * 1024> buffer_{};
};

}  // namespace ctaudit::query
