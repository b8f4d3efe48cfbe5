// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "bench/flow_plan.hpp"

namespace ctaudit::bench {

// How created entries look.
struct CreateSettings {
  std::uint32_t timeout_seconds{600};  // CTA_TIMEOUT: the kernel requires one on create
  bool ack_every_message{true};        // NLM_F_ACK; errors are acknowledged either way
};

// A run of ctnetlink requests packed back to back in one buffer, to be sent with a single
// sendmsg: the kernel walks every message of a datagram (netlink_rcv_skb) and builds each
// event inside that call. Each message has its own sequence number, so an error answer names the
// request it belongs to. Owns its buffer, allocated once; a value type; one thread.
//
// A create is IPCTNL_MSG_CT_NEW with NLM_F_CREATE|NLM_F_EXCL: the original tuple, its plain
// inverse as the reply tuple, CTA_TIMEOUT, CTA_STATUS (CONFIRMED|SEEN_REPLY|ASSURED, so the entry looks
// like an answered flow and is not an early-drop candidate), for TCP the ESTABLISHED state, and
// CTA_NAT_SRC with a one-address, one-port range. Given CTA_NAT_SRC, the kernel runs
// nf_nat_setup_info() itself: it rewrites the reply tuple's destination and sets IPS_SRC_NAT,
// exactly as for masqueraded traffic (FIELD-NOTES 12); a pre-translated reply tuple would not set
// the status bit. No nat chain is needed in the namespace for this (verified on Linux 6.18).
// A delete is IPCTNL_MSG_CT_DELETE with the original tuple.
class MessageBatch {
public:
  // The largest message built here (an IPv6 create is about 220 bytes).
  static constexpr std::size_t kMaxMessageBytes = 512;

  explicit MessageBatch(std::size_t max_messages);

  void clear() noexcept;
  // Appends a request. Precondition: size() < capacity().
  void addCreate(const FlowSpec& flow, std::uint32_t seq, const CreateSettings& settings);
  void addDelete(const FlowSpec& flow, std::uint32_t seq, bool ack);

  [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {buffer_.data(), used_}; }
  [[nodiscard]] std::size_t size() const noexcept { return count_; }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }

private:
  void* next() noexcept;
  void commit(std::size_t message_bytes) noexcept;

  std::vector<std::byte> buffer_;
  std::size_t capacity_;
  std::size_t used_{0};
  std::size_t count_{0};
};

}  // namespace ctaudit::bench
