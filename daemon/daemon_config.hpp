// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include <spdlog/common.h>

#include "daemon/event_mask.hpp"

namespace ctaudit::daemon {

// The daemon's settings, parsed once from the config file and the command line (flags win) and
// never changed afterwards. Components copy what they need in their constructors.
struct DaemonConfig {
  std::filesystem::path db_path{"/var/lib/ctaudit/flows.db"};
  // JSON-lines output: a path, "-" for stdout, or nullopt for none.
  std::optional<std::filesystem::path> jsonl_path{"/var/log/ctaudit/flows.jsonl"};
  EventMask events{};
  // UPDATE events always refresh the SQLite row; they become JSON lines only on request, since a
  // short TCP flow produces about five of them.
  bool jsonl_updates{false};
  // Set nf_conntrack_acct/timestamp/events=1 at start (off: only warn).
  bool apply_sysctls{true};
  // Every record is handed to the sinks and made durable within this interval.
  std::chrono::milliseconds flush_interval{1000};
  // A batch is written earlier once it has this many records.
  std::size_t max_batch_rows{8192};
  // SO_RCVBUFFORCE size for the event socket. 64 MiB holds well over a second of events at this
  // kind of machine's measured ceiling (~180k events/s at < 400 bytes each): FIELD-NOTES.
  std::size_t receive_buffer_bytes{std::size_t{64} << 20U};
  spdlog::level::level_enum log_level{spdlog::level::info};
};

}  // namespace ctaudit::daemon
