// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/argument_length.hpp"

#include <string>

namespace ctaudit {

Result<void> checkArgumentLengths(std::span<const std::string_view> args, std::string_view program) {
  constexpr std::size_t kShown = 32;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i].size() > kMaxArgumentBytes) {
      return fail(Errc::Usage, "argument " + std::to_string(i + 1) + " is " + std::to_string(args[i].size()) +
                                   " bytes long, beginning '" + std::string(args[i].substr(0, kShown)) + "'; no " +
                                   std::string(program) + " argument is longer than " +
                                   std::to_string(kMaxArgumentBytes) + " bytes");
    }
  }
  return {};
}

}  // namespace ctaudit
