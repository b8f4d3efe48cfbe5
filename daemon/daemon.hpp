// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <memory>

#include <spdlog/logger.h>

#include "daemon/batcher.hpp"
#include "daemon/conntrack_source.hpp"
#include "daemon/daemon_config.hpp"
#include "daemon/flow_table.hpp"
#include "daemon/signals.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/sink.hpp"

namespace ctaudit::daemon {

// One spdlog logger per component, created by main and handed in (no registry look-ups).
struct Loggers {
  std::shared_ptr<spdlog::logger> daemon;
  std::shared_ptr<spdlog::logger> netlink;
  std::shared_ptr<spdlog::logger> pipeline;
  std::shared_ptr<spdlog::logger> sqlite;
  std::shared_ptr<spdlog::logger> jsonl;
};

// The composition root: owns every component of ctauditd, wires them together and runs the event
// loop. Members are declared in dependency order so that they are destroyed in reverse: the
// source stops before the batcher, the batcher before the sinks it writes to. It does not do the
// components' work. One per process, one thread.
class Daemon {
public:
  // Start-up, in the order that loses nothing and changes nothing before it can succeed: signals
  // blocked, sinks opened, event groups joined, sysctls set (or checked), and only then the table
  // dumped, so that a flow created during the dump is seen either in it or as an event (the table
  // merges both). Errors name the step.
  [[nodiscard]] static Result<std::unique_ptr<Daemon>> start(const DaemonConfig& config, Loggers loggers,
                                                             const Clock& clock);

  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;
  Daemon(Daemon&&) = delete;
  Daemon& operator=(Daemon&&) = delete;
  ~Daemon();

  // Runs until SIGTERM or SIGINT, then reads what the socket still holds, writes and flushes
  // everything pending. SIGHUP reopens the JSON-lines file. Errors: the event socket failed.
  [[nodiscard]] Result<void> run();

private:
  Daemon(const DaemonConfig& config, Loggers loggers, const Clock& clock);
  void deliver(FlowRecord&& record);
  void logTotals() const;

  DaemonConfig config_;
  Loggers log_;
  const Clock& clock_;
  std::unique_ptr<SignalEvents> signals_;
  std::unique_ptr<storage::FlowSink> sqlite_;
  std::unique_ptr<storage::FlowSink> jsonl_;
  std::unique_ptr<Batcher> batcher_;
  FlowTable table_;
  std::unique_ptr<ConntrackSource> source_;
};

}  // namespace ctaudit::daemon
