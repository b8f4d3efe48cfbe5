// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/output_format.hpp"

namespace ctaudit::query {

std::optional<OutputFormat> parseOutputFormat(std::string_view text) noexcept {
  if (text == "table") {
    return OutputFormat::Table;
  }
  if (text == "json") {
    return OutputFormat::Json;
  }
  if (text == "csv") {
    return OutputFormat::Csv;
  }
  return std::nullopt;
}

}  // namespace ctaudit::query
