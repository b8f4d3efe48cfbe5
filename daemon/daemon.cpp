// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/daemon.hpp"

#include <array>
#include <cerrno>
#include <cstring>

#include <poll.h>
#include <unistd.h>

#include "daemon/sysctl.hpp"
#include "storage/jsonl_sink.hpp"
#include "storage/sqlite_sink.hpp"

namespace ctaudit::daemon {
namespace {

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
    : config_(config), log_(std::move(loggers)), clock_(clock) {}

Daemon::~Daemon() = default;

Result<std::unique_ptr<Daemon>> Daemon::start(const DaemonConfig& config, Loggers loggers, const Clock& clock) {
  std::unique_ptr<Daemon> daemon(new Daemon(config, std::move(loggers), clock));
  auto signals = SignalEvents::open();
  if (!signals) {
    return Unexpected{signals.error()};
  }
  daemon->signals_ = std::move(*signals);

  const std::string hostname = hostName();
  auto sqlite = storage::SqliteSink::open(config.db_path, hostname, daemon->log_.sqlite);
  if (!sqlite) {
    return Unexpected{sqlite.error()};
  }
  daemon->sqlite_ = std::move(*sqlite);
  std::vector<Batcher::NamedSink> sinks{{"sqlite " + config.db_path.string(), daemon->sqlite_.get()}};
  if (config.jsonl_path) {
    auto jsonl = storage::JsonLinesSink::open(*config.jsonl_path, storage::JsonContext{hostname},
                                              config.jsonl_updates, daemon->log_.jsonl);
    if (!jsonl) {
      return Unexpected{jsonl.error()};
    }
    daemon->jsonl_ = std::move(*jsonl);
    sinks.push_back({"jsonl " + config.jsonl_path->string(), daemon->jsonl_.get()});
  }
  daemon->batcher_ = std::make_unique<Batcher>(
      std::move(sinks), Batcher::Options{config.max_batch_rows, config.flush_interval, std::size_t{1} << 20U},
      daemon->log_.pipeline);

  auto source = ConntrackSource::open({config.events, config.receive_buffer_bytes}, daemon->log_.netlink);
  if (!source) {
    return Unexpected{source.error()};
  }
  daemon->source_ = std::move(*source);
  // After the sinks and the subscription succeeded, so that a bad path or a missing privilege
  // stops the daemon before it changes anything in the namespace.
  prepareSysctls(config, *daemon->log_.daemon);

  Daemon* self = daemon.get();
  const auto dumped = daemon->source_->dumpTable(clock, [self](FlowRecord&& record) { self->deliver(std::move(record)); });
  if (!dumped) {
    return Unexpected{dumped.error()};
  }
  daemon->batcher_->flushAll(clock.now());
  daemon->log_.daemon->info("ctauditd ready: {} flow(s) open at start recorded; writing to {}{}", *dumped,
                            config.db_path.string(),
                            config.jsonl_path ? " and " + config.jsonl_path->string() : std::string{});
  return daemon;
}

void Daemon::deliver(FlowRecord&& record) {
  if (table_.apply(record)) {
    batcher_->add(std::move(record), clock_.now());
  }
}

Result<void> Daemon::run() {
  const ConntrackSource::Deliver deliver = [this](FlowRecord&& record) { this->deliver(std::move(record)); };
  bool stopping = false;
  while (!stopping) {
    const auto wait = std::chrono::ceil<std::chrono::milliseconds>(batcher_->nextDeadline() - clock_.now());
    std::array<pollfd, 2> fds{{{source_->fd(), POLLIN, 0}, {signals_->fd(), POLLIN, 0}}};
    const int ready = ::poll(fds.data(), fds.size(), static_cast<int>(std::clamp<std::int64_t>(wait.count(), 0, 1000)));
    if (ready < 0 && errno != EINTR) {
      return fail(Errc::Io, std::string("poll failed: ") + std::strerror(errno), errno);
    }
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLERR)) != 0) {
      auto drained = source_->drain(clock_, deliver);
      if (!drained) {
        batcher_->flushAll(clock_.now());
        return drained;
      }
    }
    while (const auto signal = signals_->next()) {
      if (*signal == SignalEvents::Kind::Stop) {
        stopping = true;
      } else {
        // Everything received so far goes to the old file; the rest to the new one.
        batcher_->flushAll(clock_.now());
        if (jsonl_) {
          jsonl_->reopen();
        }
        log_.daemon->info("SIGHUP: reopened the JSON-lines file");
      }
    }
    batcher_->tick(clock_.now());
  }
  // What the kernel queued before the signal is part of the record.
  const auto drained = source_->drain(clock_, deliver);
  const bool complete = batcher_->flushAll(clock_.now());
  logTotals();
  if (!drained) {
    return drained;
  }
  if (!complete) {
    return fail(Errc::Storage, "stopped with records that a sink did not accept; see the errors above");
  }
  return {};
}

void Daemon::logTotals() const {
  const auto& s = source_->stats();
  log_.daemon->info("stopping: {} message(s) received, {} decoded, {} malformed, {} overrun(s), {} flow(s) still open, "
                    "{} record(s) written to SQLite{}, {} dropped",
                    s.messages, s.decoded, s.malformed, s.overruns, table_.openFlows(),
                    sqlite_->stats().records_written,
                    jsonl_ ? ", " + std::to_string(jsonl_->stats().records_written) + " to JSON lines" : std::string{},
                    batcher_->dropped());
}

}  // namespace ctaudit::daemon
