// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <vector>

namespace ctaudit::bench {

// Which live entry a delete takes.
//  - Fifo: the oldest, so entries end in the order they began. Cheap for a listener that writes
//    rows in start order: the rows a batch closes are neighbours.
//  - Random: any of them, picked at random. This is how a gateway's entries end: the kernel's
//    garbage collector and `conntrack -F` walk the hash table, whose order is random against
//    the entries' start order.
enum class EndOrder : std::uint8_t { Fifo, Random };

// The flow numbers ct_loadgen has created and not deleted, and which of them a delete takes
// (EndOrder). Flow n is translated to port slot n mod `nat_ports` (FlowPlan::at), so with random
// ends an entry may outlive `nat_ports` creates and still hold the port that a new flow needs:
// takeHolderOf() finds it, so that it is deleted before that create instead of the create failing
// with EEXIST. In creation order that cannot happen while at most `nat_ports` entries live
// (LoadgenOptions checks --live). Seeded, so that two runs end their flows in the same order.
// Owned by LoadRun; one thread.
class LiveFlows {
public:
  LiveFlows(EndOrder order, std::uint32_t nat_ports, std::uint64_t seed);

  // `flow` is alive (or may be: its create was not acknowledged).
  void add(std::uint64_t flow);
  // The next flow to delete, removed. Precondition: !empty().
  [[nodiscard]] std::uint64_t take();
  // With EndOrder::Random: the live flow that holds the translated port `flow` will get, removed;
  // nullopt when none does. Always nullopt with EndOrder::Fifo.
  [[nodiscard]] std::optional<std::uint64_t> takeHolderOf(std::uint64_t flow);

  [[nodiscard]] std::size_t size() const noexcept { return order_ == EndOrder::Fifo ? fifo_.size() : random_.size(); }
  [[nodiscard]] bool empty() const noexcept { return size() == 0; }

private:
  static constexpr std::uint32_t kNone = UINT32_MAX;
  [[nodiscard]] std::size_t slotOf(std::uint64_t flow) const noexcept { return flow % nat_ports_; }
  std::uint64_t removeAt(std::size_t index);

  EndOrder order_;
  std::uint32_t nat_ports_;
  std::deque<std::uint64_t> fifo_;     // Fifo: in creation order
  std::vector<std::uint64_t> random_;  // Random: in no order (removal swaps the last one in)
  std::vector<std::uint32_t> index_of_slot_;  // Random: where in random_ the slot's holder is
  std::mt19937_64 rng_;
};

}  // namespace ctaudit::bench
