// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <vector>

#include "flow/flow_record.hpp"
#include "storage/flow_key_map.hpp"

namespace ctaudit::daemon {

// The daemon's memory of the flows that are open in the kernel: enough to complete a record whose
// message lacks what an earlier one said (a DESTROY from a conntrack created before the timestamp
// sysctl was set has no start time: the table supplies the NEW's), and enough to write the end of
// a flow whose DESTROY was lost (closeUnseen). Owned by the Daemon; used by the Pipeline on the
// pipeline thread only.
//
// Reconciliation with a dump of the kernel's table: beginResync() starts a new generation; every
// flow an event or a dump row touches from then on is stamped with it; closeUnseen() closes the
// flows that were not. The Pipeline calls it only once the dump ended and the event socket was
// read empty after it, so a DESTROY still queued behind the dump has had its chance.
//
// Memory: a key of 52 bytes and an OpenFlow of 72 in a node of a FlowKeyMap (storage/
// flow_key_map.hpp, which says why that map), from a pool of the table's own: a NEW takes the node
// a DESTROY gave back, so the steady state allocates nothing from malloc. Measured with 0.9, 1 and
// 1.1 million open flows (x86_64, glibc malloc, mallinfo2 before and after): 141, 149 and 147
// bytes per open flow with the slot array, so a million open flows take about 150 MB
// (docs/operations.md). The pool keeps what it took at the peak until the table is destroyed.
class FlowTable {
public:
  FlowTable() = default;
  // The map points at pool_; neither may move.
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;
  FlowTable(FlowTable&&) = delete;
  FlowTable& operator=(FlowTable&&) = delete;
  ~FlowTable() = default;

  // Completes `record` from the table and updates the table. Returns false when the record adds
  // nothing the sinks do not already have: a dump row for a flow that is already known.
  [[nodiscard]] bool apply(FlowRecord& record);

  // Call before apply(). When `record` (a dump row, UPDATE or DESTROY) is of another conntrack
  // entry than the open flow with its key, removes that flow and returns a Destroy record for it,
  // ended at the new entry's start (or the record's time, when that is unknown) with
  // TimeSource::Bound, as closeUnseen() writes one. The kernel hands a new entry for the same
  // original tuple the same id when it reuses the freed object: an entry deleted and made again
  // while the daemon was down, or while its events were lost, has the old one's key. Its reply
  // tuple (the NAT mapping: a new entry usually gets another port) tells it apart, which an
  // entry's never changes; without this its events were merged into the old row, whose mapping
  // was then lost (an exploratory run found `who` naming the old subscriber for the new port, and
  // nobody for the old one). A new entry that got the same port too (fixed-port UDP: NTP,
  // WireGuard, IPsec NAT-T) is told apart by a kernel start later than the flow's (compareStarts);
  // without that its DESTROY's start replaced the old row's, and the old flow's time vanished.
  //
  // A flow that may have no end event is ended too by a record of another entry (another id) with
  // its zone and original tuple, or its zone and reply tuple: the kernel holds one entry per tuple
  // of either direction in a zone, so the old one was gone before the new one began (bound at that
  // start). The subscriber made the same connection again, or the gateway gave the translated port
  // to another subscriber for the same destination; without this the old flow stayed open in the
  // log until the next sweep, and both held the port at once there (exploratory runs).
  //
  // The other way round, a record of another entry that began before the open flow did (its start,
  // or its time when it has none, is earlier) is a late event of an entry already replaced: an
  // UPDATE or DESTROY queued behind the dump that showed its successor. It must touch neither
  // flow: `stale` says to drop it.
  struct Replacement {
    std::optional<FlowRecord> ended;
    bool stale{false};
  };
  [[nodiscard]] Replacement endIfReplaced(const FlowRecord& record);

  // Adds a flow that the database still has open from an earlier run (SqliteSink::openFlows), so
  // that its dump row is not written a second time and its DESTROY is completed as usual. It
  // counts as seen by the current generation: the next resync decides whether it is still alive.
  void restore(const FlowRecord& open);

  // A dump has settled (Pipeline::settle; the first is the start-up dump's): every event queued
  // before it ended has been read, so from now on another entry on the tuple of a flow without end
  // events is its successor (endLackingEnd). Returns a Destroy record, bound at the other entry's
  // start, for each such flow whose successor came before the settle and is still open: such a
  // record was turned away then, since it might have been a late event of a predecessor.
  [[nodiscard]] std::vector<FlowRecord> noteSettled();

  // Starts a new generation: flows touched from now on count as seen by this resync. `start_up`:
  // it is the dump at the daemon's start, whose new rows may be flows without an end event.
  // `sweep`: a routine dump for such flows, with nothing lost (compareStarts).
  void beginResync(bool start_up = false, bool sweep = false) noexcept {
    ++generation_;
    resync_generation_ = generation_;
    start_up_dump_ = start_up;
    if (!sweep) {
      last_loss_generation_ = generation_;
    }
  }

  // Events were lost just before the records that come next (LossNoticed), where the resync that
  // repairs the loss begins later: a flow seen before now may have a successor behind its key
  // whose events come before that resync (compareStarts; a review found such a DESTROY merged into
  // the old flow). Starts a generation of its own, which does not end the resync under way.
  void noteLoss() noexcept {
    ++generation_;
    last_loss_generation_ = generation_;
  }

  // Removes every flow not seen since the last beginResync() and returns a Destroy record for each:
  // the tuples, ids, start, status and mark as last known, no counters, and end = event time =
  // `bound` with TimeSource::Bound (the flow ended at or before it, after it was last seen).
  // `only_without_end_events`: only the flows openWithoutEndEvents() counts (a sweep).
  [[nodiscard]] std::vector<FlowRecord> closeUnseen(Timestamp bound, bool only_without_end_events = false);

  // What a sweep's dump row may touch: an open flow with `record`'s key whose reply tuple is the
  // row's, or one that may have no end event (whose replacement no DESTROY will announce). Any
  // other row is left to the events queued behind the dump, since nothing was lost.
  [[nodiscard]] bool sweepMayTouch(const FlowRecord& record) const;

  // Every flow of the start-up dump may lack end events: nf_conntrack_events was not 1 when the
  // daemon started, or no earlier run recorded the sysctls' history (the first run on this
  // database, e.g. the package installed on a running gateway). Else only those without a kernel
  // start time (openWithoutEndEvents).
  void setAllFromStartUpSuspect(bool all) noexcept { all_from_start_up_ = all; }

  [[nodiscard]] std::size_t openFlows() const noexcept { return open_.size(); }
  // The open flows that may never report their end: an entry made while nf_conntrack_events was
  // not 1 and no listener was subscribed (on the whole host: the kernel's flag is not per
  // namespace) has no event extension, so only a dump finds it gone.
  // Which ones: the flows an earlier run first saw in its start-up dump (restored with
  // observed_at_start) and, of this start-up dump's new flows, all of them or those without a
  // kernel start time (setAllFromStartUpSuspect), i.e. made before nf_conntrack_timestamp was 1,
  // which the daemon and the shipped sysctl.d file set together with nf_conntrack_events. An
  // UPDATE event proves the extension. A walk of the table.
  [[nodiscard]] std::size_t openWithoutEndEvents() noexcept;

private:
  // Ordered for size: 72 bytes.
  struct OpenFlow {
    std::int64_t start_ns{0};
    FlowTuple reply;
    std::uint32_t status{0};
    std::uint32_t mark{0};
    std::uint32_t seen{0};  // the generation that last touched it
    TimeSource start_source{TimeSource::Receive};
    bool has_start{false};
    bool observed_at_start{false};
    bool may_lack_end_event{false};  // counted by openWithoutEndEvents(); settled when added
    bool start_is_entry_stamp{false};  // start_ns is the entry's CTA_TIMESTAMP start (compareStarts)
  };
  static_assert(sizeof(OpenFlow) <= 72, "keep the per-flow state compact: it is held for every open flow");

  [[nodiscard]] OpenFlow remember(const FlowRecord& record) const noexcept;
  // Of `record` and `flow`, with the same key and reply tuple: whether the record's entry began
  // after the flow's (a successor that reused the id) or before it (a late event of the entry the
  // flow replaced), where the starts say so for certain.
  enum class StartOrder : std::uint8_t { Unknown, Later, Earlier };
  [[nodiscard]] StartOrder compareStarts(const FlowRecord& record, const OpenFlow& flow) const noexcept;
  // endIfReplaced() for a record whose key no open flow has: the flow without end events that
  // another entry had on its zone and original or reply tuple, if any.
  [[nodiscard]] Replacement endIfTupleTaken(const FlowRecord& record);
  // The same for one of the two indexes (lacking_end_by_original_, lacking_end_by_reply_), at
  // `probe`, the record's tuple as that index keys it.
  [[nodiscard]] Replacement endLackingEnd(storage::FlowKeyMap<FlowKey>& index, const FlowKey& probe,
                                          const FlowRecord& record);
  // A zone and a tuple as the two indexes key them: what the kernel keeps unique among live entries.
  [[nodiscard]] static FlowKey tupleKey(std::uint16_t zone, const FlowTuple& tuple) noexcept {
    FlowKey key;
    key.zone = zone;
    key.original = tuple;
    return key;
  }
  // Records that the flow of `key`, with `reply`, may have no end event (OpenFlow::may_lack_end_event),
  // and forgets it again when it ends or proves it has the extension.
  void noteMayLackEnd(const FlowKey& key, const FlowTuple& reply);
  void forgetLackingEnd(const FlowKey& key, const OpenFlow& flow);
  // Whether a flow last seen in generation `seen` was seen before generation `mark`: by the
  // distance from the current one, which stays right when the 32-bit count wraps.
  [[nodiscard]] bool seenBefore(std::uint32_t seen, std::uint32_t mark) const noexcept {
    return generation_ - seen > generation_ - mark;
  }
  // The Destroy record closeUnseen() and endIfReplaced() write for a flow whose end was not seen.
  [[nodiscard]] static FlowRecord boundDestroy(const FlowKey& key, const OpenFlow& flow, Timestamp bound) noexcept;
  // Removes the open flow at `flow` (forgetLackingEnd too, which every removal needs) and returns
  // its boundDestroy() record.
  [[nodiscard]] FlowRecord endUnseen(storage::FlowKeyMap<OpenFlow>::iterator flow, Timestamp bound);
  static void refresh(OpenFlow& flow, const FlowRecord& record) noexcept;

  std::pmr::unsynchronized_pool_resource pool_;  // declared first: outlives open_
  storage::FlowKeyMap<OpenFlow> open_{&pool_};
  // The key of each open flow that may have no end event, by its zone and original tuple and by its
  // zone and reply tuple (tupleKey), so that a NEW of another entry on either finds it
  // (endIfTupleTaken). An entry leaves when its flow ends or sends an event (forgetLackingEnd); one
  // that another such flow's entry overwrote is caught by the checks of a lookup. Both are emptied
  // when no such flow is left. Only start-up dumps' flows are ever in them.
  // From the heap, not the table's pool, which keeps what it took: a first run on a large gateway
  // suspects every flow of its dump, and those end within hours (a review).
  storage::FlowKeyMap<FlowKey> lacking_end_by_original_{std::pmr::new_delete_resource()};
  storage::FlowKeyMap<FlowKey> lacking_end_by_reply_{std::pmr::new_delete_resource()};
  bool start_up_settled_{false};
  // Counts resyncs and losses (beginResync, noteLoss): a flow's `seen` is the one that last touched it.
  std::uint32_t generation_{0};
  // The generation the last beginResync() started: a flow seen in it or a later one was seen by
  // that resync (closeUnseen).
  std::uint32_t resync_generation_{0};
  // The generation of the last loss, noticed (noteLoss) or repaired by a resync (or the start): a
  // flow last seen before it may have a successor behind its key (compareStarts).
  std::uint32_t last_loss_generation_{0};
  bool start_up_dump_{false};
  bool all_from_start_up_{false};
  // The open flows that may lack end events, counted as they come and go (noteMayLackEnd,
  // forgetLackingEnd) and recounted by openWithoutEndEvents(): while none is, a NEW needs no search
  // for one (endIfReplaced).
  std::size_t may_lack_count_{0};
  // Records of another entry on the tuple of a flow without end events, read before the start-up
  // dump settled (endLackingEnd), for noteSettled().
  struct HeldSuccessor {
    FlowKey flow;
    FlowKey successor;
    Timestamp began;
  };
  std::vector<HeldSuccessor> held_successors_;
};

}  // namespace ctaudit::daemon
