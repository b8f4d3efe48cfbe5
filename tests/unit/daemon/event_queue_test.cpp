// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/event_queue.hpp"

#include <initializer_list>
#include <string>
#include <thread>

#include <gtest/gtest.h>
#include <poll.h>

namespace ctaudit::daemon {
namespace {

using WhenFull = EventQueue::WhenFull;

PipelineItem record(std::uint32_t id) {
  FlowRecord r;
  r.ct_id = id;
  return r;
}

std::uint32_t idOf(const PipelineItem& item) { return std::get<FlowRecord>(item).ct_id; }

PipelineBatch batchOf(std::initializer_list<PipelineItem> items) {
  PipelineBatch batch;
  for (const auto& item : items) {
    batch.push(item);
  }
  return batch;
}

// What a batch holds, in order: each record's ct_id, "marker" for anything else.
std::string shapeOf(const PipelineBatch& batch) {
  std::string shape;
  for (const auto& item : batch.unpack()) {
    shape += shape.empty() ? "" : " ";
    shape += isRecord(item) ? std::to_string(idOf(item)) : "marker";
  }
  return shape;
}

// The queue counts packed bytes; every record() packs to the same size.
std::size_t recordBytes() { return batchOf({record(1)}).recordBytes(); }

bool readable(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) == 1;
}

// A queue that holds `records` records.
std::unique_ptr<EventQueue> queueOf(std::size_t records) {
  auto queue = EventQueue::open(records * recordBytes());
  EXPECT_TRUE(queue);
  return std::move(*queue);
}

TEST(EventQueueTest, TakeSwapsEverythingInOrder) {
  auto queue = queueOf(10);
  PipelineBatch batch = batchOf({record(1), ResyncBegin{}, record(2)});
  EXPECT_EQ(queue->push(batch, WhenFull::DropNewest), 0U);
  EXPECT_TRUE(batch.empty());
  PipelineBatch more = batchOf({record(3)});
  EXPECT_EQ(queue->push(more, WhenFull::DropNewest), 0U);
  PipelineBatch out;
  const auto taken = queue->take(out);
  EXPECT_FALSE(taken.closed);
  const auto items = out.unpack();
  ASSERT_EQ(items.size(), 4U);
  EXPECT_EQ(idOf(items[0]), 1U);
  EXPECT_TRUE(std::holds_alternative<ResyncBegin>(items[1]));
  EXPECT_EQ(idOf(items[2]), 2U);
  EXPECT_EQ(idOf(items[3]), 3U);
  out.clear();
  (void)queue->take(out);
  EXPECT_TRUE(out.empty());
}

TEST(EventQueueTest, DropNewestLeavesWhatDoesNotFitButTakesMarkers) {
  auto queue = queueOf(3);
  PipelineBatch batch = batchOf({record(1), record(2), record(3), record(4), ResyncEnd{}, record(5)});
  EXPECT_EQ(queue->push(batch, WhenFull::DropNewest), 2U);
  EXPECT_EQ(shapeOf(batch), "4 5");
  PipelineBatch out;
  (void)queue->take(out);
  EXPECT_EQ(shapeOf(out), "1 2 3 marker");
  EXPECT_EQ(queue->stats().max_waiting, 3U);
}

TEST(EventQueueTest, DropNewestDropsEveryRecordAfterTheFirstThatDidNotFitWhateverItsSize) {
  FlowRecord big;  // IPv6: packs larger than record()
  big.ct_id = 100;
  big.original.src = *IpAddress::parse("2001:db8::1");
  big.original.dst = *IpAddress::parse("2001:db8::2");
  const std::size_t big_bytes = batchOf({big}).recordBytes();
  ASSERT_GT(big_bytes, recordBytes());
  auto queue = EventQueue::open(big_bytes + recordBytes()).value();
  FlowRecord big2 = big;
  big2.ct_id = 101;
  // big2 does not fit; record(3) would, but it is newer than what was dropped.
  PipelineBatch batch = batchOf({big, big2, record(3), ResyncEnd{}});
  EXPECT_EQ(queue->push(batch, WhenFull::DropNewest), 2U);
  EXPECT_EQ(shapeOf(batch), "101 3");
  PipelineBatch out;
  (void)queue->take(out);
  EXPECT_EQ(shapeOf(out), "100 marker") << "markers are always taken";
}

// A partly filled chunk waits for the consumer's own next wake; take() finds it all the same.
TEST(EventQueueTest, FdStaysQuietUntilAChunkIsFullButTakeFindsAPartialOne) {
  auto queue = queueOf(100'000);
  PipelineBatch batch = batchOf({record(1)});
  (void)queue->push(batch, WhenFull::DropNewest);
  EXPECT_FALSE(readable(queue->fd())) << "one record does not wake the consumer";
  PipelineBatch out;
  (void)queue->take(out);
  EXPECT_EQ(shapeOf(out), "1");

  const std::size_t per_chunk = EventQueue::chunkBytesFor(queue->capacityBytes()) / recordBytes();
  std::uint32_t id = 2;
  for (; id < per_chunk; ++id) {
    batch = batchOf({record(id)});
    (void)queue->push(batch, WhenFull::DropNewest);
  }
  EXPECT_FALSE(readable(queue->fd())) << "the chunk is not full yet";
  for (std::uint32_t i = 0; i < 4 && !readable(queue->fd()); ++i, ++id) {
    batch = batchOf({record(id)});
    (void)queue->push(batch, WhenFull::DropNewest);
  }
  EXPECT_TRUE(readable(queue->fd())) << "a full chunk wakes the consumer";
}

TEST(EventQueueTest, FdWakesTheConsumerOnceWakeRecordsWait) {
  auto queue = EventQueue::open(100 * recordBytes(), 3).value();
  PipelineBatch batch = batchOf({record(1), record(2)});
  (void)queue->push(batch, WhenFull::DropNewest);
  EXPECT_FALSE(readable(queue->fd()));
  batch = batchOf({record(3)});
  (void)queue->push(batch, WhenFull::DropNewest);
  EXPECT_TRUE(readable(queue->fd())) << "a batch's worth (--max-batch-rows) waits";
  PipelineBatch out;
  (void)queue->take(out);
  EXPECT_EQ(shapeOf(out), "1 2 3");
  EXPECT_FALSE(readable(queue->fd()));
}

TEST(EventQueueTest, FdWakesTheConsumerForAMarkerADropAndTheClose) {
  auto queue = queueOf(2);
  EXPECT_FALSE(readable(queue->fd()));
  PipelineBatch batch = batchOf({record(1), ResyncEnd{}});
  (void)queue->push(batch, WhenFull::DropNewest);
  EXPECT_TRUE(readable(queue->fd())) << "a marker";
  PipelineBatch out;
  (void)queue->take(out);
  EXPECT_FALSE(readable(queue->fd()));

  batch = batchOf({record(2), record(3), record(4)});
  EXPECT_EQ(queue->push(batch, WhenFull::DropNewest), 1U);
  EXPECT_TRUE(readable(queue->fd())) << "a full queue, a record dropped";
  out.clear();
  (void)queue->take(out);
  EXPECT_FALSE(readable(queue->fd()));

  batch = batchOf({record(5)});
  (void)queue->push(batch, WhenFull::DropNewest);
  EXPECT_FALSE(readable(queue->fd()));
  queue->close();
  EXPECT_TRUE(readable(queue->fd())) << "the close";
  out.clear();
  EXPECT_TRUE(queue->take(out).closed);
  EXPECT_EQ(shapeOf(out), "5");
}

TEST(EventQueueTest, CloseCarriesTheReadersErrorAndRefusesMore) {
  auto queue = queueOf(3);
  PipelineBatch batch = batchOf({record(1)});
  (void)queue->push(batch, WhenFull::DropNewest);
  queue->close(Error{Errc::Netlink, 0, "socket gone"});
  PipelineBatch late = batchOf({record(2)});
  EXPECT_EQ(queue->push(late, WhenFull::Wait), 1U);
  PipelineBatch out;
  const auto taken = queue->take(out);
  EXPECT_TRUE(taken.closed);
  ASSERT_TRUE(taken.failure);
  EXPECT_EQ(taken.failure->detail, "socket gone");
  EXPECT_EQ(out.records(), 1U);
}

TEST(EventQueueTest, WaitingProducerGetsEverythingThroughInOrder) {
  auto queue = queueOf(4);
  constexpr std::uint32_t kRecords = 1000;
  std::thread producer([&] {
    for (std::uint32_t id = 0; id < kRecords; id += 10) {
      PipelineBatch batch;
      for (std::uint32_t i = id; i < id + 10; ++i) {
        batch.push(record(i));
      }
      EXPECT_EQ(queue->push(batch, WhenFull::Wait), 0U);
    }
    queue->close();
  });
  std::vector<std::uint32_t> seen;
  PipelineBatch out;
  for (bool closed = false; !closed;) {
    pollfd p{queue->fd(), POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 5000), 1) << "the producer stalled";
    closed = queue->take(out).closed;
    for (const auto& item : out.unpack()) {
      seen.push_back(idOf(item));
    }
    out.clear();
  }
  producer.join();
  ASSERT_EQ(seen.size(), kRecords);
  for (std::uint32_t i = 0; i < kRecords; ++i) {
    ASSERT_EQ(seen[i], i);
  }
  EXPECT_LE(queue->stats().max_waiting, 4U);
}

TEST(EventQueueTest, TheConsumerTakesAChunkAtATimeAndHearsOfTheCloseWithTheLast) {
  constexpr std::uint32_t kRecords = 50'000;  // several chunks
  auto queue = queueOf(kRecords);
  for (std::uint32_t id = 0; id < kRecords; id += 1000) {
    PipelineBatch batch;
    for (std::uint32_t i = id; i < id + 1000; ++i) {
      batch.push(record(i));
    }
    ASSERT_EQ(queue->push(batch, WhenFull::DropNewest), 0U);
  }
  ASSERT_EQ(queue->stats().waiting, kRecords);
  queue->close();
  std::uint32_t next_id = 0;
  int takes = 0;
  for (bool closed = false; !closed;) {
    ASSERT_TRUE(readable(queue->fd())) << "more chunks wait";
    PipelineBatch out;
    closed = queue->take(out).closed;
    ++takes;
    EXPECT_LE(out.recordBytes(), EventQueue::kChunkBytes);
    for (const auto& item : out.unpack()) {
      ASSERT_EQ(idOf(item), next_id++);
    }
    EXPECT_EQ(closed, next_id == kRecords) << "closed only with the last chunk";
  }
  EXPECT_GT(takes, 2);
  EXPECT_EQ(queue->stats().waiting, 0U);
  EXPECT_EQ(queue->stats().waiting_bytes, 0U);
}

TEST(EventQueueTest, AbandonReleasesAWaitingProducer) {
  auto queue = queueOf(2);
  std::size_t left = 0;
  std::thread producer([&] {
    PipelineBatch batch = batchOf({record(1), record(2), record(3), record(4)});
    left = queue->push(batch, WhenFull::Wait);
  });
  pollfd p{queue->fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 5000), 1);
  queue->abandon();
  producer.join();
  EXPECT_EQ(left, 2U);
}

TEST(EventQueueTest, PublishedReaderStatsComeBack) {
  auto queue = queueOf(2);
  ReaderStats stats;
  stats.datagrams = 7;
  stats.kernel_drops = 3;
  queue->publish(stats);
  EXPECT_EQ(queue->stats().reader, stats);
}

}  // namespace
}  // namespace ctaudit::daemon
