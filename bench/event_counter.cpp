// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/event_counter.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/netlink_socket.hpp"

namespace ctaudit::bench {
namespace {

// A conntrack event with counters, timestamps and labels is well under 1 KiB; a page per slot
// leaves room, and MSG_TRUNC counts any that would not fit.
constexpr std::size_t kSlots = 256;
constexpr std::size_t kSlotBytes = 4096;

}  // namespace

EventCounter::EventCounter(UniqueFd socket) : socket_(std::move(socket)), receive_area_(kSlots * kSlotBytes) {}

Result<std::unique_ptr<EventCounter>> EventCounter::open(std::size_t buffer_bytes) {
  UniqueFd socket{::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER)};
  if (!socket.valid()) {
    return netlinkError("cannot open a NETLINK_NETFILTER socket", errno);
  }
  // Groups 1 (NFNLGRP_CONNTRACK_NEW) and 3 (NFNLGRP_CONNTRACK_DESTROY) as the legacy bind mask.
  sockaddr_nl address{};
  address.nl_family = AF_NETLINK;
  address.nl_groups = (1U << (NFNLGRP_CONNTRACK_NEW - 1)) | (1U << (NFNLGRP_CONNTRACK_DESTROY - 1));
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API takes sockaddr*
  if (::bind(socket.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) {
    return netlinkError("cannot join the conntrack NEW and DESTROY event groups", errno);
  }
  sizeSocketBuffer(socket.get(), SO_RCVBUFFORCE, SO_RCVBUF, buffer_bytes);
  auto counter = std::unique_ptr<EventCounter>(new EventCounter(std::move(socket)));
  int granted = 0;
  socklen_t length = sizeof granted;
  if (::getsockopt(counter->socket_.get(), SOL_SOCKET, SO_RCVBUF, &granted, &length) == 0) {
    counter->counts_.buffer_bytes = static_cast<std::size_t>(granted);
  }
  return counter;
}

Result<bool> EventCounter::poll(int wait_ms) {
  if (wait_ms > 0) {
    pollfd descriptor{socket_.get(), POLLIN, 0};
    const int ready = ::poll(&descriptor, 1, wait_ms);
    if (ready <= 0) {
      return false;  // timeout or EINTR: the caller checks for a stop and comes back
    }
  }
  ReceiveSlots<kSlots> slots(receive_area_, kSlotBytes);
  auto& headers = slots.headers;
  bool any = false;
  for (;;) {
    const int count = ::recvmmsg(socket_.get(), headers.data(), kSlots, MSG_DONTWAIT, nullptr);
    if (count < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      if (err == ENOBUFS) {
        // The kernel could not queue some events (SK_MEMINFO_DROPS says how many); the socket
        // is still usable.
        ++counts_.overruns;
        continue;
      }
      if (err == EAGAIN || err == EWOULDBLOCK) {
        return any;
      }
      return netlinkError("receiving conntrack events failed", err);
    }
    ++counts_.receive_calls;
    any = true;
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
      if ((headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
        ++counts_.truncated;
        continue;
      }
      countMessages(std::span<const std::byte>(receive_area_.data() + i * kSlotBytes, headers[i].msg_len), counts_);
    }
    counts_.datagrams += static_cast<std::uint64_t>(count);
    if (static_cast<std::size_t>(count) < kSlots) {
      return true;  // fewer than asked for: the queue is empty now
    }
  }
}

void countMessages(std::span<const std::byte> datagram, EventCounts& counts) noexcept {
  const std::byte* data = datagram.data();
  std::size_t length = datagram.size();
  while (length >= NLMSG_HDRLEN) {
    nlmsghdr header{};
    std::memcpy(&header, data, sizeof header);
    if (header.nlmsg_len < NLMSG_HDRLEN || header.nlmsg_len > length) {
      ++counts.other_messages;
      return;
    }
    const unsigned subsystem = NFNL_SUBSYS_ID(header.nlmsg_type);
    const unsigned type = NFNL_MSG_TYPE(header.nlmsg_type);
    if (subsystem == NFNL_SUBSYS_CTNETLINK && type == IPCTNL_MSG_CT_NEW) {
      ++counts.new_events;
    } else if (subsystem == NFNL_SUBSYS_CTNETLINK && type == IPCTNL_MSG_CT_DELETE) {
      ++counts.destroy_events;
    } else {
      ++counts.other_messages;
    }
    const std::size_t step = std::min<std::size_t>(NLMSG_ALIGN(header.nlmsg_len), length);
    data += step;
    length -= step;
  }
}

EventCounts EventCounter::counts() const noexcept {
  EventCounts counts = counts_;
  std::array<std::uint32_t, SK_MEMINFO_VARS> meminfo{};
  socklen_t length = sizeof meminfo;
  if (::getsockopt(socket_.get(), SOL_SOCKET, SO_MEMINFO, meminfo.data(), &length) == 0 &&
      length >= sizeof(std::uint32_t) * (SK_MEMINFO_DROPS + 1)) {
    counts.kernel_drops = meminfo[SK_MEMINFO_DROPS];
  }
  return counts;
}

}  // namespace ctaudit::bench
