// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "daemon/daemon_config.hpp"
#include "daemon/settings.hpp"
#include "flow/result.hpp"

namespace ctaudit::daemon {

struct RunCommand {
  DaemonConfig config;
};
// --check-config: validate, print the effective configuration, exit.
struct CheckConfigCommand {
  EffectiveConfig effective;
  std::optional<std::filesystem::path> config_file;  // the file that was read, if any
};
struct HelpCommand {};
struct VersionCommand {};
using DaemonCommand = std::variant<RunCommand, CheckConfigCommand, HelpCommand, VersionCommand>;

// Where ctauditd looks for its config file when no --config is given: SYSCONFDIR/ctaudit/ctauditd.toml
// as CMake installs it, /etc/ctaudit/ctauditd.toml for a /usr prefix (the package).
[[nodiscard]] std::filesystem::path defaultConfigFile();

// Parses ctauditd's arguments (without argv[0]). The config file is the base: `--config FILE`
// wherever it appears, else `default_config_file` when that exists (`--config none`: no file).
// Every setting given as a flag overrides the file (settings.hpp). Errors: Errc::Usage for a bad
// flag or value, Errc::Config for a config file that is missing (when named), unreadable or
// wrong ("FILE:LINE:COL: ..."). Tests pass their own `default_config_file`, so that a file
// installed on the machine does not change what they parse.
[[nodiscard]] Result<DaemonCommand> parseDaemonCommandLine(std::span<const std::string_view> args,
                                                           const std::filesystem::path& default_config_file);

[[nodiscard]] std::string daemonUsage(const std::filesystem::path& default_config_file);

}  // namespace ctaudit::daemon
