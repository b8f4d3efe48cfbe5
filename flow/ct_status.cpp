// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/ct_status.hpp"

#include <array>

namespace ctaudit {
namespace {

// Bit 12 is IPS_UNTRACKED_BIT, which Linux 5.6 also made IPS_NAT_CLASH_BIT: an untracked packet's
// conntrack is a template never put into the table, so an entry that an event or a dump reports
// with the bit is one that lost a NAT clash (two packets of a new flow raced, as glibc's parallel
// A and AAAA lookups do, and the loser was given its own translation). Named UNTRACKED, an
// exploratory run found a SIEM reader's filter dropping such flows as untracked traffic.
constexpr std::array<std::string_view, 16> kStatusNames{
    "EXPECTED",     "SEEN_REPLY",   "ASSURED", "CONFIRMED",     "SRC_NAT",  "DST_NAT",
    "SEQ_ADJUST",   "SRC_NAT_DONE", "DST_NAT_DONE", "DYING", "FIXED_TIMEOUT", "TEMPLATE",
    "NAT_CLASH",    "HELPER",       "OFFLOAD", "HW_OFFLOAD"};

constexpr std::array<std::string_view, 32> kUnknownBits{
    "BIT_0",  "BIT_1",  "BIT_2",  "BIT_3",  "BIT_4",  "BIT_5",  "BIT_6",  "BIT_7",
    "BIT_8",  "BIT_9",  "BIT_10", "BIT_11", "BIT_12", "BIT_13", "BIT_14", "BIT_15",
    "BIT_16", "BIT_17", "BIT_18", "BIT_19", "BIT_20", "BIT_21", "BIT_22", "BIT_23",
    "BIT_24", "BIT_25", "BIT_26", "BIT_27", "BIT_28", "BIT_29", "BIT_30", "BIT_31"};

constexpr std::array<std::string_view, 10> kTcpStates{
    "NONE",       "SYN_SENT",  "SYN_RECV", "ESTABLISHED", "FIN_WAIT",
    "CLOSE_WAIT", "LAST_ACK",  "TIME_WAIT", "CLOSE",      "SYN_SENT2"};

}  // namespace

std::vector<std::string_view> statusNames(std::uint32_t status) {
  std::vector<std::string_view> names;
  for (std::size_t bit = 0; bit < 32; ++bit) {
    if ((status & (1U << bit)) == 0) {
      continue;
    }
    names.push_back(statusBitName(static_cast<unsigned>(bit)));
  }
  return names;
}

std::string_view statusBitName(unsigned bit) noexcept {
  if (bit < kStatusNames.size()) {
    return kStatusNames[bit];
  }
  return bit < kUnknownBits.size() ? kUnknownBits[bit] : std::string_view{};
}

std::string_view tcpStateName(std::uint8_t state) noexcept {
  return state < kTcpStates.size() ? kTcpStates[state] : std::string_view{"UNKNOWN"};
}

}  // namespace ctaudit
