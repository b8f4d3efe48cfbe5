// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/flow_table.hpp"

namespace ctaudit::daemon {

bool FlowTable::apply(FlowRecord& record) {
  const FlowKey key = record.key();
  const auto found = open_.find(key);
  switch (record.event) {
    case EventType::New:
      // A NEW after the start dump saw the same entry is the better record: it has the real
      // start. The sinks merge it into the same flow.
      open_.insert_or_assign(key, OpenFlow{record.start, record.start_source, false});
      return true;
    case EventType::Dump:
      if (found != open_.end()) {
        return false;
      }
      open_.emplace(key, OpenFlow{record.start, record.start_source, true});
      return true;
    case EventType::Update:
      if (found == open_.end()) {
        // The NEW was missed (it happened before we subscribed, or was lost): this is the first
        // time the flow is seen, so that is the best start we have.
        if (!record.start) {
          record.start = record.event_time;
          record.start_source = record.event_time_source;
        }
        open_.emplace(key, OpenFlow{record.start, record.start_source, false});
        return true;
      }
      if (!record.start) {
        record.start = found->second.start;
        record.start_source = found->second.start_source;
      }
      record.observed_at_start = found->second.observed_at_start;
      return true;
    case EventType::Destroy:
      if (found != open_.end()) {
        if (!record.start) {
          record.start = found->second.start;
          record.start_source = found->second.start_source;
        }
        record.observed_at_start = found->second.observed_at_start;
        open_.erase(found);
      }
      return true;
  }
  return true;
}

}  // namespace ctaudit::daemon
