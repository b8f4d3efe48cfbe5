// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_merge.hpp"

namespace ctaudit::storage {
namespace {

struct TimeAndSource {
  std::optional<Timestamp> time;
  TimeSource source;
};

TimeAndSource betterStart(const FlowRecord& stored, const FlowRecord& event) noexcept {
  const TimeAndSource kept{stored.start, stored.start_source};
  const TimeAndSource offered{event.start, event.start_source};
  if (!offered.time) {
    return kept;
  }
  if (!kept.time) {
    return offered;
  }
  if (offered.source != kept.source) {
    return offered.source == TimeSource::Kernel ? offered : kept;
  }
  if (offered.source == TimeSource::Kernel) {
    return offered;
  }
  return *offered.time < *kept.time ? offered : kept;
}

// A Destroy's end: the record's, or the event's own time when the record has none (a DESTROY
// without the timestamp extension is still the moment the entry went away). A bound (the DESTROY
// was lost; the daemon closes the flow at a time it must have ended by) never replaces an end the
// row already has from a real DESTROY: that one says when the flow ended, the bound only by when.
void endAtDestroy(FlowRecord& row, const FlowRecord& event) noexcept {
  TimeAndSource end{event.end, event.end_source};
  if (!end.time) {
    end = {event.event_time, event.event_time_source};
  }
  if (end.source == TimeSource::Bound && row.end && row.end_source != TimeSource::Bound) {
    return;
  }
  row.end = end.time;
  row.end_source = end.source;
}

}  // namespace

StoredFlow firstEvent(const FlowRecord& event) noexcept {
  StoredFlow flow{event, {}};
  FlowRecord& row = flow.record;
  if (event.event == EventType::Destroy) {
    endAtDestroy(row, event);
  } else {
    row.end.reset();
  }
  if (event.event == EventType::Dump) {
    row.observed_at_start = true;
  }
  flow.lifetime_start = row.start.value_or(row.end.value_or(event.event_time));
  settleEvent(flow);
  return flow;
}

StoredFlow mergeEvent(const StoredFlow& stored, const FlowRecord& event) noexcept {
  StoredFlow flow = stored;
  FlowRecord& row = flow.record;

  const TimeAndSource start = betterStart(stored.record, event);
  row.start = start.time;
  row.start_source = start.source;

  if (event.event == EventType::New) {
    row.observed_at_start = false;
  } else {
    if (event.status != 0) {
      row.status = event.status;
    }
    row.mark = event.mark;
    if (event.tcp_state) {
      row.tcp_state = event.tcp_state;
    }
  }
  // The reply tuple is fixed once the entry is confirmed, so every event's is as good as the row's;
  // taking it keeps the tuple and the translation below from the same message.
  row.reply = event.reply;
  if (event.nat.translated_source) {
    row.nat.translated_source = event.nat.translated_source;
  }
  if (event.nat.translated_destination) {
    row.nat.translated_destination = event.nat.translated_destination;
  }
  if (event.counters_original) {
    row.counters_original = event.counters_original;
  }
  if (event.counters_reply) {
    row.counters_reply = event.counters_reply;
  }
  if (event.event == EventType::Destroy) {
    endAtDestroy(row, event);
  }
  if (row.start) {
    flow.lifetime_start = *row.start;
  }
  settleEvent(flow);
  return flow;
}

}  // namespace ctaudit::storage
