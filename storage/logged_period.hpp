// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include "flow/time.hpp"

namespace ctaudit::storage {

// One ctauditd run as the log covers it (a row of the `runs` table, FlowReader::loggedPeriods):
// from `start` to `end` the daemon was recording, so a flow of that time is in the log unless a
// recorded gap says otherwise. Outside every period no daemon was recording.
struct LoggedPeriod {
  Timestamp start;  // the run began (SqliteSink::beginRun)
  // stopped: when the run stopped cleanly (SqliteSink::endRun). Otherwise its last heartbeat that
  // reached the database: the run was killed then (or soon after), or it is still running and will
  // move `end` on with its next commit.
  Timestamp end;
  bool stopped{false};
  friend bool operator==(const LoggedPeriod&, const LoggedPeriod&) = default;
};

}  // namespace ctaudit::storage
