// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/protocol.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <string>
#include <utility>

namespace ctaudit {
namespace {

constexpr std::array<std::pair<Protocol, std::string_view>, 8> kNames{{
    {Protocol::Icmp, "icmp"},
    {Protocol::Tcp, "tcp"},
    {Protocol::Udp, "udp"},
    {Protocol::Dccp, "dccp"},
    {Protocol::Gre, "gre"},
    {Protocol::Icmpv6, "ipv6-icmp"},
    {Protocol::Sctp, "sctp"},
    {Protocol::UdpLite, "udplite"},
}};

}  // namespace

std::string protocolName(Protocol protocol) {
  for (const auto& [value, name] : kNames) {
    if (value == protocol) {
      return std::string(name);
    }
  }
  return std::to_string(static_cast<unsigned>(protocol));
}

std::optional<Protocol> parseProtocol(std::string_view typed) {
  // Reports and RFCs write TCP and UDP in capitals.
  std::string text(typed);
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  if (text == "icmpv6" || text == "icmp6") {
    return Protocol::Icmpv6;
  }
  if (text == "udp-lite") {
    return Protocol::UdpLite;
  }
  for (const auto& [value, name] : kNames) {
    if (name == text) {
      return value;
    }
  }
  unsigned number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), number);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size() || number > 255) {
    return std::nullopt;
  }
  return static_cast<Protocol>(number);
}

}  // namespace ctaudit
