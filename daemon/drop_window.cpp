// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/drop_window.hpp"

#include <algorithm>

namespace ctaudit::daemon {

void DropWindow::add(Timestamp earliest, Timestamp latest, Timestamp now, std::uint64_t count) noexcept {
  if (count_ == 0) {
    earliest_ = earliest;
    latest_ = latest;
    first_drop_ = now;
  } else {
    earliest_ = std::min(earliest_, earliest);
    latest_ = std::max(latest_, latest);
  }
  last_drop_ = now;
  count_ += count;
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
