// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/config_check.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <optional>
#include <ostream>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "daemon/output_paths.hpp"
#include "daemon/privileges.hpp"
#include "storage/schema.hpp"

namespace ctaudit::daemon {
namespace {

namespace fs = std::filesystem;

// As the effective user (AT_EACCESS): the one ctauditd would run as if started like this.
bool writable(const fs::path& path) {
  return ::faccessat(AT_FDCWD, path.c_str(), W_OK | X_OK, AT_EACCESS) == 0 ||
         (!fs::is_directory(path) && ::faccessat(AT_FDCWD, path.c_str(), W_OK, AT_EACCESS) == 0);
}

std::string thisUser() { return "uid " + std::to_string(::geteuid()); }

// What a missing directory of an output file means: the sinks create theirs (the database cannot
// start without it, the JSON-lines file may be meant to appear later), the stats file does not
// unless it shares a sink's directory, which has been checked already.
// CheckedForTheUser: with `user`, checked by checkDirectoriesForAccount (the start would create it
// as root, and the account could not write it).
enum class MissingDirectory : std::uint8_t {
  CreatedOrError,
  CreatedOrWarning,
  NotCreated,
  CheckedWithASink,
  CheckedForTheUser
};

// Checks one output file `path`, the value of `key`.
void checkOutputFile(std::vector<ConfigProblem>& problems, std::string_view key, const fs::path& path,
                     MissingDirectory missing) {
  using Severity = ConfigProblem::Severity;
  const std::string name = std::string(key) + " = \"" + path.string() + "\": ";
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::exists(status)) {
    // A directory or a device where a file must be is outputPathConflict's to say.
    if (!fs::is_directory(status) && !writable(path)) {
      problems.push_back({Severity::Warning, name + "the file exists and " + thisUser() +
                                                 " cannot write it; ctauditd must run as a user that can"});
    }
    return;
  }
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path{"."};
  fs::path ancestor = directory;
  while (!fs::exists(ancestor, ec) && ancestor.has_parent_path() && ancestor != ancestor.parent_path()) {
    ancestor = ancestor.parent_path();
  }
  if (!fs::is_directory(ancestor, ec)) {
    problems.push_back({Severity::Error, name + ancestor.string() + " is not a directory; choose another path"});
    return;
  }
  if (ancestor == directory) {
    if (!writable(directory)) {
      problems.push_back({Severity::Warning, name + "the directory " + directory.string() + " is not writable by " +
                                                 thisUser() + "; ctauditd must run as a user that can write it"});
    }
    return;
  }
  switch (missing) {
    case MissingDirectory::CheckedWithASink:
    case MissingDirectory::CheckedForTheUser:
      return;
    case MissingDirectory::NotCreated:
      problems.push_back({Severity::Warning, name + "the directory " + directory.string() +
                                                 " does not exist and ctauditd does not create it: the file will "
                                                 "not be written until it exists"});
      return;
    case MissingDirectory::CreatedOrWarning:
    case MissingDirectory::CreatedOrError:
      if (writable(ancestor)) {
        problems.push_back({Severity::Warning, name + "the directory " + directory.string() +
                                                   " does not exist yet; ctauditd will create it"});
        return;
      }
      problems.push_back({missing == MissingDirectory::CreatedOrError ? Severity::Error : Severity::Warning,
                          name + "the directory " + directory.string() + " does not exist and " + thisUser() +
                              " cannot create it (" + ancestor.string() +
                              " is not writable); create it for the daemon's user (the unit's "
                              "StateDirectory=/LogsDirectory= do) or choose another path"});
      return;
  }
}

// What a start would say of the database file already at the path: not SQLite, another
// application's, a schema version this build cannot use (schema.hpp, checkFileHeaderForWriting).
void checkDatabaseFile(std::vector<ConfigProblem>& problems, const fs::path& path) {
  using Severity = ConfigProblem::Severity;
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    return;  // missing (created at start), or not a file (outputPathConflict says so)
  }
  const std::string name = "db = \"" + path.string() + "\": ";
  const auto verdict = storage::checkFileHeaderForWriting(path);
  if (!verdict) {
    problems.push_back({Severity::Error, name + verdict.error().detail + "; move it aside or choose another path"});
  } else if (*verdict) {
    problems.push_back({Severity::Warning, name + **verdict});
  }
}

// A check run as root of a configuration with `user`: the start creates or opens the files as
// root, then becomes the account and refuses to go on unless it can create files in each output's
// directory (requireWritableDirectories). An exploratory run's check passed where that start then
// failed.
void checkDirectoriesForAccount(std::vector<ConfigProblem>& problems, const DaemonConfig& config,
                                const ServiceAccount& account) {
  std::vector<fs::path> checked;
  for (const OutputDirectory& output : outputDirectories(config)) {
    if (std::ranges::find(checked, output.directory) != checked.end()) {
      continue;
    }
    checked.push_back(output.directory);
    const std::string name = std::string(output.setting) + " = \"" + output.file.string() + "\": ";
    std::error_code ec;
    if (!fs::exists(output.directory, ec)) {
      problems.push_back({ConfigProblem::Severity::Error,
                          name + "the directory " + output.directory.string() + " does not exist, and user " +
                              account.name + " must be able to create files in it (a directory ctauditd creates " +
                              "is root's): create it for the user (mkdir, then chown " + account.name +
                              ":; the unit's StateDirectory=/LogsDirectory= do)"});
      continue;
    }
    if (!fs::is_directory(output.directory, ec)) {
      continue;  // checkOutputFile says so
    }
    switch (canCreateFilesAs(account, output.directory)) {
      case AccountAccess::Yes:
        break;
      case AccountAccess::No:
        problems.push_back({ConfigProblem::Severity::Error,
                            name + "user " + account.name + " cannot create files in " + output.directory.string() +
                                ", which ctauditd needs as it runs (SQLite's -wal and -shm, rotated JSON lines, the " +
                                "stats file); give it the directory: chown " + account.name + ": " +
                                output.directory.string()});
        break;
      case AccountAccess::ReadOnlyFileSystem:
        problems.push_back({ConfigProblem::Severity::Error,
                            name + "the file system of " + output.directory.string() +
                                " is mounted read-only: remount it read-write, or choose another path"});
        break;
      case AccountAccess::Unknown:
        problems.push_back({ConfigProblem::Severity::Warning,
                            name + "could not check whether user " + account.name + " can create files in " +
                                output.directory.string() + " (its groups could not be read, or no process could "
                                "become it); a start requires it"});
        break;
    }
  }
}

}  // namespace

std::vector<ConfigProblem> checkConfigPaths(const DaemonConfig& config) {
  std::vector<ConfigProblem> problems;
  for (std::string& problem : outputPathProblems(config)) {
    problems.push_back({ConfigProblem::Severity::Error, std::move(problem)});
  }
  // The account itself (it exists, it is not uid 0) is an error whoever runs the check; that a
  // start needs root to switch to it (requireRootToSwitch) is only a warning here, as a check run
  // as the daemon's user or by an unprivileged admin of a config meant for root is.
  std::optional<ServiceAccount> account;
  if (config.user) {
    if (auto found = lookupServiceAccount(*config.user); !found) {
      problems.push_back({ConfigProblem::Severity::Error, found.error().detail});
    } else if (::geteuid() != 0) {
      problems.push_back({ConfigProblem::Severity::Warning,
                          "user = \"" + *config.user + "\": switching to it needs ctauditd started as root, and " +
                              thisUser() + " is not"});
    } else {
      account = std::move(*found);
    }
  }
  const auto or_for_the_user = [&](MissingDirectory missing) {
    return account ? MissingDirectory::CheckedForTheUser : missing;
  };
  checkOutputFile(problems, "db", config.db_path, or_for_the_user(MissingDirectory::CreatedOrError));
  checkDatabaseFile(problems, config.db_path);
  if (config.jsonl_path && *config.jsonl_path != "-") {
    checkOutputFile(problems, "jsonl", *config.jsonl_path, or_for_the_user(MissingDirectory::CreatedOrWarning));
  }
  if (config.stats_file) {
    const fs::path directory = config.stats_file->parent_path();
    const bool shared = directory == config.db_path.parent_path() ||
                        (config.jsonl_path && directory == config.jsonl_path->parent_path());
    checkOutputFile(problems, "stats-file", *config.stats_file,
                    shared ? MissingDirectory::CheckedWithASink : or_for_the_user(MissingDirectory::NotCreated));
  }
  if (account) {
    checkDirectoriesForAccount(problems, config, *account);
  }
  return problems;
}

std::vector<std::string> settingsWithoutEffect(const DaemonConfig& config) {
  std::vector<std::string> idle;
  if (config.jsonl_updates && !config.jsonl_path) {
    idle.emplace_back("jsonl-updates = true does nothing with jsonl = \"none\": there are no JSON lines to write "
                      "UPDATE events to");
  } else if (config.jsonl_updates && !config.events.update_events) {
    idle.emplace_back("jsonl-updates = true does nothing: the events subscribed to (" + config.events.toString() +
                      ") include no UPDATE; add \"update\" to events, or leave jsonl-updates off");
  }
  const bool jsonl_file = config.jsonl_path && *config.jsonl_path != "-";
  if (!jsonl_file && config.jsonl_rotation != DaemonConfig{}.jsonl_rotation) {
    idle.emplace_back(std::string("jsonl-rotate, jsonl-keep, jsonl-compress and jsonl-grace do nothing with jsonl = ") +
                      (config.jsonl_path ? "\"-\" (standard output is rotated by whoever reads it)" : "\"none\"") +
                      "; leave them at their defaults");
  }
  if (config.reliable && config.sweep_interval != DaemonConfig{}.sweep_interval) {
    idle.emplace_back("sweep-interval does nothing with reliable = true: its resyncs close no flow, so flows from the "
                      "start-up dump that have no end event stay open until the next start");
  }
  return idle;
}

std::optional<std::string> queueLargerThanMemory(const DaemonConfig& config, std::uint64_t memory_bytes) {
  const std::uint64_t worst = 2 * static_cast<std::uint64_t>(config.queue_max_bytes);
  if (memory_bytes == 0 || worst <= memory_bytes) {
    return std::nullopt;
  }
  constexpr double kMiB = 1024.0 * 1024.0;
  return fmt::format("queue-max of {:.0f} MiB: with both sinks failing the daemon can hold about twice that, {:.0f} "
                     "MiB, and this machine has {:.0f} MiB of memory: under a long overload the kernel would kill the "
                     "daemon and everything queued would be lost; give less than half of the memory, and leave room for the "
                     "rest",
                     static_cast<double>(config.queue_max_bytes) / kMiB, static_cast<double>(worst) / kMiB,
                     static_cast<double>(memory_bytes) / kMiB);
}

std::uint64_t physicalMemoryBytes() noexcept {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGESIZE);
  return pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) * static_cast<std::uint64_t>(page_size) : 0;
}

bool reportCheckConfig(const CheckConfigCommand& check, std::ostream& out, std::ostream& err) {
  const std::string source = check.config_file ? "Read " + check.config_file->string() + " and the command line."
                                               : "No config file read; the command line only.";
  out << renderEffectiveConfig(check.effective, source) << std::flush;
  bool usable = true;
  for (const ConfigProblem& problem : checkConfigPaths(check.effective.config)) {
    const bool error = problem.severity == ConfigProblem::Severity::Error;
    err << "ctauditd: " << (error ? "error: " : "warning: ") << problem.message << '\n';
    usable = usable && !error;
  }
  for (const std::string& idle : settingsWithoutEffect(check.effective.config)) {
    err << "ctauditd: warning: " << idle << '\n';
  }
  if (const auto too_large = queueLargerThanMemory(check.effective.config, physicalMemoryBytes())) {
    err << "ctauditd: warning: " << *too_large << '\n';
  }
  return usable;
}

}  // namespace ctaudit::daemon
