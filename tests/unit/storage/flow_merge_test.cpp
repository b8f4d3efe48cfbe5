// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_merge.hpp"

#include <gtest/gtest.h>

#include "flow/ct_status.hpp"
#include "tests/support/flow_builders.hpp"

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::at;
using ctaudit::testing::flowEvent;
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::withSnat;

class FlowMergeTest : public ::testing::Test {
protected:
  FlowTuple tcp_ = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  FlowTuple masqueraded_ = withSnat(replyOf(tcp_), "203.0.113.1", 40001);

  [[nodiscard]] FlowRecord event(EventType type, Timestamp time) const {
    return flowEvent(type, 42, tcp_, masqueraded_, time);
  }
};

TEST_F(FlowMergeTest, FirstNewIsAnOpenFlowFromItsStart) {
  const StoredFlow flow = firstEvent(event(EventType::New, at(1s)));
  EXPECT_EQ(flow.lifetime_start, at(1s));
  EXPECT_FALSE(flow.record.end);
  EXPECT_EQ(flow.record.event, EventType::New);
  EXPECT_FALSE(flow.record.observed_at_start);
}

TEST_F(FlowMergeTest, FirstDumpIsMarkedObservedAtStart) {
  FlowRecord dump = event(EventType::Dump, at(1s));
  dump.observed_at_start = false;
  EXPECT_TRUE(firstEvent(dump).record.observed_at_start);
}

TEST_F(FlowMergeTest, FirstUpdateWithoutStartCountsFromItsOwnTime) {
  const StoredFlow flow = firstEvent(event(EventType::Update, at(7s)));
  EXPECT_FALSE(flow.record.start);
  EXPECT_EQ(flow.lifetime_start, at(7s));
  EXPECT_EQ(flow.record.event_time, at(7s));
}

TEST_F(FlowMergeTest, FirstDestroyWithoutTimesEndsAtItsEventTime) {
  FlowRecord destroy = event(EventType::Destroy, at(9s));
  destroy.end.reset();
  destroy.event_time_source = TimeSource::Kernel;
  const StoredFlow flow = firstEvent(destroy);
  EXPECT_EQ(flow.record.end, at(9s));
  EXPECT_EQ(flow.record.end_source, TimeSource::Kernel);
  EXPECT_EQ(flow.lifetime_start, at(9s));
  EXPECT_FALSE(flow.record.start);
}

TEST_F(FlowMergeTest, FirstNonDestroyNeverCarriesAnEnd) {
  FlowRecord update = event(EventType::Update, at(7s));
  update.end = at(8s);
  EXPECT_FALSE(firstEvent(update).record.end);
}

TEST_F(FlowMergeTest, DestroyCompletesTheRowAndItsKernelStartWins) {
  const StoredFlow open = firstEvent(event(EventType::New, at(2s)));
  FlowRecord destroy = event(EventType::Destroy, at(60s));
  destroy.start = at(1500ms);
  destroy.start_source = TimeSource::Kernel;
  destroy.end_source = TimeSource::Kernel;
  const StoredFlow closed = mergeEvent(open, destroy);
  EXPECT_EQ(closed.record.start, at(1500ms));
  EXPECT_EQ(closed.record.start_source, TimeSource::Kernel);
  EXPECT_EQ(closed.lifetime_start, at(1500ms));
  EXPECT_EQ(closed.record.end, at(60s));
  EXPECT_EQ(closed.record.end_source, TimeSource::Kernel);
  EXPECT_EQ(closed.record.counters_original, (Counters{10, 1000}));
  EXPECT_EQ(closed.record.tcp_state, destroy.tcp_state);
  EXPECT_EQ(closed.record.event, EventType::Destroy);
  EXPECT_EQ(closed.record.event_time, at(60s));
}

TEST_F(FlowMergeTest, DestroyWithoutStartKeepsTheRowsStart) {
  const StoredFlow open = firstEvent(event(EventType::New, at(2s)));
  const StoredFlow closed = mergeEvent(open, event(EventType::Destroy, at(60s)));
  EXPECT_EQ(closed.record.start, at(2s));
  EXPECT_EQ(closed.record.start_source, TimeSource::Receive);
}

TEST_F(FlowMergeTest, KernelStartIsNotReplacedByAReceiveTime) {
  FlowRecord dump = event(EventType::Dump, at(10s));
  dump.start = at(1s);
  dump.start_source = TimeSource::Kernel;
  const StoredFlow merged = mergeEvent(firstEvent(dump), event(EventType::New, at(5s)));
  EXPECT_EQ(merged.record.start, at(1s));
  EXPECT_EQ(merged.record.start_source, TimeSource::Kernel);
}

TEST_F(FlowMergeTest, NewAfterItsDumpKeepsTheEarlierReceiveStartAndTheDumpsState) {
  const StoredFlow dumped = firstEvent(event(EventType::Dump, at(5s)));
  const StoredFlow merged = mergeEvent(dumped, event(EventType::New, at(4s)));
  EXPECT_EQ(merged.record.start, at(4s));
  EXPECT_FALSE(merged.record.observed_at_start);  // its NEW was seen after all
  EXPECT_EQ(merged.record.tcp_state, dumped.record.tcp_state);
  EXPECT_EQ(merged.record.counters_original, dumped.record.counters_original);
}

TEST_F(FlowMergeTest, DumpAfterNewKeepsNotObservedAtStart) {
  const StoredFlow merged = mergeEvent(firstEvent(event(EventType::New, at(4s))), event(EventType::Dump, at(5s)));
  EXPECT_FALSE(merged.record.observed_at_start);
  EXPECT_EQ(merged.record.start, at(4s));
  EXPECT_EQ(merged.record.counters_original, (Counters{10, 1000}));
}

TEST_F(FlowMergeTest, UpdateTakesStateAndANewTranslation) {
  FlowRecord plain = flowEvent(EventType::New, 42, tcp_, replyOf(tcp_), at(1s));
  const StoredFlow open = firstEvent(plain);
  ASSERT_FALSE(open.record.nat.translated_source);
  FlowRecord update = event(EventType::Update, at(2s));
  update.mark = 7;
  const StoredFlow merged = mergeEvent(open, update);
  EXPECT_EQ(merged.record.tcp_state, update.tcp_state);
  EXPECT_EQ(merged.record.status, update.status);
  EXPECT_EQ(merged.record.mark, 7U);
  EXPECT_EQ(merged.record.nat.translated_source, update.nat.translated_source);
  EXPECT_EQ(merged.record.reply, masqueraded_);
  EXPECT_EQ(merged.record.start, at(1s));
  EXPECT_FALSE(merged.record.end);
}

TEST_F(FlowMergeTest, FieldsAnEventLacksAreKept) {
  const StoredFlow open = firstEvent(event(EventType::New, at(1s)));
  FlowRecord destroy = event(EventType::Destroy, at(9s));
  destroy.status = 0;
  destroy.tcp_state.reset();
  destroy.nat = {};
  destroy.counters_original.reset();
  destroy.counters_reply.reset();
  const StoredFlow closed = mergeEvent(open, destroy);
  EXPECT_EQ(closed.record.status, open.record.status);
  EXPECT_EQ(closed.record.tcp_state, open.record.tcp_state);
  EXPECT_EQ(closed.record.nat, open.record.nat);
  EXPECT_FALSE(closed.record.counters_original);
}

// The daemon closes an open row whose DESTROY was lost with a bound: the flow ended by then.
TEST_F(FlowMergeTest, ABoundEndClosesAnOpenRow) {
  const StoredFlow open = firstEvent(event(EventType::New, at(2s)));
  FlowRecord bound = event(EventType::Destroy, at(90s));
  bound.end_source = TimeSource::Bound;
  bound.counters_original.reset();
  bound.counters_reply.reset();
  const StoredFlow closed = mergeEvent(open, bound);
  EXPECT_EQ(closed.record.end, at(90s));
  EXPECT_EQ(closed.record.end_source, TimeSource::Bound);
  EXPECT_EQ(closed.record.start, at(2s));
  EXPECT_FALSE(closed.record.counters_original);
}

TEST_F(FlowMergeTest, ABoundNeverReplacesARealEnd) {
  FlowRecord destroy = event(EventType::Destroy, at(60s));
  destroy.end_source = TimeSource::Kernel;
  const StoredFlow ended = firstEvent(destroy);
  FlowRecord bound = event(EventType::Destroy, at(90s));
  bound.end_source = TimeSource::Bound;
  const StoredFlow merged = mergeEvent(ended, bound);
  EXPECT_EQ(merged.record.end, at(60s));
  EXPECT_EQ(merged.record.end_source, TimeSource::Kernel);

  // A bound given as the event time alike (a record without an end of its own).
  bound.end.reset();
  bound.event_time_source = TimeSource::Bound;
  EXPECT_EQ(mergeEvent(ended, bound).record.end, at(60s));

  // A receive-time end is real too; but a real end does replace a bound.
  destroy.end_source = TimeSource::Receive;
  EXPECT_EQ(mergeEvent(firstEvent(destroy), event(EventType::Destroy, at(90s))).record.end, at(90s));
  FlowRecord bound_first = event(EventType::Destroy, at(90s));
  bound_first.end_source = TimeSource::Bound;
  FlowRecord real = event(EventType::Destroy, at(80s));
  real.end_source = TimeSource::Kernel;
  const StoredFlow fixed = mergeEvent(firstEvent(bound_first), real);
  EXPECT_EQ(fixed.record.end, at(80s));
  EXPECT_EQ(fixed.record.end_source, TimeSource::Kernel);
}

TEST_F(FlowMergeTest, UnknownStartStaysAtTheFirstSightingWhenDestroyed) {
  const StoredFlow open = firstEvent(event(EventType::Update, at(3s)));
  const StoredFlow closed = mergeEvent(open, event(EventType::Destroy, at(9s)));
  EXPECT_FALSE(closed.record.start);
  EXPECT_EQ(closed.lifetime_start, at(3s));
  EXPECT_EQ(closed.record.end, at(9s));
}

}  // namespace
}  // namespace ctaudit::storage
