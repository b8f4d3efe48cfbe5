// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/netlink_socket.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace ctaudit::bench {

Unexpected netlinkError(const std::string& step, int err) {
  std::string hint;
  if (err == EPERM || err == EACCES) {
    hint = " (needs CAP_NET_ADMIN: run as root inside the network namespace made for the run)";
  } else if (err == EPROTONOSUPPORT) {
    hint = " (is nf_conntrack_netlink loaded? `modprobe nf_conntrack_netlink`)";
  }
  return fail(Errc::Netlink, step + ": " + std::strerror(err) + hint, err);
}

void sizeSocketBuffer(int fd, int force_option, int option, std::size_t bytes) noexcept {
  const int half = static_cast<int>(std::min<std::size_t>(bytes / 2, 1U << 30U));
  if (::setsockopt(fd, SOL_SOCKET, force_option, &half, sizeof half) != 0) {
    (void)::setsockopt(fd, SOL_SOCKET, option, &half, sizeof half);
  }
}

}  // namespace ctaudit::bench
