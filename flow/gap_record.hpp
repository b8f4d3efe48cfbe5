// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "flow/time.hpp"

namespace ctaudit {

// Why records may be missing from the log for a while.
enum class GapReason : std::uint8_t {
  KernelOverrun,  // ENOBUFS: the kernel dropped events for the daemon's socket
  QueueOverflow,  // the daemon's queue in front of the sinks was full and records were dropped
  SinkFailure,    // a sink could not write for so long that its pending records were dropped
  DaemonDown,     // no daemon was running between two runs (or it was killed)
  // Event messages the daemon could not decode (malformed attributes, a truncated datagram): each
  // is a lost event, repaired by a resync like the others.
  MalformedEvent,
  // Retention deleted the flows that ended before the horizon (meta retention_horizon_ns). Never
  // stored in the gaps table: the query tool derives it from the horizon for the part of a window
  // before it.
  RetentionExpired,
};
// How many GapReason values there are, for arrays indexed by them.
inline constexpr std::size_t kGapReasonCount = 6;
static_assert(static_cast<std::size_t>(GapReason::RetentionExpired) + 1 == kGapReasonCount,
              "a new GapReason goes before RetentionExpired's count: update kGapReasonCount");

[[nodiscard]] std::string_view gapReasonName(GapReason reason) noexcept;  // "kernel_overrun", …

// A window of time in which the log is known to be incomplete, written into the log itself so
// that a forensic "no match" inside it reads as "the log has a hole here", not "nobody". The
// window is conservative: records outside [start, end] are complete.
struct GapRecord {
  GapReason reason{GapReason::KernelOverrun};
  Timestamp start{};
  Timestamp end{};
  // Records known to be lost: queue and sink drops count them exactly; for a kernel overrun it is
  // the socket's drop counter (SO_MEMINFO), exact by default and an upper bound in reliable mode;
  // 0 when unknowable (DaemonDown).
  std::uint64_t lost_records{0};
  // ENOBUFS errors seen in the window (kernel overruns only).
  std::uint64_t overruns{0};
  // Which sink lost records (SinkFailure), e.g. "sqlite"; empty otherwise.
  std::string sink;

  friend bool operator==(const GapRecord&, const GapRecord&) = default;
};

}  // namespace ctaudit
