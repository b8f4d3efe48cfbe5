// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "flow/result.hpp"

namespace ctaudit::daemon {

// Which ctnetlink multicast groups to join (NFNLGRP_CONNTRACK_NEW/UPDATE/DESTROY).
struct EventMask {
  bool new_events{true};
  bool update_events{true};
  bool destroy_events{true};

  // Parses a comma-separated list of "new", "update", "destroy" (at least one).
  [[nodiscard]] static Result<EventMask> parse(std::string_view text);
  // The legacy group bitmask for bind(2)/mnl_socket_bind: NF_NETLINK_CONNTRACK_NEW = 1,
  // UPDATE = 2, DESTROY = 4 (include/uapi/linux/netfilter/nfnetlink_compat.h).
  [[nodiscard]] std::uint32_t groups() const noexcept;
  [[nodiscard]] std::string toString() const;

  friend bool operator==(const EventMask&, const EventMask&) = default;
};

}  // namespace ctaudit::daemon
