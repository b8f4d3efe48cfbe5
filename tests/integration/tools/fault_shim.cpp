// SPDX-License-Identifier: GPL-2.0-or-later
//
// fault_shim: an LD_PRELOAD library that makes chosen system calls of the process fail while a
// trigger file exists, for the netns tests of what ctauditd does when the kernel says no
// (netns/sync_failure.sh). A test cannot make a real disk return EIO on fdatasync inside a
// namespace (this kernel has no device-mapper), and poll() on two valid descriptors only fails on
// memory exhaustion; the shim makes both happen on demand, in the real binary, against the real
// kernel for everything else.
//
// CTAUDIT_FAULT_DIR names a directory; while it holds a file named
//   fdatasync  fdatasync() and fsync() fail with EIO (SQLite and the JSON-lines sink both call
//              fdatasync; the call is not made, so nothing is synced);
//   poll       poll() fails with ENOMEM in the process's main thread (ctauditd's pipeline
//              thread; its reader thread polls normally).
// Without the variable, or without the file, each call goes straight to libc's.

// Fortified headers define poll() inline themselves, which this file must define instead.
#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstdio>

namespace {

bool triggered(const char* name) noexcept {
  const char* dir = std::getenv("CTAUDIT_FAULT_DIR");
  if (dir == nullptr || *dir == '\0') {
    return false;
  }
  std::array<char, 4096> path{};
  const int n = std::snprintf(path.data(), path.size(), "%s/%s", dir, name);
  return n > 0 && static_cast<std::size_t>(n) < path.size() && ::access(path.data(), F_OK) == 0;
}

bool inMainThread() noexcept { return ::gettid() == ::getpid(); }

template <class Fn>
Fn next(const char* symbol) noexcept {
  // dlsym returns an object pointer; POSIX guarantees it converts to the function's type.
  return reinterpret_cast<Fn>(::dlsym(RTLD_NEXT, symbol));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

int failWith(int error) noexcept {
  errno = error;
  return -1;
}

}  // namespace

extern "C" {

int fdatasync(int fd) {
  static const auto real = next<int (*)(int)>("fdatasync");
  return triggered("fdatasync") ? failWith(EIO) : real(fd);
}

int fsync(int fd) {
  static const auto real = next<int (*)(int)>("fsync");
  return triggered("fdatasync") ? failWith(EIO) : real(fd);
}

int poll(struct pollfd* fds, nfds_t nfds, int timeout) {
  static const auto real = next<int (*)(struct pollfd*, nfds_t, int)>("poll");
  return triggered("poll") && inMainThread() ? failWith(ENOMEM) : real(fds, nfds, timeout);
}

}  // extern "C"
