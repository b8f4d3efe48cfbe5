// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/daemon_config.hpp"
#include "flow/result.hpp"

namespace ctaudit::daemon {

// How a setting is written: its TOML type in the config file, and the shape of its flag.
enum class ValueKind : std::uint8_t {
  Boolean,     // TOML true/false; the flag --KEY sets it, --no-KEY clears it
  Integer,     // TOML integer; --KEY N
  IntegerOrAll,  // TOML integer or the string "all"; --KEY N or --KEY all
  String,      // TOML string; --KEY TEXT
  StringList,  // TOML array of strings; --KEY A,B,C
};

// One daemon setting: a key in the config file and the long flag --KEY, the same thing twice.
// The table of them (settings()) is the only list of settings: --help, the config file's key
// check, the example file (systemd/ctauditd.toml) and --check-config are all made from it.
//
// `set` and `get` speak the flag's text ("true"/"false" for a Boolean, "a,b" for a StringList),
// so the command line and the file share one parser per setting; the TOML form follows from the
// kind. `set` reports a bad value without naming the setting: the caller adds the file position
// or the flag.
struct Setting {
  std::string_view key;
  ValueKind kind;
  std::string_view value_name;  // in --help: PATH, SIZE, DUR...; empty for a Boolean
  std::string_view help;        // one sentence or two, for --help and the example file
  Result<void> (*set)(DaemonConfig& config, std::string_view text);
  std::string (*get)(const DaemonConfig& config);
};

// Every setting, in the order --help, the example file and --check-config list them.
[[nodiscard]] std::span<const Setting> settings() noexcept;

// The index in settings() of the setting named `key`, or nullopt.
[[nodiscard]] std::optional<std::size_t> settingIndex(std::string_view key);

// Where each setting's value came from, indexed like settings(): "default", "FILE:LINE" or
// "command line".
using SettingOrigins = std::vector<std::string>;

// The settings as the daemon will use them, and where each came from.
struct EffectiveConfig {
  DaemonConfig config;
  SettingOrigins origins = SettingOrigins(settings().size(), "default");
};

// Reads a config file into `effective`: TOML with the settings' keys at the top level. Every
// problem is an Errc::Config error "FILE:LINE:COL: what is wrong; what to do": the file cannot
// be read, a TOML syntax error, an unknown key, a table, a value of the wrong TOML type, a bad
// value. Nothing is applied unless the whole file is good.
[[nodiscard]] Result<void> applyConfigFile(const std::filesystem::path& path, EffectiveConfig& effective);

// The value of `setting` in `config` as TOML: "1s" quoted, true, 8192, ["new", "destroy"].
[[nodiscard]] std::string tomlValue(const Setting& setting, const DaemonConfig& config);

// The effective configuration as a config file: every key, each with a comment saying where its
// value came from. `source_note` says which file was read (a comment line).
[[nodiscard]] std::string renderEffectiveConfig(const EffectiveConfig& effective, std::string_view source_note);

// The example config file shipped as systemd/ctauditd.toml: every key, commented out, at its
// default, under its help text.
[[nodiscard]] std::string renderExampleConfig();

// The --help lines for the settings, one option (and its wrapped help) each.
[[nodiscard]] std::string renderSettingsHelp();

}  // namespace ctaudit::daemon
