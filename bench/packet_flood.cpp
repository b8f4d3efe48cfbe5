// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/packet_flood.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "bench/token_bucket.hpp"

namespace ctaudit::bench {
namespace {

constexpr std::size_t kIpHeaderBytes = 20;
constexpr std::size_t kUdpHeaderBytes = 8;
constexpr auto kStopCheckInterval = std::chrono::milliseconds{10};

void putU16(std::byte* at, std::uint16_t value) {
  at[0] = static_cast<std::byte>(value >> 8U);
  at[1] = static_cast<std::byte>(value & 0xffU);
}

}  // namespace

std::uint64_t FloodPlan::tupleSpace() const noexcept {
  const std::uint64_t dports = std::uint64_t{dport_max} - dport_min + 1;
  const std::uint64_t sports = std::uint64_t{sport_max} - sport_min + 1;
  return dports * sports * hosts;
}

PacketFlood::PacketFlood(const FloodOptions& options, UniqueFd socket)
    : options_(options),
      socket_(std::move(socket)),
      packet_bytes_(floodPacketBytes(options.plan)),
      packets_(options.batch * packet_bytes_) {}

Result<std::unique_ptr<PacketFlood>> PacketFlood::open(const FloodOptions& options) {
  // IPPROTO_RAW implies IP_HDRINCL (raw(7)).
  UniqueFd socket{::socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW)};
  if (!socket.valid()) {
    const int err = errno;
    return fail(Errc::Io, std::string("cannot open a raw IPv4 socket: ") + std::strerror(err) +
                              (err == EPERM ? " (needs CAP_NET_RAW: run as root in the client namespace)" : ""),
                err);
  }
  // Room for a few batches in flight; the veth hands packets on synchronously anyway.
  const int send_buffer = 4 << 20;
  (void)::setsockopt(socket.get(), SOL_SOCKET, SO_SNDBUFFORCE, &send_buffer, sizeof send_buffer);
  return std::unique_ptr<PacketFlood>(new PacketFlood(options, std::move(socket)));
}

std::size_t floodPacketBytes(const FloodPlan& plan) noexcept {
  return kIpHeaderBytes + kUdpHeaderBytes + plan.payload_bytes;
}

void buildFloodPacket(const FloodPlan& plan, std::uint64_t flow, std::span<std::byte> out) noexcept {
  const std::size_t packet_bytes = floodPacketBytes(plan);
  if (out.size() < packet_bytes) {
    return;  // precondition broken; send nothing meaningful rather than write past the end
  }
  const std::uint64_t dports = std::uint64_t{plan.dport_max} - plan.dport_min + 1;
  const std::uint64_t sports = std::uint64_t{plan.sport_max} - plan.sport_min + 1;
  const auto dport = static_cast<std::uint16_t>(plan.dport_min + flow % dports);
  const auto sport = static_cast<std::uint16_t>(plan.sport_min + (flow / dports) % sports);
  const auto host = static_cast<std::uint32_t>((flow / (dports * sports)) % plan.hosts);
  const std::uint32_t base = (std::uint32_t{plan.src_base[0]} << 24U) | (std::uint32_t{plan.src_base[1]} << 16U) |
                             (std::uint32_t{plan.src_base[2]} << 8U) | plan.src_base[3];
  const std::uint32_t source = base + host;

  std::byte* packet = out.data();
  std::memset(packet, 0, packet_bytes);
  packet[0] = std::byte{0x45};  // IPv4, 5-word header
  putU16(packet + 2, static_cast<std::uint16_t>(packet_bytes));  // the kernel rewrites it anyway
  packet[8] = std::byte{64};                                        // TTL
  packet[9] = static_cast<std::byte>(IPPROTO_UDP);
  for (unsigned i = 0; i < 4; ++i) {
    packet[12 + i] = static_cast<std::byte>((source >> (24U - 8U * i)) & 0xffU);
    packet[16 + i] = static_cast<std::byte>(plan.dst[i]);
  }
  std::byte* udp = packet + kIpHeaderBytes;
  putU16(udp, sport);
  putU16(udp + 2, dport);
  putU16(udp + 4, static_cast<std::uint16_t>(kUdpHeaderBytes + plan.payload_bytes));
  // Checksum 0: none, allowed for UDP over IPv4 (RFC 768).
}

Result<FloodTotals> PacketFlood::run(StopSignal& stop) {
  using Clock = TokenBucket::Clock;
  FloodTotals totals;
  const std::size_t batch = options_.batch;
  std::vector<mmsghdr> headers(batch);
  std::vector<iovec> vectors(batch);
  sockaddr_in destination{};
  destination.sin_family = AF_INET;
  std::memcpy(&destination.sin_addr, options_.plan.dst.data(), 4);
  for (std::size_t i = 0; i < batch; ++i) {
    vectors[i] = iovec{packets_.data() + i * packet_bytes_, packet_bytes_};
    headers[i].msg_hdr.msg_name = &destination;
    headers[i].msg_hdr.msg_namelen = sizeof destination;
    headers[i].msg_hdr.msg_iov = &vectors[i];
    headers[i].msg_hdr.msg_iovlen = 1;
  }
  const auto start = Clock::now();
  // Two batches or 50 ms of tokens, as ct_loadgen: a stall is not made up with one long burst.
  const auto capacity = std::max<std::size_t>(2 * batch, static_cast<std::size_t>(options_.rate / 20.0));
  TokenBucket bucket(options_.rate, capacity, start);
  auto next_stop_check = start;
  std::uint64_t next_flow = 0;
  const std::uint64_t space = options_.plan.tupleSpace();
  for (;;) {
    auto now = Clock::now();
    if (now >= next_stop_check) {
      if (stop.received() > 0) {
        totals.interrupted = true;
        break;
      }
      next_stop_check = now + kStopCheckInterval;
    }
    if (options_.duration && now - start >= *options_.duration) {
      break;
    }
    std::size_t budget = batch;
    if (options_.count) {
      budget = static_cast<std::size_t>(std::min<std::uint64_t>(budget, *options_.count - next_flow));
      if (budget == 0) {
        break;
      }
    }
    std::size_t granted = bucket.available(now);
    if (granted == 0) {
      std::this_thread::sleep_until(std::min(bucket.readyAt(std::min(budget, capacity), now), next_stop_check));
      continue;
    }
    budget = std::min(budget, granted);
    for (std::size_t i = 0; i < budget; ++i) {
      buildFloodPacket(options_.plan, next_flow + i, std::span<std::byte>(packets_.data() + i * packet_bytes_, packet_bytes_));
    }
    const int sent = ::sendmmsg(socket_.get(), headers.data(), static_cast<unsigned>(budget), 0);
    ++totals.send_calls;
    std::size_t done = sent > 0 ? static_cast<std::size_t>(sent) : 0;
    if (done < budget) {
      // sendmmsg stops at the first packet that fails; that packet is refused, the rest retried.
      const int err = sent < 0 ? errno : 0;
      if (err == EPERM || err == ENETUNREACH || err == EHOSTUNREACH || err == EINVAL) {
        return fail(Errc::Io, std::string("sending UDP packets failed: ") + std::strerror(err) +
                                  " (is there a route to the destination through the gateway namespace?)",
                    err);
      }
      if (err != 0 && err != EINTR) {
        ++totals.errors_by_errno[err];
        ++done;  // that flow is skipped, not retried
      }
    }
    bucket.take(done);
    totals.packets += static_cast<std::uint64_t>(sent > 0 ? sent : 0);
    next_flow += done;
  }
  totals.elapsed = Clock::now() - start;
  totals.flows = std::min(totals.packets, space);
  return totals;
}

}  // namespace ctaudit::bench
