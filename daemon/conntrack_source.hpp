// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include <libmnl/libmnl.h>
#include <spdlog/logger.h>

#include "daemon/event_mask.hpp"
#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "flow/unique_c.hpp"


namespace ctaudit::daemon {

using MnlSocket = UniqueC<mnl_socket, mnl_socket_close>;

// What the source has seen since it was opened.
struct SourceStats {
  std::uint64_t datagrams{0};     // recv'd from the event socket
  std::uint64_t messages{0};      // ctnetlink messages in them (events and dump rows)
  std::uint64_t decoded{0};       // turned into records
  std::uint64_t malformed{0};     // refused by the decoder, or truncated datagrams
  std::uint64_t overruns{0};      // ENOBUFS: the kernel dropped events for this socket
  std::uint64_t dump_entries{0};  // records that came from table dumps
};

// The kernel end of the pipeline: one netlink socket subscribed to the ctnetlink event groups of
// the caller's network namespace, and a second, short-lived one for table dumps. Owns both
// sockets and a fixed receive area allocated once. Hands every decoded record to a callback; it
// keeps no flow state. Used from one thread.
class ConntrackSource {
public:
  struct Options {
    EventMask events;
    std::size_t receive_buffer_bytes{std::size_t{64} << 20U};
  };
  using Deliver = std::function<void(FlowRecord&&)>;

  // Opens a non-blocking NETLINK_NETFILTER socket, joins the groups in `options.events` and sizes
  // its receive buffer (SO_RCVBUFFORCE, falling back to SO_RCVBUF within rmem_max without
  // CAP_NET_ADMIN, with a warning). Errors: Errc::Netlink naming the failed step and, for EPERM,
  // the missing capability.
  [[nodiscard]] static Result<std::unique_ptr<ConntrackSource>> open(const Options& options,
                                                                      std::shared_ptr<spdlog::logger> log);

  ConntrackSource(const ConntrackSource&) = delete;
  ConntrackSource& operator=(const ConntrackSource&) = delete;
  ConntrackSource(ConntrackSource&&) = delete;
  ConntrackSource& operator=(ConntrackSource&&) = delete;
  ~ConntrackSource() = default;

  // The event socket, for poll(2).
  [[nodiscard]] int fd() const noexcept;

  // Reads every datagram queued on the event socket without blocking (recvmmsg, many per call),
  // decodes each message and passes the records to `deliver`. Malformed messages are counted and
  // skipped. ENOBUFS is counted, logged at a limited rate, and reading goes on. Errors: any other
  // socket error (Errc::Netlink).
  [[nodiscard]] Result<void> drain(const Clock& clock, const Deliver& deliver);

  // Dumps the whole conntrack table of this namespace (both families) over a separate socket and
  // passes every entry as an EventType::Dump record. Returns how many entries were delivered.
  [[nodiscard]] Result<std::size_t> dumpTable(const Clock& clock, const Deliver& deliver);

  [[nodiscard]] const SourceStats& stats() const noexcept { return stats_; }

private:
  ConntrackSource(MnlSocket socket, std::shared_ptr<spdlog::logger> log);
  // Decodes every netlink message in one datagram; false when the dump is finished (NLMSG_DONE).
  bool handleDatagram(std::span<const std::byte> datagram, Timestamp received, bool from_dump,
                      const Deliver& deliver);
  void noteOverrun(const Clock& clock);

  MnlSocket events_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<std::byte> receive_area_;
  SourceStats stats_{};
  std::uint64_t overruns_reported_{0};
  Timestamp last_overrun_report_{};
};

}  // namespace ctaudit::daemon
