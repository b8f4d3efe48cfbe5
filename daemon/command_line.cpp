// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/command_line.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <optional>

#include <toml++/toml.h>

#include "flow/time.hpp"

namespace ctaudit::daemon {
namespace {

constexpr std::array<std::string_view, 13> kConfigKeys{
    "db",           "jsonl",          "events",     "jsonl-updates", "sysctl",    "flush-interval",
    "max-batch-rows", "receive-buffer", "queue-max", "reliable",      "stats-file", "log-level",
    "retention"};

// Below this the queue holds too few records to ride out a single SQLite commit.
constexpr std::size_t kMinQueueMax = std::size_t{1} << 20U;

Result<std::chrono::milliseconds> parseInterval(std::string_view text) {
  const auto duration = parseDuration(text);
  if (!duration) {
    return Unexpected{duration.error()};
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
  if (ms < std::chrono::milliseconds{10} || ms > std::chrono::minutes{10}) {
    return fail(Errc::Usage, "flush interval '" + std::string(text) + "' must be between 10ms and 10m");
  }
  return ms;
}

// "64M", "512K", "1G" or plain bytes.
Result<std::size_t> parseSize(std::string_view text) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  const std::string_view unit(end, static_cast<std::size_t>(text.data() + text.size() - end));
  std::size_t shift = 0;
  if (unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else if (!unit.empty()) {
    shift = 64;
  }
  if (ec != std::errc{} || text.empty() || shift == 64 || value == 0 || value > (std::size_t{1} << 40U) >> shift) {
    return fail(Errc::Usage, "bad size '" + std::string(text) + "'; write bytes or e.g. 512K, 64M, 1G");
  }
  return value << shift;
}

Result<std::size_t> parseCount(std::string_view text) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 1'000'000) {
    return fail(Errc::Usage, "bad count '" + std::string(text) + "'; expected 1 to 1000000");
  }
  return value;
}

Result<spdlog::level::level_enum> parseLogLevel(std::string_view text) {
  for (const auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info, spdlog::level::warn,
                           spdlog::level::err, spdlog::level::critical}) {
    const auto name = spdlog::level::to_string_view(level);
    if (text == std::string_view(name.data(), name.size()) || (text == "warning" && level == spdlog::level::warn) ||
        (text == "error" && level == spdlog::level::err)) {
      return level;
    }
  }
  return fail(Errc::Usage, "bad log level '" + std::string(text) + "'; use trace, debug, info, warn, error");
}

// The boolean settings, by config key (the command line spells `sysctl = false` --no-sysctl).
bool* booleanSetting(DaemonConfig& config, std::string_view key) {
  if (key == "jsonl-updates") {
    return &config.jsonl_updates;
  }
  if (key == "sysctl") {
    return &config.apply_sysctls;
  }
  if (key == "reliable") {
    return &config.reliable;
  }
  return nullptr;
}

// A path, or nullopt for "none" (--jsonl, --stats-file).
std::optional<std::filesystem::path> pathOrNone(std::string_view text) {
  if (text == "none") {
    return std::nullopt;
  }
  return std::filesystem::path(text);
}

Result<std::size_t> parseQueueMax(std::string_view text) {
  auto size = parseSize(text);
  if (size && *size < kMinQueueMax) {
    return fail(Errc::Usage, "--queue-max '" + std::string(text) + "' is too small; at least 1M");
  }
  return size;
}

// The shortest retention accepted: anything shorter is far more likely a typo ("400s" for "400d")
// than a policy, and would delete the log as it is written.
constexpr std::chrono::hours kMinRetention{1};
// A century; also keeps the horizon (now - retention) far from the limits of the nanosecond clock.
constexpr std::chrono::days kMaxRetention{36500};

// "400d", "90d", "36h", or "none" (keep everything). A unit is required: a bare number would be
// seconds (parseDuration) and delete nearly everything.
Result<std::optional<std::chrono::nanoseconds>> parseRetention(std::string_view text) {
  if (text == "none") {
    return std::optional<std::chrono::nanoseconds>{};
  }
  const std::string hint = "; write a duration with its unit, e.g. 400d or 90d, or 'none' to keep everything";
  if (text.empty() || (text.back() >= '0' && text.back() <= '9')) {
    return fail(Errc::Usage, "--retention '" + std::string(text) + "' has no unit" + hint);
  }
  const auto duration = parseDuration(text);
  if (!duration) {
    return fail(Errc::Usage, "--retention: " + duration.error().detail + hint);
  }
  if (*duration < kMinRetention || *duration > kMaxRetention) {
    return fail(Errc::Usage, "--retention '" + std::string(text) + "' is not between 1h and 36500d" + hint);
  }
  return std::optional<std::chrono::nanoseconds>{*duration};
}

// Applies one setting, named as its long flag without dashes, to `config`.
Result<void> applySetting(DaemonConfig& config, std::string_view key, std::string_view value) {
  const auto assign = [](auto& field, auto parsed) -> Result<void> {
    if (!parsed) {
      return Unexpected{parsed.error()};
    }
    field = *parsed;
    return {};
  };
  if (key == "db") {
    if (value.empty()) {
      return fail(Errc::Usage, "--db needs a path");
    }
    config.db_path = value;
    return {};
  }
  if (key == "jsonl") {
    if (value.empty()) {
      return fail(Errc::Usage, "--jsonl needs a path, '-' for stdout or 'none'");
    }
    config.jsonl_path = pathOrNone(value);
    return {};
  }
  if (key == "events") {
    return assign(config.events, EventMask::parse(value));
  }
  if (key == "flush-interval") {
    return assign(config.flush_interval, parseInterval(value));
  }
  if (key == "max-batch-rows") {
    return assign(config.max_batch_rows, parseCount(value));
  }
  if (key == "receive-buffer") {
    return assign(config.receive_buffer_bytes, parseSize(value));
  }
  if (key == "queue-max") {
    return assign(config.queue_max_bytes, parseQueueMax(value));
  }
  if (key == "stats-file") {
    if (value.empty()) {
      return fail(Errc::Usage, "--stats-file needs a path or 'none'");
    }
    config.stats_file = pathOrNone(value);
    config.stats_file_beside_db = false;
    return {};
  }
  if (key == "log-level") {
    return assign(config.log_level, parseLogLevel(value));
  }
  if (key == "retention") {
    return assign(config.retention, parseRetention(value));
  }
  return fail(Errc::Usage, "unknown option '--" + std::string(key) + "'; see ctauditd --help");
}

}  // namespace

std::string daemonUsage() {
  return R"(Usage: ctauditd [OPTION]...
Log every conntrack flow of this network namespace, with its NAT mapping, to SQLite and JSON lines.

  --db PATH              SQLite database (default /var/lib/ctaudit/flows.db)
  --jsonl PATH           JSON-lines file, '-' for stdout, 'none' for off
                         (default /var/log/ctaudit/flows.jsonl)
  --events LIST          ctnetlink events to subscribe to: new,update,destroy (default all)
  --jsonl-updates        also write UPDATE events as JSON lines (about five per TCP flow)
  --no-sysctl            do not set net.netfilter.nf_conntrack_{acct,timestamp,events}=1;
                         only warn when one is off
  --flush-interval DUR   make records durable at least this often (default 1s)
  --max-batch-rows N     write a batch early once it holds N records (default 8192)
  --receive-buffer SIZE  netlink receive buffer, e.g. 64M (default 256M: about 200k events,
                         over a second at 180k events/s; needs CAP_NET_ADMIN)
  --queue-max SIZE       memory for records on their way to the sinks (default 512M: about
                         950k records in the queue, and as many per sink while it cannot
                         write); when full, new records are dropped and recorded as a gap
  --reliable             reliable event delivery (NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS):
                         the kernel keeps and resends DESTROY events the daemon had no room
                         for, and may drop packets instead when it cannot; see
                         docs/operations.md before turning it on
  --stats-file PATH      Prometheus text file for node_exporter's textfile collector, rewritten
                         every 5s; 'none' for off (default: ctauditd.prom beside the database)
  --retention DUR        delete flows that ended longer ago than DUR (e.g. 400d, 90d), and
                         gaps and runs as old, in small steps between batches; 'none' keeps
                         everything (default none); see docs/operations.md, "Retention"
  --config FILE          TOML file with the same keys as the long options (flags win)
  --log-level LEVEL      trace, debug, info, warn, error (default info)
  --help                 show this help
  --version              show the version

Signals: SIGTERM/SIGINT write everything pending and exit 0; SIGHUP reopens the JSON-lines file.
Exit status: 0 clean stop, 1 runtime error, 2 usage error.
)";
}

Result<DaemonConfig> loadConfigFile(const std::string& path, DaemonConfig base) {
  toml::table table;
  try {
    table = toml::parse_file(path);
  } catch (const toml::parse_error& error) {
    const auto& where = error.source().begin;
    return fail(Errc::Config, path + ":" + std::to_string(where.line) + ": " + std::string(error.description()));
  }
  for (const auto& [key, node] : table) {
    const std::string where = path + ":" + std::to_string(node.source().begin.line) + ": ";
    const std::string_view name = key.str();
    if (std::find(kConfigKeys.begin(), kConfigKeys.end(), name) == kConfigKeys.end()) {
      return fail(Errc::Config, where + "unknown key '" + std::string(name) + "'; see ctauditd --help for the keys");
    }
    Result<void> applied;
    if (bool* setting = booleanSetting(base, name)) {
      const auto flag = node.value<bool>();
      if (!node.is_boolean() || !flag) {
        return fail(Errc::Config, where + "'" + std::string(name) + "' must be true or false");
      }
      *setting = *flag;
      continue;
    }
    if (name == "max-batch-rows" && node.is_integer()) {
      applied = applySetting(base, name, std::to_string(*node.value<std::int64_t>()));
    } else if (name == "events" && node.is_array()) {
      std::string joined;
      for (const auto& item : *node.as_array()) {
        joined += (joined.empty() ? "" : ",") + item.value_or(std::string{"?"});
      }
      applied = applySetting(base, name, joined);
    } else if (node.is_string()) {
      applied = applySetting(base, name, *node.value<std::string>());
    } else {
      applied = fail(Errc::Config, "'" + std::string(name) + "' has the wrong type");
    }
    if (!applied) {
      return fail(Errc::Config, where + applied.error().detail);
    }
  }
  return base;
}

Result<DaemonCommand> parseDaemonCommandLine(std::span<const std::string_view> args) {
  DaemonConfig config;
  // The file is the base that every flag overrides, whatever the order on the command line.
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    std::optional<std::string_view> file;
    if (arg.rfind("--config=", 0) == 0) {
      file = arg.substr(9);
    } else if (arg == "--config") {
      if (i + 1 >= args.size()) {
        return fail(Errc::Usage, "--config needs a file name");
      }
      file = args[++i];
    }
    if (file) {
      auto loaded = loadConfigFile(std::string(*file), config);
      if (!loaded) {
        return Unexpected{loaded.error()};
      }
      config = std::move(*loaded);
    }
  }
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      return DaemonCommand{HelpCommand{}};
    }
    if (arg == "--version" || arg == "-V") {
      return DaemonCommand{VersionCommand{}};
    }
    if (arg.rfind("--", 0) != 0) {
      return fail(Errc::Usage, "unexpected argument '" + std::string(arg) + "'; see ctauditd --help");
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> value;
    if (const auto eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    // Flags without a value: --jsonl-updates, --reliable, and --no-sysctl for `sysctl = false`.
    if (bool* setting = name == "sysctl" ? nullptr : booleanSetting(config, name == "no-sysctl" ? "sysctl" : name)) {
      if (value) {
        return fail(Errc::Usage, "--" + std::string(name) + " takes no value");
      }
      *setting = name != "no-sysctl";
      continue;
    }
    if (name != "config" && std::find(kConfigKeys.begin(), kConfigKeys.end(), name) == kConfigKeys.end()) {
      return fail(Errc::Usage, "unknown option '--" + std::string(name) + "'; see ctauditd --help");
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return fail(Errc::Usage, "--" + std::string(name) + " needs a value; see ctauditd --help");
      }
      value = args[++i];
    }
    if (name == "config") {
      continue;  // read above
    }
    const auto applied = applySetting(config, name, *value);
    if (!applied) {
      return Unexpected{applied.error()};
    }
  }
  if (config.stats_file_beside_db) {
    config.stats_file = config.db_path.parent_path() / "ctauditd.prom";
  }
  return DaemonCommand{RunCommand{std::move(config)}};
}

}  // namespace ctaudit::daemon
