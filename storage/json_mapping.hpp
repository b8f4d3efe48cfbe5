// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"

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

// The one mapping from a GapRecord to its ECS line (same serialisation as above): an
// event.kind "pipeline_error" record that says records may be missing between event.start and
// event.end, so that a SIEM search over that window knows its answer may be incomplete. Written
// by the JSON-lines sink, and printed by `ctaudit --format json` for the gaps around a query.
// @timestamp is the gap's end: the moment the log knew about it. docs/json.md lists the fields.
[[nodiscard]] std::string toJsonLine(const GapRecord& gap, const JsonContext& context);

}  // namespace ctaudit::storage
