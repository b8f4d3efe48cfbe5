// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/conntrack_source.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "daemon/conntrack_decoder.hpp"

namespace ctaudit::daemon {
namespace {

// recvmmsg batch: a ctnetlink event is one message per datagram of well under 1 KiB, but dump
// replies pack many messages into datagrams of up to a page or more, so each slot is 16 KiB.
constexpr std::size_t kSlots = 64;
constexpr std::size_t kSlotBytes = 16 * 1024;
// A report of lost events at most this often; the counter keeps the exact number.
constexpr auto kOverrunReportInterval = std::chrono::seconds{10};

Unexpected netlinkError(const std::string& step, int err) {
  std::string hint;
  if (err == EPERM || err == EACCES) {
    hint = " (needs CAP_NET_ADMIN: run as root or grant the capability)";
  } else if (err == EPROTONOSUPPORT || err == ENOENT) {
    hint = " (is the nf_conntrack_netlink module loaded? `modprobe nf_conntrack_netlink`)";
  }
  return fail(Errc::Netlink, step + ": " + std::strerror(err) + hint, err);
}

std::uint16_t messageType(std::span<const std::byte> message) {
  nlmsghdr header{};
  std::memcpy(&header, message.data(), sizeof header);
  return header.nlmsg_type;
}

}  // namespace

ConntrackSource::ConntrackSource(MnlSocket socket, std::shared_ptr<spdlog::logger> log)
    : events_(std::move(socket)), log_(std::move(log)), receive_area_(kSlots * kSlotBytes) {}

Result<std::unique_ptr<ConntrackSource>> ConntrackSource::open(const Options& options,
                                                               std::shared_ptr<spdlog::logger> log) {
  MnlSocket socket{mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC)};
  if (!socket) {
    return netlinkError("cannot open a NETLINK_NETFILTER socket", errno);
  }
  if (mnl_socket_bind(socket.get(), options.events.groups(), MNL_SOCKET_AUTOPID) < 0) {
    return netlinkError("cannot join the conntrack event groups (" + options.events.toString() + ")", errno);
  }
  const int fd = mnl_socket_get_fd(socket.get());
  // The kernel doubles the value it is given (socket(7)) and keeps an int: ask for half, 2G at most.
  constexpr std::size_t kMostBytes = std::size_t{2} << 30U;
  if (options.receive_buffer_bytes > kMostBytes) {
    log->warn("a {} byte receive buffer was asked for; the kernel gives a socket at most {}, which is used",
              options.receive_buffer_bytes, kMostBytes);
  }
  const int wanted = static_cast<int>(std::min(options.receive_buffer_bytes, kMostBytes) / 2);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &wanted, sizeof wanted) != 0) {
    const int err = errno;
    // Without CAP_NET_ADMIN only SO_RCVBUF works, capped at net.core.rmem_max.
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &wanted, sizeof wanted);
    log->warn("cannot force a {} byte receive buffer ({}); events may be lost in bursts: "
              "grant CAP_NET_ADMIN or raise net.core.rmem_max",
              options.receive_buffer_bytes, std::strerror(err));
  }
  int actual = 0;
  socklen_t len = sizeof actual;
  if (::getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &actual, &len) == 0) {
    log->info("event socket receive buffer: {} bytes, room for about {} events", actual,
              static_cast<std::size_t>(actual) / kEventTruesizeBytes);
  }
  if (options.reliable) {
    // Both options are socket-level netlink flags (af_netlink.c netlink_setsockopt); with
    // BROADCAST_ERROR the kernel sees a failed delivery and keeps DESTROY events for a retry.
    const int on = 1;
    if (::setsockopt(fd, SOL_NETLINK, NETLINK_BROADCAST_ERROR, &on, sizeof on) != 0) {
      return netlinkError("cannot set NETLINK_BROADCAST_ERROR for --reliable", errno);
    }
    if (::setsockopt(fd, SOL_NETLINK, NETLINK_NO_ENOBUFS, &on, sizeof on) != 0) {
      return netlinkError("cannot set NETLINK_NO_ENOBUFS for --reliable", errno);
    }
  }
  log->info("subscribed to conntrack events: {}{}", options.events.toString(),
            options.reliable ? " (reliable delivery)" : "");
  return std::unique_ptr<ConntrackSource>(new ConntrackSource(std::move(socket), std::move(log)));
}

int ConntrackSource::fd() const noexcept { return mnl_socket_get_fd(events_.get()); }

bool ConntrackSource::handleDatagram(std::span<const std::byte> datagram, const DecodeContext& context,
                                     const Deliver& deliver) {
  const bool from_dump = context.origin == MessageOrigin::Dump;
  std::size_t offset = 0;
  while (datagram.size() - offset >= sizeof(nlmsghdr)) {
    nlmsghdr header{};
    std::memcpy(&header, datagram.data() + offset, sizeof header);
    if (header.nlmsg_len < sizeof(nlmsghdr) || header.nlmsg_len > datagram.size() - offset) {
      noteMalformed(context.origin, "a netlink message's length runs past its datagram");
      return true;
    }
    const auto message = datagram.subspan(offset, header.nlmsg_len);
    offset += NLMSG_ALIGN(header.nlmsg_len);
    if (header.nlmsg_type == NLMSG_DONE) {
      return false;
    }
    if (header.nlmsg_type == NLMSG_ERROR || header.nlmsg_type == NLMSG_NOOP ||
        NFNL_SUBSYS_ID(messageType(message)) != NFNL_SUBSYS_CTNETLINK) {
      continue;
    }
    ++stats_.messages;
    auto record = decodeConntrack(message, context);
    if (!record) {
      noteMalformed(context.origin, record.error().detail);
      continue;
    }
    ++stats_.decoded;
    if (from_dump) {
      ++stats_.dump_entries;
    }
    deliver(std::move(*record));
  }
  return true;
}

void ConntrackSource::noteMalformed(MessageOrigin origin, std::string_view why) {
  ++(origin == MessageOrigin::Dump ? stats_.dump_refused : stats_.malformed);
  log_->log(stats_.malformed + stats_.dump_refused == 1 ? spdlog::level::warn : spdlog::level::debug,
            "a conntrack message could not be decoded, and what it said is lost (recorded as a malformed_event "
            "gap): {}",
            why);
}

void ConntrackSource::noteOverrun(const Clock& clock) {
  ++stats_.overruns;
  const Timestamp now = clock.now();
  if (now - last_overrun_report_ >= kOverrunReportInterval) {
    log_->warn("the kernel dropped conntrack events (ENOBUFS) {} time(s) since the last report, {} in all; "
               "raise --receive-buffer or reduce the event load",
               stats_.overruns - overruns_reported_, stats_.overruns);
    overruns_reported_ = stats_.overruns;
    last_overrun_report_ = now;
  }
}

Result<EventSource::ReadStatus> ConntrackSource::readBatch(const Clock& clock, std::optional<Timestamp> woke,
                                                           const Deliver& deliver) {
  std::array<mmsghdr, kSlots> headers{};
  std::array<iovec, kSlots> vectors{};
  std::array<sockaddr_nl, kSlots> senders{};
  for (std::size_t i = 0; i < kSlots; ++i) {
    vectors[i] = iovec{receive_area_.data() + i * kSlotBytes, kSlotBytes};
    headers[i].msg_hdr.msg_iov = &vectors[i];
    headers[i].msg_hdr.msg_iovlen = 1;
    headers[i].msg_hdr.msg_name = &senders[i];
    headers[i].msg_hdr.msg_namelen = sizeof(sockaddr_nl);
  }
  int count = -1;
  do {
    count = ::recvmmsg(fd(), headers.data(), kSlots, MSG_DONTWAIT, nullptr);
  } while (count < 0 && errno == EINTR);
  if (count < 0) {
    const int err = errno;
    if (err == EAGAIN || err == EWOULDBLOCK) {
      return ReadStatus::Empty;
    }
    if (err == ENOBUFS) {
      noteOverrun(clock);
      return ReadStatus::Overrun;
    }
    return netlinkError("reading conntrack events failed", err);
  }
  const Timestamp received = clock.now();
  for (std::size_t i = 0; i < static_cast<std::size_t>(count); ++i) {
    ++stats_.datagrams;
    // Only the kernel's events count: a process with CAP_NET_ADMIN in this namespace can send to
    // the conntrack groups too, and what it sends is not what the kernel did.
    if (senders[i].nl_pid != 0) {
      log_->log(++stats_.from_user_space == 1 ? spdlog::level::warn : spdlog::level::debug,
                "ignored a message to the conntrack event groups from user space (netlink port id {}), not "
                "the kernel: a process in this network namespace with CAP_NET_ADMIN sent it",
                senders[i].nl_pid);
      continue;
    }
    if ((headers[i].msg_hdr.msg_flags & MSG_TRUNC) != 0) {
      noteMalformed(MessageOrigin::Event, "a datagram larger than the receive slot was cut short");
      continue;
    }
    const std::span<const std::byte> datagram(receive_area_.data() + i * kSlotBytes, headers[i].msg_len);
    (void)handleDatagram(datagram, DecodeContext{received, MessageOrigin::Event, woke}, deliver);
  }
  return ReadStatus::Data;
}

std::uint64_t ConntrackSource::kernelDrops() noexcept {
  std::array<std::uint32_t, SK_MEMINFO_VARS> meminfo{};
  socklen_t len = sizeof meminfo;
  if (::getsockopt(fd(), SOL_SOCKET, SO_MEMINFO, meminfo.data(), &len) != 0 ||
      len < (SK_MEMINFO_DROPS + 1) * sizeof(std::uint32_t)) {
    return kernel_drops_;
  }
  const std::uint32_t now = meminfo[SK_MEMINFO_DROPS];
  kernel_drops_ += static_cast<std::uint32_t>(now - last_meminfo_drops_);  // modulo 2^32
  last_meminfo_drops_ = now;
  return kernel_drops_;
}

Result<EventSource::DumpCount> ConntrackSource::dumpTable(const Clock& clock, const Deliver& deliver) {
  MnlSocket dump{mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC)};
  if (!dump || mnl_socket_bind(dump.get(), 0, MNL_SOCKET_AUTOPID) < 0) {
    return netlinkError("cannot open a socket for the conntrack table dump", errno);
  }
  // A dump request is a header and an nfgenmsg: far below any page.
  std::array<std::byte, 256> request{};
  nlmsghdr* header = mnl_nlmsg_put_header(request.data());
  header->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_GET;
  header->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  const auto seq = static_cast<std::uint32_t>(::time(nullptr));
  header->nlmsg_seq = seq;
  auto* nfg = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(header, sizeof(nfgenmsg)));
  nfg->nfgen_family = AF_UNSPEC;  // both IPv4 and IPv6
  nfg->version = NFNETLINK_V0;
  nfg->res_id = 0;
  if (mnl_socket_sendto(dump.get(), header, header->nlmsg_len) < 0) {
    return netlinkError("cannot request the conntrack table dump", errno);
  }
  const SourceStats before = stats_;
  for (;;) {
    const ssize_t received = mnl_socket_recvfrom(dump.get(), receive_area_.data(), kSlotBytes);
    if (received < 0) {
      if (errno == EINTR) {
        continue;
      }
      return netlinkError("reading the conntrack table dump failed", errno);
    }
    const std::span<const std::byte> datagram(receive_area_.data(), static_cast<std::size_t>(received));
    // An error answer (e.g. EPERM) comes as NLMSG_ERROR with a negative errno.
    if (datagram.size() >= NLMSG_HDRLEN + sizeof(nlmsgerr) && messageType(datagram) == NLMSG_ERROR) {
      nlmsgerr error{};
      std::memcpy(&error, datagram.data() + NLMSG_HDRLEN, sizeof error);
      if (error.error != 0) {
        return netlinkError("the kernel refused the conntrack table dump", -error.error);
      }
    }
    if (!handleDatagram(datagram, DecodeContext{clock.now(), MessageOrigin::Dump}, deliver)) {
      break;
    }
  }
  return DumpCount{static_cast<std::size_t>(stats_.dump_entries - before.dump_entries),
                   stats_.dump_refused - before.dump_refused};
}

}  // namespace ctaudit::daemon
