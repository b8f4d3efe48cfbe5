// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/flow_table.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

#include "daemon/read_pacing.hpp"
#include "flow/nat.hpp"
#include "storage/flow_row.hpp"

namespace ctaudit::daemon {
namespace {

// How far a start that is not the entry's own stamp can lie before it, for the same entry:
//  - a receive-time start: the reader stamps what a turn reads with the time it woke, before its
//    paced wait (at most ReadPacing::max), and a thread held up by the scheduler reads later
//    still; a wall clock stepped during the wait moves it too;
//  - a NEW's event time: on Linux 6.18 the entry's CTA_TIMESTAMP start came up to 20 us after it
//    in 120 of 722 flows of an exploratory run (mostly TCP), and a packet held before its
//    confirmation (NFQUEUE) delays the stamp further.
// A second is generous for the same entry but for a verdict over a second, which only the loss
// gate in compareStarts covers; an entry made again after the old one expired comes seconds later.
constexpr std::int64_t kStartSlackMs = 1000;

// CTA_STATUS bit 12: IPS_NAT_CLASH (flow/ct_status.cpp says why that and not IPS_UNTRACKED).
constexpr std::uint32_t kNatClash = 1U << 12U;
static_assert(std::chrono::milliseconds{kStartSlackMs} >= 2 * ReadPacing{}.max,
              "the slack must cover the reader's longest wait with room to spare");

// Whether the record's start is the entry's own CTA_TIMESTAMP start, set once when the kernel
// confirmed it: a dump row's, an UPDATE's or a DESTROY's. A NEW without that attribute takes its
// event's time (conntrack_decoder.hpp), a kernel time too but another instant: microseconds
// before or after the stamp, and seconds after it for a NEW the kernel delivered again after a
// full socket (reliable mode).
bool startIsEntryStamp(const FlowRecord& record) noexcept {
  return record.start && record.start_source == TimeSource::Kernel && record.event != EventType::New;
}

}  // namespace

FlowTable::OpenFlow FlowTable::remember(const FlowRecord& record) const noexcept {
  OpenFlow flow;
  flow.reply = record.reply;
  flow.status = record.status;
  flow.mark = record.mark;
  flow.seen = generation_;
  flow.observed_at_start = record.observed_at_start;
  if (record.start) {
    flow.has_start = true;
    flow.start_ns = toUnixNanos(*record.start);
    flow.start_source = record.start_source;
    flow.start_is_entry_stamp = startIsEntryStamp(record);
  }
  return flow;
}

void FlowTable::refresh(OpenFlow& flow, const FlowRecord& record) noexcept {
  flow.reply = record.reply;
  if (record.status != 0) {
    flow.status = record.status;
  }
  flow.mark = record.mark;
}

bool FlowTable::apply(FlowRecord& record) {
  const FlowKey key = record.key();
  if (record.event == EventType::New) {
    // A NEW after the start dump saw the same entry is the better record: it has the real start.
    // The sinks merge it into the same flow. One lookup: half of all events are NEWs.
    OpenFlow flow = remember(record);
    flow.observed_at_start = false;
    if (may_lack_count_ > 0) {
      if (const auto found = open_.find(key); found != open_.end()) {
        forgetLackingEnd(found->first, found->second);  // its own NEW: it has the extension
      }
    }
    open_.insert_or_assign(key, flow);
    return true;
  }
  const auto found = open_.find(key);
  switch (record.event) {
    case EventType::New:
      return true;  // above
    case EventType::Dump:
      if (found != open_.end()) {
        refresh(found->second, record);
        found->second.seen = generation_;
        return false;
      }
      {
        OpenFlow flow = remember(record);
        flow.may_lack_end_event = start_up_dump_ && (all_from_start_up_ || !flow.has_start);
        if (flow.may_lack_end_event) {
          noteMayLackEnd(key, record.reply);
        }
        open_.emplace(key, flow);
      }
      return true;
    case EventType::Update:
      if (found == open_.end()) {
        // The NEW was missed (lost to an overrun, which is a gap on record): the flow began before
        // this event, at a time nothing here knows. Its start stays unknown unless the kernel sent
        // it (CTA_TIMESTAMP); the sinks index it from this first sighting (flow_merge.cpp) and say
        // that the start is unknown, rather than pass the UPDATE's time off as the start.
        open_.emplace(key, remember(record));
        return true;
      }
      if (!record.start && found->second.has_start) {
        record.start = fromUnixNanos(found->second.start_ns);
        record.start_source = found->second.start_source;
      }
      record.observed_at_start = found->second.observed_at_start;
      forgetLackingEnd(found->first, found->second);  // by the reply tuple it was indexed under
      found->second.may_lack_end_event = false;       // an event came: the entry has the extension
      refresh(found->second, record);
      found->second.seen = generation_;
      return true;
    case EventType::Destroy:
      if (found != open_.end()) {
        if (!record.start && found->second.has_start) {
          record.start = fromUnixNanos(found->second.start_ns);
          record.start_source = found->second.start_source;
        }
        record.observed_at_start = found->second.observed_at_start;
        forgetLackingEnd(found->first, found->second);
        open_.erase(found);
      }
      return true;
  }
  return true;
}

void FlowTable::restore(const FlowRecord& open) {
  OpenFlow flow = remember(open);
  // First seen by an earlier run's start-up dump and still open: it may be one without end events
  // (that run may have known; this one cannot), so it is swept for until it ends.
  flow.may_lack_end_event = open.observed_at_start;
  if (const auto found = open_.find(open.key()); found != open_.end()) {
    forgetLackingEnd(found->first, found->second);  // two open rows of one key: the later one stays
  }
  if (flow.may_lack_end_event) {
    noteMayLackEnd(open.key(), open.reply);
  }
  open_.insert_or_assign(open.key(), flow);
}

void FlowTable::noteMayLackEnd(const FlowKey& key, const FlowTuple& reply) {
  ++may_lack_count_;
  lacking_end_by_original_.insert_or_assign(tupleKey(key.zone, key.original), key);
  lacking_end_by_reply_.insert_or_assign(tupleKey(key.zone, reply), key);
}

void FlowTable::forgetLackingEnd(const FlowKey& key, const OpenFlow& flow) {
  if (!flow.may_lack_end_event) {
    return;
  }
  for (auto [index, probe] : {std::pair{&lacking_end_by_original_, tupleKey(key.zone, key.original)},
                              std::pair{&lacking_end_by_reply_, tupleKey(key.zone, flow.reply)}}) {
    if (const auto found = index->find(probe); found != index->end() && found->second == key) {
      index->erase(found);
    }
  }
  // Called once for each such flow, where it leaves or shows the extension: when none is left, no
  // search on every NEW, and the maps give their slot arrays back (--reliable never sweeps to count).
  if (may_lack_count_ > 0 && --may_lack_count_ == 0) {
    lacking_end_by_original_.clear();
    lacking_end_by_reply_.clear();
  }
}

bool FlowTable::sweepMayTouch(const FlowRecord& record) const {
  const auto found = open_.find(record.key());
  return found != open_.end() && (found->second.reply == record.reply || found->second.may_lack_end_event);
}

FlowTable::StartOrder FlowTable::compareStarts(const FlowRecord& record, const OpenFlow& flow) const noexcept {
  const bool stamp = startIsEntryStamp(record);
  // A NEW's time is not its entry's stamp, but on the key of a flow without end events it is
  // compared like any other start (below): such an entry sends no NEW of its own after the dump
  // that showed it, but for one the daemon only took to lack the extension (setAllFromStartUpSuspect),
  // whose NEW queued behind that dump comes within kStartSlackMs of its stamp.
  const bool new_on_flow_without_end =
      record.event == EventType::New && flow.may_lack_end_event && record.start_source == TimeSource::Kernel;
  if ((!stamp && !new_on_flow_without_end) || !record.start || !flow.has_start) {
    return StartOrder::Unknown;
  }
  // The same entry shows the same stamp again, so a later one (in whole milliseconds, as the
  // database holds a restored flow's start) is of a successor, and an earlier one of a
  // predecessor. Against any other start, only a later stamp beyond kStartSlackMs says so: it may
  // lie on either side of the entry's stamp. (The first version took a NEW's time never to come
  // before the stamp; an exploratory run found it splitting 17 of 3,720 flows in two, each with a
  // made-up bound end.)
  // Rounded down as the database stores a start (storage::startMillis).
  const std::int64_t offered_ns = toUnixNanos(*record.start);
  const std::int64_t offered_ms = storage::startMillis(*record.start);
  const std::int64_t held_ms = storage::startMillis(fromUnixNanos(flow.start_ns));
  // The kernel hands a freed entry's id on only after that entry's DESTROY was sent, so a
  // successor can hide behind the same key only where events may have been lost since the flow
  // was last seen: a resync began since (the start-up dump for a flow restored from the database),
  // or the flow's entry may send no DESTROY at all.
  // Otherwise a start that is not the entry's stamp says nothing: a packet held in NFQUEUE before
  // its confirmation puts the stamp as far after the NEW's time as the verdict took (a review).
  const bool loss_since_seen = seenBefore(flow.seen, last_loss_generation_) || flow.may_lack_end_event;
  switch (flow.start_source) {
    case TimeSource::Kernel:
      if (stamp && flow.start_is_entry_stamp) {
        if (offered_ms > held_ms) {
          return StartOrder::Later;
        }
        return offered_ns < flow.start_ns ? StartOrder::Earlier : StartOrder::Unknown;
      }
      [[fallthrough]];
    case TimeSource::Receive:
      return loss_since_seen && offered_ms > held_ms + kStartSlackMs ? StartOrder::Later : StartOrder::Unknown;
    case TimeSource::Bound:
      return StartOrder::Unknown;
  }
  return StartOrder::Unknown;
}

FlowTable::Replacement FlowTable::endIfReplaced(const FlowRecord& record) {
  if (record.event == EventType::New && may_lack_count_ == 0) {
    return {};  // no search: half of all events are NEWs, and the table is cold between wakes
  }
  const auto found = open_.find(record.key());
  if (found == open_.end()) {
    return endIfTupleTaken(record);
  }
  // A NEW replaces whatever had its key (apply): the old entry's DESTROY came first. Not that of a
  // flow without end events, which never comes: it is ended here like one replaced unseen.
  if (record.event == EventType::New && !found->second.may_lack_end_event) {
    return {};
  }
  const OpenFlow& flow = found->second;
  if (flow.reply == record.reply) {
    switch (compareStarts(record, flow)) {
      case StartOrder::Unknown:
        return {};
      case StartOrder::Earlier:
        // A late UPDATE or DESTROY of the entry before it, queued behind the dump that showed it
        // (a review): applied, it would end this flow and take its row over.
        return {std::nullopt, true};
      case StartOrder::Later:
        break;
    }
    // The same tuples and id, a later start: the kernel reused the id for an entry made where the
    // old one was freed, while this daemon was down or its events were lost (an exploratory run:
    // fixed-port UDP across a restart). The old flow ended before the new one began.
    return {endUnseen(found, *record.start), false};
  }
  const Timestamp began = record.start.value_or(record.event_time);
  if (flow.has_start && began < fromUnixNanos(flow.start_ns)) {
    return {std::nullopt, true};
  }
  // The old entry was gone before the new one was made: the same original tuple cannot be in the
  // kernel's table twice. Never before the old flow's own start.
  const Timestamp bound = flow.has_start ? std::max(began, fromUnixNanos(flow.start_ns)) : began;
  return {endUnseen(found, bound), false};
}

FlowTable::Replacement FlowTable::endIfTupleTaken(const FlowRecord& record) {
  if (may_lack_count_ == 0) {
    return {};
  }
  if (auto by_original = endLackingEnd(lacking_end_by_original_, tupleKey(record.zone, record.original), record);
      by_original.ended) {
    return by_original;
  }
  return endLackingEnd(lacking_end_by_reply_, tupleKey(record.zone, record.reply), record);
}

FlowTable::Replacement FlowTable::endLackingEnd(storage::FlowKeyMap<FlowKey>& index, const FlowKey& probe,
                                                const FlowRecord& record) {
  const auto indexed = index.find(probe);
  if (indexed == index.end() || indexed->second == record.key()) {
    return {};
  }
  const auto old = open_.find(indexed->second);
  if (old == open_.end() || !old->second.may_lack_end_event) {
    index.erase(indexed);  // it ended, or an event showed that it has the extension
    return {};
  }
  const OpenFlow& flow = old->second;
  // A NAT clash's loser has the winner's original tuple and an id and a translation of its own: both
  // are alive (a review).
  if (&index == &lacking_end_by_original_ && ((flow.status | record.status) & kNatClash) != 0) {
    return {};
  }
  const Timestamp began = record.start.value_or(record.event_time);
  if (flow.has_start && began < fromUnixNanos(flow.start_ns)) {
    return {};  // an entry before it, whose event came late: left to be written as its own flow
  }
  // Until the start-up dump has settled, a record may be a late event, queued behind the dump, of
  // an entry that held the tuple before this flow's did, and its time (the read time before Linux
  // 6.14) is after the flow's start all the same (a review): only a kernel start later than the
  // flow's kernel start tells a successor then. After the settle every earlier event has been read.
  if (!start_up_settled_ &&
      !(flow.has_start && flow.start_source == TimeSource::Kernel && record.start &&
        record.start_source == TimeSource::Kernel && began > fromUnixNanos(flow.start_ns))) {
    // Decided at the settle (noteSettled): by then a predecessor's late events, DESTROY included,
    // have been read, so a record's entry still open is a successor. Its later events find their
    // own key and would never ask again (a review).
    held_successors_.push_back({old->first, record.key(), began});
    return {};
  }
  return {endUnseen(old, began), false};
}

std::vector<FlowRecord> FlowTable::noteSettled() {
  start_up_settled_ = true;
  std::vector<FlowRecord> ended;
  for (const HeldSuccessor& held : std::exchange(held_successors_, {})) {
    const auto old = open_.find(held.flow);
    if (old == open_.end() || !old->second.may_lack_end_event || !open_.contains(held.successor)) {
      continue;  // it ended already, or showed the extension; or the other entry was a predecessor
    }
    const Timestamp bound =
        old->second.has_start ? std::max(held.began, fromUnixNanos(old->second.start_ns)) : held.began;
    ended.push_back(endUnseen(old, bound));
  }
  return ended;
}

FlowRecord FlowTable::endUnseen(storage::FlowKeyMap<OpenFlow>::iterator flow, Timestamp bound) {
  FlowRecord ended = boundDestroy(flow->first, flow->second, bound);
  forgetLackingEnd(flow->first, flow->second);
  open_.erase(flow);
  return ended;
}

FlowRecord FlowTable::boundDestroy(const FlowKey& key, const OpenFlow& flow, Timestamp bound) noexcept {
  FlowRecord record;
  record.event = EventType::Destroy;
  record.ct_id = key.ct_id;
  record.zone = key.zone;
  record.original = key.original;
  record.reply = flow.reply;
  record.status = flow.status;
  record.mark = flow.mark;
  record.nat = deriveNat(flow.status, key.original, flow.reply);
  if (flow.has_start) {
    record.start = fromUnixNanos(flow.start_ns);
    record.start_source = flow.start_source;
  }
  record.end = bound;
  record.end_source = TimeSource::Bound;
  record.event_time = bound;
  record.event_time_source = TimeSource::Bound;
  record.observed_at_start = flow.observed_at_start;
  return record;
}

std::size_t FlowTable::openWithoutEndEvents() noexcept {
  const auto count = static_cast<std::size_t>(
      std::count_if(open_.begin(), open_.end(), [](const auto& entry) { return entry.second.may_lack_end_event; }));
  may_lack_count_ = count;
  if (count == 0) {
    lacking_end_by_original_.clear();
    lacking_end_by_reply_.clear();
  }
  return count;
}

std::vector<FlowRecord> FlowTable::closeUnseen(Timestamp bound, bool only_without_end_events) {
  std::vector<FlowRecord> closed;
  for (auto it = open_.begin(); it != open_.end();) {
    if (!seenBefore(it->second.seen, resync_generation_) ||
        (only_without_end_events && !it->second.may_lack_end_event)) {
      ++it;
      continue;
    }
    closed.push_back(endUnseen(it++, bound));
  }
  return closed;
}

}  // namespace ctaudit::daemon
