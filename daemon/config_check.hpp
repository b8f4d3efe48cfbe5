// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "daemon/command_line.hpp"
#include "daemon/daemon_config.hpp"

namespace ctaudit::daemon {

// Something --check-config found about the files a configuration names.
struct ConfigProblem {
  enum class Severity : std::uint8_t { Warning, Error };
  Severity severity;
  std::string message;  // names the setting and the path, and says what to do
};

// Checks, without creating or opening anything, that the daemon can write the files `config`
// names, as the user running the check: errors for what will certainly fail at start (the
// database's directory cannot be created, a path that is a directory or lies under a file),
// warnings for what may be intended (a directory that ctauditd will create, a directory this
// user cannot write, which the daemon's own user may). Reads only file metadata.
[[nodiscard]] std::vector<ConfigProblem> checkConfigPaths(const DaemonConfig& config);

// Settings that `config` turns on and that do nothing in it, each as a sentence saying why and
// what to change: jsonl-updates without UPDATE events or without JSON lines, rotation settings
// other than the defaults without a JSON-lines file. A start logs them as warnings and runs;
// --check-config prints them as warnings.
[[nodiscard]] std::vector<std::string> settingsWithoutEffect(const DaemonConfig& config);

// A queue-max whose worst case (about twice the size, with both sinks failing: docs/operations.md,
// "Memory") is more than `memory_bytes`, the machine's memory: the kernel's OOM killer would stop
// the daemon under a long overload, and everything queued would be lost. --check-config and the
// start warn; nullopt when it fits or the memory is not known (0).
[[nodiscard]] std::optional<std::string> queueLargerThanMemory(const DaemonConfig& config, std::uint64_t memory_bytes);
// The machine's memory (sysconf), or 0 when not known.
[[nodiscard]] std::uint64_t physicalMemoryBytes() noexcept;

// ctauditd --check-config: writes the effective configuration (a valid config file) to `out`,
// then each problem checkConfigPaths() finds to `err` as "ctauditd: error: ..." or
// "ctauditd: warning: ...". Returns false if there was an error: the daemon would not start.
[[nodiscard]] bool reportCheckConfig(const CheckConfigCommand& check, std::ostream& out, std::ostream& err);

}  // namespace ctaudit::daemon
