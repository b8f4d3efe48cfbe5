// SPDX-License-Identifier: GPL-2.0-or-later
// notify_listener SOCKET OUTPUT [ON_READY]: plays the service manager's end of sd_notify(3) for the netns
// tests. Binds an AF_UNIX datagram socket at SOCKET (mode 0666, so a daemon that dropped to another
// user can still send) and appends every datagram to OUTPUT, one line per assignment:
//   <datagram number> <receive time, Unix seconds with ns> <KEY=VALUE>
// Each line goes out with its own write(2), so a test can read OUTPUT while this runs. Runs until
// killed (SIGTERM). ON_READY, a /bin/sh command, runs as soon as a datagram with READY=1 has
// arrived, before the next datagram is read: a snapshot of what the daemon had done by then.
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "flow/unique_c.hpp"

namespace {

int failWith(const char* what) {
  std::fprintf(stderr, "notify_listener: %s: %s\n", what, std::strerror(errno));
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::fprintf(stderr, "usage: notify_listener SOCKET OUTPUT [ON_READY]\n");
    return 2;
  }
  const std::string_view path(argv[1]);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof address.sun_path) {
    std::fprintf(stderr, "notify_listener: socket path too long\n");
    return 2;
  }
  path.copy(&address.sun_path[0], path.size());
  const ctaudit::UniqueFd socket{::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (!socket.valid()) {
    return failWith("socket");
  }
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API takes a sockaddr
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return failWith("bind");
  }
  if (::chmod(argv[1], 0666) != 0) {
    return failWith("chmod");
  }
  const ctaudit::UniqueFd out{::open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)};
  if (!out.valid()) {
    return failWith("open output");
  }
  std::array<char, 4096> buffer{};
  for (unsigned long datagram = 1;; ++datagram) {
    const ssize_t n = ::recv(socket.get(), buffer.data(), buffer.size(), 0);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return failWith("recv");
    }
    const auto now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const std::string_view message(buffer.data(), static_cast<std::size_t>(n));
    if (argc == 4 && (message.rfind("READY=1", 0) == 0 || message.find("\nREADY=1") != std::string_view::npos)) {
      // NOLINTNEXTLINE(concurrency-mt-unsafe,cert-env33-c): a test tool running the test's own command
      if (std::system(argv[3]) != 0) {
        std::fprintf(stderr, "notify_listener: the READY=1 command failed: %s\n", argv[3]);
      }
    }
    std::size_t start = 0;
    while (start < message.size()) {
      const std::size_t end = std::min(message.find('\n', start), message.size());
      std::array<char, 64> prefix{};
      const int length = std::snprintf(prefix.data(), prefix.size(), "%lu %.9f ", datagram, now);
      const std::string line = std::string(prefix.data(), static_cast<std::size_t>(length)) +
                               std::string(message.substr(start, end - start)) + "\n";
      if (::write(out.get(), line.data(), line.size()) != static_cast<ssize_t>(line.size())) {
        return failWith("write");
      }
      start = end + 1;
    }
  }
}
