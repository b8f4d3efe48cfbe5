// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include "daemon/drop_window.hpp"
#include "daemon/event_queue.hpp"
#include "daemon/event_source.hpp"
#include "daemon/pipeline_item.hpp"
#include "daemon/read_pacing.hpp"
#include "daemon/resync_schedule.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

// The reader thread: drains the event socket into the EventQueue so that the kernel's buffer is
// emptied however long the pipeline thread spends in a sink, and repairs lost events with table
// dumps. Owned by the Daemon, declared after the source and the queue it uses (not owned), so it is
// destroyed, and its thread joined, first.
//
// The thread's loop polls the event socket and a stop eventfd. When the socket turns readable it
// waits (on the stop eventfd only) before the turn, as long as `pacing` says for the rate the last
// turn saw, unless the last turn ended with events still queued. Each turn reads up to
// `reads_per_turn` recvmmsg batches, pushing each batch to the queue with one lock, then looks at
// the stop request and the resync timer. What happens to records that do not fit in the queue is
// the `when_full` policy: dropped (the default; counted, reported as one QueueOverflow gap once no
// record was dropped for `overflow_quiet`, and repaired by a resync) or, in reliable mode, waited
// for, so that the kernel's socket fills and the kernel keeps the DESTROY events.
//
// A resync (ResyncSchedule says when) sends ResyncBegin, the dump's rows, ResyncEnd, and after the
// next empty read ResyncSettled, then a KernelOverrun gap when the overrun window closes. Dump rows
// are never dropped: a full queue makes the dump wait, since a dump with holes would close flows
// that are alive. The socket is not read during a dump, so every event the kernel queued before the
// dump ended is behind the dump's rows; the pipeline depends on that order.
//
// Stop: requestStop() (any thread). The thread reads what the socket holds until it is empty (and,
// while the kernel's drop counter rose less than `final_quiet` ago, has stayed so until then) or
// `final_drain_limit` has passed, reports open gaps, closes the queue and ends. A socket error
// closes the queue with the error.
//
// Threading: the constructor, start() and join() belong to the owner's thread; requestStop() to
// any; everything else runs on the reader thread, which alone touches the source after start().
class EventReader {
public:
  struct Options {
    EventQueue::WhenFull when_full{EventQueue::WhenFull::DropNewest};
    // Default mode: a read that returns data proves nothing was dropped before it began. Not so
    // with NETLINK_NO_ENOBUFS (reliable mode), which never reports ENOBUFS.
    bool reads_prove_no_loss{true};
    // Default mode: a resync closes the flows the dump no longer shows (ResyncEnd::close_unseen).
    // Not in reliable mode, where their DESTROY is resent by the kernel.
    bool close_unseen{true};
    // While *sweep_while is not zero (Pipeline::openWithoutEndEvents: flows from the start-up dump
    // that may never report their end are open), a dump at most every sweep_every, though nothing
    // was lost: an entry made before nf_conntrack_events was 1 may have no event extension, so
    // only a dump finds it gone (docs/operations.md, "Flows that never report their end"). Null:
    // never (reliable mode, whose resyncs close nothing).
    const std::atomic<std::size_t>* sweep_while{nullptr};
    std::chrono::nanoseconds sweep_every{std::chrono::minutes{5}};
    // Events the socket's receive buffer holds (0: not known). A sweep is put off while the last
    // dump's time, times the event rate of the last second, comes to more than half of it: events
    // queue in the socket while the reader dumps, and a sweep must not make the overrun it is not
    // there to repair. After an hour of that it warns.
    std::size_t buffer_events{0};
    // The first estimate of a dump's time, before the reader has made one: the entries of the
    // start-up dump at start_dump_per_entry (the Daemon's own timing of that dump also counts the
    // pipeline's work on each row and the sinks' writes, several times the dump's).
    std::size_t start_dump_entries{0};
    // Entries of the start-up dump the decoder refused: a gap, reported at the start.
    std::uint64_t start_dump_refused{0};
    std::chrono::nanoseconds start_dump_per_entry{std::chrono::microseconds{5}};
    ResyncSchedule::Options resync{};
    std::chrono::nanoseconds overflow_quiet{std::chrono::seconds{1}};
    std::chrono::nanoseconds final_drain_limit{std::chrono::seconds{2}};
    // At the stop, while the kernel's drop counter rose less than this long ago, the reader reads
    // on until the socket has stayed empty for the rest of it (within final_drain_limit).
    // Reliable mode: the kernel sends a DESTROY it could not deliver again about a second after
    // the failure, and frees those entries unsent once no listener is left (an exploratory run
    // lost thousands so, read empty in the 40 ms its stop took). Zero: the first empty read.
    std::chrono::nanoseconds final_quiet{0};
    // A quiet socket is read this often anyway, to look at its drop counter.
    std::chrono::nanoseconds idle_check{std::chrono::seconds{1}};
    std::size_t reads_per_turn{64};
    // After the socket turns readable, the thread waits before it reads, so that one wake takes
    // what arrived meanwhile instead of one wake per burst of events (issue #4: at 150k events/s
    // the thread woke ~10k times a second, and the context switches were its largest single
    // cost): 10 ms at a high rate, up to 250 ms at a low one (ReadPacing). The daemon lowers `max`
    // to what its receive buffer allows (ReadPacing::maxFor: 224 ms for the default 256 MiB); the
    // pipeline batches for a second anyway.
    // min = max = 0 reads at once.
    ReadPacing pacing{};
  };

  // `subscribed`: when the event socket joined its groups (its drop counter then was 0).
  // `initial_dump`: the table was dumped into the pipeline before start(), so the thread's first
  // empty read settles it. `log` is the "netlink" logger. Errors: Errc::Io (no eventfd).
  [[nodiscard]] static Result<std::unique_ptr<EventReader>> create(EventSource& source, EventQueue& queue,
                                                                   const Clock& clock, Options options,
                                                                   Timestamp subscribed, bool initial_dump,
                                                                   std::shared_ptr<spdlog::logger> log);
  EventReader(const EventReader&) = delete;
  EventReader& operator=(const EventReader&) = delete;
  EventReader(EventReader&&) = delete;
  EventReader& operator=(EventReader&&) = delete;
  // Stops the thread if it runs (abandoning the queue first, so a waiting push returns) and joins.
  ~EventReader();

  // Starts the thread. Precondition: not started yet.
  void start();
  // Asks the thread to read what is left and stop. Any thread; idempotent.
  void requestStop() noexcept;
  // Waits for the thread to end. Precondition: the queue's consumer keeps taking until the queue
  // is closed, or has abandoned it.
  void join();
  // Any thread. The thread waits in poll() for the socket: everything it read before has been
  // pushed. With the socket found empty before this is asked and the queue found empty after,
  // every event sent before the socket was checked has been taken from the queue
  // (Daemon::recordedUpTo).
  [[nodiscard]] bool waitingForEvents() const noexcept { return waiting_for_events_.load(); }

private:
  EventReader(EventSource& source, EventQueue& queue, const Clock& clock, Options options, Timestamp subscribed,
              bool initial_dump, UniqueFd stop, std::shared_ptr<spdlog::logger> log);

  void run() noexcept;
  [[nodiscard]] Result<void> loop();
  // Reads up to `max_reads` batches, or until `deadline`. True when the socket was read empty.
  // `woke`: as EventSource::readBatch takes it, for the turn's first read.
  [[nodiscard]] Result<bool> readTurn(std::size_t max_reads, std::optional<Timestamp> deadline,
                                      std::optional<Timestamp> woke = std::nullopt);
  // Waits up to `wait` on the stop eventfd; true when a stop was requested meanwhile.
  [[nodiscard]] bool stopRequestedWithin(std::chrono::nanoseconds wait) const;
  // Whether the event socket turns readable within `wait` (false at once for none).
  [[nodiscard]] bool moreWithin(std::chrono::nanoseconds wait) const;
  // Reads the kernel's drop counter into kernel_drops_, and when it rose, drops_rose_at_.
  void noteKernelDrops(Timestamp now);
  // At the stop: how much longer a DESTROY the kernel will send again may still arrive (zero when
  // the drop counter has not risen for final_quiet), within `deadline`.
  [[nodiscard]] std::chrono::nanoseconds pendingMayArriveFor(Timestamp deadline) const;
  void noteEmpty();
  void resync();
  // Asks for a sweep (Options::sweep_while) when one is due at `now`.
  void sweepIfDue(Timestamp now);
  [[nodiscard]] Result<void> finish();
  void push(EventQueue::WhenFull when_full);
  // Reports the queue overflow window and that of undecodable messages, each once no record was
  // lost to it for overflow_quiet, or now.
  void reportDropWindows(bool force);
  // Whether `window` was reported as a gap of `reason`.
  bool reportDropWindow(DropWindow& window, GapReason reason, bool force);
  // Messages the source could not decode since the last call, each a lost event: into their window
  // (they arrived after the socket was last read empty, and by now), and a resync to repair them.
  void noteUndecodable();
  void reportGap(const GapRecord& gap);
  void publish();
  // ReaderStats::unreported_loss_since, as it stands now.
  [[nodiscard]] std::optional<Timestamp> unreportedLossSince() const noexcept;
  [[nodiscard]] std::optional<Timestamp> nextWake() const;

  EventSource& source_;
  EventQueue& queue_;
  const Clock& clock_;
  Options options_;
  UniqueFd stop_;
  std::shared_ptr<spdlog::logger> log_;
  std::thread thread_;

  // Reader thread only, after start().
  ResyncSchedule schedule_;
  DropWindow overflow_;
  DropWindow undecodable_;
  std::uint64_t malformed_seen_{0};  // SourceStats::malformed (events) in undecodable_ (or reported)
  std::uint64_t last_dump_refused_{0};  // entries the last dump could not decode
  Timestamp last_emptied_{};         // when a read last found the socket empty
  PipelineBatch batch_;
  std::atomic<bool> waiting_for_events_{false};  // waitingForEvents()
  // The last turn read the socket empty, and no dump has run since (events queue meanwhile): only
  // then may the next turn wait to gather more, and pass DecodeContext::woke.
  bool caught_up_{true};
  bool records_since_drained_{false};  // records pushed since the last ReaderDrained
  // Pushes LossNoticed ahead of the records read next, at most one per kLossMarkerInterval: the
  // flow table counts them in a 32-bit generation.
  void markLoss(Timestamp now);
  std::optional<Timestamp> last_loss_marker_;
  bool mark_loss_at_empty_{false};  // an overrun since the socket was last read empty
  std::chrono::nanoseconds wait_{};  // before the next turn that follows a wake (pacing)
  std::size_t turn_records_{0};      // records read in the turn under way
  Timestamp last_turn_end_{};
  std::uint64_t kernel_drops_{0};
  std::optional<Timestamp> drops_rose_at_;  // when kernel_drops_ last rose (noteKernelDrops)
  std::uint64_t resyncs_{0};
  Timestamp last_dump_end_{};    // sweepIfDue() counts from it
  // The last dump (first the estimate from Options::start_dump_entries), and the event rate over
  // the last second, for sweepIfDue().
  std::size_t last_dump_entries_{0};
  std::chrono::nanoseconds last_dump_time_{};
  std::optional<Timestamp> put_off_since_;  // the sweep due has been put off since (logged then)
  bool put_off_warned_{false};             // ... for an hour (logged once)
  Timestamp rate_since_{};
  std::uint64_t rate_events_base_{0};
  double events_per_second_{0};
  // Whether a sweep now would queue more than half of Options::buffer_events meanwhile, estimated
  // from the last dump and the event rate of the last second (logged once until a sweep runs).
  [[nodiscard]] bool sweepWouldCrowdTheSocket(Timestamp now);
  std::uint64_t queue_dropped_{0};
  bool overflow_logged_{false};
};

}  // namespace ctaudit::daemon
