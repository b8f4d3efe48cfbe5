// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

namespace ctaudit::query {

// `ctaudit` exits like grep(1), so that scripts can tell "no such flow" from "could not look".
enum class ExitStatus : int {
  Found = 0,         // at least one flow printed (or help/version shown)
  NothingFound = 1,  // the database was read and nothing matched
  Error = 2,         // bad usage, bad value, unreadable database, failed output
};

}  // namespace ctaudit::query
