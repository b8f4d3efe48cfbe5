// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/live_flows.hpp"

#include <utility>

namespace ctaudit::bench {

LiveFlows::LiveFlows(EndOrder order, std::uint32_t nat_ports, std::uint64_t seed)
    : order_(order), nat_ports_(nat_ports == 0 ? 1 : nat_ports), rng_(seed) {
  if (order_ == EndOrder::Random) {
    index_of_slot_.assign(nat_ports_, kNone);
  }
}

void LiveFlows::add(std::uint64_t flow) {
  if (order_ == EndOrder::Fifo) {
    fifo_.push_back(flow);
    return;
  }
  // A slot that is still held (a create that was not acknowledged, then made again) keeps both
  // flows live; the index then finds the newer one, and removeAt leaves it alone when the older goes.
  index_of_slot_[slotOf(flow)] = static_cast<std::uint32_t>(random_.size());
  random_.push_back(flow);
}

std::uint64_t LiveFlows::take() {
  if (order_ == EndOrder::Fifo) {
    const std::uint64_t flow = fifo_.front();
    fifo_.pop_front();
    return flow;
  }
  std::uniform_int_distribution<std::size_t> pick(0, random_.size() - 1);
  return removeAt(pick(rng_));
}

std::optional<std::uint64_t> LiveFlows::takeHolderOf(std::uint64_t flow) {
  if (order_ == EndOrder::Fifo) {
    return std::nullopt;
  }
  const std::uint32_t index = index_of_slot_[slotOf(flow)];
  if (index == kNone) {
    return std::nullopt;
  }
  return removeAt(index);
}

std::uint64_t LiveFlows::removeAt(std::size_t index) {
  const std::uint64_t flow = random_[index];
  if (std::uint32_t& slot = index_of_slot_[slotOf(flow)]; slot == index) {
    slot = kNone;
  }
  const std::size_t last = random_.size() - 1;
  if (index != last) {
    const std::uint64_t moved = random_[last];
    random_[index] = moved;
    if (std::uint32_t& slot = index_of_slot_[slotOf(moved)]; slot == last) {
      slot = static_cast<std::uint32_t>(index);
    }
  }
  random_.pop_back();
  return flow;
}

}  // namespace ctaudit::bench
