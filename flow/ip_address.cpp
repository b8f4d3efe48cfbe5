// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/ip_address.hpp"

#include <algorithm>
#include <charconv>
#include <utility>

#include <arpa/inet.h>

namespace ctaudit {

IpAddress IpAddress::v4(std::span<const std::uint8_t, 4> bytes) noexcept {
  IpAddress address;
  address.family_ = Family::Ipv4;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

IpAddress IpAddress::v6(std::span<const std::uint8_t, 16> bytes) noexcept {
  IpAddress address;
  address.family_ = Family::Ipv6;
  std::copy(bytes.begin(), bytes.end(), address.bytes_.begin());
  return address;
}

IpAddress IpAddress::v4(std::uint32_t host_order) noexcept {
  const std::array<std::uint8_t, 4> bytes{
      static_cast<std::uint8_t>(host_order >> 24U), static_cast<std::uint8_t>(host_order >> 16U),
      static_cast<std::uint8_t>(host_order >> 8U), static_cast<std::uint8_t>(host_order)};
  return v4(std::span<const std::uint8_t, 4>(bytes));
}

std::optional<IpAddress> IpAddress::parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short, so a stack buffer does.
  std::array<char, INET6_ADDRSTRLEN + 1> buffer{};
  if (text.empty() || text.size() >= buffer.size()) {
    return std::nullopt;
  }
  std::copy(text.begin(), text.end(), buffer.begin());
  std::array<std::uint8_t, 16> bytes{};
  if (text.find(':') == std::string_view::npos) {
    if (::inet_pton(AF_INET, buffer.data(), bytes.data()) != 1) {
      return std::nullopt;
    }
    return v4(std::span<const std::uint8_t, 4>(bytes.data(), 4));
  }
  if (::inet_pton(AF_INET6, buffer.data(), bytes.data()) != 1) {
    return std::nullopt;
  }
  return v6(std::span<const std::uint8_t, 16>(bytes));
}

std::optional<IpAddress> IpAddress::fromBytes(std::span<const std::uint8_t> bytes) noexcept {
  if (bytes.size() == 4) {
    return v4(std::span<const std::uint8_t, 4>(bytes.data(), 4));
  }
  if (bytes.size() == 16) {
    return v6(std::span<const std::uint8_t, 16>(bytes.data(), 16));
  }
  return std::nullopt;
}

std::string IpAddress::toString() const {
  std::array<char, kMaxTextSize> buffer{};
  const char* end = format(buffer);
  return {buffer.data(), static_cast<std::size_t>(end - buffer.data())};
}

char* IpAddress::format(std::span<char, kMaxTextSize> out) const noexcept {
  char* p = out.data();
  if (isV4()) {
    for (std::size_t i = 0; i < 4; ++i) {
      if (i > 0) {
        *p++ = '.';
      }
      const unsigned octet = bytes_[i];
      if (octet >= 100) {
        *p++ = static_cast<char>('0' + octet / 100);
      }
      if (octet >= 10) {
        *p++ = static_cast<char>('0' + octet / 10 % 10);
      }
      *p++ = static_cast<char>('0' + octet % 10);
    }
    return p;
  }
  std::array<char, INET6_ADDRSTRLEN> text{};
  static_assert(INET6_ADDRSTRLEN == kMaxTextSize + 1);
  if (::inet_ntop(AF_INET6, bytes_.data(), text.data(), static_cast<socklen_t>(text.size())) == nullptr) {
    *p++ = '?';  // cannot happen for AF_INET6 and a buffer of INET6_ADDRSTRLEN
    return p;
  }
  for (const char* c = text.data(); *c != '\0'; ++c) {
    *p++ = *c;
  }
  return p;
}

namespace {

// Sets (or clears) every bit of `address` after the first `prefix_len` bits.
IpAddress withHostBits(const IpAddress& address, unsigned prefix_len, bool set) {
  std::array<std::uint8_t, 16> bytes{};
  const auto in = address.bytes();
  std::copy(in.begin(), in.end(), bytes.begin());
  for (std::size_t i = 0; i < in.size(); ++i) {
    const unsigned first_bit = static_cast<unsigned>(i) * 8U;
    std::uint8_t host_mask = 0xFF;
    if (first_bit + 8U <= prefix_len) {
      host_mask = 0;
    } else if (first_bit < prefix_len) {
      host_mask = static_cast<std::uint8_t>(0xFFU >> (prefix_len - first_bit));
    }
    bytes[i] = set ? static_cast<std::uint8_t>(bytes[i] | host_mask)
                   : static_cast<std::uint8_t>(bytes[i] & static_cast<std::uint8_t>(~host_mask));
  }
  return *IpAddress::fromBytes(std::span<const std::uint8_t>(bytes.data(), in.size()));
}

}  // namespace

std::optional<std::string> zoneIdRefusal(std::string_view text) {
  const auto percent = text.find('%');
  if (percent == std::string_view::npos) {
    return std::nullopt;
  }
  const std::string_view zone = text.substr(percent, text.find_first_of("]/", percent) - percent);
  return "'" + std::string(text) + "' has a zone id (" + std::string(zone) +
         "); conntrack records addresses without one: drop it";
}

IpNetwork::IpNetwork(IpAddress address, unsigned prefix_len) noexcept
    : network_(address), prefix_len_(std::min(prefix_len, address.isV4() ? 32U : 128U)) {
  network_ = withHostBits(address, prefix_len_, false);
}

std::optional<IpNetwork> IpNetwork::parse(std::string_view text) {
  const auto slash = text.find('/');
  const auto address = IpAddress::parse(text.substr(0, slash));
  if (!address) {
    return std::nullopt;
  }
  const unsigned max_len = address->isV4() ? 32U : 128U;
  if (slash == std::string_view::npos) {
    return IpNetwork(*address, max_len);
  }
  const std::string_view len_text = text.substr(slash + 1);
  unsigned len = 0;
  const auto [end, ec] = std::from_chars(len_text.data(), len_text.data() + len_text.size(), len);
  if (ec != std::errc{} || end != len_text.data() + len_text.size() || len_text.empty() || len > max_len) {
    return std::nullopt;
  }
  return IpNetwork(*address, len);
}

IpAddress IpNetwork::last() const noexcept { return withHostBits(network_, prefix_len_, true); }

bool IpNetwork::contains(const IpAddress& address) const noexcept {
  return address.family() == network_.family() && network_ <= address && address <= last();
}

std::string IpNetwork::toString() const { return network_.toString() + "/" + std::to_string(prefix_len_); }

Result<Endpoint::Parsed> Endpoint::parse(std::string_view text, bool port_optional) {
  std::string_view address_text = text;
  std::string_view port_text;
  bool has_port = false;
  const bool bracketed = text.starts_with('[');
  const auto colons = std::count(text.begin(), text.end(), ':');
  const bool has_slash = text.find('/') != std::string_view::npos;
  if (bracketed) {
    const auto close = text.find(']');
    if (close == std::string_view::npos) {
      return fail(Errc::Usage, "'" + std::string(text) + "': missing ']' (write IPv6 as [2001:db8::1]:443)");
    }
    address_text = text.substr(1, close - 1);
    const std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') {
        return fail(Errc::Usage, "'" + std::string(text) + "': expected ':PORT' after ']'");
      }
      port_text = rest.substr(1);
      has_port = true;
    }
  } else if (colons == 1) {
    const auto colon = text.find(':');
    address_text = text.substr(0, colon);
    port_text = text.substr(colon + 1);
    has_port = true;
  } else if (const auto first = colons > 1 ? IpAddress::parse(text.substr(0, text.find(':'))) : std::nullopt;
             first && first->isV4()) {
    return fail(Errc::Usage, "'" + std::string(text) + "': one port after the address, e.g. " + first->toString() +
                                 ":443");
  } else if (colons > 1 && !port_optional && !has_slash) {
    return fail(Errc::Usage,
                "'" + std::string(text) + "': an IPv6 address with a port is written [2001:db8::1]:443");
  }
  const auto address = IpAddress::parse(address_text);
  if (!address) {
    const std::string shown(address_text);
    if (address_text.find('/') != std::string_view::npos) {
      return fail(Errc::Usage, "'" + shown + "' is a block; this takes one address, e.g. 198.51.100.1 or 2001:db8::1 "
                                             "(blocks: ctaudit flows --src)");
    }
    if (auto zoned = zoneIdRefusal(address_text)) {
      return fail(Errc::Usage, std::move(*zoned));
    }
    if (!bracketed && colons > 1) {
      // Perhaps an IPv6 address with a port, which cannot be told from an address without brackets.
      return fail(Errc::Usage, "'" + shown + "' is not an IPv6 address; one with a port is written [2001:db8::1]:443");
    }
    return fail(Errc::Usage, "'" + shown + "' is not an IPv4 or IPv6 address; write e.g. 198.51.100.1 or 2001:db8::1");
  }
  Parsed parsed{*address, std::nullopt};
  if (has_port) {
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), value);
    if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || value > 65535) {
      return fail(Errc::Usage, "'" + std::string(port_text) + "' is not a port number (0-65535)");
    }
    parsed.port = static_cast<std::uint16_t>(value);
  } else if (!port_optional) {
    return fail(Errc::Usage, "'" + std::string(text) + "' has no port: write ADDR:PORT, e.g. 203.0.113.7:40001");
  }
  return parsed;
}

std::string Endpoint::toString() const {
  if (address.isV4()) {
    return address.toString() + ":" + std::to_string(port);
  }
  return "[" + address.toString() + "]:" + std::to_string(port);
}

}  // namespace ctaudit
