// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::bench {

// What an EventCounter saw.
struct EventCounts {
  std::uint64_t new_events{0};      // IPCTNL_MSG_CT_NEW
  std::uint64_t destroy_events{0};  // IPCTNL_MSG_CT_DELETE
  std::uint64_t other_messages{0};  // anything else (none are expected on these groups)
  std::uint64_t truncated{0};       // datagrams larger than a receive slot (MSG_TRUNC)
  std::uint64_t overruns{0};        // ENOBUFS: the kernel dropped events for this socket
  std::uint64_t kernel_drops{0};    // SO_MEMINFO SK_MEMINFO_DROPS: how many it dropped
  std::uint64_t datagrams{0};
  std::uint64_t receive_calls{0};   // recvmmsg calls that returned data
  std::size_t buffer_bytes{0};      // the receive buffer the kernel granted (getsockopt)
};

// Counts the netlink messages of one received datagram into `counts` by their nlmsghdr type
// (ctnetlink NEW, DELETE or other); a header whose length does not fit ends the datagram and
// counts as other. Pure: no I/O.
void countMessages(std::span<const std::byte> datagram, EventCounts& counts) noexcept;

// The benchmark floor: a ctnetlink listener that does nothing but count. It joins the conntrack
// NEW and DESTROY event groups of the caller's network namespace with a large receive buffer
// (SO_RCVBUFFORCE, needs CAP_NET_ADMIN) and reads with recvmmsg, many datagrams per system
// call; it parses only each message's nlmsghdr type. Whatever a real logger spends beyond this
// is its own cost. Owns the socket and the receive area; one thread.
class EventCounter {
public:
  // Opens and binds the socket. `buffer_bytes` is the size wanted as the kernel reports it
  // (it doubles what it is given, socket(7)); SO_RCVBUFFORCE is tried first, then SO_RCVBUF.
  // Errors: Errc::Netlink (with a hint for EPERM and a missing nf_conntrack_netlink).
  [[nodiscard]] static Result<std::unique_ptr<EventCounter>> open(std::size_t buffer_bytes);

  EventCounter(const EventCounter&) = delete;
  EventCounter& operator=(const EventCounter&) = delete;
  EventCounter(EventCounter&&) = delete;
  EventCounter& operator=(EventCounter&&) = delete;
  ~EventCounter() = default;

  // Reads and counts what is queued, waiting at most about `wait_ms` for the first datagram
  // (0: do not wait). Returns false when nothing came. Errors: a receive error other than
  // EAGAIN/EINTR/ENOBUFS (Errc::Netlink).
  [[nodiscard]] Result<bool> poll(int wait_ms);

  // The counts so far, with the kernel's drop count read now.
  [[nodiscard]] EventCounts counts() const noexcept;

private:
  explicit EventCounter(UniqueFd socket);

  UniqueFd socket_;
  std::vector<std::byte> receive_area_;
  EventCounts counts_{};
};

}  // namespace ctaudit::bench
