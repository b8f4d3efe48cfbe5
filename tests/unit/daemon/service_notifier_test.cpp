// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/service_notifier.hpp"

#include <gtest/gtest.h>

namespace ctaudit::daemon {
namespace {

MetricsSnapshot snapshot(std::uint64_t messages, std::uint64_t written) {
  MetricsSnapshot s;
  s.reader.messages = messages;
  s.sinks.push_back(Batcher::SinkState{"sqlite", written, 0, 0, 0, false});
  s.sinks.push_back(Batcher::SinkState{"jsonl", written, 0, 0, 0, false});
  return s;
}

TEST(ServiceNotifierTest, ShortCountsStayShort) {
  EXPECT_EQ(shortCount(0), "0");
  EXPECT_EQ(shortCount(999), "999");
  EXPECT_EQ(shortCount(1000), "1.0k");
  EXPECT_EQ(shortCount(12'345), "12.3k");
  EXPECT_EQ(shortCount(999'949), "999.9k");
  EXPECT_EQ(shortCount(999'950), "1.0M");  // never "1000.0k"
  EXPECT_EQ(shortCount(1'234'567), "1.2M");
  EXPECT_EQ(shortCount(3'400'000'000), "3.4G");
  EXPECT_EQ(shortCount(5'000'000'000'000), "5000.0G");
}

TEST(ServiceNotifierTest, StatusGivesRateTotalsAndLoss) {
  const MetricsSnapshot before = snapshot(1000, 500);
  MetricsSnapshot now = snapshot(7170, 1'234'567);
  now.open_flows = 532;
  EXPECT_EQ(formatServiceStatus(now, before, std::chrono::seconds{5}),
            "1234 events/s; 1.2M records written, 0 events lost; 532 flows open");
}

TEST(ServiceNotifierTest, LostCountsKernelQueueAndSinkDrops) {
  MetricsSnapshot now = snapshot(10, 10);
  now.reader.kernel_drops = 3;
  now.reader.queue_dropped = 4;
  now.sinks[1].dropped = 5;
  EXPECT_EQ(formatServiceStatus(now, now, std::chrono::seconds{1}),
            "0 events/s; 10 records written, 12 events lost; 0 flows open");
}

TEST(ServiceNotifierTest, NoTimeOrNoSinkIsNotADivisionByZero) {
  const MetricsSnapshot before = snapshot(0, 0);
  MetricsSnapshot now = snapshot(100, 0);
  now.sinks.clear();
  EXPECT_EQ(formatServiceStatus(now, before, std::chrono::nanoseconds{0}),
            "0 events/s; 0 records written, 0 events lost; 0 flows open");
  // A counter that went backwards (it never should) gives no rate rather than a huge one.
  EXPECT_EQ(formatServiceStatus(before, snapshot(100, 0), std::chrono::seconds{1}).substr(0, 11), "0 events/s;");
}

}  // namespace
}  // namespace ctaudit::daemon
