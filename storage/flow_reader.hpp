// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "storage/flow_query.hpp"

struct sqlite3;

namespace ctaudit::storage {

// Read-only access to a database that SqliteSink writes, for the query tool. Opens the file with
// SQLITE_OPEN_READONLY (so it never blocks or alters the daemon's writes; WAL lets it read while
// the daemon commits) and installs an authorizer that refuses ATTACH and any write. Owned by one
// caller; not thread-safe.
class FlowReader {
public:
  // Errors: the file is missing or unreadable (Errc::Io), not a ctaudit database or of a newer
  // schema version (Errc::Storage). The detail names the path and what to do.
  [[nodiscard]] static Result<std::unique_ptr<FlowReader>> open(const std::filesystem::path& path);

  FlowReader(const FlowReader&) = delete;
  FlowReader& operator=(const FlowReader&) = delete;
  FlowReader(FlowReader&&) = delete;
  FlowReader& operator=(FlowReader&&) = delete;
  ~FlowReader();

  // The flows matching `query`, oldest start first. Each record comes back as the last event the
  // database holds for it: EventType::Destroy when the flow has ended, EventType::New while it is
  // open (observed_at_start set where the flow was first seen in the start dump).
  [[nodiscard]] Result<std::vector<FlowRecord>> find(const FlowQuery& query);

  // The host name of the machine that wrote the database (for ECS observer.hostname).
  [[nodiscard]] const std::string& observerHostname() const noexcept { return observer_hostname_; }

private:
  struct Impl;
  explicit FlowReader(std::unique_ptr<Impl> impl, std::string observer_hostname);
  std::unique_ptr<Impl> impl_;
  std::string observer_hostname_;
};

}  // namespace ctaudit::storage
