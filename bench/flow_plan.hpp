// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace ctaudit::bench {

enum class ProtocolMix : std::uint8_t { Tcp, Udp, Mixed };
enum class FamilyMix : std::uint8_t { V4, V6, Mixed };

// One generated flow: the original tuple (inside host -> outside server) and the source address
// and port that the kernel is asked to translate it to. Addresses are in network byte order; an
// IPv4 address uses the first 4 bytes.
struct FlowSpec {
  std::uint8_t family{0};    // AF_INET or AF_INET6
  std::uint8_t protocol{0};  // IPPROTO_TCP or IPPROTO_UDP
  std::array<std::uint8_t, 16> inside{};
  std::array<std::uint8_t, 16> server{};
  std::array<std::uint8_t, 16> translated{};
  std::uint16_t inside_port{0};
  std::uint16_t server_port{0};
  std::uint16_t translated_port{0};
};

// Turns a flow number into a distinct NAT'd flow, documentation addresses only:
//
//   IPv4: 100.64.0.1 + (n mod hosts) : 10000 + (n / hosts) mod 50000  ->  198.51.100.10:443
//         translated to 203.0.113.1 : nat_port_min + n mod (nat ports in the range)
//   IPv6: 2001:db8:1::1 + (n mod hosts), same ports  ->  [2001:db8:2::10]:443,
//         translated to 2001:db8:2::1, same port rule
//
// With both protocols, even n are TCP and odd n UDP; with both families, IPv6 takes every other
// pair. Original tuples repeat only after hosts * 50000 flows; translated ports after the size of
// the NAT port range, so at most that many entries may be alive at once (`LoadgenOptions` checks
// it). Pure and cheap; a value type.
class FlowPlan {
public:
  struct Options {
    ProtocolMix protocols{ProtocolMix::Mixed};
    FamilyMix families{FamilyMix::V4};
    std::uint32_t hosts{1000};
    std::uint16_t nat_port_min{1024};
    std::uint16_t nat_port_max{65535};
  };

  static constexpr std::uint16_t kInsidePortBase = 10000;
  static constexpr std::uint32_t kInsidePorts = 50000;
  static constexpr std::uint16_t kServerPort = 443;
  // 100.64.0.0/10 holds 2^22 addresses; the first and the last are left out.
  static constexpr std::uint32_t kMaxHosts = (1U << 22U) - 2;

  explicit FlowPlan(Options options) noexcept : options_(options) {}

  [[nodiscard]] FlowSpec at(std::uint64_t n) const noexcept;
  [[nodiscard]] std::uint32_t natPorts() const noexcept {
    return std::uint32_t{options_.nat_port_max} - options_.nat_port_min + 1;
  }
  [[nodiscard]] const Options& options() const noexcept { return options_; }

private:
  Options options_;
};

// "tcp 100.64.0.1:10000 -> 198.51.100.10:443 as 203.0.113.1:1024", for messages and tests.
[[nodiscard]] std::string describe(const FlowSpec& flow);

}  // namespace ctaudit::bench
