// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sink.hpp"

namespace ctaudit::storage {

void SinkStats::add(SinkStatus status, std::size_t records) noexcept {
  records_written += records;
  switch (status) {
    case SinkStatus::Ok:
      ++batches_ok;
      break;
    case SinkStatus::Retry:
      ++batches_retried;
      break;
    case SinkStatus::Failed:
    case SinkStatus::Rejected:
      ++batches_failed;
      break;
  }
}

}  // namespace ctaudit::storage
