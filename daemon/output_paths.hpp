// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/daemon_config.hpp"

namespace ctaudit::daemon {

// Why the files `config` names cannot all be written as asked, or nullopt. Each output replaces or
// appends to its file in its own way (the stats file is replaced whole every few seconds, the
// JSON-lines sink cuts an unfinished last line off and rotates by renaming), so two outputs on one
// file destroy what one of them holds: refused when the paths name the same file (the database's
// -wal, -shm and -journal included), and when the file at the JSON-lines or stats path is already
// something else (a SQLite database, a file that is not JSON lines or not a stats file). Reads
// only metadata and the first bytes of existing files. Both a start and --check-config ask it.
[[nodiscard]] std::optional<std::string> outputPathConflict(const DaemonConfig& config);

// Every such problem, in the order outputPathConflict() would find them: --check-config reports
// them all at once, so that an operator does not fix them one run at a time.
[[nodiscard]] std::vector<std::string> outputPathProblems(const DaemonConfig& config);

// The directory a file is created in ("." for a bare file name).
[[nodiscard]] std::filesystem::path directoryOf(const std::filesystem::path& file);

// The directories the outputs create files in as the daemon runs (SQLite's -wal and -shm, rotated
// JSON lines, the stats file's temporary), each with the setting that names it: the database's,
// the JSON-lines file's (not standard output) and the stats file's. A switch to `user` requires
// the account to create files in each; --check-config checks the same list.
struct OutputDirectory {
  std::string_view setting;
  std::filesystem::path file;
  std::filesystem::path directory;
};
[[nodiscard]] std::vector<OutputDirectory> outputDirectories(const DaemonConfig& config);

}  // namespace ctaudit::daemon
