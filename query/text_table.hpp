// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ctaudit::query {

struct TableColumn {
  std::string_view header;
  bool align_right{false};  // for numbers, so that digits line up
};

// Lays out rows of cells under a header line: each column as wide as its widest cell, columns
// separated by two spaces, no trailing blanks, every line ending in '\n'. Cells are ASCII (widths
// are byte counts). Precondition: every row has columns.size() cells.
[[nodiscard]] std::string renderTextTable(std::span<const TableColumn> columns,
                                          std::span<const std::vector<std::string>> rows);

}  // namespace ctaudit::query
