// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <string_view>

#include <spdlog/logger.h>

#include "flow/result.hpp"

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
  StatsFile(std::filesystem::path path, std::shared_ptr<spdlog::logger> log);
  void write(std::string_view text);
  [[nodiscard]] const std::filesystem::path& path() const noexcept { return path_; }

private:
  std::filesystem::path path_;
  std::shared_ptr<spdlog::logger> log_;
  bool failing_{false};
};

}  // namespace ctaudit::daemon
