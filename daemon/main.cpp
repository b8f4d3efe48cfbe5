// SPDX-License-Identifier: GPL-2.0-or-later
// ctauditd: parses argv, builds the Daemon and runs it. Everything else lives in ctaudit_daemon_lib.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <iostream>
#include <string_view>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include "ctaudit_version.hpp"
#include "daemon/command_line.hpp"
#include "daemon/config_check.hpp"
#include "daemon/daemon.hpp"
#include "storage/sqlite_handles.hpp"

namespace {

constexpr int kExitRuntime = 1;
// A bad flag or config: --check-config's errors, and what a start refuses before it changes
// anything (the unit's RestartPreventExitStatus=2: starting again cannot help).
constexpr int kExitUsage = 2;

int exitStatusFor(const ctaudit::Error& error) {
  return error.code == ctaudit::Errc::Config || error.code == ctaudit::Errc::Usage ? kExitUsage : kExitRuntime;
}

ctaudit::daemon::Loggers makeLoggers(spdlog::level::level_enum level) {
  // One stderr sink shared by every component; journald adds its own timestamps.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  const auto make = [&](const char* name) {
    auto logger = std::make_shared<spdlog::logger>(name, sink);
    logger->set_level(level);
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %l [%n] %v", spdlog::pattern_time_type::utc);
    return logger;
  };
  return {make("daemon"), make("netlink"), make("pipeline"), make("sqlite"), make("jsonl")};
}

// Opens /dev/null on each of fds 0-2 that is closed, so that no socket or file the daemon opens
// later takes that number: a write to "standard output" would then go into it. True if standard
// output was closed.
bool fillClosedStandardDescriptors() {
  bool stdout_closed = false;
  for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; ++fd) {
    if (::fcntl(fd, F_GETFD) == -1 && errno == EBADF) {
      stdout_closed = stdout_closed || fd == STDOUT_FILENO;
      // The lowest free descriptor: this one. Should it fail, the number stays free, and a closed
      // standard output is still refused for --jsonl - below.
      (void)::open("/dev/null", O_RDWR);  // kept open for the life of the process, as the closed one was meant to be
    }
  }
  return stdout_closed;
}

}  // namespace

int main(int argc, char** argv) {
  const bool stdout_closed = fillClosedStandardDescriptors();
  // Before anything opens a database.
  (void)ctaudit::storage::tuneSqliteForThisProcess();
  // `--jsonl -` into a pipe whose reader went away must be a write error the sink reports, not a
  // silent death.
  std::signal(SIGPIPE, SIG_IGN);
  // Flow logs are personal data: the database, its WAL and the JSON lines are readable by the
  // ctaudit group (analysts) and nobody else, whatever umask the daemon was started with.
  ::umask(027);
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const auto command = ctaudit::daemon::parseDaemonCommandLine(args, ctaudit::daemon::defaultConfigFile());
  if (!command) {
    std::cerr << "ctauditd: " << command.error().detail << '\n';
    return kExitUsage;
  }
  if (std::holds_alternative<ctaudit::daemon::HelpCommand>(*command)) {
    std::cout << ctaudit::daemon::daemonUsage(ctaudit::daemon::defaultConfigFile());
    return 0;
  }
  if (std::holds_alternative<ctaudit::daemon::VersionCommand>(*command)) {
    std::cout << "ctauditd " << ctaudit::kVersion << '\n';
    return 0;
  }
  if (const auto* check = std::get_if<ctaudit::daemon::CheckConfigCommand>(&*command)) {
    // Prints and checks; opens nothing for writing and binds no socket.
    return ctaudit::daemon::reportCheckConfig(*check, std::cout, std::cerr) ? 0 : kExitUsage;
  }
  const auto& config = std::get<ctaudit::daemon::RunCommand>(*command).config;
  if (stdout_closed && config.jsonl_path && *config.jsonl_path == "-") {
    std::cerr << "ctauditd: --jsonl -: standard output is closed; give it somewhere to go, or a file\n";
    return kExitUsage;
  }
  auto loggers = makeLoggers(config.log_level);
  const ctaudit::SystemClock clock;
  auto daemon = ctaudit::daemon::Daemon::start(config, loggers, clock);
  if (!daemon) {
    loggers.daemon->error("{}", daemon.error().detail);
    return exitStatusFor(daemon.error());
  }
  const auto ran = (*daemon)->run();
  if (!ran) {
    loggers.daemon->error("{}", ran.error().detail);
    return kExitRuntime;
  }
  return 0;
}
