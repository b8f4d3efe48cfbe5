// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <vector>

#include "bench/ct_channel.hpp"
#include "bench/ct_messages.hpp"
#include "bench/flow_plan.hpp"
#include "bench/live_flows.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/stop_signal.hpp"
#include "flow/result.hpp"

namespace ctaudit::bench {

// What a run did.
struct RunTotals {
  std::uint64_t created{0};
  std::uint64_t deleted{0};
  std::uint64_t create_errors{0};
  std::uint64_t delete_errors{0};
  std::uint64_t acks_missing{0};  // requests whose fate is unknown (our socket overflowed)
  std::uint64_t requests{0};
  std::uint64_t sends{0};
  std::uint64_t left_alive{0};    // created and not deleted when the run ended
  // With --ends random: deletes of the entry that still held the translated port a create needed
  // (LiveFlows::takeHolderOf), in start order rather than at random. Few while --live is well
  // below the translated ports; at a quarter of them already about 2 %.
  std::uint64_t forced_deletes{0};
  std::uint64_t socket_overruns{0};
  std::map<int, std::uint64_t> errors_by_errno;
  std::chrono::nanoseconds elapsed{0};
  std::chrono::nanoseconds create_phase{0};  // until creating stopped (the deletes at the end follow)
  std::uint64_t create_phase_requests{0};
  bool interrupted{false};
};

// The generator's loop: builds batches of creates and deletes from the FlowPlan, paces them with
// a TokenBucket, sends each batch through the CtChannel and keeps the live entries (LiveFlows,
// which also picks the one a delete takes: --ends). Borrows the channel and the
// stop signal; one thread.
class LoadRun {
public:
  LoadRun(const LoadgenOptions& options, CtChannel& channel, StopSignal& stop);

  // Runs to the end (count reached or duration passed, then the deletes of the live entries
  // unless told to keep them, or a second stop signal). Errors: a send failed (Errc::Netlink);
  // the totals so far are lost with it, since the entries' fate is unknown.
  [[nodiscard]] Result<RunTotals> run();

private:
  enum class OpKind : std::uint8_t { Create, Delete };
  struct Op {
    OpKind kind;
    std::uint64_t flow;
  };
  using Clock = std::chrono::steady_clock;

  [[nodiscard]] std::size_t workLeft() const noexcept;
  void fillBatch(std::size_t budget);
  void addDelete(std::uint64_t flow);
  void account(std::span<const int> results);
  void reportProgress(Clock::time_point now, Clock::time_point start);

  const LoadgenOptions& options_;
  CtChannel& channel_;
  StopSignal& stop_;
  FlowPlan plan_;
  MessageBatch batch_;
  std::vector<Op> ops_;
  std::vector<int> results_;
  LiveFlows live_;
  std::uint64_t next_flow_;
  std::uint64_t attempted_{0};
  std::uint32_t seq_{1};
  bool creating_{true};
  RunTotals totals_{};
  Clock::time_point last_progress_{};
  std::uint64_t progress_requests_{0};
};

}  // namespace ctaudit::bench
