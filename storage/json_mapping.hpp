// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>
#include <string_view>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"

namespace ctaudit::storage {

// The ECS version whose field definitions the mapping follows (ecs.version in every line): the last
// of ECS 8, whose fields (source.nat.*, network.community_id, event.kind pipeline_error, ...) the
// mapping uses as that version defines them.
inline constexpr std::string_view kEcsVersion = "8.17.0";

// What the JSON mapping needs beyond the record itself.
struct JsonContext {
  std::string observer_hostname;
};

// The one mapping from a FlowRecord to its ECS JSON object, serialised on one line without the
// trailing newline. The JSON-lines sink and `ctaudit --format json` both call it, so that what a
// SIEM ingests and what an analyst queries have exactly the same shape. docs/json.md lists every
// field.
//
// Written by hand into the caller's buffer (appendJsonLine), not through a JSON library: with
// nlohmann::ordered_json the mapping cost ~7 us and 77 allocations per record, the largest
// share of the daemon's CPU (docs/benchmarks.md, "Where the CPU goes"). The output is the same
// byte for byte; json_mapping_test holds it to the golden files and to the nlohmann version.
[[nodiscard]] std::string toJsonLine(const FlowRecord& record, const JsonContext& context);

// Appends toJsonLine(record, context) to `out` (no newline). Allocates nothing once `out` has the
// capacity for the line (~700 bytes), so a sink that reuses its buffer formats a batch without a
// single allocation.
void appendJsonLine(std::string& out, const FlowRecord& record, const JsonContext& context);

// The one mapping from a GapRecord to its ECS line (same serialisation as above): an
// event.kind "pipeline_error" record that says records may be missing between event.start and
// event.end, so that a SIEM search over that window knows its answer may be incomplete. Written
// by the JSON-lines sink, and printed by `ctaudit --format json` for the gaps around a query.
// @timestamp is the gap's end: the moment the log knew about it. docs/json.md lists the fields.
[[nodiscard]] std::string toJsonLine(const GapRecord& gap, const JsonContext& context);
void appendJsonLine(std::string& out, const GapRecord& gap, const JsonContext& context);

// Appends `text` as a JSON string, quotes included, escaped as the mapping escapes every string:
// '"', '\\' and the control characters below 0x20 (\b \f \n \r \t, the others as \u00XX with
// lower-case hex); valid UTF-8 is copied as it is; each ill-formed UTF-8 sequence (a maximal
// subpart, Unicode 15 section 3.9) becomes one U+FFFD, so the line is always valid UTF-8. The
// strings from outside the daemon (the observer host name, a sink label) take this way; the
// kernel does not hold host names to UTF-8. Same output as nlohmann's dump() with
// error_handler_t::replace, which the mapping used before.
void appendJsonString(std::string& out, std::string_view text);

}  // namespace ctaudit::storage
