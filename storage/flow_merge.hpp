// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "flow/flow_record.hpp"
#include "storage/flow_row.hpp"

// How the events of one conntrack entry fold into its single `flows` row. Pure functions, so that
// the rules are tested without a database; SqliteSink applies them. Internal to storage/.
namespace ctaudit::storage {

// The row for an event whose flow has no open row yet.
//  - New, Dump, Update: an open flow (no end, even if the record carries one); a Dump row is marked
//    observed_at_start.
//  - Destroy: a complete flow; its end is record.end, or the event time when the record has none.
// lifetime_start is record.start when known, otherwise the event's time (the end for a Destroy).
[[nodiscard]] StoredFlow firstEvent(const FlowRecord& event) noexcept;

// The open row `stored` after `event` of the same flow (same FlowKey).
//  - start: the better of the two. A kernel time beats a receive time; of two receive times the
//    earlier wins (a receive time only ever lags the confirmation); of two kernel times the
//    event's. So a DESTROY's CTA_TIMESTAMP start replaces the NEW's receive time, and a start the
//    row lacks is filled in.
//  - New (the flow's first event, here arriving after its Dump or Update row): keeps the row's
//    status, mark and state, which are at least as recent, and clears observed_at_start, since
//    the NEW itself was seen.
//  - Dump, Update, Destroy: status (unless the event's is 0, i.e. missing), mark and tcp_state
//    (unless missing) come from the event.
//  - Every event: the reply tuple comes from the event.
//  - Every event: a translation the event reports replaces the row's; one it does not report is
//    kept (NAT is set up once, before confirmation). Counters the event carries replace the row's.
//  - Destroy: ends the flow at record.end (or the event time). An end whose source is
//    TimeSource::Bound (the daemon closing a flow whose DESTROY was lost) never replaces a kernel or
//    receive end the row already has. (SqliteSink only merges into open rows, so for it this cannot
//    arise; the rule keeps the function right on its own.)
[[nodiscard]] StoredFlow mergeEvent(const StoredFlow& stored, const FlowRecord& event) noexcept;

}  // namespace ctaudit::storage
