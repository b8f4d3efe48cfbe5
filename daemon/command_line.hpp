// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "daemon/daemon_config.hpp"
#include "flow/result.hpp"

namespace ctaudit::daemon {

struct RunCommand {
  DaemonConfig config;
};
struct HelpCommand {};
struct VersionCommand {};
using DaemonCommand = std::variant<RunCommand, HelpCommand, VersionCommand>;

// Parses ctauditd's arguments (without argv[0]). `--config FILE` is read first wherever it
// appears, then every flag overrides the file. Errors: Errc::Usage for a bad flag or value,
// Errc::Config for a bad config file (the detail starts with FILE:LINE).
[[nodiscard]] Result<DaemonCommand> parseDaemonCommandLine(std::span<const std::string_view> args);

// The config file: TOML whose keys are the long flags without their dashes (`db`, `jsonl`,
// `events`, `jsonl-updates`, `sysctl`, `flush-interval`, `max-batch-rows`, `receive-buffer`,
// `queue-max`, `reliable`, `stats-file`, `log-level`, `retention`). Unknown keys and wrong types
// are errors with FILE:LINE.
[[nodiscard]] Result<DaemonConfig> loadConfigFile(const std::string& path, DaemonConfig base);

[[nodiscard]] std::string daemonUsage();

}  // namespace ctaudit::daemon
