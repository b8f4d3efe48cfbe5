// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "bench/stop_signal.hpp"
#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::bench {

// What udp_flood sends: one UDP packet per new flow, IPv4 only. Flow n goes from
// src_base + (n / (dports * sports) mod hosts) : sport_min + (n / dports mod sports)
// to dst : dport_min + (n mod dports). The destination port varies fastest so that a
// masquerading gateway, which has one public address, spreads the flows over many
// (destination, port) pairs, each with its own 64k translated ports.
struct FloodPlan {
  std::array<std::uint8_t, 4> src_base{100, 64, 1, 1};
  std::uint32_t hosts{100};
  std::uint16_t sport_min{1024};
  std::uint16_t sport_max{65535};
  std::array<std::uint8_t, 4> dst{198, 51, 100, 10};
  std::uint16_t dport_min{10000};
  std::uint16_t dport_max{10999};
  std::size_t payload_bytes{16};

  // Distinct flows before the plan repeats a tuple.
  [[nodiscard]] std::uint64_t tupleSpace() const noexcept;
};

// Writes flow `flow`'s packet into `packet` (exactly floodPacketBytes(plan) bytes): an IPv4
// header (length, id and checksum left for the kernel to fill in) and a UDP header with no
// checksum, then zeros. Pure.
[[nodiscard]] std::size_t floodPacketBytes(const FloodPlan& plan) noexcept;
void buildFloodPacket(const FloodPlan& plan, std::uint64_t flow, std::span<std::byte> packet) noexcept;

struct FloodOptions {
  FloodPlan plan{};
  std::optional<std::uint64_t> count;                // packets (= flows) to send
  std::optional<std::chrono::nanoseconds> duration;  // or: send for this long
  double rate{0.0};                                  // packets per second; 0: as fast as possible
  std::size_t batch{64};                             // packets per sendmmsg
};

struct FloodTotals {
  std::uint64_t packets{0};        // accepted by the kernel
  std::uint64_t flows{0};          // distinct tuples among them
  std::uint64_t send_calls{0};
  std::map<int, std::uint64_t> errors_by_errno;  // packets the kernel refused (ENOBUFS, ...)
  std::chrono::nanoseconds elapsed{0};
  bool interrupted{false};
};

// Sends the plan's packets through a raw IPv4 socket (IPPROTO_RAW, so the header, including the
// spoofed inside source address, is ours; the kernel fills in the length, id and checksum), many
// per sendmmsg, paced by a TokenBucket. Run it in a client namespace whose default route leads
// through the gateway under test. Owns the socket and the packet buffers; one thread.
class PacketFlood {
public:
  // Opens the raw socket (needs CAP_NET_RAW). Errors: Errc::Io.
  [[nodiscard]] static Result<std::unique_ptr<PacketFlood>> open(const FloodOptions& options);

  PacketFlood(const PacketFlood&) = delete;
  PacketFlood& operator=(const PacketFlood&) = delete;
  PacketFlood(PacketFlood&&) = delete;
  PacketFlood& operator=(PacketFlood&&) = delete;
  ~PacketFlood() = default;

  // Sends until the count or duration is reached or a stop signal arrives. Errors: a send
  // failed with an errno that will not go away (EPERM, ENETUNREACH, ...): Errc::Io.
  [[nodiscard]] Result<FloodTotals> run(StopSignal& stop);

private:
  PacketFlood(const FloodOptions& options, UniqueFd socket);

  FloodOptions options_;
  UniqueFd socket_;
  std::size_t packet_bytes_;
  std::vector<std::byte> packets_;
};

}  // namespace ctaudit::bench
