// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/ct_channel.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <string>

#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/ct_messages.hpp"
#include "bench/netlink_socket.hpp"

namespace ctaudit::bench {
namespace {

// Answers are one datagram each: nlmsghdr + nlmsgerr (with NETLINK_CAP_ACK, no payload) = 36
// bytes; a slot of 256 bytes leaves room for extended-ack attributes.
constexpr std::size_t kSlots = 256;
constexpr std::size_t kSlotBytes = 256;

}  // namespace

CtChannel::CtChannel(MnlSocket socket) : socket_(std::move(socket)), receive_area_(kSlots * kSlotBytes) {}

Result<std::unique_ptr<CtChannel>> CtChannel::open(std::size_t max_messages) {
  MnlSocket socket{mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC)};
  if (!socket) {
    return netlinkError("cannot open a NETLINK_NETFILTER socket", errno);
  }
  if (mnl_socket_bind(socket.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return netlinkError("cannot bind the ctnetlink socket", errno);
  }
  const int fd = mnl_socket_get_fd(socket.get());
  const int on = 1;
  // Without it an error answer carries a copy of the whole request.
  (void)::setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, &on, sizeof on);
  // A datagram larger than the send buffer fails with EMSGSIZE; every answer of a batch is queued
  // before we read (about 1 KiB of buffer accounting each).
  sizeSocketBuffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, std::max<std::size_t>(max_messages * MessageBatch::kMaxMessageBytes * 2, 1U << 20U));
  sizeSocketBuffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, std::max<std::size_t>(max_messages * 2048, 4U << 20U));
  return std::unique_ptr<CtChannel>(new CtChannel(std::move(socket)));
}

Result<void> CtChannel::exchange(std::span<const std::byte> batch, std::uint32_t first_seq, bool expect_acks,
                                 std::span<int> results) {
  std::fill(results.begin(), results.end(), expect_acks ? kAckMissing : kAckOk);
  for (;;) {
    if (mnl_socket_sendto(socket_.get(), batch.data(), batch.size()) >= 0) {
      break;
    }
    if (errno != EINTR) {
      return netlinkError("sending " + std::to_string(results.size()) + " ctnetlink request(s) failed", errno);
    }
  }
  readAnswers(first_seq, results);
  return {};
}

void CtChannel::readAnswers(std::uint32_t first_seq, std::span<int> results) {
  ReceiveSlots<kSlots> slots(receive_area_, kSlotBytes);
  auto& headers = slots.headers;
  const int fd = mnl_socket_get_fd(socket_.get());
  for (;;) {
    const int count = ::recvmmsg(fd, headers.data(), kSlots, MSG_DONTWAIT, nullptr);
    if (count < 0) {
      if (errno == EINTR) {
        continue;
      }
      if (errno == ENOBUFS) {
        ++overruns_;
        continue;
      }
      return;  // EAGAIN: everything the kernel queued for this batch has been read
    }
    for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
      const std::byte* data = receive_area_.data() + i * kSlotBytes;
      if (headers[i].msg_len < NLMSG_HDRLEN + sizeof(nlmsgerr)) {
        continue;
      }
      nlmsghdr header{};
      std::memcpy(&header, data, sizeof header);
      if (header.nlmsg_type != NLMSG_ERROR) {
        continue;
      }
      nlmsgerr answer{};
      std::memcpy(&answer, data + NLMSG_HDRLEN, sizeof answer);
      const std::uint32_t index = answer.msg.nlmsg_seq - first_seq;
      if (index < results.size()) {
        results[index] = -answer.error;
      }
    }
    if (static_cast<std::size_t>(count) < kSlots) {
      // Fewer than asked for: the queue is empty (one more call would say EAGAIN).
      return;
    }
  }
}

}  // namespace ctaudit::bench
