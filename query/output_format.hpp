// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace ctaudit::query {

// How `ctaudit` prints the flows it finds.
enum class OutputFormat : std::uint8_t {
  Table,  // aligned columns for people
  Json,   // one ECS object per line, exactly the JSON-lines sink's shape
  Csv,    // RFC 4180 with a header line
};

[[nodiscard]] std::optional<OutputFormat> parseOutputFormat(std::string_view text) noexcept;

}  // namespace ctaudit::query
