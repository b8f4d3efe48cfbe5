// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/pipeline_batch.hpp"

#include <cassert>

#include "daemon/record_codec.hpp"

namespace ctaudit::daemon {

void PipelineBatch::push(const FlowRecord& record) {
  (void)packRecord(record, bytes_);
  ++records_;
}

void PipelineBatch::push(PipelineItem item) {
  if (const auto* record = std::get_if<FlowRecord>(&item)) {
    push(*record);
  } else {
    markers_.emplace_back(records_, std::move(item));
  }
}

void PipelineBatch::clear() noexcept {
  bytes_.clear();
  markers_.clear();
  records_ = 0;
}

void PipelineBatch::swap(PipelineBatch& other) noexcept {
  bytes_.swap(other.bytes_);
  markers_.swap(other.markers_);
  std::swap(records_, other.records_);
}

std::vector<PipelineItem> PipelineBatch::unpack() const {
  std::vector<PipelineItem> items;
  items.reserve(records_ + markers_.size());
  for (Cursor cursor(*this); !cursor.done();) {
    items.push_back(cursor.next());
  }
  return items;
}

void PipelineBatch::append(const Entry& entry) {
  if (entry.marker != nullptr) {
    markers_.emplace_back(records_, *entry.marker);
    return;
  }
  bytes_.insert(bytes_.end(), entry.record.begin(), entry.record.end());
  ++records_;
}

PipelineBatch::Entry PipelineBatch::Cursor::peek() const noexcept {
  assert(!done());
  if (atMarker()) {
    return {&batch_->markers_[marker_].second, {}};
  }
  const std::byte* at = batch_->bytes_.data() + offset_;
  return {nullptr, {at, packedRecordSize(at)}};
}

void PipelineBatch::Cursor::skip() noexcept {
  if (atMarker()) {
    ++marker_;
    return;
  }
  offset_ += packedRecordSize(batch_->bytes_.data() + offset_);
  ++record_;
}

PipelineItem PipelineBatch::Cursor::next() {
  if (atMarker()) {
    return batch_->markers_[marker_++].second;
  }
  const std::byte* at = batch_->bytes_.data() + offset_;
  const std::byte* const begin = at;
  FlowRecord record = unpackRecord(at);
  offset_ += static_cast<std::size_t>(at - begin);
  ++record_;
  return record;
}

}  // namespace ctaudit::daemon
