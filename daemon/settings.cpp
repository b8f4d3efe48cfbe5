// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/settings.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <utility>

#include <toml++/toml.h>

#include "flow/byte_size.hpp"
#include "flow/time.hpp"
#include "storage/jsonl_rotation.hpp"

namespace ctaudit::daemon {
namespace {

// ---------------------------------------------------------------------------------------------
// Value parsers and printers, in the flag's spelling. Errors say what is wrong and how to write
// it; the caller names the setting.

// Below this the queue holds too few records to ride out a single SQLite commit.
constexpr std::size_t kMinQueueMax = std::size_t{1} << 20U;

template <class Field, class Parsed>
Result<void> assign(Field& field, Result<Parsed> parsed) {
  if (!parsed) {
    return Unexpected{parsed.error()};
  }
  field = std::move(*parsed);
  return {};
}

Result<bool> parseBoolean(std::string_view text) {
  if (text == "true") {
    return true;
  }
  if (text == "false") {
    return false;
  }
  return fail(Errc::Usage, "bad value '" + std::string(text) + "'; write true or false");
}

// A file's path. One that can only name a directory ("logs/", ".", "..") is refused here, before
// the sink creates the missing directories of its path: "logs/" used to be created, and only
// then did the open fail. `example` is a file name to suggest in it.
Result<std::filesystem::path> parseFilePath(std::string_view text, std::string_view example) {
  if (text.empty()) {
    return fail(Errc::Usage, "empty path; give a file name");
  }
  // TOML's "\u0000" puts one in a string; the system calls would cut the path there, and write to
  // another file than the one --check-config showed (an exploratory run found that).
  if (text.find('\0') != std::string_view::npos) {
    return fail(Errc::Usage, "the path contains a NUL character, which no file name can hold");
  }
  std::filesystem::path path(text);
  if (const std::filesystem::path name = path.filename(); name.empty() || name == "." || name == "..") {
    return fail(Errc::Usage, "'" + std::string(text) + "' names a directory, not a file; give a file's path, e.g. " +
                                 (path / example).lexically_normal().string());
  }
  return path;
}

// The database is not optional: "none", which turns the other outputs off, would be a file of
// that name in the working directory.
Result<std::filesystem::path> parseDatabasePath(std::string_view text) {
  if (text == "none") {
    return fail(Errc::Usage, "the database cannot be turned off ('none'); give its path");
  }
  return parseFilePath(text, "flows.db");
}

// A path, or nullopt for "none" (jsonl, stats-file).
Result<std::optional<std::filesystem::path>> parsePathOrNone(std::string_view text, std::string_view example) {
  if (text.empty()) {
    return fail(Errc::Usage, "empty path; give a file name, or 'none' for off");
  }
  if (text == "none") {
    return std::optional<std::filesystem::path>{};
  }
  auto path = parseFilePath(text, example);
  if (!path) {
    return Unexpected{path.error()};
  }
  return std::optional<std::filesystem::path>{std::move(*path)};
}

std::string printPathOrNone(const std::optional<std::filesystem::path>& path) {
  return path ? path->string() : "none";
}

// A duration from `least` to `most`, in whole milliseconds; `range` says them for the error.
Result<std::chrono::milliseconds> parseDurationWithin(std::string_view text, std::chrono::milliseconds least,
                                                      std::chrono::milliseconds most, std::string_view range) {
  const auto duration = parseDuration(text);
  if (!duration) {
    return Unexpected{duration.error()};
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(*duration);
  if (ms < least || ms > most) {
    return fail(Errc::Usage, "'" + std::string(text) + "' is out of range; give " + std::string(range));
  }
  return ms;
}

Result<std::chrono::milliseconds> parseFlushInterval(std::string_view text) {
  return parseDurationWithin(text, std::chrono::milliseconds{10}, std::chrono::minutes{10}, "10ms to 10m");
}

// 1s to 1d: shorter would dump a large table back to back, longer leaves an ended flow open in
// the log for more than a day.
Result<std::chrono::milliseconds> parseSweepInterval(std::string_view text) {
  return parseDurationWithin(text, std::chrono::seconds{1}, std::chrono::days{1}, "1s to 1d");
}

// The largest exact unit, so that --check-config prints what was typed: "1s", "90s", "400d".
std::string printDuration(std::chrono::milliseconds ms) {
  const auto count = ms.count();
  for (const auto& [unit_ms, unit] : {std::pair{std::int64_t{86'400'000}, "d"}, std::pair{std::int64_t{3'600'000}, "h"},
                                      std::pair{std::int64_t{60'000}, "m"}, std::pair{std::int64_t{1000}, "s"}}) {
    if (count != 0 && count % unit_ms == 0) {
      return std::to_string(count / unit_ms) + unit;
    }
  }
  return std::to_string(count) + "ms";
}

// "64M", "512K", "1G" (binary units) or plain bytes, at most 1 TiB.
Result<std::size_t> parseSize(std::string_view text) {
  const auto size = parseByteSize(text);
  if (!size || size->bytes == 0 || size->bytes > (std::uint64_t{1} << 40U)) {
    return fail(Errc::Usage, "bad size '" + std::string(text) + "'; write bytes or e.g. 512K, 64M, 1G");
  }
  return static_cast<std::size_t>(size->bytes);
}

std::string printSize(std::size_t bytes) {
  for (const auto& [shift, unit] : {std::pair{30U, "G"}, std::pair{20U, "M"}, std::pair{10U, "K"}}) {
    if (bytes != 0 && bytes % (std::size_t{1} << shift) == 0) {
      return std::to_string(bytes >> shift) + unit;
    }
  }
  return std::to_string(bytes);
}

// Below a few kilobytes a socket holds no event (tests ask for 16K to provoke overruns). Above 2G,
// the most the kernel gives a socket, the start warns and uses 2G (ConntrackSource::open): a
// config written for an older version that capped it silently still starts after an upgrade.
Result<std::size_t> parseReceiveBuffer(std::string_view text) {
  constexpr std::size_t kMin = std::size_t{4} << 10U;
  auto size = parseSize(text);
  if (size && *size < kMin) {
    return fail(Errc::Usage, "'" + std::string(text) + "' is too small; give at least 4K");
  }
  return size;
}

Result<std::size_t> parseQueueMax(std::string_view text) {
  auto size = parseSize(text);
  if (size && *size < kMinQueueMax) {
    return fail(Errc::Usage, "'" + std::string(text) + "' is too small; give at least 1M");
  }
  return size;
}

Result<std::size_t> parseCount(std::string_view text) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0 || value > 1'000'000) {
    return fail(Errc::Usage, "bad count '" + std::string(text) + "'; give 1 to 1000000");
  }
  return value;
}

// jsonl-keep: a count of closed files, or "all" (nullopt) to keep every one.
Result<std::optional<std::size_t>> parseKeep(std::string_view text) {
  if (text == "all") {
    return std::optional<std::size_t>{};
  }
  auto count = parseCount(text);
  if (!count) {
    return fail(Errc::Usage, count.error().detail + ", or 'all' to keep every closed file");
  }
  return std::optional<std::size_t>{*count};
}

// jsonl-grace: how long a closed file stays as it is before it is compressed or deleted.
Result<std::chrono::seconds> parseGrace(std::string_view text) {
  const auto grace = parseDuration(text);
  if (!grace || *grace < std::chrono::nanoseconds{0} || *grace > std::chrono::days{7}) {
    return fail(Errc::Usage, "bad duration '" + std::string(text) + "'; write one from 0 to 7d, e.g. 5m");
  }
  return std::chrono::ceil<std::chrono::seconds>(*grace);
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
    return fail(Errc::Usage, "'" + std::string(text) + "' has no unit" + hint);
  }
  const auto duration = parseDuration(text);
  if (!duration) {
    return fail(Errc::Usage, duration.error().detail + hint);
  }
  if (*duration < kMinRetention || *duration > kMaxRetention) {
    return fail(Errc::Usage, "'" + std::string(text) + "' is not between 1h and 36500d" + hint);
  }
  return std::optional<std::chrono::nanoseconds>{*duration};
}

// A user name, looked up only at start (daemon/privileges.hpp): the user database may change
// until then. "none" (the default) keeps the user the daemon was started as.
Result<std::optional<std::string>> parseUser(std::string_view text) {
  if (text.empty()) {
    return fail(Errc::Usage, "empty user name; give one, e.g. ctaudit, or 'none' to keep the user it was started as");
  }
  if (text == "none") {
    return std::optional<std::string>{};
  }
  return std::optional<std::string>{text};
}

// spdlog's own names are "warning" and "error"; --help, the man page and docs/operations.md name
// both spellings, the short forms first.
constexpr std::array<std::pair<std::string_view, spdlog::level::level_enum>, 8> kLogLevels{{
    {"trace", spdlog::level::trace},
    {"debug", spdlog::level::debug},
    {"info", spdlog::level::info},
    {"warn", spdlog::level::warn},
    {"error", spdlog::level::err},
    {"critical", spdlog::level::critical},
    {"warning", spdlog::level::warn},
    {"err", spdlog::level::err},
}};

Result<spdlog::level::level_enum> parseLogLevel(std::string_view text) {
  for (const auto& [name, level] : kLogLevels) {
    if (text == name) {
      return level;
    }
  }
  return fail(Errc::Usage, "bad log level '" + std::string(text) + "'; use trace, debug, info, warn (or warning), error (or err) or critical");
}

std::string printLogLevel(spdlog::level::level_enum level) {
  const auto* const found =
      std::find_if(kLogLevels.begin(), kLogLevels.end(), [level](const auto& entry) { return entry.second == level; });
  return std::string(found != kLogLevels.end() ? found->first : "info");
}

std::string printBoolean(bool value) { return value ? "true" : "false"; }

// ---------------------------------------------------------------------------------------------
// The table. To add a setting:
//  1. a field with its default in DaemonConfig (daemon_config.hpp);
//  2. one entry below: the key (which is also the long flag), its kind (the TOML type), the value
//     name for --help, the help text, `set` (the flag's text into the field, with a parser like
//     those above) and `get` (the field as the flag's text);
//  3. a row in the key table of docs/operations.md, and systemd/ctauditd.toml regenerated: the
//     unit tests fail until both mention the key, and ExampleConfigTest says which file to copy.
// --help, the config file, the flags and --check-config need nothing else.

constexpr std::array kSettings{
    Setting{"db", ValueKind::String, "PATH", "SQLite database; its directory is created if missing.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.db_path, parseDatabasePath(v)); },
            [](const DaemonConfig& c) { return c.db_path.string(); }},
    Setting{"jsonl", ValueKind::String, "PATH", "JSON-lines file, '-' for stdout, 'none' for off.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.jsonl_path, parsePathOrNone(v, "flows.jsonl")); },
            [](const DaemonConfig& c) { return printPathOrNone(c.jsonl_path); }},
    Setting{"events", ValueKind::StringList, "LIST", "ctnetlink events to subscribe to: new, update, destroy (destroy is required).",
            [](DaemonConfig& c, std::string_view v) { return assign(c.events, EventMask::parse(v)); },
            [](const DaemonConfig& c) { return c.events.toString(); }},
    Setting{"jsonl-updates", ValueKind::Boolean, "",
            "Also write UPDATE events as JSON lines (about five per TCP flow); the database gets them either way.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.jsonl_updates, parseBoolean(v)); },
            [](const DaemonConfig& c) { return printBoolean(c.jsonl_updates); }},
    Setting{"sysctl", ValueKind::Boolean, "",
            "Set net.netfilter.nf_conntrack_{acct,timestamp,events}=1 at start; when off, only warn about "
            "each one that is off.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.apply_sysctls, parseBoolean(v)); },
            [](const DaemonConfig& c) { return printBoolean(c.apply_sysctls); }},
    Setting{"flush-interval", ValueKind::String, "DUR",
            "Make records durable at least this often (10ms to 10m): a crash loses at most this much.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.flush_interval, parseFlushInterval(v)); },
            [](const DaemonConfig& c) { return printDuration(c.flush_interval); }},
    Setting{"max-batch-rows", ValueKind::Integer, "N",
            "Write a batch early once it holds this many records (1 to 1000000).",
            [](DaemonConfig& c, std::string_view v) { return assign(c.max_batch_rows, parseCount(v)); },
            [](const DaemonConfig& c) { return std::to_string(c.max_batch_rows); }},
    Setting{"receive-buffer", ValueKind::String, "SIZE",
            "Netlink receive buffer, e.g. 64M (4K up; the kernel gives at most 2G); 256M holds about 200k events, over a second at 180k events/s "
            "(above net.core.rmem_max needs CAP_NET_ADMIN).",
            [](DaemonConfig& c, std::string_view v) { return assign(c.receive_buffer_bytes, parseReceiveBuffer(v)); },
            [](const DaemonConfig& c) { return printSize(c.receive_buffer_bytes); }},
    Setting{"queue-max", ValueKind::String, "SIZE",
            "Memory for records on their way to the sinks (at least 1M; 512M is about 8 million records in the queue, "
            "and nearly 1 million per sink while it cannot write); when full, new records are dropped and recorded as a gap.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.queue_max_bytes, parseQueueMax(v)); },
            [](const DaemonConfig& c) { return printSize(c.queue_max_bytes); }},
    Setting{"reliable", ValueKind::Boolean, "",
            "Reliable event delivery (NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS): the kernel keeps and resends "
            "DESTROY events the daemon had no room for, and may drop packets instead; read docs/operations.md first.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.reliable, parseBoolean(v)); },
            [](const DaemonConfig& c) { return printBoolean(c.reliable); }},
    Setting{"sweep-interval", ValueKind::String, "DUR",
            "While flows from the start-up dump that may have no end event are open (made before "
            "nf_conntrack_events was 1), dump the table this often to close those that are gone (1s to 1d).",
            [](DaemonConfig& c, std::string_view v) { return assign(c.sweep_interval, parseSweepInterval(v)); },
            [](const DaemonConfig& c) { return printDuration(c.sweep_interval); }},
    Setting{"stats-file", ValueKind::String, "PATH",
            "Prometheus text file for node_exporter's textfile collector, rewritten every 5s; 'none' for off. "
            "Unless set, ctauditd.prom in the database's directory.",
            [](DaemonConfig& c, std::string_view v) {
              c.stats_file_beside_db = false;
              return assign(c.stats_file, parsePathOrNone(v, "ctauditd.prom"));
            },
            [](const DaemonConfig& c) {
              return c.stats_file_beside_db ? (c.db_path.parent_path() / "ctauditd.prom").string()
                                            : printPathOrNone(c.stats_file);
            }},
    Setting{"log-level", ValueKind::String, "LEVEL", "Diagnostics on stderr: trace, debug, info, warn (or warning), error (or err), critical.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.log_level, parseLogLevel(v)); },
            [](const DaemonConfig& c) { return printLogLevel(c.log_level); }},
    Setting{"jsonl-rotate", ValueKind::String, "WHEN",
            "Close the JSON-lines file at the end of each UTC period and/or before it passes a size: e.g. 1d, 1h, "
            "512M, 1h,512M, or none; closed files are named <stem>-<start>-<end><ext> after the file (UTC; flows-<start>-<end>.jsonl by default).",
            [](DaemonConfig& c, std::string_view v) {
              return assign(c.jsonl_rotation.policy, storage::parseRotationPolicy(v));
            },
            [](const DaemonConfig& c) { return storage::formatRotationPolicy(c.jsonl_rotation.policy); }},
    Setting{"jsonl-keep", ValueKind::IntegerOrAll, "N",
            "Closed JSON-lines files to keep, or all; older ones are deleted.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.jsonl_rotation.keep, parseKeep(v)); },
            [](const DaemonConfig& c) {
              return c.jsonl_rotation.keep ? std::to_string(*c.jsonl_rotation.keep) : std::string("all");
            }},
    Setting{"jsonl-compress", ValueKind::String, "ALG", "Compress closed JSON-lines files: gzip, zstd or none.",
            [](DaemonConfig& c, std::string_view v) {
              return assign(c.jsonl_rotation.compression, storage::parseCompression(v));
            },
            [](const DaemonConfig& c) { return std::string(storage::compressionName(c.jsonl_rotation.compression)); }},
    Setting{"jsonl-grace", ValueKind::String, "DUR",
            "Compress or delete a closed JSON-lines file no sooner than this after it was closed, so that "
            "shippers can finish it (0 to 7d).",
            [](DaemonConfig& c, std::string_view v) { return assign(c.jsonl_rotation.grace, parseGrace(v)); },
            [](const DaemonConfig& c) {
              return printDuration(std::chrono::duration_cast<std::chrono::milliseconds>(c.jsonl_rotation.grace));
            }},
    Setting{"retention", ValueKind::String, "DUR",
            "Delete flows that ended longer ago than this, e.g. 400d, in small steps that yield to ingest; "
            "'none' keeps everything.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.retention, parseRetention(v)); },
            [](const DaemonConfig& c) {
              return c.retention ? printDuration(std::chrono::duration_cast<std::chrono::milliseconds>(*c.retention))
                                 : std::string("none");
            }},
    Setting{"user", ValueKind::String, "NAME",
            "Started as root: open the event socket and the files, give the files to NAME, then run as NAME "
            "with CAP_NET_ADMIN as the only capability; 'none' keeps the user it was started as.",
            [](DaemonConfig& c, std::string_view v) { return assign(c.user, parseUser(v)); },
            [](const DaemonConfig& c) { return c.user.value_or("none"); }},
};

// ---------------------------------------------------------------------------------------------
// The config file.

Unexpected configError(const std::string& file, const toml::source_position& where, const std::string& message) {
  return fail(Errc::Config,
              file + ":" + std::to_string(where.line) + ":" + std::to_string(where.column) + ": " + message);
}

// A TOML value as the flag would spell it, or an error saying which type the key needs.
Result<std::string> flagText(const Setting& setting, const toml::node& node) {
  const std::string example = std::string(setting.key) + " = " + tomlValue(setting, DaemonConfig{});
  switch (setting.kind) {
    case ValueKind::Boolean:
      if (const auto value = node.value_exact<bool>()) {
        return printBoolean(*value);
      }
      return fail(Errc::Config, "'" + std::string(setting.key) + "' must be true or false, without quotes: " + example);
    case ValueKind::Integer:
      if (const auto value = node.value_exact<std::int64_t>()) {
        return std::to_string(*value);
      }
      return fail(Errc::Config,
                  "'" + std::string(setting.key) + "' must be a whole number, without quotes: " + example);
    case ValueKind::IntegerOrAll:
      if (const auto value = node.value_exact<std::int64_t>()) {
        return std::to_string(*value);
      }
      if (node.value_exact<std::string>() == "all") {
        return std::string("all");
      }
      return fail(Errc::Config,
                  "'" + std::string(setting.key) + "' must be a whole number without quotes, or \"all\": " + example);
    case ValueKind::String:
      if (const auto value = node.value_exact<std::string>()) {
        return *value;
      }
      return fail(Errc::Config, "'" + std::string(setting.key) + "' must be a string in double quotes: " + example);
    case ValueKind::StringList: {
      std::string joined;
      const toml::array* array = node.as_array();
      bool all_strings = array != nullptr && !array->empty();
      if (array != nullptr) {
        for (const toml::node& item : *array) {
          const auto text = item.value_exact<std::string>();
          all_strings = all_strings && text.has_value();
          joined += (joined.empty() ? "" : ",") + text.value_or("");
        }
      }
      if (all_strings) {
        return joined;
      }
      return fail(Errc::Config, "'" + std::string(setting.key) + "' must be a non-empty array of strings: " + example);
    }
  }
  return fail(Errc::Config, "unknown value kind");
}

// TOML basic string: quotes, backslashes and control characters escaped.
std::string tomlString(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte == 0x7f) {
      std::array<char, 8> escaped{};
      std::snprintf(escaped.data(), escaped.size(), "\\u%04X", static_cast<unsigned>(byte));
      out += escaped.data();
    } else {
      out += c;
    }
  }
  return out + "\"";
}

// `text` broken into lines of at most `width` characters at spaces (a longer word gets its own line).
std::vector<std::string> wrapWords(std::string_view text, std::size_t width) {
  std::vector<std::string> lines;
  std::string line;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t space = std::min(text.find(' ', pos), text.size());
    const std::string_view word = text.substr(pos, space - pos);
    if (!line.empty() && line.size() + 1 + word.size() > width) {
      lines.push_back(std::move(line));
      line.clear();
    }
    line += (line.empty() ? "" : " ") + std::string(word);
    pos = space + 1;
  }
  if (!line.empty()) {
    lines.push_back(std::move(line));
  }
  return lines;
}

// Lines of --help, the example file and --check-config stay within this many columns.
constexpr std::size_t kTextWidth = 100;
// --help's option column: "  --receive-buffer SIZE  " is 25 wide.
constexpr std::size_t kHelpColumn = 25;

}  // namespace

std::span<const Setting> settings() noexcept { return kSettings; }

std::optional<std::size_t> settingIndex(std::string_view key) {
  const auto* const found =
      std::find_if(kSettings.begin(), kSettings.end(), [key](const Setting& s) { return s.key == key; });
  if (found == kSettings.end()) {
    return std::nullopt;
  }
  return static_cast<std::size_t>(found - kSettings.begin());
}

Result<void> applyConfigFile(const std::filesystem::path& path, EffectiveConfig& effective) {
  const std::string file = path.string();
  const std::string what_next = "; fix it, or name another file with --config FILE (--config none reads none)";
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return fail(Errc::Config, "config file " + file + " is a directory" + what_next);
  }
  // Read into memory, at most one byte past a config file's few kilobytes: a log file named by
  // mistake must not take it all. A FIFO would hang the start, /dev/zero never end.
  constexpr std::size_t kMaxConfigBytes = std::size_t{1} << 20U;
  if (const auto status = std::filesystem::status(path, ec);
      !ec && std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    return fail(Errc::Config, "config file " + file + " is not a regular file" + what_next);
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int error = errno;
    return fail(Errc::Config, "cannot read config file " + file + ": " + std::strerror(error) + what_next, error);
  }
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<std::size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return fail(Errc::Config, "config file " + file + " holds more than a config file's 1 MiB: is it the right file?" +
                                  what_next);
  }

  toml::table table;
  try {
    table = toml::parse(text, file);
  } catch (const toml::parse_error& error) {
    return configError(file, error.source().begin,
                       std::string(error.description()) +
                           "; fix the TOML syntax there (each key once, one per line, strings in double "
                           "quotes: db = \"/srv/flows.db\")");
  }

  // Applied to a copy, so a bad file leaves `effective` as it was.
  EffectiveConfig updated = effective;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    if (node.is_table()) {
      return configError(file, node.source().begin,
                         "'" + name + "' is a table; ctauditd's settings have none: write each key at the top "
                                      "of the file, before any [header], without dots in its name");
    }
    const auto index = settingIndex(name);
    if (!index) {
      return configError(file, key.source().begin,
                         "unknown key '" + name + "'; the keys are ctauditd's long options without their dashes "
                                                  "(ctauditd --help)");
    }
    const Setting& setting = kSettings[*index];
    const auto value = flagText(setting, node);
    if (!value) {
      return configError(file, node.source().begin, value.error().detail);
    }
    const auto applied = setting.set(updated.config, *value);
    if (!applied) {
      return configError(file, node.source().begin, name + ": " + applied.error().detail);
    }
    updated.origins[*index] = file + ":" + std::to_string(key.source().begin.line);
  }
  effective = std::move(updated);
  return {};
}

std::string tomlValue(const Setting& setting, const DaemonConfig& config) {
  const std::string text = setting.get(config);
  switch (setting.kind) {
    case ValueKind::Boolean:
    case ValueKind::Integer:
      return text;
    case ValueKind::IntegerOrAll:
      return text == "all" ? tomlString(text) : text;
    case ValueKind::String:
      return tomlString(text);
    case ValueKind::StringList: {
      std::string out = "[";
      std::size_t pos = 0;
      while (pos <= text.size()) {
        const std::size_t comma = std::min(text.find(',', pos), text.size());
        out += (pos == 0 ? "" : ", ") + tomlString(text.substr(pos, comma - pos));
        pos = comma + 1;
      }
      return out + "]";
    }
  }
  return text;
}

std::string renderEffectiveConfig(const EffectiveConfig& effective, std::string_view source_note) {
  std::string out =
      "# The effective configuration of ctauditd (ctauditd --check-config), usable as a config file.\n"
      "# " +
      std::string(source_note) + "\n# After each value: where it came from.\n\n";
  for (std::size_t i = 0; i < kSettings.size(); ++i) {
    const Setting& setting = kSettings[i];
    out += std::string(setting.key) + " = " + tomlValue(setting, effective.config) + "  # " + effective.origins[i] +
           "\n";
  }
  return out;
}

std::string renderExampleConfig() {
  std::string out =
      "# SPDX-License-Identifier: GPL-2.0-or-later\n"
      "# ctauditd's configuration file: /etc/ctaudit/ctauditd.toml (TOML, https://toml.io).\n"
      "#\n"
      "# Every key is also a long option of ctauditd: --KEY VALUE, or --KEY and --no-KEY for true and\n"
      "# false. An option on the command line overrides the key here. Each key below is commented out\n"
      "# and shows its default: this file changes nothing until a line is uncommented, and a default\n"
      "# that changes in a new version applies unless it was set here.\n"
      "#\n"
      "# Check the file, and see the configuration ctauditd will use and where each value comes from:\n"
      "#   ctauditd --check-config\n"
      "# A change needs a restart (systemctl restart ctauditd). See docs/operations.md.\n"
      "#\n"
      "# This file is generated from ctauditd's table of settings (daemon/settings.cpp); the unit tests\n"
      "# check that it matches.\n";
  const DaemonConfig defaults;
  for (const Setting& setting : kSettings) {
    out += '\n';
    for (const std::string& line : wrapWords(setting.help, kTextWidth - 2)) {
      out += "# " + line + "\n";
    }
    out += "#" + std::string(setting.key) + " = " + tomlValue(setting, defaults) + "\n";
  }
  return out;
}

std::string renderSettingsHelp() {
  const DaemonConfig defaults;
  std::string out;
  for (const Setting& setting : kSettings) {
    std::string option = "  --" + std::string(setting.key);
    std::string default_text = setting.get(defaults);
    if (setting.kind == ValueKind::Boolean) {
      option += ", --no-" + std::string(setting.key);
      default_text = default_text == "true" ? "on" : "off";
    } else {
      option += " " + std::string(setting.value_name);
    }
    const std::string help = std::string(setting.help) + " Default: " + default_text;
    out += option;
    std::size_t column = option.size();
    if (column + 2 > kHelpColumn) {
      out += '\n';
      column = 0;
    }
    for (const std::string& line : wrapWords(help, kTextWidth - kHelpColumn)) {
      out += std::string(kHelpColumn - column, ' ') + line + "\n";
      column = 0;
    }
  }
  return out;
}

}  // namespace ctaudit::daemon
