// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/event_reader.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace ctaudit::daemon {
namespace {

// Dump rows go to the queue in chunks of this many, so that the pipeline starts on them while the
// dump goes on and the lock is taken once per chunk.
constexpr std::size_t kDumpChunk = 1024;

std::string describe(const GapRecord& gap) {
  return formatRfc3339(gap.start) + " .. " + formatRfc3339(gap.end);
}

// ppoll(2) on one descriptor for at most `wait` (positive), at nanosecond resolution, unlike
// poll's milliseconds: its result, errno set when negative.
int pollFor(pollfd& fd, std::chrono::nanoseconds wait) noexcept {
  const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(wait);
  const timespec timeout{seconds.count(), (wait - seconds).count()};
  return ::ppoll(&fd, 1, &timeout, nullptr);
}

}  // namespace

Result<std::unique_ptr<EventReader>> EventReader::create(EventSource& source, EventQueue& queue, const Clock& clock,
                                                         Options options, Timestamp subscribed, bool initial_dump,
                                                         std::shared_ptr<spdlog::logger> log) {
  UniqueFd stop{::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
  if (!stop.valid()) {
    const int err = errno;
    return fail(Errc::Io, std::string("cannot create an eventfd for the reader thread: ") + std::strerror(err), err);
  }
  return std::unique_ptr<EventReader>(
      new EventReader(source, queue, clock, options, subscribed, initial_dump, std::move(stop), std::move(log)));
}

EventReader::EventReader(EventSource& source, EventQueue& queue, const Clock& clock, Options options,
                         Timestamp subscribed, bool initial_dump, UniqueFd stop, std::shared_ptr<spdlog::logger> log)
    : source_(source),
      queue_(queue),
      clock_(clock),
      options_(options),
      stop_(std::move(stop)),
      log_(std::move(log)),
      schedule_(options.resync, subscribed, 0),
      last_emptied_(subscribed),
      wait_(options.pacing.min),
      last_dump_end_(subscribed),
      last_dump_entries_(options.start_dump_entries),
      last_dump_time_(options.start_dump_per_entry * static_cast<std::int64_t>(options.start_dump_entries)),
      rate_since_(subscribed) {
  if (initial_dump) {
    schedule_.dumpStarted(subscribed);
    schedule_.dumpFinished(subscribed);
  }
  // Entries of the start-up dump that could not be decoded: flows not in the log until they end.
  if (options.start_dump_refused > 0) {
    undecodable_.add(subscribed, subscribed, subscribed, options.start_dump_refused);
    last_dump_refused_ = options.start_dump_refused;
  }
}

EventReader::~EventReader() {
  if (thread_.joinable()) {
    requestStop();
    queue_.abandon();
    thread_.join();
  }
}

void EventReader::start() {
  thread_ = std::thread([this] { run(); });
}

void EventReader::requestStop() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(stop_.get(), &one, sizeof one);
}

void EventReader::join() {
  if (thread_.joinable()) {
    thread_.join();
  }
}

void EventReader::run() noexcept {
  // Named for top -H, perf and core dumps (at most 15 characters).
  (void)::pthread_setname_np(::pthread_self(), "ctauditd-reader");
  Result<void> ended = fail(Errc::Io, "the reader thread stopped unexpectedly");
  try {
    ended = loop();
  } catch (const std::exception& e) {
    ended = fail(Errc::Io, std::string("the reader thread failed: ") + e.what());
  }
  if (ended) {
    queue_.close();
    return;
  }
  // Whatever is known about losses goes on the record before the pipeline hears the error.
  try {
    reportDropWindows(true);
    if (const auto gap = schedule_.abandon(clock_.now(), kernel_drops_)) {
      reportGap(*gap);
    }
    publish();
  } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): the close below says why
  }
  queue_.close(ended.error());
}

std::optional<Timestamp> EventReader::nextWake() const {
  std::optional<Timestamp> wake = schedule_.nextResyncAt();
  for (const DropWindow* window : {&overflow_, &undecodable_}) {
    if (!window->empty()) {
      const Timestamp quiet_at = window->lastDropAt() + options_.overflow_quiet;
      wake = wake ? std::min(*wake, quiet_at) : quiet_at;
    }
  }
  return wake;
}

Result<void> EventReader::loop() {
  for (;;) {
    // A quiet socket is still read (to EAGAIN) every idle_check: its drop counter, read then,
    // keeps the start of a future overrun window close to the truth.
    const Timestamp now = clock_.now();
    Timestamp wake = now + options_.idle_check;
    if (schedule_.settling()) {
      wake = now;  // a dump just ended: read until empty now, quiet socket or not
    } else if (const auto due = nextWake()) {
      wake = std::min(wake, *due);
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(wake - now).count();
    std::array<pollfd, 2> fds{{{source_.fd(), POLLIN, 0}, {stop_.get(), POLLIN, 0}}};
    waiting_for_events_.store(true);  // after this turn's push and publish
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<std::int64_t>(wait, 0, INT_MAX)));
    waiting_for_events_.store(false);
    if (ready < 0) {
      const int err = errno;
      if (err == EINTR) {
        continue;
      }
      return fail(Errc::Io, std::string("poll failed in the reader thread: ") + std::strerror(err), err);
    }
    if ((fds[1].revents & POLLIN) != 0) {
      return finish();
    }
    if (ready == 0 || (fds[0].revents & (POLLIN | POLLERR)) != 0) {
      // Only after a turn that emptied the socket (a thread that is behind reads on at once), and
      // not on an error (POLLERR: an overrun, already a loss) nor while a dump settles.
      const bool gather = ready > 0 && caught_up_ && (fds[0].revents & POLLERR) == 0 && !schedule_.settling();
      // What the turn reads arrived after this (the socket was read empty before the poll), and
      // the wait below is ours: DecodeContext::woke.
      const std::optional<Timestamp> woke = gather ? std::optional{clock_.now()} : std::nullopt;
      if (gather && stopRequestedWithin(wait_)) {
        return finish();
      }
      turn_records_ = 0;
      auto read = readTurn(options_.reads_per_turn, std::nullopt, woke);
      if (!read) {
        return Unexpected{read.error()};
      }
      caught_up_ = *read;
      if (gather) {
        const Timestamp ended = clock_.now();
        wait_ = options_.pacing.next(turn_records_, ended - last_turn_end_);
        last_turn_end_ = ended;
      }
    }
    reportDropWindows(false);
    sweepIfDue(clock_.now());
    if (schedule_.resyncDue(clock_.now())) {
      resync();
    }
    publish();
  }
}

void EventReader::sweepIfDue(Timestamp now) {
  if (options_.sweep_while == nullptr) {
    return;
  }
  // The event rate of the last second, kept up to date whether a sweep is due or not.
  const SourceStats& source = source_.stats();
  const std::uint64_t events = source.messages - source.dump_entries;
  if (const auto elapsed = now - rate_since_; elapsed >= std::chrono::seconds{1}) {
    events_per_second_ = static_cast<double>(events - rate_events_base_) /
                         std::chrono::duration<double>(elapsed).count();
    rate_since_ = now;
    rate_events_base_ = events;
  }
  if (options_.sweep_while->load(std::memory_order_relaxed) == 0 || now - last_dump_end_ < options_.sweep_every ||
      schedule_.nextResyncAt() || sweepWouldCrowdTheSocket(now)) {
    return;
  }
  put_off_since_.reset();
  put_off_warned_ = false;
  schedule_.requestSweep(now);
}

bool EventReader::sweepWouldCrowdTheSocket(Timestamp now) {
  if (last_dump_entries_ == 0 ||
      !dumpWouldCrowdTheSocket(events_per_second_, last_dump_time_, options_.buffer_events)) {
    return false;
  }
  if (!put_off_since_) {
    put_off_since_ = now;
    log_->info("putting off a sweep for flows that may never report their end: the last dump of {} entries took {} "
               "ms, and at {:.0f} events/s about {:.0f} events would queue meanwhile in the event socket, which holds "
               "about {}; trying again every second",
               last_dump_entries_, std::chrono::duration_cast<std::chrono::milliseconds>(last_dump_time_).count(),
               events_per_second_, eventsQueuedDuring(events_per_second_, last_dump_time_), options_.buffer_events);
  } else if (!put_off_warned_ && now - *put_off_since_ >= std::chrono::hours{1}) {
    log_->warn("sweeps have been put off for an hour by the event rate: flows from the start-up dump that ended "
               "without an end event stay open in the log until one runs; a larger --receive-buffer lets it run");
    put_off_warned_ = true;
  }
  return true;
}

void EventReader::noteKernelDrops(Timestamp now) {
  const std::uint64_t drops = source_.kernelDrops();
  if (drops > kernel_drops_) {
    drops_rose_at_ = now;
  }
  kernel_drops_ = drops;
}

std::chrono::nanoseconds EventReader::pendingMayArriveFor(Timestamp deadline) const {
  // The kernel keeps an event for a second try only after a delivery failed, which the socket's
  // drop counter counts (also with NETLINK_NO_ENOBUFS): with no rise for final_quiet, nothing is
  // pending, and a stop on a busy gateway ends at its first empty read as in the default mode (a
  // review: waiting for a quiet socket there took the whole drain limit).
  if (!drops_rose_at_ || options_.final_quiet <= std::chrono::nanoseconds::zero()) {
    return std::chrono::nanoseconds::zero();
  }
  const Timestamp now = clock_.now();
  return std::max(std::chrono::nanoseconds::zero(), std::min(*drops_rose_at_ + options_.final_quiet, deadline) - now);
}

bool EventReader::moreWithin(std::chrono::nanoseconds wait) const {
  if (wait <= std::chrono::nanoseconds::zero()) {
    return false;
  }
  pollfd events{source_.fd(), POLLIN, 0};
  // EINTR: read again, and wait afresh. Another error (ENOMEM) would repeat at once: stop waiting.
  const int ready = pollFor(events, wait);
  return ready > 0 || (ready < 0 && errno == EINTR);
}

bool EventReader::stopRequestedWithin(std::chrono::nanoseconds wait) const {
  if (wait <= std::chrono::nanoseconds::zero()) {
    return false;
  }
  pollfd stop{stop_.get(), POLLIN, 0};
  // EINTR or an error: read now rather than wait again; the main poll sees a persistent error.
  return pollFor(stop, wait) > 0 && (stop.revents & POLLIN) != 0;
}

Result<bool> EventReader::readTurn(std::size_t max_reads, std::optional<Timestamp> deadline,
                                   std::optional<Timestamp> woke) {
  const EventSource::Deliver collect = [this](FlowRecord&& record) {
    batch_.push(record);
    ++turn_records_;
  };
  for (std::size_t i = 0; i < max_reads; ++i) {
    const Timestamp started = clock_.now();
    // `woke` bounds what the turn's first read takes; a later read may take what queued while the
    // reader was held up (a full queue in reliable mode waits for room), so it gets the read time.
    auto status = source_.readBatch(clock_, i == 0 ? woke : std::nullopt, collect);
    push(options_.when_full);
    noteUndecodable();
    if (!status) {
      return Unexpected{status.error()};
    }
    switch (*status) {
      case EventSource::ReadStatus::Data:
        if (options_.reads_prove_no_loss) {
          schedule_.noteCleanRead(started);
        }
        break;
      case EventSource::ReadStatus::Overrun:
        markLoss(clock_.now());
        // The kernel reports ENOBUFS before it hands out what it had queued before the drop: the
        // records read until the socket is empty may still be from before the loss. A second mark
        // there bounds them (a review).
        mark_loss_at_empty_ = true;
        noteKernelDrops(clock_.now());
        schedule_.noteOverrun(clock_.now());
        schedule_.noteDrops(clock_.now(), kernel_drops_);
        break;
      case EventSource::ReadStatus::Empty:
        if (std::exchange(mark_loss_at_empty_, false)) {
          batch_.push(LossNoticed{clock_.now()});
          push(options_.when_full);
        }
        if (records_since_drained_) {
          const auto loss = unreportedLossSince();
          batch_.push(ReaderDrained{loss ? std::min(started, *loss) : started});
          push(options_.when_full);
          records_since_drained_ = false;
        }
        noteEmpty();
        return true;
    }
    if (deadline && clock_.now() >= *deadline) {
      return false;
    }
  }
  return false;
}

void EventReader::noteEmpty() {
  const Timestamp now = clock_.now();
  last_emptied_ = now;
  noteKernelDrops(now);
  const auto settled = schedule_.noteEmpty(now, kernel_drops_);
  if (!settled.settled) {
    return;
  }
  batch_.push(ResyncSettled{now});
  push(EventQueue::WhenFull::Wait);
  if (settled.gap) {
    reportGap(*settled.gap);
  }
}

void EventReader::resync() {
  const Timestamp begin = clock_.now();
  ++resyncs_;
  // A sweep with nothing lost is routine: said at debug level, every few minutes as it may be.
  const bool routine = schedule_.sweepOnly();
  schedule_.dumpStarted(begin);
  log_->log(routine ? spdlog::level::debug : spdlog::level::info,
            "resynchronising with the kernel's conntrack table (dump {}{})", resyncs_,
            routine ? ": a sweep for flows from the start-up dump that may never report their end" : "");
  batch_.push(ResyncBegin{begin, routine});
  push(EventQueue::WhenFull::Wait);
  const auto dumped = source_.dumpTable(clock_, [this](FlowRecord&& record) {
    batch_.push(record);
    if (batch_.records() >= kDumpChunk) {
      push(EventQueue::WhenFull::Wait);
    }
  });
  const Timestamp end = clock_.now();
  // An entry of the dump that could not be decoded is a flow the dump did not see: closing the
  // flows it did not see would close that one, alive. And it is not asked for again, since the
  // next dump would refuse the same entry (a review found a dump a second for ever): one gap, and
  // this resync closes nothing. (A dump that failed closes nothing either; the one that tries
  // again says what it refused.)
  const std::uint64_t refused = dumped ? dumped->refused : 0;
  // The same entries refused by every dump (an entry the decoder cannot read lives as long as its
  // flow) are one loss: a gap and a warning when the count changes, not at every sweep.
  if (refused > 0 && refused != last_dump_refused_) {
    undecodable_.add(begin, end, end, refused);
    log_->warn("{} of the conntrack table dump could not be decoded: resyncs close no flow they did not see while "
               "that lasts, so flows whose end was lost stay open",
               refused == 1 ? std::string("an entry") : std::to_string(refused) + " entries");
  }
  last_dump_refused_ = refused;
  caught_up_ = false;  // events queued during the dump, done or failed: read them at once
  batch_.push(ResyncEnd{end, dumped.has_value(), options_.close_unseen && refused == 0});
  push(EventQueue::WhenFull::Wait);
  if (!dumped) {
    log_->error("the resync dump failed, trying again later: {}", dumped.error().detail);
    schedule_.dumpFailed(end);
    return;
  }
  schedule_.dumpFinished(end);
  last_dump_end_ = end;
  last_dump_entries_ = dumped->entries;
  last_dump_time_ = end - begin;
  log_->log(routine ? spdlog::level::debug : spdlog::level::info, "dumped {} conntrack entries in {} ms", dumped->entries,
            std::chrono::duration_cast<std::chrono::milliseconds>(end - begin).count());
}

Result<void> EventReader::finish() {
  const Timestamp stop = clock_.now();
  const Timestamp deadline = stop + options_.final_drain_limit;
  for (;;) {
    auto read = readTurn(options_.reads_per_turn, deadline);
    if (!read) {
      return Unexpected{read.error()};
    }
    if (*read && !moreWithin(pendingMayArriveFor(deadline))) {
      break;
    }
    if (clock_.now() >= deadline) {
      // What is still queued is newer than what was read, and is lost with the socket.
      GapRecord unread;
      unread.reason = GapReason::KernelOverrun;
      unread.start = stop;
      unread.end = clock_.now();
      log_->warn("stopping with conntrack events still queued in the kernel after {} ms of reading",
                 std::chrono::duration_cast<std::chrono::milliseconds>(options_.final_drain_limit).count());
      reportGap(unread);
      break;
    }
  }
  reportDropWindows(true);
  if (const auto gap = schedule_.abandon(clock_.now(), kernel_drops_)) {
    reportGap(*gap);
  }
  publish();
  return {};
}

void EventReader::push(EventQueue::WhenFull when_full) {
  if (batch_.empty()) {
    return;
  }
  records_since_drained_ = records_since_drained_ || batch_.records() > 0;
  const std::size_t dropped = queue_.push(batch_, when_full);
  if (dropped > 0) {
    const Timestamp now = clock_.now();
    for (const PipelineItem& item : batch_.unpack()) {
      if (const auto* record = std::get_if<FlowRecord>(&item)) {
        overflow_.add(record->event_time, now);
      }
    }
    queue_dropped_ += dropped;
    schedule_.noteQueueLoss(now);
    if (!overflow_logged_) {
      log_->error("the queue to the pipeline is full ({:.1f} MiB of records): dropping new records until it "
                  "drains; the pipeline cannot keep up with the sinks (see --queue-max)",
                  static_cast<double>(queue_.capacityBytes()) / (1U << 20U));
      overflow_logged_ = true;
    }
  }
  batch_.clear();  // what the queue left in it: the records it dropped
  if (dropped > 0) {
    markLoss(clock_.now());  // they were the batch's newest: the records read next follow the loss
  }
}

void EventReader::markLoss(Timestamp now) {
  // Each marker starts a generation of the flow table's (FlowTable::noteLoss), 32 bits wide, which
  // it compares by distance, so that a wrap does no harm. A flow seen in the 10 ms after a marker is
  // taken to be seen before a loss in them, as one seen after it.
  constexpr std::chrono::milliseconds kLossMarkerInterval{10};
  if (last_loss_marker_ && now - *last_loss_marker_ < kLossMarkerInterval && now >= *last_loss_marker_) {
    return;
  }
  last_loss_marker_ = now;
  batch_.push(LossNoticed{now});
}

void EventReader::reportDropWindows(bool force) {
  if (reportDropWindow(overflow_, GapReason::QueueOverflow, force)) {
    overflow_logged_ = false;
  }
  (void)reportDropWindow(undecodable_, GapReason::MalformedEvent, force);
}

bool EventReader::reportDropWindow(DropWindow& window, GapReason reason, bool force) {
  if (window.empty() || (!force && clock_.now() - window.lastDropAt() < options_.overflow_quiet)) {
    return false;
  }
  reportGap(window.take(reason));
  return true;
}

void EventReader::noteUndecodable() {
  const std::uint64_t malformed = source_.stats().malformed;
  if (malformed == malformed_seen_) {
    return;
  }
  const Timestamp now = clock_.now();
  undecodable_.add(last_emptied_, now, now, malformed - malformed_seen_);
  malformed_seen_ = malformed;
  schedule_.noteQueueLoss(now);  // the flow table needs a resync; the gap is this window's
}

void EventReader::reportGap(const GapRecord& gap) {
  const std::string lost =
      gap.lost_records > 0 ? std::to_string(gap.lost_records) + " event(s) lost" : "an unknown number of events lost";
  log_->warn("the log has a gap ({}) in {}: {}{}", gapReasonName(gap.reason), describe(gap), lost,
             gap.overruns > 0 ? ", " + std::to_string(gap.overruns) + " ENOBUFS" : std::string{});
  batch_.push(GapReport{gap});
  push(EventQueue::WhenFull::Wait);
}

std::optional<Timestamp> EventReader::unreportedLossSince() const noexcept {
  std::optional<Timestamp> since = schedule_.openWindowStart();
  for (const DropWindow* window : {&overflow_, &undecodable_}) {
    if (!window->empty()) {
      since = since ? std::min(*since, window->earliest()) : window->earliest();
    }
  }
  return since;
}

void EventReader::publish() {
  const SourceStats& source = source_.stats();
  ReaderStats stats;
  stats.datagrams = source.datagrams;
  stats.messages = source.messages;
  stats.decoded = source.decoded;
  stats.malformed = source.malformed + source.dump_refused;
  stats.from_user_space = source.from_user_space;
  stats.overruns = source.overruns;
  stats.kernel_drops = kernel_drops_;
  stats.dump_entries = source.dump_entries;
  stats.resyncs = resyncs_;
  stats.queue_dropped = queue_dropped_;
  stats.unreported_loss_since = unreportedLossSince();
  queue_.publish(stats);
}

}  // namespace ctaudit::daemon
