// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "storage/json_mapping.hpp"

// The JSON mapping as it was written with nlohmann::ordered_json before issue #4 replaced it with
// the allocation-free appender in storage/json_mapping.cpp. Kept as the reference the new mapping
// is compared against byte for byte (json_mapping_test: random records, hostile strings) and
// measured against (bench/json_mapping_bench). Not used by anything that ships.
namespace ctaudit::testing {

[[nodiscard]] std::string nlohmannJsonLine(const FlowRecord& record, const storage::JsonContext& context);
[[nodiscard]] std::string nlohmannJsonLine(const GapRecord& gap, const storage::JsonContext& context);

}  // namespace ctaudit::testing
