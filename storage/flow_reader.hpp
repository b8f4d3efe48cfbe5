// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/flow_query.hpp"
#include "storage/flow_row.hpp"
#include "storage/logged_period.hpp"
#include "storage/retention_horizon.hpp"

struct sqlite3;

namespace ctaudit::storage {

// Read-only access to a database that SqliteSink writes, for the query tool. Opens the file with
// SQLITE_OPEN_READONLY (so it never blocks or alters the daemon's writes; WAL lets it read while
// the daemon commits) and installs an authorizer that refuses ATTACH and any write. Owned by one
// caller; not thread-safe. A find() by subscriber or translated address may open up to eight more
// read-only connections, each on a thread of its own, to read its rows ahead; it joins them
// before it returns.
class FlowReader {
public:
  // Errors: the file is missing or unreadable (Errc::Io), not a ctaudit database or of a newer
  // schema version (Errc::Storage). The detail names the path and what to do. A lock that another
  // program holds is waited for up to kReaderBusyTimeout (read_only_db.hpp), or `busy_timeout`.
  [[nodiscard]] static Result<std::unique_ptr<FlowReader>> open(const std::filesystem::path& path);
  [[nodiscard]] static Result<std::unique_ptr<FlowReader>> open(const std::filesystem::path& path,
                                                                std::chrono::milliseconds busy_timeout);

  FlowReader(const FlowReader&) = delete;
  FlowReader& operator=(const FlowReader&) = delete;
  FlowReader(FlowReader&&) = delete;
  FlowReader& operator=(FlowReader&&) = delete;
  ~FlowReader();

  // Called with each flow forEach() reads; returns false to stop reading (the output went away).
  using FlowVisitor = std::function<bool(const StoredFlow&)>;

  // Calls `visit` with each flow matching `query`, oldest start first, as its row is read, so that
  // an export of millions of flows never holds them in memory. Each record comes back as the last
  // event the database holds for it: EventType::Destroy when the flow has ended, EventType::New
  // while it is open (observed_at_start set where the flow was first seen in the start dump); with
  // lifetime_start, the time the row is indexed under (its start, or when it was first seen if the
  // start is unknown). The read snapshot lasts until it returns. An error after some flows were
  // visited leaves them visited.
  [[nodiscard]] Result<void> forEach(const FlowQuery& query, const FlowVisitor& visit);

  // The records forEach() visits, in a vector.
  [[nodiscard]] Result<std::vector<FlowRecord>> find(const FlowQuery& query);

  // The recorded gaps that overlap [from, to] (start <= to and end >= from, ends included), oldest
  // start first. Errors: Errc::Storage for a row no writer produces (an unknown reason), naming its
  // id; Errc::Storage / Errc::Io when the table cannot be read.
  [[nodiscard]] Result<std::vector<GapRecord>> gaps(Timestamp from, Timestamp to);

  // Every daemon run the database knows, as the period it logged, earliest start first; empty
  // when none was recorded (a writer that never called SqliteSink::beginRun). Errors as gaps().
  [[nodiscard]] Result<std::vector<LoggedPeriod>> loggedPeriods();

  // How far back the log reaches after retention (meta `retention_horizon_ns`), nullopt when no
  // flow was ever expired from this file. Read it after the flows: the horizon only moves forward
  // and is committed with the deletions it allows, so a horizon read later never claims less than
  // the flows read before it lack. Errors: Errc::Storage for a meta value that is not an integer.
  [[nodiscard]] Result<std::optional<RetentionHorizon>> retentionHorizon();

  // When find() reads a lookup's rows ahead from other connections (RowPrefetch): when its first
  // rows are not in the page cache (the default), or always, all of them, before the query runs
  // (for tests: rows a test has just written are always in the page cache).
  enum class ReadAhead : std::uint8_t { WhenCold, Always };
  void setReadAhead(ReadAhead mode) noexcept;
  // The rows the last find() read ahead, as far as it got before the query finished.
  [[nodiscard]] std::size_t rowsReadAhead() const noexcept;

  // The host name of the machine that wrote the database (for ECS observer.hostname).
  [[nodiscard]] const std::string& observerHostname() const noexcept { return observer_hostname_; }

private:
  struct Impl;
  explicit FlowReader(std::unique_ptr<Impl> impl, std::string observer_hostname);
  std::unique_ptr<Impl> impl_;
  std::string observer_hostname_;
};

}  // namespace ctaudit::storage
