// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/time.hpp"
#include "query/flow_finder.hpp"
#include "storage/flow_row.hpp"
#include "storage/flow_query.hpp"
#include "storage/logged_period.hpp"
#include "storage/retention_horizon.hpp"

namespace ctaudit::testing {

// `flow` as the reader hands it over, unchanged, with the time its row is indexed under: its start,
// or for a flow without one its end, or while open its event time (when it was first seen).
inline storage::StoredFlow storedAsRead(const FlowRecord& flow) {
  return storage::StoredFlow{flow, flow.start.value_or(flow.end.value_or(flow.event_time)), false};
}

// A database for the query commands without SQLite: holds the flows every query returns (up to
// the query's limit; each through storedAsRead()) and the gaps every gap query returns (it filters neither, which is storage's
// job and tested there), and records what was opened and asked. By default one run covers all of
// time, so that tests about other things see no warnings. The test owns it and must keep it alive
// while a finder from opener() lives.
struct FakeFlowDatabase {
  std::vector<FlowRecord> flows;
  std::vector<GapRecord> gaps;
  std::vector<storage::LoggedPeriod> logged_periods{{Timestamp::min(), Timestamp::max(), false}};
  std::optional<storage::RetentionHorizon> retention_horizon;  // none: nothing was ever expired
  std::string observer_hostname{"nat-gw-1"};
  std::optional<Error> open_error;      // opener() fails with this
  std::optional<Error> find_error;      // forEach() fails with this,
  std::size_t find_error_after{0};      // after visiting this many flows
  std::size_t visits{0};                // flows handed to forEach()'s visitors, all calls together
  std::function<void()> while_reading;  // called by forEach() after its last visit, before it returns
  std::optional<Error> coverage_error;  // gaps() and loggedPeriods() fail with this
  // When set, forEach() visits only the flows it accepts for the query; else every flow.
  std::function<bool(const storage::FlowQuery&, const FlowRecord&)> matches;

  std::vector<std::filesystem::path> opened;
  std::vector<storage::FlowQuery> queries;
  std::vector<std::pair<Timestamp, Timestamp>> gap_queries;  // the windows gaps() was asked about
  std::vector<std::string> calls;  // "find", "gaps", "loggedPeriods", "retentionHorizon", in the order made

  [[nodiscard]] query::FlowFinderOpener opener() {
    return [this](const std::filesystem::path& path) -> Result<std::unique_ptr<query::FlowFinder>> {
      opened.push_back(path);
      if (open_error) {
        return Unexpected{*open_error};
      }
      return std::unique_ptr<query::FlowFinder>(std::make_unique<Finder>(*this));
    };
  }

private:
  class Finder final : public query::FlowFinder {
  public:
    explicit Finder(FakeFlowDatabase& database) : database_(database) {}
    [[nodiscard]] Result<void> forEach(const storage::FlowQuery& query,
                                       const storage::FlowReader::FlowVisitor& visit) override {
      database_.calls.emplace_back("find");
      database_.queries.push_back(query);
      std::size_t visited = 0;
      for (const FlowRecord& flow : database_.flows) {
        if (database_.find_error && visited == database_.find_error_after) {
          break;
        }
        if (query.limit && visited == *query.limit) {
          break;
        }
        if (database_.matches && !database_.matches(query, flow)) {
          continue;
        }
        ++visited;
        ++database_.visits;
        if (!visit(storedAsRead(flow))) {
          break;
        }
      }
      if (database_.while_reading) {
        database_.while_reading();  // the snapshot would still be held here
      }
      if (database_.find_error && visited == database_.find_error_after) {
        return Unexpected{*database_.find_error};
      }
      return {};
    }
    [[nodiscard]] std::string observerHostname() const override { return database_.observer_hostname; }
    [[nodiscard]] Result<std::vector<GapRecord>> gaps(Timestamp from, Timestamp to) override {
      database_.calls.emplace_back("gaps");
      database_.gap_queries.emplace_back(from, to);
      if (database_.coverage_error) {
        return Unexpected{*database_.coverage_error};
      }
      return database_.gaps;
    }
    [[nodiscard]] Result<std::vector<storage::LoggedPeriod>> loggedPeriods() override {
      database_.calls.emplace_back("loggedPeriods");
      if (database_.coverage_error) {
        return Unexpected{*database_.coverage_error};
      }
      return database_.logged_periods;
    }
    [[nodiscard]] Result<std::optional<storage::RetentionHorizon>> retentionHorizon() override {
      database_.calls.emplace_back("retentionHorizon");
      if (database_.coverage_error) {
        return Unexpected{*database_.coverage_error};
      }
      return database_.retention_horizon;
    }

  private:
    FakeFlowDatabase& database_;
  };
};

}  // namespace ctaudit::testing
