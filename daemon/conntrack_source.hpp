// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include <libmnl/libmnl.h>
#include <spdlog/logger.h>

#include "daemon/event_mask.hpp"
#include "daemon/conntrack_decoder.hpp"
#include "daemon/event_source.hpp"
#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

using MnlSocket = UniqueC<mnl_socket, mnl_socket_close>;

// What one queued event costs the event socket's receive buffer: its skb's truesize, measured on
// 6.18 for payloads of 196-300 bytes (IPv4 and IPv6, NEW and DESTROY; docs/operations.md).
inline constexpr std::size_t kEventTruesizeBytes = 1280;

// The kernel end of the pipeline: one netlink socket subscribed to the ctnetlink event groups of
// the caller's network namespace, and a second, short-lived one for table dumps. Owns both
// sockets and a fixed receive area allocated once. Hands every decoded record to a callback; it
// keeps no flow state. Opened by the Daemon, which dumps the table with it once at start; from
// then on used by the EventReader's thread only.
class ConntrackSource final : public EventSource {
public:
  struct Options {
    EventMask events;
    std::size_t receive_buffer_bytes{std::size_t{256} << 20U};
    // NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS (docs/operations.md, "Reliable mode").
    bool reliable{false};
  };

  // Opens a non-blocking NETLINK_NETFILTER socket, joins the groups in `options.events` and sizes
  // its receive buffer (SO_RCVBUFFORCE, falling back to SO_RCVBUF within rmem_max without
  // CAP_NET_ADMIN, with a warning). With `options.reliable` it asks for reliable delivery: the
  // kernel learns that a DESTROY event could not be queued (NETLINK_BROADCAST_ERROR), keeps the
  // entry and sends it again later, and the socket reports no ENOBUFS (NETLINK_NO_ENOBUFS).
  // Errors: Errc::Netlink naming the failed step and, for EPERM, the missing capability.
  [[nodiscard]] static Result<std::unique_ptr<ConntrackSource>> open(const Options& options,
                                                                      std::shared_ptr<spdlog::logger> log);

  ConntrackSource(const ConntrackSource&) = delete;
  ConntrackSource& operator=(const ConntrackSource&) = delete;
  ConntrackSource(ConntrackSource&&) = delete;
  ConntrackSource& operator=(ConntrackSource&&) = delete;
  ~ConntrackSource() override = default;

  [[nodiscard]] int fd() const noexcept override;

  // One recvmmsg(2) of up to 64 datagrams without blocking; decodes each message and passes the
  // records to `deliver`. Malformed messages are counted and skipped (the reader records each as a
  // lost event); a datagram from user space, not the kernel, is skipped. ENOBUFS is counted, logged
  // at a limited rate and answered with ReadStatus::Overrun. Errors: any socket error but EAGAIN,
  // EINTR and ENOBUFS (Errc::Netlink).
  [[nodiscard]] Result<ReadStatus> readBatch(const Clock& clock, std::optional<Timestamp> woke,
                                             const Deliver& deliver) override;

  // Dumps the whole conntrack table of this namespace (both families) over a separate socket and
  // passes every entry as an EventType::Dump record. Returns how many entries were delivered.
  [[nodiscard]] Result<DumpCount> dumpTable(const Clock& clock, const Deliver& deliver) override;

  // The event socket's drop counter (SO_MEMINFO, SK_MEMINFO_DROPS): every event the kernel could
  // not queue because the receive buffer was full. The kernel keeps 32 bits; this follows the
  // wrap-around. In reliable mode a DESTROY that is queued on a later try was counted too.
  [[nodiscard]] std::uint64_t kernelDrops() noexcept override;

  [[nodiscard]] const SourceStats& stats() const noexcept override { return stats_; }

private:
  ConntrackSource(MnlSocket socket, std::shared_ptr<spdlog::logger> log);
  // Decodes every netlink message in one datagram; false when the dump is finished (NLMSG_DONE).
  bool handleDatagram(std::span<const std::byte> datagram, const DecodeContext& context, const Deliver& deliver);
  void noteOverrun(const Clock& clock);
  // Counts one message (event or dump entry) that could not be decoded; the first is a warning,
  // with why.
  void noteMalformed(MessageOrigin origin, std::string_view why);

  MnlSocket events_;
  std::shared_ptr<spdlog::logger> log_;
  std::vector<std::byte> receive_area_;
  SourceStats stats_{};
  std::uint64_t overruns_reported_{0};
  Timestamp last_overrun_report_{};
  std::uint64_t kernel_drops_{0};
  std::uint32_t last_meminfo_drops_{0};
};

}  // namespace ctaudit::daemon
