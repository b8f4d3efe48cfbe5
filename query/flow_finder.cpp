// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flow_finder.hpp"

#include <utility>

#include "storage/flow_reader.hpp"

namespace ctaudit::query {
namespace {

// Adapts storage::FlowReader, which is final in all but name (private constructor), to FlowFinder.
class ReaderFlowFinder final : public FlowFinder {
public:
  explicit ReaderFlowFinder(std::unique_ptr<storage::FlowReader> reader) : reader_(std::move(reader)) {}

  [[nodiscard]] Result<void> forEach(const storage::FlowQuery& query,
                                     const storage::FlowReader::FlowVisitor& visit) override {
    return reader_->forEach(query, visit);
  }
  [[nodiscard]] std::string observerHostname() const override { return reader_->observerHostname(); }
  [[nodiscard]] Result<std::vector<GapRecord>> gaps(Timestamp from, Timestamp to) override {
    return reader_->gaps(from, to);
  }
  [[nodiscard]] Result<std::vector<storage::LoggedPeriod>> loggedPeriods() override {
    return reader_->loggedPeriods();
  }
  [[nodiscard]] Result<std::optional<storage::RetentionHorizon>> retentionHorizon() override {
    return reader_->retentionHorizon();
  }

private:
  std::unique_ptr<storage::FlowReader> reader_;
};

}  // namespace

Result<std::vector<storage::StoredFlow>> findAll(FlowFinder& finder, const storage::FlowQuery& query) {
  std::vector<storage::StoredFlow> flows;
  auto read = finder.forEach(query, [&flows](const storage::StoredFlow& flow) {
    flows.push_back(flow);
    return true;
  });
  if (!read) {
    return Unexpected{read.error()};
  }
  return flows;
}

Result<std::unique_ptr<FlowFinder>> openFlowReader(const std::filesystem::path& path) {
  auto reader = storage::FlowReader::open(path);
  if (!reader) {
    return Unexpected{reader.error()};
  }
  return std::unique_ptr<FlowFinder>(std::make_unique<ReaderFlowFinder>(std::move(*reader)));
}

}  // namespace ctaudit::query
