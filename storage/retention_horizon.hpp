// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <optional>

#include "flow/time.hpp"

namespace ctaudit::storage {

// How far back the log reaches after retention (the meta rows `retention_horizon_ns` and
// `retention_period_ns`, written by FlowExpiry, read by FlowReader::retentionHorizon): every flow
// that ended before `horizon` may have been deleted, and so may gaps and runs that ended before it.
// A flow that ended at or after `horizon` is kept, however long before it started; so is every
// open flow. The horizon only ever moves forward.
struct RetentionHorizon {
  Timestamp horizon;
  // The retention in force when the horizon last moved (`--retention`); nullopt when the file
  // does not say (it was written by hand).
  std::optional<std::chrono::nanoseconds> period;
  friend bool operator==(const RetentionHorizon&, const RetentionHorizon&) = default;
};

}  // namespace ctaudit::storage
