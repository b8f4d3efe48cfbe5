// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "flow/result.hpp"

namespace ctaudit {

enum class Family : std::uint8_t { Ipv4 = 4, Ipv6 = 6 };

// An IPv4 or IPv6 address. The bytes are in network order, as on the wire and in ctnetlink
// attributes; an IPv4 address uses the first 4 bytes and leaves the rest zero, so that equality
// and ordering are plain byte comparisons. A value type, cheap to copy.
class IpAddress {
public:
  IpAddress() = default;

  [[nodiscard]] static IpAddress v4(std::span<const std::uint8_t, 4> bytes) noexcept;
  [[nodiscard]] static IpAddress v6(std::span<const std::uint8_t, 16> bytes) noexcept;
  // IPv4 from a host-order integer, e.g. v4(0xC0000201) is 192.0.2.1. For tests and literals.
  [[nodiscard]] static IpAddress v4(std::uint32_t host_order) noexcept;
  // Accepts dotted-quad IPv4 or any RFC 4291 IPv6 text form; no brackets, no port.
  [[nodiscard]] static std::optional<IpAddress> parse(std::string_view text);
  // Builds from 4 or 16 raw network-order bytes (a database blob); nullopt for other sizes.
  [[nodiscard]] static std::optional<IpAddress> fromBytes(std::span<const std::uint8_t> bytes) noexcept;

  [[nodiscard]] Family family() const noexcept { return family_; }
  [[nodiscard]] bool isV4() const noexcept { return family_ == Family::Ipv4; }
  // 4 or 16 bytes, network order.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const noexcept {
    return {bytes_.data(), isV4() ? 4U : 16U};
  }
  // RFC 5952 text (inet_ntop).
  [[nodiscard]] std::string toString() const;
  // The longest text format() writes: INET6_ADDRSTRLEN less its NUL ("ffff:...:255.255.255.255").
  static constexpr std::size_t kMaxTextSize = 45;
  // Writes the same text as toString() to `out` (no NUL) and returns the end of what it wrote,
  // without allocating: the JSON mapping calls it several times per record. IPv4 is formatted here
  // (glibc's inet_ntop goes through sprintf); IPv6 through inet_ntop.
  char* format(std::span<char, kMaxTextSize> out) const noexcept;

  friend auto operator<=>(const IpAddress&, const IpAddress&) = default;

private:
  Family family_{Family::Ipv4};
  std::array<std::uint8_t, 16> bytes_{};
};

// Why `text`, an address, endpoint or block as typed, is refused for its zone id (fe80::1%eth0,
// as `ip addr` prints a link-local address): conntrack records addresses without one. Nullopt
// when it has none.
[[nodiscard]] std::optional<std::string> zoneIdRefusal(std::string_view text);

// A CIDR block such as 100.64.0.0/10 or 2001:db8::/32. The address is stored with its host bits
// cleared.
class IpNetwork {
public:
  IpNetwork(IpAddress address, unsigned prefix_len) noexcept;
  // "ADDR/LEN" or a bare address (a host route). nullopt on anything else.
  [[nodiscard]] static std::optional<IpNetwork> parse(std::string_view text);

  [[nodiscard]] const IpAddress& network() const noexcept { return network_; }
  [[nodiscard]] unsigned prefixLength() const noexcept { return prefix_len_; }
  // The highest address in the block (all host bits set).
  [[nodiscard]] IpAddress last() const noexcept;
  [[nodiscard]] bool contains(const IpAddress& address) const noexcept;
  [[nodiscard]] std::string toString() const;

private:
  IpAddress network_;
  unsigned prefix_len_;
};

// An address with a transport port (or ICMP id). Text form "192.0.2.1:80" or "[2001:db8::1]:80".
struct Endpoint {
  IpAddress address;
  std::uint16_t port{0};

  // Parses "ADDR:PORT" / "[V6]:PORT"; with port_optional, a bare address gives port nullopt.
  struct Parsed {
    IpAddress address;
    std::optional<std::uint16_t> port;
  };
  [[nodiscard]] static Result<Parsed> parse(std::string_view text, bool port_optional);
  [[nodiscard]] std::string toString() const;

  friend auto operator<=>(const Endpoint&, const Endpoint&) = default;
};

}  // namespace ctaudit
