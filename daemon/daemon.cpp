// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <thread>

#include <poll.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "daemon/config_check.hpp"
#include "daemon/output_paths.hpp"
#include "daemon/privileges.hpp"
#include "daemon/record_budget.hpp"
#include "daemon/sysctl.hpp"
#include "storage/jsonl_sink.hpp"
#include "storage/schema.hpp"

namespace ctaudit::daemon {
namespace {

// How often the stats file is rewritten (node_exporter reads it when scraped, typically every 15 s
// or more).
constexpr auto kStatsInterval = std::chrono::seconds{5};
// How often `systemctl status` gets a new STATUS= line (the rate in it is averaged over this).
constexpr auto kStatusInterval = std::chrono::seconds{5};
// A big batch from the queue is worked through in chunks of this many items, with a Batcher tick
// after each, so that the flush interval holds under load too.
constexpr std::size_t kItemsPerTick = 4096;
// After poll() failed, the pipeline's pause between passes while the reader finishes: short next
// to the reader's 224 ms waits, long enough to leave it the CPU.
constexpr auto kPollFailureNap = std::chrono::milliseconds{2};
// In reliable mode, after a rise of the kernel's drop counter, the stop reads on until it has
// been still this long and the socket is empty, for at most the drain's limit: the kernel sends
// the DESTROYs it could not deliver again about a second later (netns reliable_stop.sh: 250
// DESTROYs pending at the SIGTERM came 1 s on; the stop took 2.5 s). EventReader::Options.
constexpr auto kReliableFinalQuiet = std::chrono::milliseconds{1500};
constexpr auto kReliableFinalDrain = std::chrono::seconds{20};
// How long a stop keeps offering pending records to an output that refuses them (a database
// locked by another process), and how often: well inside systemd's TimeoutStopSec (90 s).
constexpr auto kStopWaitForOutputs = std::chrono::seconds{20};
constexpr auto kStopRetryEvery = std::chrono::milliseconds{250};

std::string hostName() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0) {
    return "unknown";
  }
  return {buffer.data()};
}

// Sets (or with --no-sysctl, checks) the conntrack sysctls and says what changed and what is off.
// Returns whether nf_conntrack_events was 1 before: then every entry in the table made since it was
// set has the event extension and reports its end (FIELD-NOTES 4).
bool prepareSysctls(const DaemonConfig& config, spdlog::logger& log) {
  bool events_were_on = false;
  for (const auto& sysctl : requiredSysctls()) {
    const auto outcome = ensureSysctl("/proc", sysctl, config.apply_sysctls);
    if (outcome && sysctl.name == "nf_conntrack_events") {
      events_were_on = outcome->before == sysctl.wanted;
    }
    if (!outcome) {
      log.warn("{}; without net.netfilter.{}={}, {}", outcome.error().detail, sysctl.name, sysctl.wanted,
               sysctl.purpose);
    } else if (const auto report = describeSysctl(sysctl, *outcome, config.apply_sysctls)) {
      if (report->warning) {
        log.warn("{}", report->text);
      } else {
        log.info("{}", report->text);
      }
    }
  }
  return events_were_on;
}

// What the file system of `directory` says about a database that cannot be opened there: SQLite's
// own words ("unable to open database file", "disk I/O error") name neither a read-only mount nor
// a full disk (an exploratory run got both).
std::optional<std::string> fileSystemTrouble(const std::filesystem::path& directory) {
  struct statvfs fs {};
  if (::statvfs(directory.c_str(), &fs) != 0) {
    return std::nullopt;
  }
  if ((fs.f_flag & ST_RDONLY) != 0) {
    return "the file system of " + directory.string() + " is mounted read-only: remount it read-write, or give --db "
           "a path on another";
  }
  constexpr std::uint64_t kRoomForAStart = std::uint64_t{1} << 20U;  // the schema, a WAL frame or two, the -shm
  if (static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize < kRoomForAStart) {
    return "the file system of " + directory.string() + " is full (" +
           std::to_string(static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize) +
           " bytes free): free some space, or give --db a path on another";
  }
  return std::nullopt;
}

// --user: everything the daemon opened or created as root goes to the account, then the process
// becomes the account with CAP_NET_ADMIN alone, and the directories it creates files in later must
// let it.
Result<void> switchToAccount(const DaemonConfig& config, const ServiceAccount& account, spdlog::logger& log) {
  std::vector<std::filesystem::path> files;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
    files.emplace_back(config.db_path.string() + suffix);
  }
  if (config.jsonl_path && *config.jsonl_path != "-") {
    files.push_back(*config.jsonl_path);
    files.emplace_back(config.jsonl_path->string() + ".torn");
  }
  if (config.stats_file) {
    files.push_back(*config.stats_file);
    files.emplace_back(config.stats_file->string() + ".tmp");
    files.push_back(StatsFile::lockPath(*config.stats_file));
  }
  std::vector<std::filesystem::path> directories;
  for (OutputDirectory& output : outputDirectories(config)) {
    directories.push_back(std::move(output.directory));
  }
  if (auto handed = handOverFiles(account, files); !handed) {
    return handed;
  }
  if (auto dropped = dropPrivileges(account); !dropped) {
    return dropped;
  }
  if (auto writable = requireWritableDirectories(account, directories); !writable) {
    return writable;
  }
  log.info("running as user {} (uid {}, gid {}) with CAP_NET_ADMIN as the only capability", account.name,
           account.uid, account.gid);
  return {};
}

}  // namespace

Daemon::Daemon(const DaemonConfig& config, Loggers loggers, const Clock& clock)
    : config_(config), log_(std::move(loggers)), clock_(clock), started_(clock.now()), notifier_(log_.daemon) {}

// The body first; then the members in reverse order: the reader thread is stopped and joined first.
Daemon::~Daemon() {
  // A start that failed after its run was recorded: if it wrote nothing, without its row the next
  // start's daemon_down gap reaches back to the last heartbeat of the run before it
  // (SqliteSink::abandonRun keeps a run that wrote).
  if (run_recorded_ && !start_complete_) {
    if (auto abandoned = sqlite_->abandonRun(); !abandoned) {
      try {
        log_.daemon->warn("{}; the next start's daemon_down gap begins at this failed start", abandoned.error().detail);
      } catch (...) {  // NOLINT(bugprone-empty-catch): a destructor must not throw; the log is best effort
      }
    }
  }
}

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config, Loggers loggers, const Clock& clock) {
  // Before anything is opened: two outputs on one file destroy what it holds.
  if (auto conflict = outputPathConflict(config)) {
    return fail(Errc::Config, std::move(*conflict));
  }
  std::unique_ptr<Daemon> daemon(new Daemon(config, std::move(loggers), clock));
  for (const std::string& idle : settingsWithoutEffect(config)) {
    daemon->log_.daemon->warn("{}", idle);
  }
  if (const auto too_large = queueLargerThanMemory(config, physicalMemoryBytes())) {
    daemon->log_.daemon->warn("{}", *too_large);
  }
  // First, so that a mistyped --user changes nothing.
  std::optional<ServiceAccount> account;
  if (config.user) {
    auto found = lookupServiceAccount(*config.user);
    if (!found) {
      return Unexpected{found.error()};
    }
    if (auto root = requireRootToSwitch(*config.user, ::geteuid()); !root) {
      return Unexpected{root.error()};
    }
    account = std::move(*found);
  }
  // Before any thread starts, so that every thread inherits the blocked mask.
  auto signals = SignalEvents::open();
  if (!signals) {
    return Unexpected{signals.error()};
  }
  daemon->signals_ = std::move(*signals);
  if (auto opened = daemon->openSinks(); !opened) {
    return Unexpected{opened.error()};
  }
  // After the sinks: a second daemon on the same database hears of the database's lock first,
  // and the database's directory, where the stats file is by default, exists now.
  if (config.stats_file) {
    auto stats_file = StatsFile::open(*config.stats_file, daemon->log_.daemon);
    if (!stats_file) {
      return Unexpected{stats_file.error()};
    }
    daemon->stats_file_ = std::move(*stats_file);
  }
  auto run = daemon->restoreRun();
  if (!run) {
    return Unexpected{run.error()};
  }

  const RecordBudget budget = recordBudget(config.queue_max_bytes);
  auto queue = EventQueue::open(budget.queue_bytes, config.max_batch_rows);
  if (!queue) {
    return Unexpected{queue.error()};
  }
  daemon->queue_ = std::move(*queue);
  auto source = ConntrackSource::open({config.events, config.receive_buffer_bytes, config.reliable},
                                      daemon->log_.netlink);
  if (!source) {
    return Unexpected{source.error()};
  }
  daemon->source_ = std::move(*source);
  const Timestamp subscribed = clock.now();
  // The time no daemon ran ends here, not at beginRun: events before the subscription were not
  // received, and reading the open flows of a large database takes seconds.
  daemon->pipeline_->restore(run->open_flows, run->previous_alive, subscribed);
  run->open_flows = {};
  // After the sinks and the subscription succeeded, so that a bad path or a missing privilege
  // stops the daemon before it changes anything in the namespace.
  const bool events_were_on = prepareSysctls(config, *daemon->log_.daemon);
  daemon->table_.setAllFromStartUpSuspect(!events_were_on || run->first_run);
  if (!config.reliable) {
    daemon->pipeline_->enableSweeps();
  }
  // Before the dump, which opens a socket of its own: it proves at once that CAP_NET_ADMIN alone
  // is enough for the resyncs to come. Before the reader thread: capabilities are per thread.
  if (account) {
    if (auto switched = switchToAccount(config, *account, *daemon->log_.daemon); !switched) {
      return Unexpected{switched.error()};
    }
  }

  const auto dumped = daemon->dumpAtStart();
  if (!dumped) {
    return Unexpected{dumped.error()};
  }
  daemon->batcher_->flushAll(clock.now());

  EventReader::Options reader_options;
  reader_options.when_full = config.reliable ? EventQueue::WhenFull::Wait : EventQueue::WhenFull::DropNewest;
  reader_options.reads_prove_no_loss = !config.reliable;
  reader_options.close_unseen = !config.reliable;
  if (config.reliable) {
    reader_options.final_quiet = kReliableFinalQuiet;
    reader_options.final_drain_limit = kReliableFinalDrain;
  }
  reader_options.pacing.max = reader_options.pacing.maxFor(config.receive_buffer_bytes);
  reader_options.start_dump_refused = dumped->refused;
  if (!config.reliable) {
    reader_options.sweep_while = &daemon->pipeline_->openWithoutEndEvents();
    reader_options.sweep_every = config.sweep_interval;
    reader_options.buffer_events = config.receive_buffer_bytes / kEventTruesizeBytes;
    reader_options.start_dump_entries = dumped->entries;
  }
  auto reader = EventReader::create(*daemon->source_, *daemon->queue_, clock, reader_options, subscribed, true,
                                    daemon->log_.netlink);
  if (!reader) {
    return Unexpected{reader.error()};
  }
  daemon->reader_ = std::move(*reader);
  daemon->reader_->start();
  daemon->log_.daemon->info("ctauditd ready: {} flow(s) in the kernel's table at start; writing to {}{}; queue of {:.1f} MiB",
                            dumped->entries, config.db_path.string(),
                            config.jsonl_path ? " and " + config.jsonl_path->string() : std::string{},
                            static_cast<double>(budget.queue_bytes) / (1U << 20U));
  // Only now: the dump is in the database and both sinks are open, so a unit ordered after
  // ctauditd.service (or an operator waiting on `systemctl start`) finds the start-up state logged.
  daemon->notifier_.ready(fmt::format("ready: {} flow(s) in the kernel's table at start", dumped->entries));
  daemon->start_complete_ = true;
  return daemon;
}

void Daemon::waitForOutputsBeforeTheStop() {
  // A database another process holds locked for a moment (an analyst's sqlite3 in a transaction,
  // a backup) must not cost records at a stop: an exploratory run found them given up after a
  // quarter of a second, with systemd's TimeoutStopSec of 90 s unused. Only while an output says
  // it is busy (Retry): a full disk or a failed write is given up at once, as before, as a gap.
  // Gap records count too: one that cannot be written at the stop is a hole the log does not show.
  const auto busy_pending = [this] {
    std::size_t pending = 0;
    for (const auto& sink : batcher_->sinks()) {
      pending += sink.busy ? sink.pending + sink.pending_gaps : 0;
    }
    return pending;
  };
  const auto give_up_at = std::chrono::steady_clock::now() + kStopWaitForOutputs;
  bool said = false;
  for (;;) {
    // flushAll() says whether records wait; gap records wait too, so the busy outputs decide.
    (void)batcher_->flushAll(clock_.now());
    const std::size_t waiting = busy_pending();
    if (waiting == 0 || std::chrono::steady_clock::now() >= give_up_at) {
      return;
    }
    if (!said) {
      log_.daemon->warn("stopping: a busy output has not taken {} record(s) and gap(s) yet; trying again for up to "
                        "{} s before they are given up",
                        waiting, std::chrono::duration_cast<std::chrono::seconds>(kStopWaitForOutputs).count());
      said = true;
    }
    std::this_thread::sleep_for(kStopRetryEvery);
  }
}

Result<void> Daemon::openSinks() {
  const std::string hostname = hostName();
  // A file this build will never write (not SQLite, another application's, a schema version it
  // cannot use) is refused as --check-config refuses it, with exit status 2: a restart cannot
  // help, and an exploratory run found systemd restarting it again and again after exit 1.
  if (auto verdict = storage::checkFileHeaderForWriting(config_.db_path); !verdict) {
    return fail(Errc::Config, config_.db_path.string() + ": " + verdict.error().detail);
  }
  // A schema upgrade may rebuild indexes for minutes before READY=1: each report asks systemd for
  // well beyond the next one (storage::SqliteSink::kUpgradeProgressEvery), instead of a start
  // timeout long enough for the largest file on every start.
  auto sqlite = storage::SqliteSink::open(config_.db_path, hostname, log_.sqlite, [this] {
    notifier_.extendStart(std::chrono::seconds{30}, "upgrading the flow database's schema");
  });
  if (!sqlite) {
    if (auto trouble = fileSystemTrouble(directoryOf(config_.db_path))) {
      return fail(sqlite.error().code, sqlite.error().detail + "; " + *trouble, sqlite.error().sys_errno);
    }
    return Unexpected{sqlite.error()};
  }
  sqlite_ = std::move(*sqlite);
  if (config_.retention) {
    if (auto enabled = sqlite_->enableRetention(*config_.retention); !enabled) {
      return enabled;
    }
    auto* sink = sqlite_.get();
    expiry_ = std::make_unique<ExpiryRunner>(
        [sink](Timestamp now, std::size_t max_rows) { return sink->expire(now, max_rows); }, clock_,
        ExpiryRunner::Options{}, log_.sqlite);
  }
  // The database last: its commit carries the heartbeat (noteAlive), from which the next start's
  // daemon_down gap begins, so each batch must be in the JSON lines before that commit. Written
  // the other way round, a kill -9 between the two lost a batch of JSON lines before the heartbeat,
  // which no gap covered (an exploratory run lost 960 lines at one kill in eight).
  std::vector<Batcher::NamedSink> sinks;
  if (config_.jsonl_path) {
    auto jsonl = storage::JsonLinesSink::open(*config_.jsonl_path, storage::JsonContext{hostname},
                                              config_.jsonl_updates, log_.jsonl, config_.jsonl_rotation, &clock_);
    if (!jsonl) {
      return Unexpected{jsonl.error()};
    }
    jsonl_ = std::move(*jsonl);
    sinks.push_back({"jsonl " + config_.jsonl_path->string(), jsonl_.get(), "jsonl"});
  }
  sinks.push_back({"sqlite " + config_.db_path.string(), sqlite_.get(), std::string(storage::kDatabaseSinkLabel)});
  Batcher::Options options;
  options.max_rows = config_.max_batch_rows;
  options.max_age = config_.flush_interval;
  options.max_pending_per_sink = recordBudget(config_.queue_max_bytes).lane_records;
  batcher_ = std::make_unique<Batcher>(std::move(sinks), options, log_.pipeline);
  pipeline_ = std::make_unique<Pipeline>(table_, *batcher_, log_.pipeline);
  return {};
}

Result<Daemon::RunStart> Daemon::restoreRun() {
  const Timestamp now = clock_.now();
  auto history = sqlite_->beginRun(now);
  if (!history) {
    return Unexpected{history.error()};
  }
  run_recorded_ = true;
  auto open = sqlite_->openFlows();
  if (!open) {
    return Unexpected{open.error()};
  }
  if (history->previous_start && !history->previous_clean) {
    log_.daemon->warn("the previous run (started {}) did not stop cleanly; its last sign of life was {}",
                      formatRfc3339(*history->previous_start),
                      history->previous_alive ? formatRfc3339(*history->previous_alive) : std::string{"unknown"});
  }
  // A run that died before its first heartbeat was alive at least when it started.
  return RunStart{std::move(*open), history->previous_alive ? history->previous_alive : history->previous_start,
                  !history->previous_start.has_value()};
}

Result<EventSource::DumpCount> Daemon::dumpAtStart() {
  // The same reconciliation as a resync: flows restored from the database and not in the dump
  // are closed once the reader has read the event socket empty (ResyncSettled), since their
  // DESTROY may still be queued there.
  pipeline_->handle(ResyncBegin{clock_.now()}, clock_.now());
  const auto dumped = source_->dumpTable(clock_, [this](FlowRecord&& record) {
    pipeline_->handle(std::move(record), clock_.now());
  });
  // An entry the dump could not decode may be a restored flow, alive: closing the restored flows
  // the dump did not show would close it (a review). The reader records the refused entries as a
  // gap (EventReader::Options::start_dump_refused).
  const bool all_decoded = dumped && dumped->refused == 0;
  pipeline_->handle(ResyncEnd{clock_.now(), dumped.has_value(), all_decoded}, clock_.now());
  return dumped;
}

void Daemon::process(PipelineBatch& items) {
  Timestamp now = clock_.now();
  std::size_t handled = 0;
  for (PipelineBatch::Cursor cursor(items); !cursor.done();) {
    pipeline_->handle(cursor.next(), now);
    if (++handled % kItemsPerTick == 0) {
      now = clock_.now();
      tick(now, cursor.itemsLeft());
    }
  }
  items.clear();
}

void Daemon::processWaiting(PipelineBatch& items) {
  // What waits now, not what the reader adds meanwhile: under a steady overload the queue never
  // empties, and the loop must get back to its signals (a SIGTERM after the SIGHUP). A close seen
  // here is seen again by the loop's next take().
  for (std::size_t left = queue_->stats().waiting; left > 0;) {
    (void)queue_->take(items);
    if (items.empty()) {
      return;
    }
    left -= std::min(left, items.records());
    process(items);
  }
}

Timestamp Daemon::recordedUpTo(Timestamp now, std::size_t in_progress) const {
  // Caught up, the common case: the socket empty now, then the reader waiting for it (so it pushed
  // all it read), then the queue empty (so this thread took it all), in this order.
  if (in_progress == 0 && reader_) {
    pollfd socket{source_->fd(), POLLIN, 0};
    const bool socket_empty = ::poll(&socket, 1, 0) == 0;
    if (socket_empty && reader_->waitingForEvents()) {
      // A gap's marker waiting counts as much as a record. A loss whose gap the reader has not
      // pushed yet (an overrun window still open) holds the heartbeat back to where it began.
      if (const EventQueue::Stats queue = queue_->stats(); !queue.items_waiting) {
        return std::min(now, queue.reader.unreported_loss_since.value_or(now));
      }
    }
  }
  // Behind, or the reader busy: every event that happened before the last ReaderDrained handled
  // has been handled. Not the records' own times: a backlog read after a stall is stamped with the
  // time it was read (the kernel sends event times only from Linux 6.14), and its events happened
  // during the stall. Before the first marker, nothing since the start is proven read.
  return std::min(now, pipeline_->drainedUpTo().value_or(started_));
}

void Daemon::tick(Timestamp now, std::size_t in_progress) {
  if (now >= batcher_->nextDeadline()) {
    sqlite_->noteAlive(recordedUpTo(now, in_progress));  // goes out with this flush
    if (!database_moved_ && sqlite_->fileMoved()) {
      // Everything from here on would go to a file nobody can open. Stop (exit 1), so that the
      // next start, systemd's Restart=on-failure, creates the database again; the JSON lines
      // keep every record meanwhile.
      database_moved_ = Error{Errc::Io, 0,
                              config_.db_path.string() +
                                  " was deleted or replaced while ctauditd wrote it: stopping, so that the next start "
                                  "creates it again (systemd restarts ctauditd); what was written to it since is not in "
                                  "the new one (the JSON lines, when written, have it)"};
      log_.daemon->error("{}", database_moved_->detail);
    }
  }
  batcher_->tick(now);
  // Between batch commits, never inside one: the step is its own short transaction. Never while
  // a large batch from the queue is still being worked through (in_progress > 0): the pipeline is
  // behind, and ingest comes first. Expiry then gets one step per pass of the loop, and the more
  // the queue holds, the longer that pass and the smaller expiry's share.
  if (expiry_ && in_progress == 0) {
    expiry_->runIfDue(now, pipeline_idle_);
  }
  if (stats_file_ && now >= next_stats_) {
    writeStats(in_progress);
    next_stats_ = now + kStatsInterval;
  }
  notifyManager(now, in_progress);
}

void Daemon::notifyManager(Timestamp now, std::size_t in_progress) {
  if (!notifier_.enabled()) {
    return;
  }
  // From this thread's loop, between batches (and every kItemsPerTick items within one): a
  // pipeline stuck in a write stops the pings and the manager restarts the service.
  if (const auto timeout = notifier_.watchdogTimeout(); timeout && now >= next_watchdog_) {
    notifier_.watchdog();
    next_watchdog_ = now + std::chrono::duration_cast<std::chrono::nanoseconds>(*timeout / 2);
  }
  if (now >= next_status_) {
    MetricsSnapshot current = metrics(in_progress);
    notifier_.status(formatServiceStatus(current, last_status_, now - last_status_time_));
    last_status_ = std::move(current);
    last_status_time_ = now;
    next_status_ = now + kStatusInterval;
  }
}

Timestamp Daemon::nextWake(Timestamp now) const {
  Timestamp wake = batcher_->nextDeadline();
  if (expiry_) {
    wake = std::min(wake, expiry_->hasBacklog() && pipeline_idle_ ? now : expiry_->nextDue());
  }
  if (stats_file_) {
    wake = std::min(wake, next_stats_);
  }
  if (notifier_.enabled()) {
    wake = std::min(wake, next_status_);
    if (notifier_.watchdogTimeout()) {
      wake = std::min(wake, next_watchdog_);
    }
  }
  return wake;
}

Result<void> Daemon::run() {
  PipelineBatch items;
  bool stopping = false;
  std::optional<Error> reader_failure;
  std::optional<Error> poll_failure;
  next_stats_ = clock_.now();
  next_watchdog_ = next_stats_;
  last_status_time_ = next_stats_;
  next_status_ = next_stats_ + kStatusInterval;
  for (;;) {
    const Timestamp now = clock_.now();
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(nextWake(now) - now);
    std::array<pollfd, 2> fds{{{queue_->fd(), POLLIN, 0}, {signals_->fd(), POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 1000)));
    if (ready < 0 && errno != EINTR) {
      // Without poll() the loop cannot wait for the queue, but it can still drain it: stop the
      // reader and write everything it queued, as for SIGTERM, instead of dropping the queue. The
      // reader closes the queue within its final drain (2 s at most, 20 s in reliable mode after
      // drops, or a resync dump under way);
      // until then each pass naps briefly instead of spinning on the cores the reader needs.
      if (!poll_failure) {
        const int err = errno;
        poll_failure = Error{Errc::Io, err, std::string("poll failed: ") + std::strerror(err) + "; stopped as at SIGTERM"};
        log_.daemon->warn("poll failed: {}; stopping: writing everything pending", std::strerror(err));
        if (!stopping) {
          notifier_.stopping("stopping: poll failed; writing everything pending");
          reader_->requestStop();
          stopping = true;
        }
      }
      std::this_thread::sleep_for(kPollFailureNap);
    }
    while (const auto signal = signals_->next()) {
      if (signal->kind == SignalEvents::Kind::Stop) {
        if (!stopping) {
          log_.daemon->info("{}: stopping: reading what the kernel still holds, then writing everything pending",
                            signal->name);
          notifier_.stopping("stopping: writing everything pending");
          reader_->requestStop();
          stopping = true;
        }
      } else {
        // Everything received so far goes to the old file, the records still in the queue
        // included; the rest to the new one.
        processWaiting(items);
        const bool all_written = batcher_->flushAll(clock_.now());
        // The sink says whether it reopened its file, or why not yet (an exploratory run found
        // "reopened" logged here while the sink had put the reopen off).
        log_.daemon->info("{}: {}{}", signal->name,
                          all_written ? "wrote everything pending" : "an output still refuses records, which wait",
                          jsonl_ ? "; the JSON-lines sink reopens its file" : " (no JSON-lines file to reopen)");
        if (jsonl_) {
          jsonl_->reopen();
        }
      }
    }
    const auto taken = queue_->take(items);
    pipeline_idle_ = items.empty();
    process(items);
    tick(clock_.now(), 0);
    if (database_moved_ && !stopping) {
      notifier_.stopping("stopping: the database file was deleted or replaced");
      reader_->requestStop();
      stopping = true;
    }
    if (taken.closed) {
      reader_failure = taken.failure;
      break;
    }
  }
  if (!stopping) {
    notifier_.stopping("stopping: the event reader failed");
  }
  reader_->join();
  waitForOutputsBeforeTheStop();
  const Timestamp end = clock_.now();
  sqlite_->noteAlive(end);
  const bool complete = batcher_->finish(end);
  if (!reader_failure) {
    if (const auto ended = sqlite_->endRun(clock_.now()); !ended) {
      log_.daemon->error("cannot mark the run as stopped cleanly: {}", ended.error().detail);
    }
  }
  if (stats_file_) {
    writeStats(0);
  }
  logTotals();
  if (reader_failure) {
    return Unexpected{*reader_failure};
  }
  if (poll_failure) {
    return Unexpected{*poll_failure};
  }
  if (database_moved_) {
    return Unexpected{*database_moved_};
  }
  if (!complete) {
    return fail(Errc::Storage, "stopped with records that a sink did not accept; see the errors above");
  }
  return {};
}

MetricsSnapshot Daemon::metrics(std::size_t in_progress) const {
  const auto queue = queue_->stats();
  MetricsSnapshot snapshot;
  snapshot.start_time = started_;
  snapshot.reliable = config_.reliable;
  snapshot.reader = queue.reader;
  snapshot.queue_records = queue.waiting + in_progress;
  snapshot.queue_records_max = queue.max_waiting;
  snapshot.queue_bytes = queue.waiting_bytes;
  snapshot.queue_capacity_bytes = queue_->capacityBytes();
  snapshot.pipeline = pipeline_->stats();
  snapshot.open_flows = table_.openFlows();
  snapshot.sinks = batcher_->sinks();
  snapshot.sink_failure_gaps = batcher_->sinkFailureGaps();
  snapshot.memory = readProcessMemory();
  if (expiry_) {
    snapshot.retention = expiry_->stats();
  }
  return snapshot;
}

void Daemon::writeStats(std::size_t in_progress) { stats_file_->write(formatMetrics(metrics(in_progress))); }

void Daemon::logTotals() const {
  const auto snapshot = metrics(0);
  const ReaderStats& r = snapshot.reader;
  std::string sinks;
  for (const auto& sink : snapshot.sinks) {
    sinks += fmt::format(", {} written to {}", sink.written, sink.label);
    if (sink.dropped > 0) {
      sinks += fmt::format(" ({} dropped)", sink.dropped);
    }
  }
  log_.daemon->info("stopped: {} message(s) received, {} decoded, {} malformed, {}{} overrun(s), {} dropped by "
                    "the kernel, {} resync(s), {} dropped for a full queue, {} flow(s) still open{}{}",
                    r.messages, r.decoded, r.malformed,
                    r.from_user_space > 0 ? fmt::format("{} ignored from user space, ", r.from_user_space) : "",
                    r.overruns, r.kernel_drops, r.resyncs, r.queue_dropped, snapshot.open_flows, sinks,
                    snapshot.memory ? fmt::format("; peak memory {} MiB", snapshot.memory->peak_resident_bytes >> 20U)
                                    : std::string{});
}

}  // namespace ctaudit::daemon
