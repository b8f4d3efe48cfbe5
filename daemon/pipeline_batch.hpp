// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <span>
#include <utility>
#include <vector>

#include "daemon/pipeline_item.hpp"

namespace ctaudit::daemon {

// A run of PipelineItems in order, as the EventQueue carries them: the records packed back to
// back (record_codec.hpp: about 60-70 bytes each instead of a 280-byte PipelineItem) and the few
// markers beside them, each with the number of records that come before it. The reader thread
// fills one; the queue copies its entries into its chunks under its lock; the pipeline thread
// reads a chunk with a Cursor. A plain value: not thread-safe, one owner at a time.
class PipelineBatch {
public:
  PipelineBatch() = default;

  // Appends one item after the others: a record packed, a marker as it is.
  void push(const FlowRecord& record);
  void push(PipelineItem item);

  [[nodiscard]] bool empty() const noexcept { return records_ == 0 && markers_.empty(); }
  [[nodiscard]] std::size_t records() const noexcept { return records_; }
  // The memory the records take: what --queue-max bounds (the markers are few and small).
  [[nodiscard]] std::size_t recordBytes() const noexcept { return bytes_.size(); }
  void clear() noexcept;
  // Room for `bytes` of records without reallocating.
  void reserveBytes(std::size_t bytes) { bytes_.reserve(bytes); }
  [[nodiscard]] std::size_t reservedBytes() const noexcept { return bytes_.capacity(); }
  void swap(PipelineBatch& other) noexcept;

  // Every item, unpacked: for tests and for the reader's look at the records it dropped.
  [[nodiscard]] std::vector<PipelineItem> unpack() const;

  // One item of a batch without unpacking it: a marker, or a record's packed bytes.
  struct Entry {
    const PipelineItem* marker{nullptr};
    std::span<const std::byte> record;
  };
  // Appends an entry that a Cursor read from another batch (the bytes are copied, the marker too);
  // the other batch may change or die afterwards.
  void append(const Entry& entry);

  // Reads a batch front to back. The batch must not change while a Cursor reads it.
  class Cursor {
  public:
    explicit Cursor(const PipelineBatch& batch) noexcept : batch_(&batch) {}
    [[nodiscard]] bool done() const noexcept {
      return record_ == batch_->records_ && marker_ == batch_->markers_.size();
    }
    // The next item without unpacking it, valid until the batch changes. Precondition: !done().
    [[nodiscard]] Entry peek() const noexcept;
    // Moves past the next item. Precondition: !done().
    void skip() noexcept;
    // The next item, unpacked, and moves past it. Precondition: !done().
    [[nodiscard]] PipelineItem next();
    // Records not yet read.
    [[nodiscard]] std::size_t recordsLeft() const noexcept { return batch_->records_ - record_; }
    // Items (records and markers) not yet read.
    [[nodiscard]] std::size_t itemsLeft() const noexcept {
      return recordsLeft() + (batch_->markers_.size() - marker_);
    }

  private:
    [[nodiscard]] bool atMarker() const noexcept {
      return marker_ < batch_->markers_.size() && batch_->markers_[marker_].first == record_;
    }
    const PipelineBatch* batch_;
    std::size_t record_{0};  // records read
    std::size_t offset_{0};  // their bytes
    std::size_t marker_{0};  // markers read
  };

private:
  std::vector<std::byte> bytes_;
  std::vector<std::pair<std::size_t, PipelineItem>> markers_;  // (records before it, marker)
  std::size_t records_{0};
};

}  // namespace ctaudit::daemon
