// SPDX-License-Identifier: GPL-2.0-or-later
// ctaudit: the query tool. All the work is in ctaudit_query_lib (query/app.hpp).
#include <cstdlib>
#include <iostream>
#include <span>
#include <string_view>
#include <vector>

#include <sys/stat.h>
#include <unistd.h>

#include "query/app.hpp"
#include "query/fd_output.hpp"
#include "query/flow_finder.hpp"
#include "storage/sqlite_handles.hpp"

int main(int argc, char** argv) {
  // Before anything opens a database: RowPrefetch's threads allocate in SQLite side by side.
  (void)ctaudit::storage::tuneSqliteForThisProcess();
  const std::span<char*> argv_span(argv, static_cast<std::size_t>(argc));
  const std::vector<std::string_view> args(argv_span.begin() + (argc > 0 ? 1 : 0), argv_span.end());

  // Not std::cout: its failure carries no errno, and "No space left on device" is what an operator
  // whose output stopped needs to read.
  ctaudit::query::FdOutputBuffer stdout_buffer(STDOUT_FILENO);
  std::ostream out(&stdout_buffer);
  // As std::cerr is tied to std::cout: what was printed before a warning or an error reaches the
  // terminal (or `2>&1 | jq`) before it.
  std::cerr.tie(&out);
  ctaudit::query::AppEnvironment environment{ctaudit::query::openFlowReader, std::nullopt,
                                             [&stdout_buffer] { return stdout_buffer.error(); }};
  // A pipe, a socket or a terminal may stop reading for as long as a person likes; a file or
  // /dev/null does not.
  if (struct stat st {}; ::fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode) ||
                                                              ::isatty(STDOUT_FILENO) == 1)) {
    environment.flows_output = ctaudit::query::OutputPath::Spooled;
  }
  if (const char* database = std::getenv("CTAUDIT_DB"); database != nullptr) {  // NOLINT(concurrency-mt-unsafe): single-threaded
    environment.database_from_env = database;
  }
  const int status = ctaudit::query::runCtaudit(args, out, std::cerr, environment);
  // cerr outlives `out`: untie it, or its flush at exit would reach through the dead stream.
  std::cerr.tie(nullptr);
  return status;
}
