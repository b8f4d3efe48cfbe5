// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/flow_plan.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

namespace ctaudit::bench {
namespace {

using Address = std::array<std::uint8_t, 16>;

Address v4(std::uint32_t host_order) noexcept {
  Address address{};
  address[0] = static_cast<std::uint8_t>(host_order >> 24U);
  address[1] = static_cast<std::uint8_t>(host_order >> 16U);
  address[2] = static_cast<std::uint8_t>(host_order >> 8U);
  address[3] = static_cast<std::uint8_t>(host_order);
  return address;
}

// 2001:db8:<net>::<low 32 bits>
Address v6(std::uint16_t net, std::uint32_t low) noexcept {
  Address address{0x20, 0x01, 0x0d, 0xb8, static_cast<std::uint8_t>(net >> 8U), static_cast<std::uint8_t>(net)};
  address[12] = static_cast<std::uint8_t>(low >> 24U);
  address[13] = static_cast<std::uint8_t>(low >> 16U);
  address[14] = static_cast<std::uint8_t>(low >> 8U);
  address[15] = static_cast<std::uint8_t>(low);
  return address;
}

constexpr std::uint32_t kInsideV4 = 0x64400000U;  // 100.64.0.0
constexpr std::uint32_t kServerV4 = 0xC633640AU;  // 198.51.100.10
constexpr std::uint32_t kNatV4 = 0xCB007101U;     // 203.0.113.1

std::string text(std::uint8_t family, const Address& address) {
  std::array<char, INET6_ADDRSTRLEN> buffer{};
  ::inet_ntop(family, address.data(), buffer.data(), buffer.size());
  return family == AF_INET6 ? "[" + std::string(buffer.data()) + "]" : std::string(buffer.data());
}

}  // namespace

FlowSpec FlowPlan::at(std::uint64_t n) const noexcept {
  FlowSpec flow;
  const bool mixed_protocols = options_.protocols == ProtocolMix::Mixed;
  if (mixed_protocols) {
    flow.protocol = (n % 2 == 0) ? IPPROTO_TCP : IPPROTO_UDP;
  } else {
    flow.protocol = options_.protocols == ProtocolMix::Tcp ? IPPROTO_TCP : IPPROTO_UDP;
  }
  bool ipv6 = options_.families == FamilyMix::V6;
  if (options_.families == FamilyMix::Mixed) {
    ipv6 = ((mixed_protocols ? n / 2 : n) % 2) == 1;
  }
  const auto host = static_cast<std::uint32_t>(n % options_.hosts) + 1;
  flow.inside_port = static_cast<std::uint16_t>(kInsidePortBase + (n / options_.hosts) % kInsidePorts);
  flow.server_port = kServerPort;
  flow.translated_port = static_cast<std::uint16_t>(options_.nat_port_min + n % natPorts());
  if (ipv6) {
    flow.family = AF_INET6;
    flow.inside = v6(1, host);
    flow.server = v6(2, 0x10);
    flow.translated = v6(2, 0x1);
  } else {
    flow.family = AF_INET;
    flow.inside = v4(kInsideV4 + host);
    flow.server = v4(kServerV4);
    flow.translated = v4(kNatV4);
  }
  return flow;
}

std::string describe(const FlowSpec& flow) {
  return std::string(flow.protocol == IPPROTO_TCP ? "tcp " : "udp ") + text(flow.family, flow.inside) + ":" +
         std::to_string(flow.inside_port) + " -> " + text(flow.family, flow.server) + ":" +
         std::to_string(flow.server_port) + " as " + text(flow.family, flow.translated) + ":" +
         std::to_string(flow.translated_port);
}

}  // namespace ctaudit::bench
