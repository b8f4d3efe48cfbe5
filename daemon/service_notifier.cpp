// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/service_notifier.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include <fmt/format.h>
#include <systemd/sd-daemon.h>

#include "storage/sqlite_sink.hpp"

namespace ctaudit::daemon {

ServiceNotifier::ServiceNotifier(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {
  const char* socket = std::getenv("NOTIFY_SOCKET");  // NOLINT(concurrency-mt-unsafe): read before any thread starts
  enabled_ = socket != nullptr && *socket != '\0';
  std::uint64_t usec = 0;
  // unset_environment=0: the variables stay for anyone who looks (they are harmless, and a
  // daemon that never execs hands them to nobody).
  const int watchdog = sd_watchdog_enabled(0, &usec);
  if (watchdog > 0 && usec > 0) {
    watchdog_ = std::chrono::microseconds{usec};
  } else if (watchdog < 0) {
    log_->warn("ignoring the watchdog settings from the service manager: {}", std::strerror(-watchdog));
  }
  if (enabled_) {
    log_->debug("service manager notifications on; watchdog {}",
                watchdog_ ? fmt::format("every {} ms", watchdog_->count() / 1000) : std::string{"off"});
  }
}

void ServiceNotifier::ready(std::string_view status) {
  send(fmt::format("READY=1\nSTATUS={}", status));
}

void ServiceNotifier::watchdog() { send("WATCHDOG=1"); }

void ServiceNotifier::status(std::string_view status) { send(fmt::format("STATUS={}", status)); }

void ServiceNotifier::extendStart(std::chrono::microseconds more, std::string_view status) {
  send(fmt::format("EXTEND_TIMEOUT_USEC={}\nSTATUS={}", more.count(), status));
}

void ServiceNotifier::stopping(std::string_view status) {
  send(fmt::format("STOPPING=1\nSTATUS={}", status));
}

void ServiceNotifier::send(const std::string& message) {
  if (!enabled_) {
    return;
  }
  // sd_notify returns > 0 when sent, 0 when NOTIFY_SOCKET is unset, < 0 (-errno) on failure. A
  // manager that went away (or a full socket) must not stop the logging: warn once per episode.
  const int rc = sd_notify(0, message.c_str());
  if (rc < 0 && !failing_) {
    log_->warn("cannot notify the service manager ({}); retrying with each message", std::strerror(-rc));
    failing_ = true;
  } else if (rc > 0 && failing_) {
    log_->info("notifying the service manager again");
    failing_ = false;
  }
}

std::string shortCount(std::uint64_t count) {
  constexpr std::array<const char*, 4> kUnits{"", "k", "M", "G"};
  if (count < 1000) {
    return std::to_string(count);
  }
  auto value = static_cast<double>(count);
  std::size_t unit = 0;
  while (value >= 999.95 && unit + 1 < kUnits.size()) {
    value /= 1000.0;
    ++unit;
  }
  return fmt::format("{:.1f}{}", value, kUnits.at(unit));
}

std::string formatServiceStatus(const MetricsSnapshot& current, const MetricsSnapshot& previous,
                                std::chrono::nanoseconds elapsed) {
  const std::uint64_t events =
      current.reader.messages >= previous.reader.messages ? current.reader.messages - previous.reader.messages : 0;
  const double seconds = std::chrono::duration<double>(elapsed).count();
  const auto rate = seconds > 0 ? static_cast<std::uint64_t>(std::llround(static_cast<double>(events) / seconds)) : 0;
  // Records: what the database (the log of record) accepted; it is the last sink, after the JSON
  // lines (Daemon::openSinks), so it is found by its label. Lost: every event or record that is not
  // in the log as it came: dropped by the kernel for a full socket buffer (a resync repairs the
  // flows, not the events), by a full queue, or given up by a sink.
  const auto database = std::find_if(current.sinks.begin(), current.sinks.end(), [](const Batcher::SinkState& sink) {
    return sink.label == storage::kDatabaseSinkLabel;
  });
  const std::uint64_t written = database == current.sinks.end() ? 0 : database->written;
  std::uint64_t lost = current.reader.kernel_drops + current.reader.queue_dropped;
  for (const auto& sink : current.sinks) {
    lost += sink.dropped;
  }
  return fmt::format("{} events/s; {} records written, {} events lost; {} flows open", rate, shortCount(written),
                     shortCount(lost), shortCount(current.open_flows));
}

}  // namespace ctaudit::daemon
