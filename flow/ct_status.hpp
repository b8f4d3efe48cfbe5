// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace ctaudit {

// The conntrack status bits (enum ip_conntrack_status in
// include/uapi/linux/netfilter/nf_conntrack_common.h), as carried by CTA_STATUS.
namespace ct_status {
inline constexpr std::uint32_t kExpected = 1U << 0U;
inline constexpr std::uint32_t kSeenReply = 1U << 1U;
inline constexpr std::uint32_t kAssured = 1U << 2U;
inline constexpr std::uint32_t kConfirmed = 1U << 3U;
inline constexpr std::uint32_t kSrcNat = 1U << 4U;
inline constexpr std::uint32_t kDstNat = 1U << 5U;
inline constexpr std::uint32_t kSeqAdjust = 1U << 6U;
inline constexpr std::uint32_t kSrcNatDone = 1U << 7U;
inline constexpr std::uint32_t kDstNatDone = 1U << 8U;
inline constexpr std::uint32_t kDying = 1U << 9U;
inline constexpr std::uint32_t kFixedTimeout = 1U << 10U;
inline constexpr std::uint32_t kTemplate = 1U << 11U;
inline constexpr std::uint32_t kUntracked = 1U << 12U;
inline constexpr std::uint32_t kHelper = 1U << 13U;
inline constexpr std::uint32_t kOffload = 1U << 14U;
inline constexpr std::uint32_t kHwOffload = 1U << 15U;
}  // namespace ct_status

// The names of the bits set in `status`, lowest bit first, spelled as conntrack(8) prints them
// ("SEEN_REPLY", "ASSURED", "SRC_NAT", …). Unknown bits are named "BIT_<n>".
[[nodiscard]] std::vector<std::string_view> statusNames(std::uint32_t status);

// The name of status bit `bit` (0..31) as statusNames() gives it, without building a vector: the
// JSON mapping walks the bits of every record. "BIT_<n>" for unknown bits, "" for bit > 31.
[[nodiscard]] std::string_view statusBitName(unsigned bit) noexcept;

// TCP conntrack states (enum tcp_conntrack in include/uapi/linux/netfilter/nf_conntrack_tcp.h),
// named as conntrack(8) prints them: "SYN_SENT", "ESTABLISHED", "TIME_WAIT", …
[[nodiscard]] std::string_view tcpStateName(std::uint8_t state) noexcept;

}  // namespace ctaudit
