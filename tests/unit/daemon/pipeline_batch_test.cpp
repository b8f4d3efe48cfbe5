// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/pipeline_batch.hpp"

#include <gtest/gtest.h>

namespace ctaudit::daemon {
namespace {

FlowRecord snat(EventType event) {
  FlowRecord r;
  r.event = event;
  r.ct_id = 7;
  r.original = {IpAddress::v4(0x64400005), IpAddress::v4(0xC6336401), Protocol::Udp, 40000, 53};
  r.reply = {IpAddress::v4(0xC6336401), IpAddress::v4(0xCB007107), Protocol::Udp, 53, 40001};
  r.nat = deriveNat(0, r.original, r.reply);
  r.event_time = fromUnixNanos(1'795'600'803'000'000'000);
  return r;
}
FlowRecord snatNew() { return snat(EventType::New); }
FlowRecord snatDestroy() { return snat(EventType::Destroy); }

TEST(PipelineBatchTest, MarkersKeepTheirPlaceAmongTheRecordsAndCopiesKeepEverything) {
  PipelineBatch batch;
  batch.push(ResyncBegin{fromUnixNanos(1)});
  batch.push(snatNew());
  batch.push(ResyncEnd{fromUnixNanos(2), false, true});
  batch.push(ResyncSettled{fromUnixNanos(3)});
  batch.push(snatDestroy());
  batch.push(GapReport{GapRecord{GapReason::QueueOverflow, fromUnixNanos(4), fromUnixNanos(5), 7, 0, {}}});
  const std::vector<PipelineItem> expected{ResyncBegin{fromUnixNanos(1)},
                                           snatNew(),
                                           ResyncEnd{fromUnixNanos(2), false, true},
                                           ResyncSettled{fromUnixNanos(3)},
                                           snatDestroy(),
                                           GapReport{GapRecord{GapReason::QueueOverflow, fromUnixNanos(4),
                                                               fromUnixNanos(5), 7, 0, {}}}};
  EXPECT_EQ(batch.records(), 2U);
  EXPECT_EQ(batch.unpack(), expected);

  PipelineBatch copy;
  std::vector<std::size_t> left;
  for (PipelineBatch::Cursor cursor(batch); !cursor.done(); cursor.skip()) {
    left.push_back(cursor.recordsLeft());
    copy.append(cursor.peek());
  }
  EXPECT_EQ(left, (std::vector<std::size_t>{2, 2, 1, 1, 1, 0}));
  EXPECT_EQ(copy.unpack(), expected);
  EXPECT_EQ(copy.recordBytes(), batch.recordBytes());

  copy.clear();
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(copy.recordBytes(), 0U);
}

}  // namespace
}  // namespace ctaudit::daemon
