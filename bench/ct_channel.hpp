// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include <libmnl/libmnl.h>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::bench {

using MnlSocket = UniqueC<mnl_socket, mnl_socket_close>;

// What the kernel said about one request of a batch.
enum : int {
  kAckOk = 0,        // acknowledged without error (or, in errors-only mode, no error came back)
  kAckMissing = -1,  // an acknowledgement was asked for and none came (our socket overflowed)
};

// The generator's ctnetlink request socket, in the caller's network namespace. Sends a packed
// batch with one sendmsg and collects the answers. The kernel handles a request to a kernel
// netlink socket inside the sender's sendmsg call (netlink_unicast_kernel), so by the time
// send() returns every acknowledgement and error for the batch is already queued on this socket:
// they are read without blocking. Owns the socket and a receive area; one thread.
class CtChannel {
public:
  // Opens NETLINK_NETFILTER, sets NETLINK_CAP_ACK (answers carry only the request's header) and
  // sizes the send and receive buffers for `max_messages` per batch. Errors: Errc::Netlink.
  [[nodiscard]] static Result<std::unique_ptr<CtChannel>> open(std::size_t max_messages);

  CtChannel(const CtChannel&) = delete;
  CtChannel& operator=(const CtChannel&) = delete;
  CtChannel(CtChannel&&) = delete;
  CtChannel& operator=(CtChannel&&) = delete;
  ~CtChannel() = default;

  // Sends `batch` (`results.size()` requests with sequence numbers first_seq, first_seq+1, ...)
  // and stores each request's outcome in `results`: kAckOk, a positive errno (EEXIST, ENOENT, ...)
  // or kAckMissing. With `expect_acks` every request asked for an acknowledgement, and one that
  // did not come is kAckMissing; otherwise only errors come back and the rest are kAckOk.
  // Errors: the sendmsg itself failed (Errc::Netlink); `results` is then unspecified.
  [[nodiscard]] Result<void> exchange(std::span<const std::byte> batch, std::uint32_t first_seq, bool expect_acks,
                                      std::span<int> results);

  // ENOBUFS seen on this socket: answers the kernel could not queue for us.
  [[nodiscard]] std::uint64_t overruns() const noexcept { return overruns_; }

private:
  explicit CtChannel(MnlSocket socket);
  void readAnswers(std::uint32_t first_seq, std::span<int> results);

  MnlSocket socket_;
  std::vector<std::byte> receive_area_;
  std::uint64_t overruns_{0};
};

}  // namespace ctaudit::bench
