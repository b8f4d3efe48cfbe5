// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <algorithm>
#include <cstddef>
#include <deque>
#include <optional>
#include <utility>
#include <vector>

#include "storage/sink.hpp"

namespace ctaudit::testing {

// A FlowSink that keeps what it accepts and answers with scripted statuses: each write pops the
// next status from `script` (Ok once the script is empty). Any write that holds a record whose
// ct_id is in `poison` is Rejected, as a real sink refuses a bad record.
class FakeSink final : public storage::FlowSink {
public:
  std::vector<FlowRecord> accepted;
  std::deque<storage::SinkStatus> script;
  std::vector<std::uint32_t> poison;
  std::vector<GapRecord> gaps;
  int flushes{0};
  int reopens{0};
  // Returned (once) by the next takeSyncLoss(), as a sink whose fdatasync failed.
  std::optional<storage::SyncLoss> sync_loss;
  // Becomes sync_loss at the flush that makes `flushes` equal to loss_at_flush.
  std::optional<storage::SyncLoss> staged_loss;
  int loss_at_flush{-1};
  // The next write whose status from `script` is not Ok takes this many records of its batch all
  // the same (acceptedOfFailedBatch), as the JSON lines on a disk that fills part way; once.
  std::size_t accept_before_failing{0};
  // Becomes sync_loss when the Batcher gives up what is unfinished at the stop, as a JSON line
  // that a full disk cut and that never found room.
  std::optional<storage::SyncLoss> unfinished;
  // gone(): every write fails and never will succeed, as standard output whose reader exited.
  bool is_gone{false};
  // Flushes numbered from 1 that fail, as while every fdatasync returns EIO.
  int failing_flushes_from{-1};
  int failing_flushes_to{-1};

  storage::SinkStatus flush() noexcept override {
    if (++flushes == loss_at_flush) {
      sync_loss = staged_loss;
      return storage::SinkStatus::Failed;
    }
    if (flushes >= failing_flushes_from && flushes <= failing_flushes_to) {
      return storage::SinkStatus::Failed;
    }
    return storage::SinkStatus::Ok;
  }
  void reopen() noexcept override { ++reopens; }
  bool gone() const noexcept override { return is_gone; }
  bool abandonUnfinished() noexcept override {
    if (!unfinished) {
      return false;
    }
    sync_loss = std::exchange(unfinished, std::nullopt);
    return true;
  }
  std::optional<storage::SyncLoss> takeSyncLoss() noexcept override { return std::exchange(sync_loss, std::nullopt); }
  std::size_t acceptedOfFailedBatch() const noexcept override { return accepted_of_failed_; }
  storage::SinkStatus writeGap(const GapRecord& gap) noexcept override {
    if (!script.empty()) {
      const auto status = script.front();
      script.pop_front();
      if (status != storage::SinkStatus::Ok) {
        return status;
      }
    }
    gaps.push_back(gap);
    return storage::SinkStatus::Ok;
  }

private:
  storage::SinkStatus doWrite(std::span<const FlowRecord> batch) noexcept override {
    for (const auto& record : batch) {
      for (const auto id : poison) {
        if (record.ct_id == id) {
          return storage::SinkStatus::Rejected;
        }
      }
    }
    accepted_of_failed_ = 0;
    if (is_gone) {
      return storage::SinkStatus::Failed;
    }
    if (!script.empty()) {
      const auto status = script.front();
      script.pop_front();
      if (status != storage::SinkStatus::Ok) {
        accepted_of_failed_ = std::min(std::exchange(accept_before_failing, 0), batch.size());
        accepted.insert(accepted.end(), batch.begin(), batch.begin() + static_cast<std::ptrdiff_t>(accepted_of_failed_));
        return status;
      }
    }
    accepted.insert(accepted.end(), batch.begin(), batch.end());
    return storage::SinkStatus::Ok;
  }

  std::size_t accepted_of_failed_{0};
};

}  // namespace ctaudit::testing
