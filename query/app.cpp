// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/app.hpp"

#include <cerrno>
#include <cstring>
#include <string>
#include <exception>
#include <variant>

#include "ctaudit_version.hpp"
#include "query/exit_status.hpp"
#include "query/flows.hpp"
#include "query/help_text.hpp"
#include "query/printable.hpp"
#include "query/who.hpp"

namespace ctaudit::query {
namespace {

// Runs one parsed command; each overload is one kind of Command.
class CommandRunner {
public:
  CommandRunner(std::ostream& out, std::ostream& err, const AppEnvironment& environment)
      : out_(out), err_(err), environment_(environment) {}

  ExitStatus operator()(const HelpRequest& help) const {
    out_ << helpText(help.topic);
    return ExitStatus::Found;
  }
  ExitStatus operator()(const VersionRequest& /*version*/) const {
    out_ << "ctaudit " << kVersion << '\n';
    return ExitStatus::Found;
  }
  ExitStatus operator()(const WhoCommand& who) const {
    auto finder = open(who.database);
    return finder ? runWho(who, **finder, out_, err_) : ExitStatus::Error;
  }
  ExitStatus operator()(const FlowsCommand& flows) const {
    auto finder = open(flows.database);
    return finder ? runFlows(flows, **finder, out_, err_, environment_.flows_output) : ExitStatus::Error;
  }

private:
  // Opens the database; on failure reports it on err_ and returns the error.
  Result<std::unique_ptr<FlowFinder>> open(const std::filesystem::path& path) const {
    auto finder = environment_.open_database(path);
    if (!finder) {
      std::string detail = finder.error().detail;
      // Only where another path is the likely fix: not for a file that is there but unreadable,
      // locked or damaged, whose message says what to do instead.
      const int sys_errno = finder.error().sys_errno;
      if (finder.error().code == Errc::NotFound ||
          (finder.error().code == Errc::Io && (sys_errno == ENOENT || sys_errno == EISDIR || sys_errno == ENOTDIR))) {
        detail += "; name the database with --db PATH or CTAUDIT_DB";
      }
      printErrorLine(err_, detail);
    }
    return finder;
  }

  std::ostream& out_;
  std::ostream& err_;
  const AppEnvironment& environment_;
};

}  // namespace

int runCtaudit(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
               const AppEnvironment& environment) noexcept {
  try {
    std::optional<std::string_view> env_database;
    if (environment.database_from_env) {
      env_database = *environment.database_from_env;
    }
    const auto command = parseCommandLine(args, env_database);
    if (!command) {
      printErrorLine(err, command.error().detail);
      return static_cast<int>(ExitStatus::Error);
    }
    const ExitStatus status = std::visit(CommandRunner{out, err, environment}, *command);
    out.flush();
    if (!out) {
      const int cause = environment.output_error ? environment.output_error() : 0;
      err << "ctaudit: could not write the output"
          << (cause != 0 ? std::string(": ") + std::strerror(cause) : std::string(" (disk full, or the reader went away?)"))
          << '\n';
      return static_cast<int>(ExitStatus::Error);
    }
    return static_cast<int>(status);
  } catch (const std::exception& e) {
    // Only allocation and stream failures can get here; report them like any other error.
    try {
      err << "ctaudit: " << e.what() << '\n';
    } catch (...) {  // NOLINT(bugprone-empty-catch): nowhere left to report to
    }
    return static_cast<int>(ExitStatus::Error);
  }
}

}  // namespace ctaudit::query
