// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <array>
#include <cstddef>
#include <span>
#include <string>

#include "flow/result.hpp"

// What bench/'s netlink tools (the event counter, the load generator's request channel) do alike
// with their sockets. The daemon has its own in daemon/conntrack_source.cpp: bench/ does not
// link the daemon.
namespace ctaudit::bench {

// Errc::Netlink for a failed step, with the fix for the usual causes (no CAP_NET_ADMIN, no
// nf_conntrack_netlink).
[[nodiscard]] Unexpected netlinkError(const std::string& step, int err);

// Gives a socket buffer `bytes`: `force_option` (SO_RCVBUFFORCE, SO_SNDBUFFORCE: CAP_NET_ADMIN)
// first, else `option`, which net.core.[rw]mem_max caps. The kernel doubles what it is given, so
// it is given half.
void sizeSocketBuffer(int fd, int force_option, int option, std::size_t bytes) noexcept;

// recvmmsg's headers over a receive area cut into `Slots` slots of `slot_bytes`: slot i is
// area[i * slot_bytes, (i + 1) * slot_bytes). Not copyable: the headers point into `vectors`.
template <std::size_t Slots>
struct ReceiveSlots {
  ReceiveSlots(std::span<std::byte> area, std::size_t slot_bytes) noexcept {
    for (std::size_t i = 0; i < Slots; ++i) {
      vectors[i] = iovec{area.data() + i * slot_bytes, slot_bytes};
      headers[i].msg_hdr.msg_iov = &vectors[i];
      headers[i].msg_hdr.msg_iovlen = 1;
    }
  }
  ReceiveSlots(const ReceiveSlots&) = delete;
  ReceiveSlots& operator=(const ReceiveSlots&) = delete;
  ReceiveSlots(ReceiveSlots&&) = delete;
  ReceiveSlots& operator=(ReceiveSlots&&) = delete;
  ~ReceiveSlots() = default;

  std::array<mmsghdr, Slots> headers{};
  std::array<iovec, Slots> vectors{};
};

}  // namespace ctaudit::bench
