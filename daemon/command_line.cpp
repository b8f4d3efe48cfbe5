// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/command_line.hpp"

#include <algorithm>
#include <vector>

#include "flow/argument_length.hpp"

namespace ctaudit::daemon {
namespace {

// One setting given on the command line, applied after the config file.
struct FlagValue {
  std::size_t index;  // into settings()
  std::string value;  // as set() reads it
};

// What argv says, before anything is read or applied.
struct ParsedArgs {
  std::vector<FlagValue> flags;
  std::optional<std::string> config_file;  // --config's value, "none" included
  bool check_config{false};
  bool help{false};
  bool version{false};
};

// --help and --version win wherever they are, even over a broken config file; so argv is split
// into flags first, and nothing is read until it is known that the daemon will need it.
bool isHelpOrVersion(std::string_view arg) { return arg == "--help" || arg == "-h" || arg == "--version" || arg == "-V"; }

Result<ParsedArgs> splitArgs(std::span<const std::string_view> args) {
  // After the help flags, which win over every wrong argument, an overlong one included.
  if (std::ranges::none_of(args, isHelpOrVersion)) {
    if (auto lengths = checkArgumentLengths(args, "ctauditd"); !lengths) {
      return Unexpected{lengths.error()};
    }
  }
  ParsedArgs parsed;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (isHelpOrVersion(arg)) {
      ParsedArgs early;
      early.help = arg == "--help" || arg == "-h";
      early.version = !early.help;
      return early;
    }
    if (!arg.starts_with("--")) {
      return fail(Errc::Usage, "unexpected argument '" + std::string(arg) + "'; see ctauditd --help");
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> value;
    if (const auto eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    const auto takeValue = [&]() -> Result<std::string> {
      if (value) {
        return std::string(*value);
      }
      if (i + 1 >= args.size()) {
        return fail(Errc::Usage, "--" + std::string(name) + " needs a value; see ctauditd --help");
      }
      return std::string(args[++i]);
    };

    if (name == "check-config") {
      if (value) {
        return fail(Errc::Usage, "--check-config takes no value");
      }
      parsed.check_config = true;
      continue;
    }
    if (name == "config") {
      if (parsed.config_file) {
        return fail(Errc::Usage, "--config given twice; give one file, or 'none'");
      }
      auto file = takeValue();
      if (!file) {
        return Unexpected{file.error()};
      }
      parsed.config_file = std::move(*file);
      continue;
    }
    // A boolean setting is --KEY (true) or --no-KEY (false), without a value.
    const auto negated = name.starts_with("no-") ? settingIndex(name.substr(3)) : std::nullopt;
    const bool is_negation = negated && settings()[*negated].kind == ValueKind::Boolean;
    const auto index = is_negation ? negated : settingIndex(name);
    if (!index) {
      return fail(Errc::Usage, "unknown option '--" + std::string(name) + "'; see ctauditd --help");
    }
    const Setting& setting = settings()[*index];
    // A flag overrides the config file, but not another flag: of two, one was a mistake (a unit's
    // ExecStart extended by hand, a wrapper's defaults), and silently keeping the last one hides it.
    if (std::any_of(parsed.flags.begin(), parsed.flags.end(), [&](const FlagValue& f) { return f.index == *index; })) {
      const std::string spelling = setting.kind == ValueKind::Boolean
                                       ? "--" + std::string(setting.key) + "/--no-" + std::string(setting.key)
                                       : "--" + std::string(setting.key);
      return fail(Errc::Usage, spelling + " given twice; give it once (it overrides the config file's '" +
                                   std::string(setting.key) + "')");
    }
    if (setting.kind == ValueKind::Boolean) {
      if (value) {
        return fail(Errc::Usage, "--" + std::string(name) + " takes no value; write --" + std::string(setting.key) +
                                     " or --no-" + std::string(setting.key));
      }
      parsed.flags.push_back({*index, is_negation ? "false" : "true"});
      continue;
    }
    auto text = takeValue();
    if (!text) {
      return Unexpected{text.error()};
    }
    parsed.flags.push_back({*index, std::move(*text)});
  }
  return parsed;
}

}  // namespace

std::filesystem::path defaultConfigFile() { return CTAUDIT_DEFAULT_CONFIG_FILE; }

Result<DaemonCommand> parseDaemonCommandLine(std::span<const std::string_view> args,
                                             const std::filesystem::path& default_config_file) {
  auto split = splitArgs(args);
  if (!split) {
    return Unexpected{split.error()};
  }
  const ParsedArgs& parsed = *split;
  if (parsed.help) {
    return DaemonCommand{HelpCommand{}};
  }
  if (parsed.version) {
    return DaemonCommand{VersionCommand{}};
  }

  // The file: the one named, or the default one if it is there. A file the operator named must
  // exist; the default one is optional, so that ctauditd runs without any config.
  std::optional<std::filesystem::path> config_file;
  if (parsed.config_file) {
    if (*parsed.config_file != "none") {
      config_file = *parsed.config_file;
    }
  } else {
    std::error_code ec;
    if (std::filesystem::exists(default_config_file, ec) || ec) {
      config_file = default_config_file;  // an error from exists() shows when it is read
    }
  }
  EffectiveConfig effective;
  if (config_file) {
    const auto loaded = applyConfigFile(*config_file, effective);
    if (!loaded) {
      return Unexpected{loaded.error()};
    }
  }

  for (const FlagValue& flag : parsed.flags) {
    const Setting& setting = settings()[flag.index];
    const auto applied = setting.set(effective.config, flag.value);
    if (!applied) {
      return fail(Errc::Usage, "--" + std::string(setting.key) + ": " + applied.error().detail);
    }
    effective.origins[flag.index] = "command line";
  }
  if (effective.config.stats_file_beside_db) {
    effective.config.stats_file = effective.config.db_path.parent_path() / "ctauditd.prom";
    if (const auto db = settingIndex("db"), stats = settingIndex("stats-file"); db && stats) {
      effective.origins[*stats] = effective.origins[*db] == "default" ? "default" : "default: beside db";
    }
  }
  // Settings that are each valid but not together: checked once the file and the flags are in.
  if (!effective.config.events.destroy_events) {
    const auto events = settingIndex("events");
    return fail(Errc::Usage, "events: " + effective.config.events.toString() + " (from " +
                                 (events ? effective.origins[*events] : std::string("the settings")) +
                                 ") leaves out destroy: without it no flow ever ends in the log, and ctaudit who "
                                 "would name its subscriber for any later time; add destroy");
  }
  if (parsed.check_config) {
    return DaemonCommand{CheckConfigCommand{std::move(effective), std::move(config_file)}};
  }
  return DaemonCommand{RunCommand{std::move(effective.config)}};
}

std::string daemonUsage(const std::filesystem::path& default_config_file) {
  return "Usage: ctauditd [OPTION]...\n"
         "Log every conntrack flow of this network namespace, with its NAT mapping, to SQLite and JSON lines.\n"
         "\n"
         "Settings. Each is also a key of the config file, spelt without the dashes (events = [\"new\"],\n"
         "reliable = true); a flag overrides the file.\n" +
         renderSettingsHelp() +
         "\n"
         "Other options:\n"
         "  --config FILE          read the settings from FILE (TOML); 'none' reads no file. Without it:\n"
         "                         " +
         default_config_file.string() +
         " when it exists\n"
         "  --check-config         check the config file and the flags, print the effective configuration\n"
         "                         as TOML with where each value came from, and exit; writes nothing\n"
         "  --help                 show this help\n"
         "  --version              show the version\n"
         "\n"
         "Signals: SIGTERM/SIGINT write everything pending and exit (0, or 1 when an output still refused\n"
         "records, which are then a gap); SIGHUP and SIGUSR1 reopen the JSON-lines file.\n"
         "Exit status: 0 clean stop (or a good --check-config), 1 runtime error, 2 usage or configuration\n"
         "error.\n";
}

}  // namespace ctaudit::daemon
