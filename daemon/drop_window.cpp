// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/drop_window.hpp"

#include <algorithm>

namespace ctaudit::daemon {

void DropWindow::add(Timestamp event_time, Timestamp now) noexcept {
  if (count_ == 0) {
    earliest_ = latest_ = event_time;
    first_drop_ = now;
  } else {
    earliest_ = std::min(earliest_, event_time);
    latest_ = std::max(latest_, event_time);
  }
  last_drop_ = now;
  ++count_;
}

GapRecord DropWindow::take(GapReason reason, std::string sink) {
  GapRecord gap;
  gap.reason = reason;
  gap.start = earliest_;
  gap.end = latest_;
  gap.lost_records = count_;
  gap.sink = std::move(sink);
  *this = DropWindow{};
  return gap;
}

}  // namespace ctaudit::daemon
