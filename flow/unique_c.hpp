// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <memory>
#include <utility>

#include <unistd.h>

namespace ctaudit {

// A stateless deleter for a C library's free function, so that unique_ptr stays pointer-sized.
template <auto Free>
struct CFree {
  template <class T>
  void operator()(T* p) const noexcept {
    if (p != nullptr) {
      Free(p);
    }
  }
};

// The one owner of a C handle: `using SqliteDb = UniqueC<sqlite3, sqlite3_close_v2>;`. Each alias
// lives in the module that owns the C library.
template <class T, auto Free>
using UniqueC = std::unique_ptr<T, CFree<Free>>;

// A move-only owner of a file descriptor; closes it on destruction.
class UniqueFd {
public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) {
      reset(std::exchange(other.fd_, -1));
    }
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    fd_ = fd;
  }

private:
  int fd_{-1};
};

}  // namespace ctaudit
