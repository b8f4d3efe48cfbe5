// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/gap_record.hpp"

namespace ctaudit {

std::string_view gapReasonName(GapReason reason) noexcept {
  switch (reason) {
    case GapReason::KernelOverrun:
      return "kernel_overrun";
    case GapReason::QueueOverflow:
      return "queue_overflow";
    case GapReason::SinkFailure:
      return "sink_failure";
    case GapReason::DaemonDown:
      return "daemon_down";
    case GapReason::MalformedEvent:
      return "malformed_event";
    case GapReason::RetentionExpired:
      return "retention_expired";
  }
  return "unknown";
}

}  // namespace ctaudit
