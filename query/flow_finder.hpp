// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

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
#include "storage/flow_reader.hpp"
#include "storage/logged_period.hpp"
#include "storage/retention_horizon.hpp"

namespace ctaudit::query {

// What the query commands need from a database: the flows matching a FlowQuery, who wrote them,
// and how complete the log is (its gaps, and the periods a daemon was recording). storage::FlowReader is the production implementation (see openFlowReader); tests pass
// a fake, so that every command runs without SQLite. Owned by the command that opened it; not
// thread-safe.
class FlowFinder {
public:
  FlowFinder() = default;
  FlowFinder(const FlowFinder&) = delete;
  FlowFinder& operator=(const FlowFinder&) = delete;
  FlowFinder(FlowFinder&&) = delete;
  FlowFinder& operator=(FlowFinder&&) = delete;
  virtual ~FlowFinder() = default;

  // Calls `visit` with each flow matching `query` (every set field narrows it), oldest start first,
  // at most query.limit of them, as it is read; `visit` returns false to stop. Errors: the database
  // could not be read (Errc::Storage, Errc::Io); the detail names the problem and what to do. The
  // flows visited before an error stay visited.
  [[nodiscard]] virtual Result<void> forEach(const storage::FlowQuery& query,
                                             const storage::FlowReader::FlowVisitor& visit) = 0;
  // The host name of the machine that wrote the flows (ECS observer.hostname).
  [[nodiscard]] virtual std::string observerHostname() const = 0;
  // The recorded gaps in the log that overlap [from, to], oldest start first. Errors as forEach().
  [[nodiscard]] virtual Result<std::vector<GapRecord>> gaps(Timestamp from, Timestamp to) = 0;
  // The periods the log covers, one per daemon run; empty when the database records no runs.
  // Errors as forEach().
  [[nodiscard]] virtual Result<std::vector<storage::LoggedPeriod>> loggedPeriods() = 0;
  // How far back the log reaches after retention; nullopt when nothing was ever expired. Ask
  // after forEach(): the horizon only moves forward. Errors as forEach().
  [[nodiscard]] virtual Result<std::optional<storage::RetentionHorizon>> retentionHorizon() = 0;
};

// Every flow forEach() visits, in a vector: for what needs them all at once (who's ranking, the
// table's column widths).
[[nodiscard]] Result<std::vector<storage::StoredFlow>> findAll(FlowFinder& finder, const storage::FlowQuery& query);

// Opens the database at a path. Errors as storage::FlowReader::open.
using FlowFinderOpener = std::function<Result<std::unique_ptr<FlowFinder>>(const std::filesystem::path&)>;

// The production opener: storage::FlowReader::open (read-only, refuses ATTACH and writes) behind
// the FlowFinder interface.
[[nodiscard]] Result<std::unique_ptr<FlowFinder>> openFlowReader(const std::filesystem::path& path);

}  // namespace ctaudit::query
