// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <unistd.h>

#include "daemon/record_budget.hpp"
#include "daemon/sysctl.hpp"
#include "storage/jsonl_sink.hpp"

namespace ctaudit::daemon {
namespace {

// How often the stats file is rewritten (node_exporter reads it when scraped, typically every 15 s
// or more).
constexpr auto kStatsInterval = std::chrono::seconds{5};
// A big batch from the queue is worked through in chunks of this many items, with a Batcher tick
// after each, so that the flush interval holds under load too.
constexpr std::size_t kItemsPerTick = 4096;

std::string hostName() {
  std::array<char, 256> buffer{};
  if (::gethostname(buffer.data(), buffer.size() - 1) != 0) {
    return "unknown";
  }
  return {buffer.data()};
}

// Sets (or with --no-sysctl, checks) the conntrack sysctls and says what changed and what is off.
void prepareSysctls(const DaemonConfig& config, spdlog::logger& log) {
  for (const auto& sysctl : requiredSysctls()) {
    const auto outcome = ensureSysctl("/proc", sysctl, config.apply_sysctls);
    if (!outcome) {
      log.warn("{}; without it {}", outcome.error().detail, sysctl.purpose);
    } else if (outcome->changed) {
      log.info("set net.netfilter.{}={} (was {}); it applies to conntracks created from now on", sysctl.name,
               sysctl.wanted, outcome->before);
    } else if (outcome->before != sysctl.wanted) {
      log.warn("net.netfilter.{}={} (wanted {}): {}", sysctl.name, outcome->before, sysctl.wanted,
               sysctl.purpose);
    }
  }
}

}  // namespace

Daemon::Daemon(const DaemonConfig& config, Loggers loggers, const Clock& clock)
    : config_(config), log_(std::move(loggers)), clock_(clock), started_(clock.now()) {}

// Members go in reverse order: the reader thread is stopped and joined first.
Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config, Loggers loggers, const Clock& clock) {
  std::unique_ptr<Daemon> daemon(new Daemon(config, std::move(loggers), clock));
  // Before any thread starts, so that every thread inherits the blocked mask.
  auto signals = SignalEvents::open();
  if (!signals) {
    return Unexpected{signals.error()};
  }
  daemon->signals_ = std::move(*signals);
  if (config.stats_file) {
    daemon->stats_file_ = std::make_unique<StatsFile>(*config.stats_file, daemon->log_.daemon);
  }
  if (auto opened = daemon->openSinks(); !opened) {
    return Unexpected{opened.error()};
  }
  if (auto restored = daemon->restoreRun(); !restored) {
    return Unexpected{restored.error()};
  }

  const RecordBudget budget = recordBudget(config.queue_max_bytes);
  auto queue = EventQueue::open(budget.queue_records);
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
  // After the sinks and the subscription succeeded, so that a bad path or a missing privilege
  // stops the daemon before it changes anything in the namespace.
  prepareSysctls(config, *daemon->log_.daemon);

  const auto dumped = daemon->dumpAtStart();
  if (!dumped) {
    return Unexpected{dumped.error()};
  }
  daemon->batcher_->flushAll(clock.now());

  EventReader::Options reader_options;
  reader_options.when_full = config.reliable ? EventQueue::WhenFull::Wait : EventQueue::WhenFull::DropNewest;
  reader_options.reads_prove_no_loss = !config.reliable;
  reader_options.close_unseen = !config.reliable;
  auto reader = EventReader::create(*daemon->source_, *daemon->queue_, clock, reader_options, subscribed, true,
                                    daemon->log_.netlink);
  if (!reader) {
    return Unexpected{reader.error()};
  }
  daemon->reader_ = std::move(*reader);
  daemon->reader_->start();
  daemon->log_.daemon->info("ctauditd ready: {} flow(s) in the kernel's table at start; writing to {}{}; queue of {} records",
                            *dumped, config.db_path.string(),
                            config.jsonl_path ? " and " + config.jsonl_path->string() : std::string{},
                            budget.queue_records);
  return daemon;
}

Result<void> Daemon::openSinks() {
  const std::string hostname = hostName();
  auto sqlite = storage::SqliteSink::open(config_.db_path, hostname, log_.sqlite);
  if (!sqlite) {
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
  std::vector<Batcher::NamedSink> sinks{{"sqlite " + config_.db_path.string(), sqlite_.get(), "sqlite"}};
  if (config_.jsonl_path) {
    auto jsonl = storage::JsonLinesSink::open(*config_.jsonl_path, storage::JsonContext{hostname},
                                              config_.jsonl_updates, log_.jsonl);
    if (!jsonl) {
      return Unexpected{jsonl.error()};
    }
    jsonl_ = std::move(*jsonl);
    sinks.push_back({"jsonl " + config_.jsonl_path->string(), jsonl_.get(), "jsonl"});
  }
  Batcher::Options options;
  options.max_rows = config_.max_batch_rows;
  options.max_age = config_.flush_interval;
  options.max_pending_per_sink = recordBudget(config_.queue_max_bytes).lane_records;
  batcher_ = std::make_unique<Batcher>(std::move(sinks), options, log_.pipeline);
  pipeline_ = std::make_unique<Pipeline>(table_, *batcher_, log_.pipeline);
  return {};
}

Result<void> Daemon::restoreRun() {
  const Timestamp now = clock_.now();
  auto history = sqlite_->beginRun(now);
  if (!history) {
    return Unexpected{history.error()};
  }
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
  const auto alive = history->previous_alive ? history->previous_alive : history->previous_start;
  pipeline_->restore(*open, alive, now);
  return {};
}

Result<std::size_t> Daemon::dumpAtStart() {
  // The same reconciliation as a resync: flows restored from the database and not in the dump
  // are closed once the reader has read the event socket empty (ResyncSettled), since their
  // DESTROY may still be queued there.
  pipeline_->handle(ResyncBegin{clock_.now()}, clock_.now());
  const auto dumped = source_->dumpTable(clock_, [this](FlowRecord&& record) {
    pipeline_->handle(std::move(record), clock_.now());
  });
  pipeline_->handle(ResyncEnd{clock_.now(), dumped.has_value(), true}, clock_.now());
  return dumped;
}

void Daemon::process(std::vector<PipelineItem>& items) {
  Timestamp now = clock_.now();
  for (std::size_t i = 0; i < items.size(); ++i) {
    pipeline_->handle(std::move(items[i]), now);
    if ((i + 1) % kItemsPerTick == 0) {
      now = clock_.now();
      tick(now, items.size() - i - 1);
    }
  }
  items.clear();
}

void Daemon::tick(Timestamp now, std::size_t in_progress) {
  if (now >= batcher_->nextDeadline()) {
    sqlite_->noteAlive(now);  // goes out with this flush
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
}

Result<void> Daemon::run() {
  std::vector<PipelineItem> items;
  bool stopping = false;
  std::optional<Error> reader_failure;
  next_stats_ = clock_.now();
  for (;;) {
    const Timestamp now = clock_.now();
    Timestamp deadline = stats_file_ ? std::min(batcher_->nextDeadline(), next_stats_) : batcher_->nextDeadline();
    if (expiry_) {
      deadline = std::min(deadline, expiry_->hasBacklog() && pipeline_idle_ ? now : expiry_->nextDue());
    }
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    std::array<pollfd, 2> fds{{{queue_->fd(), POLLIN, 0}, {signals_->fd(), POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 1000)));
    if (ready < 0 && errno != EINTR) {
      const int err = errno;
      reader_->requestStop();
      queue_->abandon();
      reader_->join();
      batcher_->flushAll(clock_.now());
      return fail(Errc::Io, std::string("poll failed: ") + std::strerror(err), err);
    }
    while (const auto signal = signals_->next()) {
      if (*signal == SignalEvents::Kind::Stop) {
        if (!stopping) {
          log_.daemon->info("stopping: reading what the kernel still holds, then writing everything pending");
          reader_->requestStop();
          stopping = true;
        }
      } else {
        // Everything received so far goes to the old file; the rest to the new one.
        batcher_->flushAll(clock_.now());
        if (jsonl_) {
          jsonl_->reopen();
        }
        log_.daemon->info("SIGHUP: reopened the JSON-lines file");
      }
    }
    const auto taken = queue_->take(items);
    pipeline_idle_ = items.empty();
    process(items);
    tick(clock_.now(), 0);
    if (taken.closed) {
      reader_failure = taken.failure;
      break;
    }
  }
  reader_->join();
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
  snapshot.queue_capacity = queue_->capacity();
  snapshot.pipeline = pipeline_->stats();
  snapshot.open_flows = table_.openFlows();
  snapshot.sinks = batcher_->sinks();
  snapshot.sink_failure_gaps = batcher_->sinkFailureGaps();
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
  log_.daemon->info("stopped: {} message(s) received, {} decoded, {} malformed, {} overrun(s), {} dropped by the "
                    "kernel, {} resync(s), {} dropped for a full queue, {} flow(s) still open{}",
                    r.messages, r.decoded, r.malformed, r.overruns, r.kernel_drops, r.resyncs, r.queue_dropped,
                    snapshot.open_flows, sinks);
}

}  // namespace ctaudit::daemon
