// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <functional>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "query/flow_finder.hpp"
#include "query/flows.hpp"

namespace ctaudit::query {

// What runCtaudit takes from the process around it, so that tests can give something else.
struct AppEnvironment {
  // Opens the database a command names; main passes openFlowReader. Must not be empty.
  FlowFinderOpener open_database;
  // The value of $CTAUDIT_DB, if set: the database when --db is not given.
  std::optional<std::string> database_from_env;
  // The errno of the write that failed when `out` goes bad, for the error line; main passes
  // FdOutputBuffer::error. Empty, or 0, when it is not known.
  std::function<int()> output_error;
  // How `flows` gets its lines to `out` (runFlows): main passes Spooled when standard output is a
  // pipe, a socket or a terminal, whose reader may pause.
  OutputPath flows_output{OutputPath::Direct};
};

// The whole `ctaudit` program: parses `args` (the arguments after the program name), runs the
// command, prints results on `out` and diagnostics on `err`. Returns the exit status (see
// ExitStatus): 0 found, 1 nothing found, 2 error. Every error is one line on `err` starting with
// "ctaudit: " that names the problem and what to do. Never throws.
[[nodiscard]] int runCtaudit(std::span<const std::string_view> args, std::ostream& out, std::ostream& err,
                             const AppEnvironment& environment) noexcept;

}  // namespace ctaudit::query
