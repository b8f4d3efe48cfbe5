// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include <spdlog/logger.h>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

// Replaces `path` with `text` atomically: writes `path`.tmp in the same directory and renames it
// over `path`, so a reader (node_exporter's textfile collector) sees the old file or the new one,
// never half of one. The temporary name does not end in .prom, so the collector ignores it.
// Errors: Errc::Io with the errno and the path.
[[nodiscard]] Result<void> replaceFile(const std::filesystem::path& path, std::string_view text);

// The --stats-file: rewritten by the Daemon every few seconds on the pipeline thread. A failure is
// logged once, when it starts, and once when writing works again; it never stops the daemon.
// Owned by the Daemon; not thread-safe.
class StatsFile {
public:
  // Takes an exclusive flock(2) on `path`.lock for as long as the StatsFile lives: two daemons
  // whose databases share a directory default to one stats file, and would each replace the
  // other's figures every few seconds, so the second is refused (Errc::Io, naming --stats-file).
  // The lock file stays after the stop; node_exporter reads only *.prom. A lock file that cannot
  // be created (no directory yet, no right to it) is logged and the file written unlocked: writing
  // the stats retries quietly as before.
  static Result<std::unique_ptr<StatsFile>> open(std::filesystem::path path, std::shared_ptr<spdlog::logger> log);

  void write(std::string_view text);
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

  // The lock's file beside `stats_file`.
  [[nodiscard]] static std::filesystem::path lockPath(const std::filesystem::path& stats_file);

private:
  StatsFile(std::filesystem::path path, std::shared_ptr<spdlog::logger> log, UniqueFd lock);

  std::filesystem::path path_;
  std::shared_ptr<spdlog::logger> log_;
  UniqueFd lock_;
  bool failing_{false};
};

}  // namespace ctaudit::daemon
