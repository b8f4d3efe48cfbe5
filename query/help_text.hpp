// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <string>

#include "query/cli_options.hpp"

namespace ctaudit::query {

// The text `ctaudit --help`, `ctaudit who --help` and `ctaudit flows --help` print, ending in '\n'.
// docs/query.md is the long form.
[[nodiscard]] std::string helpText(HelpTopic topic);

}  // namespace ctaudit::query
