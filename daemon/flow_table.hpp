// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <optional>
#include <unordered_map>

#include "flow/flow_record.hpp"

namespace ctaudit::daemon {

// The daemon's memory of the flows that are open in the kernel: enough to complete a record whose
// message lacks what an earlier one said. A DESTROY from a conntrack created before the timestamp
// sysctl was set has no start time: the table supplies the NEW's. Owned by the Daemon; one thread.
class FlowTable {
public:
  // Completes `record` from the table and updates the table. Returns false when the record adds
  // nothing the sinks do not already have: a dump row for a flow whose NEW was already seen.
  [[nodiscard]] bool apply(FlowRecord& record);

  [[nodiscard]] std::size_t openFlows() const noexcept { return open_.size(); }

private:
  struct OpenFlow {
    std::optional<Timestamp> start;
    TimeSource start_source{TimeSource::Receive};
    bool observed_at_start{false};
  };

  std::unordered_map<FlowKey, OpenFlow, FlowKeyHash> open_;
};

}  // namespace ctaudit::daemon
