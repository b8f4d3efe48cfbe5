// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <string>

#include <spdlog/common.h>

#include "daemon/event_mask.hpp"
#include "storage/jsonl_rotation.hpp"

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
  // Every record is handed to the sinks and made durable within this interval of the reader taking
  // it from the socket (at most ReadPacing::max after it arrived).
  std::chrono::milliseconds flush_interval{1000};
  // A batch is written earlier once it has this many records.
  std::size_t max_batch_rows{131072};
  // SO_RCVBUFFORCE size for the event socket: what the kernel may queue while the reader is busy
  // (a table dump, a burst of DESTROYs from the GC). Each queued event costs its skb truesize, not
  // its payload: measured on 6.18, 1280 bytes per event for payloads of 196-300 bytes (IPv4 and
  // IPv6, NEW and DESTROY), so 64 MiB holds 52,428 events and 256 MiB 209,715: 1.17 s at this
  // kind of machine's ceiling of ~180k events/s (FIELD-NOTES; docs/operations.md).
  std::size_t receive_buffer_bytes{std::size_t{256} << 20U};
  // Memory for records on their way to the sinks (record_budget.hpp): the queue between the reader
  // and the pipeline thread, and each sink's backlog (half as much).
  std::size_t queue_max_bytes{std::size_t{512} << 20U};
  // NETLINK_BROADCAST_ERROR + NETLINK_NO_ENOBUFS: the kernel keeps and resends DESTROY events the
  // socket had no room for, and the reader waits for room in the queue instead of dropping.
  bool reliable{false};
  // While flows from the start-up dump that may never report their end are open, a dump of the
  // table this often closes the ones that are gone (EventReader::Options::sweep_every).
  std::chrono::milliseconds sweep_interval{std::chrono::minutes{5}};
  // Prometheus text file rewritten every few seconds, or nullopt for none. Unless set, it lives
  // beside the database (/var/lib/ctaudit/ctauditd.prom with the default --db), so that a daemon
  // given another --db writes nothing outside the directory it was given.
  std::optional<std::filesystem::path> stats_file{"/var/lib/ctaudit/ctauditd.prom"};
  bool stats_file_beside_db{true};
  spdlog::level::level_enum log_level{spdlog::level::info};
  // --user: started as root, switch to this user (keeping CAP_NET_ADMIN alone) once the socket,
  // the database and the files are open. nullopt: keep running as started.
  std::optional<std::string> user;
  // Built-in rotation of the JSON-lines file (jsonl-rotate, jsonl-keep, jsonl-compress,
  // jsonl-grace). On by default: one file per UTC day, gzip (zcat/zgrep work on any Debian), a
  // month kept; the shipped logrotate file stays inactive unless this is turned off
  // (docs/operations.md, "JSON lines: rotation and shippers").
  storage::RotationSettings jsonl_rotation{
      storage::RotationPolicy{std::chrono::seconds{86400}, std::nullopt}, 31, storage::Compression::Gzip,
      std::chrono::minutes{5}};
  // Delete flows that ended longer ago than this, and gaps and runs as old (docs/operations.md,
  // "Retention"); nullopt ("none", the default) keeps everything.
  std::optional<std::chrono::nanoseconds> retention;
};

}  // namespace ctaudit::daemon
