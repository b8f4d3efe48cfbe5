// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "bench/ct_messages.hpp"
#include "bench/flow_plan.hpp"
#include "bench/live_flows.hpp"
#include "flow/result.hpp"

namespace ctaudit::bench {

enum class SummaryFormat : std::uint8_t { KeyValue, Json };

// Everything ct_loadgen was asked to do, parsed and checked once.
struct LoadgenOptions {
  std::optional<std::uint64_t> count;               // flows to create
  std::optional<std::chrono::nanoseconds> duration;  // or: create for this long
  double rate{0.0};                                  // requests (= events) per second; 0: as fast as possible
  std::size_t live{0};                               // at most this many alive; 0: no limit
  EndOrder ends{EndOrder::Fifo};                     // which live entry a delete takes
  std::size_t batch{32};                             // requests per sendmsg
  bool delete_flows{true};                           // --no-delete clears it
  bool keep_at_exit{false};                          // --keep, and implied by --no-delete
  std::uint64_t first_index{0};
  FlowPlan::Options plan{};
  CreateSettings create{};
  SummaryFormat format{SummaryFormat::KeyValue};
  bool progress{false};
};

struct LoadgenHelp {};

// Parses argv (without the program name). Errors: Errc::Usage with a message for the user.
[[nodiscard]] Result<std::variant<LoadgenOptions, LoadgenHelp>> parseLoadgenOptions(
    std::span<const std::string_view> args);

[[nodiscard]] std::string loadgenUsage();

}  // namespace ctaudit::bench
