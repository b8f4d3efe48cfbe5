// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include <spdlog/logger.h>

#include "daemon/batcher.hpp"
#include "daemon/conntrack_source.hpp"
#include "daemon/daemon_config.hpp"
#include "daemon/event_queue.hpp"
#include "daemon/event_reader.hpp"
#include "daemon/expiry_runner.hpp"
#include "daemon/flow_table.hpp"
#include "daemon/metrics.hpp"
#include "daemon/pipeline.hpp"
#include "daemon/service_notifier.hpp"
#include "daemon/signals.hpp"
#include "daemon/stats_file.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/sink.hpp"
#include "storage/sqlite_sink.hpp"

namespace ctaudit::daemon {

// One spdlog logger per component, created by main and handed in (no registry look-ups).
struct Loggers {
  std::shared_ptr<spdlog::logger> daemon;
  std::shared_ptr<spdlog::logger> netlink;
  std::shared_ptr<spdlog::logger> pipeline;
  std::shared_ptr<spdlog::logger> sqlite;
  std::shared_ptr<spdlog::logger> jsonl;
};

// The composition root: owns every component of ctauditd, wires them together and runs the
// pipeline thread's loop. Members are declared in dependency order so that they are destroyed in
// reverse: the reader thread is stopped and joined before the source and the queue it uses, the
// pipeline before the table and batcher, the batcher before the sinks it writes to. It does not do
// the components' work. One per process.
//
// Two threads (docs/operations.md, "Threads"): the EventReader's, which alone reads the event
// socket after start-up and feeds the EventQueue, and the caller's, the pipeline thread, which runs
// run(): it takes batches from the queue into the Pipeline (flow table, Batcher, sinks), handles
// signals, flushes, beats the heartbeat and rewrites the stats file. They share only the queue.
class Daemon {
public:
  // Start-up, in the order that loses nothing and changes nothing before it can succeed: signals
  // blocked, sinks opened, the run registered in the database (its open flows restored into the
  // table, the time no daemon ran recorded as a gap), event groups joined, sysctls set (or
  // checked), with --user the switch to that user (CAP_NET_ADMIN kept), and only then the table
  // dumped, so that a flow created during the dump is seen either in it or as an event (the table
  // merges both); last the reader thread starts and READY=1 goes to the service manager. Errors
  // name the step.
  [[nodiscard]] static Result<std::unique_ptr<Daemon>> start(const DaemonConfig& config, Loggers loggers,
                                                             const Clock& clock);

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  Daemon(Daemon&&) = delete;
  Daemon& operator=(Daemon&&) = delete;
  ~Daemon();

  // Runs until SIGTERM or SIGINT; then the reader reads what the socket still holds, and every
  // record queued is written and flushed before it returns, and the run is marked clean in the
  // database. SIGHUP reopens the JSON-lines file. Errors: the event socket failed, or a sink still
  // refused records at the stop.
  [[nodiscard]] Result<void> run();

private:
  Daemon(const DaemonConfig& config, Loggers loggers, const Clock& clock);
  [[nodiscard]] Result<void> openSinks();
  // At a stop, before what the outputs still refuse is given up: tries again for a while.
  void waitForOutputsBeforeTheStop();
  // What restoreRun() learned, for Pipeline::restore once the event socket is subscribed.
  struct RunStart {
    std::vector<FlowRecord> open_flows;
    std::optional<Timestamp> previous_alive;
    bool first_run{false};  // no earlier run is recorded in the database
  };
  [[nodiscard]] Result<RunStart> restoreRun();
  [[nodiscard]] Result<EventSource::DumpCount> dumpAtStart();
  // Hands a batch taken from the queue to the pipeline, ticking the batcher as it goes.
  void process(PipelineBatch& items);
  // Takes and processes the records waiting in the queue when called, however full their chunk
  // (SIGHUP).
  void processWaiting(PipelineBatch& items);
  // Flush deadline (with the heartbeat) and stats file; `in_progress`: items of the current batch
  // still to be handled.
  void tick(Timestamp now, std::size_t in_progress);
  // The heartbeat for a flush at `now` (SqliteSink::noteAlive): a time before which every event
  // the kernel sent has been handed to the batcher, so that a crash's daemon_down gap, which
  // starts at the last heartbeat stored, covers whatever was still queued.
  [[nodiscard]] Timestamp recordedUpTo(Timestamp now, std::size_t in_progress) const;
  [[nodiscard]] MetricsSnapshot metrics(std::size_t in_progress) const;
  void writeStats(std::size_t in_progress);
  // WATCHDOG=1 at half the manager's timeout and a STATUS= line every few seconds, when a service
  // manager listens.
  void notifyManager(Timestamp now, std::size_t in_progress);
  // When the loop must wake next: the flush deadline, the stats file, the watchdog and the status.
  [[nodiscard]] Timestamp nextWake(Timestamp now) const;
  void logTotals() const;

  DaemonConfig config_;
  Loggers log_;
  const Clock& clock_;
  Timestamp started_;
  std::unique_ptr<SignalEvents> signals_;
  std::unique_ptr<StatsFile> stats_file_;
  std::unique_ptr<storage::SqliteSink> sqlite_;
  // With --retention: runs expiry steps on sqlite_'s connection between batches (tick()).
  std::unique_ptr<ExpiryRunner> expiry_;
  std::unique_ptr<storage::FlowSink> jsonl_;
  std::unique_ptr<Batcher> batcher_;
  FlowTable table_;
  std::unique_ptr<Pipeline> pipeline_;
  std::unique_ptr<EventQueue> queue_;
  std::unique_ptr<ConntrackSource> source_;
  std::unique_ptr<EventReader> reader_;
  Timestamp next_stats_{};
  ServiceNotifier notifier_;
  Timestamp next_watchdog_{};
  Timestamp next_status_{};
  // The figures of the last STATUS= line, for the event rate of the next one.
  MetricsSnapshot last_status_;
  Timestamp last_status_time_{};
  // The last take from the queue was empty: an expiry backlog may use the pipeline thread freely.
  bool pipeline_idle_{false};
  // This start's `runs` row is written (restoreRun), and start() got to the end: a start that
  // fails in between takes the row back if it wrote nothing (~Daemon, SqliteSink::abandonRun).
  bool run_recorded_{false};
  bool start_complete_{false};
  // Set by tick() when the database file was deleted or replaced: run() stops and fails with it.
  std::optional<Error> database_moved_;
};

}  // namespace ctaudit::daemon
