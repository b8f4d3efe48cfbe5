// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/fd_output.hpp"

#include <cerrno>

#include <unistd.h>

namespace ctaudit::query {

FdOutputBuffer::FdOutputBuffer(int fd) noexcept : fd_(fd) { setp(buffer_.data(), buffer_.data() + buffer_.size()); }

FdOutputBuffer::~FdOutputBuffer() { drain(); }

bool FdOutputBuffer::drain() noexcept {
  const char* next = pbase();
  const char* const end = pptr();
  while (error_ == 0 && next < end) {
    const ssize_t written = ::write(fd_, next, static_cast<std::size_t>(end - next));
    if (written > 0) {
      next += written;
    } else if (written < 0 && errno == EINTR) {
      continue;
    } else {
      error_ = written < 0 ? errno : EIO;  // write(2) of a non-empty buffer returned 0: call it an I/O error
    }
  }
  setp(buffer_.data(), buffer_.data() + buffer_.size());
  return error_ == 0;
}

FdOutputBuffer::int_type FdOutputBuffer::overflow(int_type ch) {
  if (!drain()) {
    return traits_type::eof();
  }
  if (!traits_type::eq_int_type(ch, traits_type::eof())) {
    *pptr() = traits_type::to_char_type(ch);
    pbump(1);
  }
  return traits_type::not_eof(ch);
}

int FdOutputBuffer::sync() { return drain() ? 0 : -1; }

}  // namespace ctaudit::query
