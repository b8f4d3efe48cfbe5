// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/pipeline.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "tests/support/fake_sink.hpp"
#include "tests/support/flow_builders.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using testing::at;
using testing::FakeSink;
using testing::flowEvent;
using testing::portTuple;
using testing::replyOf;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

FlowTuple tuple(std::uint16_t port) { return portTuple(Protocol::Udp, "100.64.0.2", port, "203.0.113.2", 53); }

FlowRecord event(EventType type, std::uint32_t id, Timestamp time) {
  return flowEvent(type, id, tuple(static_cast<std::uint16_t>(30000 + id)), replyOf(tuple(static_cast<std::uint16_t>(30000 + id))), time);
}

// A pipeline writing to two fake sinks, as the daemon has it.
class PipelineTest : public ::testing::Test {
protected:
  PipelineTest() : batcher_({{"sqlite", &sqlite_, "sqlite"}, {"jsonl", &jsonl_, "jsonl"}}, options(), quiet()),
                   pipeline_(table_, batcher_, quiet()) {}

  static Batcher::Options options() {
    Batcher::Options o;
    o.max_rows = 1000;
    return o;
  }
  void feed(PipelineItem item) { pipeline_.handle(std::move(item), at(100s)); }
  void flush() { batcher_.flushAll(at(101s)); }
  // The events the sink holds for conntrack `id`, in order.
  std::vector<FlowRecord> of(const FakeSink& sink, std::uint32_t id) const {
    std::vector<FlowRecord> records;
    for (const auto& r : sink.accepted) {
      if (r.ct_id == id) {
        records.push_back(r);
      }
    }
    return records;
  }

  FakeSink sqlite_;
  FakeSink jsonl_;
  FlowTable table_;
  Batcher batcher_;
  Pipeline pipeline_;
};

TEST_F(PipelineTest, FlowsTheDumpNoLongerShowsAreClosedOnlyOnceSettled) {
  feed(event(EventType::New, 1, at(1s)));
  feed(event(EventType::New, 2, at(2s)));
  feed(ResyncBegin{at(10s)});
  feed(event(EventType::Dump, 1, at(10s)));
  feed(ResyncEnd{at(11s), true});
  flush();
  EXPECT_EQ(of(sqlite_, 2).size(), 1U) << "not closed before the socket was read empty";
  feed(ResyncSettled{at(12s)});
  flush();
  const auto flow2 = of(sqlite_, 2);
  ASSERT_EQ(flow2.size(), 2U);
  EXPECT_EQ(flow2[1].event, EventType::Destroy);
  EXPECT_EQ(flow2[1].end, at(11s)) << "bounded by the end of the dump";
  EXPECT_EQ(flow2[1].end_source, TimeSource::Bound);
  EXPECT_EQ(of(jsonl_, 2), flow2);
  EXPECT_EQ(of(sqlite_, 1).size(), 1U) << "the dump row of a known flow is not written again";
  EXPECT_EQ(pipeline_.stats().closed_unseen, 1U);
  EXPECT_EQ(table_.openFlows(), 1U);
}

FlowRecord dumped(std::uint32_t id, Timestamp time, bool stamped) {
  FlowRecord row = event(EventType::Dump, id, time);
  row.observed_at_start = true;
  if (!stamped) {
    row.start.reset();
  }
  return row;
}

// Flows first seen in the start-up dump may never report their end (made before
// nf_conntrack_events was 1). The pipeline says how many are open at each settled dump, so that
// the reader sweeps the table while there are any. With nf_conntrack_events 1 at start, only
// those without a kernel start time count: made before the sysctls were set, as on the day the
// package is installed on a running gateway.
TEST_F(PipelineTest, SaysHowManyFlowsFromTheStartDumpMayNeverReportTheirEnd) {
  pipeline_.enableSweeps();
  feed(ResyncBegin{at(1s)});
  feed(dumped(1, at(1s), true));
  feed(dumped(4, at(1s), false));
  feed(ResyncEnd{at(1s), true});
  EXPECT_EQ(pipeline_.openWithoutEndEvents().load(), 0U) << "not before the dump settles";
  feed(ResyncSettled{at(2s)});
  EXPECT_EQ(pipeline_.openWithoutEndEvents().load(), 1U) << "only the one without a kernel start";

  FlowTable table;
  Batcher batcher({{"sqlite", &sqlite_, "sqlite"}}, options(), quiet());
  Pipeline off(table, batcher, quiet());
  table.setAllFromStartUpSuspect(true);
  off.enableSweeps();
  off.handle(ResyncBegin{at(1s)}, at(1s));
  off.handle(dumped(1, at(1s), true), at(1s));
  off.handle(dumped(4, at(1s), false), at(1s));
  off.handle(ResyncEnd{at(1s), true}, at(1s));
  off.handle(ResyncSettled{at(2s)}, at(2s));
  EXPECT_EQ(off.openWithoutEndEvents().load(), 2U) << "events were off at start: all of them";
}

// A sweep closes only the flows that may have no end event and are gone; it leaves a row of a flow
// it does not know to that flow's NEW (nothing was lost), and a flow of the start-up dump that has
// an end event to its DESTROY. A later resync's rows are not from the start-up dump.
TEST_F(PipelineTest, ASweepClosesOnlyFlowsWithoutEndEventsAndAddsNothing) {
  pipeline_.enableSweeps();
  table_.setAllFromStartUpSuspect(false);
  feed(ResyncBegin{at(1s)});
  feed(dumped(1, at(1s), true));   // has its end event
  feed(dumped(2, at(1s), false));  // may not: gone before the sweep
  feed(dumped(4, at(1s), false));  // may not: still there
  feed(ResyncEnd{at(1s), true});
  feed(ResyncSettled{at(2s)});
  ASSERT_EQ(pipeline_.openWithoutEndEvents().load(), 2U);
  feed(ResyncBegin{at(300s), true});
  feed(dumped(4, at(300s), false));
  feed(dumped(9, at(300s), true));  // new since: its NEW is queued behind the dump
  feed(ResyncEnd{at(301s), true});
  feed(ResyncSettled{at(302s)});
  flush();
  EXPECT_EQ(pipeline_.openWithoutEndEvents().load(), 1U);
  const auto flow2 = of(sqlite_, 2);
  ASSERT_EQ(flow2.size(), 2U);
  EXPECT_EQ(flow2[1].end, at(301s));
  EXPECT_EQ(flow2[1].end_source, TimeSource::Bound);
  EXPECT_EQ(of(sqlite_, 1).size(), 1U) << "not in the sweep's dump, but its DESTROY will come";
  EXPECT_TRUE(of(sqlite_, 9).empty()) << "a sweep adds no flow";
  EXPECT_EQ(pipeline_.stats().recovered, 0U);
  EXPECT_EQ(table_.openFlows(), 2U);
}

TEST_F(PipelineTest, ADestroyQueuedBehindTheDumpIsTheOneThatCloses) {
  feed(event(EventType::New, 1, at(1s)));
  feed(ResyncBegin{at(10s)});
  feed(ResyncEnd{at(11s), true});
  feed(event(EventType::Destroy, 1, at(9s)));  // read after the dump: it was queued in the socket
  feed(ResyncSettled{at(12s)});
  flush();
  const auto flow = of(sqlite_, 1);
  ASSERT_EQ(flow.size(), 2U);
  EXPECT_EQ(flow[1].end_source, TimeSource::Receive) << "the real DESTROY, not a bound";
  EXPECT_EQ(pipeline_.stats().closed_unseen, 0U);
}

// The reader marks a loss where it notices it: a DESTROY read after the mark, of an entry that
// reused the id and tuples and began well after the flow, ends the flow with a bound and is its
// own flow, though the resync has not begun yet.
TEST_F(PipelineTest, ALossNoticedLetsTheSuccessorsDestroyEndTheOldFlow) {
  feed(event(EventType::New, 1, at(1s)));
  feed(LossNoticed{at(10s)});
  FlowRecord successor = event(EventType::Destroy, 1, at(20s));
  successor.start = at(15s);
  successor.start_source = TimeSource::Kernel;
  feed(successor);
  flush();
  const auto flow = of(sqlite_, 1);
  ASSERT_EQ(flow.size(), 3U);
  EXPECT_EQ(flow[1].end_source, TimeSource::Bound) << "the old flow, ended at the successor's start";
  EXPECT_EQ(flow[1].end, at(15s));
  EXPECT_EQ(flow[2].start, at(15s)) << "the successor, with its own start";
  EXPECT_EQ(pipeline_.stats().closed_unseen, 1U);
}

// The pipeline tells the table when the start-up dump settled: a successor on the tuple of a flow
// without end events, read before, ends that flow at the settle, not at a sweep minutes later.
TEST_F(PipelineTest, TheSettleEndsAFlowWithoutEndEventsWhoseSuccessorCameBeforeIt) {
  table_.setAllFromStartUpSuspect(true);
  feed(ResyncBegin{at(10s)});
  feed(event(EventType::Dump, 1, at(10s)));
  feed(ResyncEnd{at(11s), true});
  FlowRecord successor = event(EventType::New, 2, at(12s));
  successor.original = event(EventType::New, 1, at(12s)).original;  // the same connection again
  successor.reply = event(EventType::New, 1, at(12s)).reply;
  feed(successor);
  flush();
  EXPECT_EQ(of(sqlite_, 1).size(), 1U) << "still open before the settle";
  feed(ResyncSettled{at(13s)});
  flush();
  const auto flow = of(sqlite_, 1);
  ASSERT_EQ(flow.size(), 2U);
  EXPECT_EQ(flow[1].end_source, TimeSource::Bound);
  EXPECT_EQ(flow[1].end, at(12s));
}

TEST_F(PipelineTest, AnIncompleteDumpClosesNothing) {
  feed(event(EventType::New, 1, at(1s)));
  feed(ResyncBegin{at(10s)});
  feed(ResyncEnd{at(11s), false});
  feed(ResyncSettled{at(12s)});
  flush();
  EXPECT_EQ(of(sqlite_, 1).size(), 1U);
  EXPECT_EQ(table_.openFlows(), 1U);
}

TEST_F(PipelineTest, AReliableModeResyncClosesNothingSinceTheDestroyIsResent) {
  feed(event(EventType::New, 1, at(1s)));
  feed(ResyncBegin{at(10s)});
  feed(event(EventType::Dump, 2, at(10s)));  // its NEW was lost: recorded
  feed(ResyncEnd{at(11s), true, false});
  feed(ResyncSettled{at(12s)});
  feed(event(EventType::Destroy, 1, at(13s)));  // resent by the kernel after the dump
  flush();
  const auto flow1 = of(sqlite_, 1);
  ASSERT_EQ(flow1.size(), 2U);
  EXPECT_EQ(flow1[1].end_source, TimeSource::Receive);
  EXPECT_EQ(of(sqlite_, 2).size(), 1U);
  EXPECT_EQ(pipeline_.stats().closed_unseen, 0U);
}

TEST_F(PipelineTest, AFlowWhoseNewWasLostIsRecordedFromTheResyncDump) {
  feed(ResyncBegin{at(0s)});  // the start-up dump
  feed(ResyncEnd{at(0s), true});
  feed(ResyncSettled{at(0s)});
  feed(ResyncBegin{at(10s)});
  feed(event(EventType::Dump, 5, at(10s)));
  feed(ResyncEnd{at(11s), true});
  feed(ResyncSettled{at(12s)});
  flush();
  ASSERT_EQ(of(jsonl_, 5).size(), 1U);
  EXPECT_EQ(of(jsonl_, 5)[0].event, EventType::Dump);
  EXPECT_EQ(pipeline_.stats().recovered, 1U);
}

TEST_F(PipelineTest, RestartContinuesOpenFlowsAndRecordsTheDowntime) {
  const FlowRecord alive = event(EventType::New, 1, at(1s));
  const FlowRecord ended = event(EventType::New, 2, at(2s));
  const std::vector<FlowRecord> open{alive, ended};
  pipeline_.restore(open, at(50s), at(100s));
  feed(ResyncBegin{at(100s)});
  feed(event(EventType::Dump, 1, at(100s)));
  feed(ResyncEnd{at(101s), true});
  feed(ResyncSettled{at(101s)});
  flush();
  EXPECT_TRUE(of(jsonl_, 1).empty()) << "no second line for a flow the last run wrote";
  const auto flow2 = of(sqlite_, 2);
  ASSERT_EQ(flow2.size(), 1U);
  EXPECT_EQ(flow2[0].event, EventType::Destroy);
  EXPECT_EQ(flow2[0].start, at(2s));
  EXPECT_EQ(flow2[0].end, at(101s));
  EXPECT_EQ(flow2[0].end_source, TimeSource::Bound);
  for (const FakeSink* sink : {&sqlite_, &jsonl_}) {
    ASSERT_EQ(sink->gaps.size(), 1U);
    EXPECT_EQ(sink->gaps[0].reason, GapReason::DaemonDown);
    EXPECT_EQ(sink->gaps[0].start, at(50s));
    EXPECT_EQ(sink->gaps[0].end, at(100s));
  }
  EXPECT_EQ(pipeline_.stats().gaps.at(static_cast<std::size_t>(GapReason::DaemonDown)), 1U);
}

// The heartbeat's bound while behind: the last ReaderDrained handled, not any record's time.
TEST_F(PipelineTest, ReaderDrainedMarksWhatHasBeenHandled) {
  EXPECT_FALSE(pipeline_.drainedUpTo());
  feed(ReaderDrained{at(5s)});
  EXPECT_EQ(pipeline_.drainedUpTo(), at(5s));
  feed(ReaderDrained{at(7s)});
  EXPECT_EQ(pipeline_.drainedUpTo(), at(7s));
  EXPECT_EQ(pipeline_.stats().records, 0U) << "a marker is no record";
}

TEST_F(PipelineTest, AFirstRunHasNoDowntimeGap) {
  pipeline_.restore({}, std::nullopt, at(100s));
  flush();
  EXPECT_TRUE(sqlite_.gaps.empty());
}

TEST_F(PipelineTest, GapReportsGoToEverySink) {
  GapRecord gap;
  gap.reason = GapReason::QueueOverflow;
  gap.lost_records = 12;
  feed(GapReport{gap});
  flush();
  ASSERT_EQ(sqlite_.gaps.size(), 1U);
  EXPECT_EQ(sqlite_.gaps[0], gap);
  EXPECT_EQ(jsonl_.gaps, sqlite_.gaps);
}

}  // namespace
}  // namespace ctaudit::daemon
