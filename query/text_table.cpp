// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/text_table.hpp"

#include <algorithm>
#include <cassert>

namespace ctaudit::query {
namespace {

void appendLine(std::string& text, std::span<const TableColumn> columns, std::span<const std::size_t> widths,
                const auto& cell_at) {
  std::string line;
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const std::string_view cell = cell_at(i);
    const std::size_t padding = widths[i] - cell.size();
    if (i > 0) {
      line.append(2, ' ');
    }
    if (columns[i].align_right) {
      line.append(padding, ' ');
      line.append(cell);
    } else {
      line.append(cell);
      line.append(padding, ' ');
    }
  }
  const auto last = line.find_last_not_of(' ');
  line.erase(last == std::string::npos ? 0 : last + 1);
  text.append(line);
  text.push_back('\n');
}

}  // namespace

std::string renderTextTable(std::span<const TableColumn> columns, std::span<const std::vector<std::string>> rows) {
  std::vector<std::size_t> widths;
  widths.reserve(columns.size());
  for (const TableColumn& column : columns) {
    widths.push_back(column.header.size());
  }
  for (const auto& row : rows) {
    assert(row.size() == columns.size());
    for (std::size_t i = 0; i < columns.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  std::string text;
  appendLine(text, columns, widths, [&](std::size_t i) { return columns[i].header; });
  for (const auto& row : rows) {
    appendLine(text, columns, widths, [&](std::size_t i) { return std::string_view(row[i]); });
  }
  return text;
}

}  // namespace ctaudit::query
