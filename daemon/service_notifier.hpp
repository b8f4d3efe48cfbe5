// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include "daemon/metrics.hpp"

namespace ctaudit::daemon {

// Tells the service manager how the daemon is doing, over the sd_notify(3) protocol: READY=1
// once the start-up dump is recorded and the sinks are open (Type=notify), WATCHDOG=1 from the
// pipeline thread's loop (WatchdogSec=), STATUS= lines for `systemctl status`, STOPPING=1 at
// SIGTERM. Without NOTIFY_SOCKET in the environment (started by hand, by a test, by another
// supervisor) every call does nothing. Holds no socket: libsystemd opens one per message, which
// costs a few microseconds every few seconds. Owned by the Daemon; pipeline thread only.
class ServiceNotifier {
public:
  // Reads NOTIFY_SOCKET, and WATCHDOG_USEC/WATCHDOG_PID through sd_watchdog_enabled(3), once.
  // The watchdog is on only when WATCHDOG_PID is unset or names this process, so a child never
  // answers for its parent.
  explicit ServiceNotifier(std::shared_ptr<spdlog::logger> log);

  // True when a service manager listens (NOTIFY_SOCKET is set).
  [[nodiscard]] bool enabled() const noexcept { return enabled_; }
  // The manager's watchdog timeout, when it asked for one; the daemon pings at half of it.
  [[nodiscard]] std::optional<std::chrono::microseconds> watchdogTimeout() const noexcept { return watchdog_; }

  // READY=1 with a first STATUS= line.
  void ready(std::string_view status);
  // WATCHDOG=1: the pipeline thread is alive and going round its loop.
  void watchdog();
  // STATUS=<text>, shown by `systemctl status ctauditd`.
  void status(std::string_view status);
  // STOPPING=1 with a STATUS= line: the stop has begun and may take a while (the final batch).
  void stopping(std::string_view status);
  // EXTEND_TIMEOUT_USEC= with a STATUS= line: the start goes on and needs `more` from now on
  // (systemd >= 236), e.g. while a schema upgrade rebuilds indexes before READY=1.
  void extendStart(std::chrono::microseconds more, std::string_view status);

private:
  void send(const std::string& message);

  std::shared_ptr<spdlog::logger> log_;
  bool enabled_{false};
  std::optional<std::chrono::microseconds> watchdog_;
  bool failing_{false};
};

// "STATUS=" text from what the stats file reports: the event rate since `previous` (`elapsed`
// apart), the totals, and what was lost. Pure, for the unit tests, e.g.
// "1234 events/s; 1.2M flow records written, 0 events lost; 532 flows open".
[[nodiscard]] std::string formatServiceStatus(const MetricsSnapshot& current, const MetricsSnapshot& previous,
                                              std::chrono::nanoseconds elapsed);

// 999, 1.0k, 12.3k, 1.2M, 3.4G: a count short enough for a status line.
[[nodiscard]] std::string shortCount(std::uint64_t count);

}  // namespace ctaudit::daemon
