// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "flow/flow_record.hpp"

namespace ctaudit::storage {

// What the JSON mapping needs beyond the record itself.
struct JsonContext {
  std::string observer_hostname;
};

// The one mapping from a FlowRecord to its ECS JSON object, serialised on one line without the
// trailing newline. The JSON-lines sink and `ctaudit --format json` both call it, so that what a
// SIEM ingests and what an analyst queries have exactly the same shape. docs/json.md lists every
// field.
[[nodiscard]] std::string toJsonLine(const FlowRecord& record, const JsonContext& context);

}  // namespace ctaudit::storage
