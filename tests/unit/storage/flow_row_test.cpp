// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_row.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "storage/flow_merge.hpp"
#include "tests/support/flow_builders.hpp"

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::at;
using ctaudit::testing::flowEvent;
using ctaudit::testing::icmpTuple;
using ctaudit::testing::ip;
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::withDnat;
using ctaudit::testing::withSnat;

bool isNull(const FlowRow& row, FlowColumn column) {
  return std::holds_alternative<std::monostate>(row.at(static_cast<std::size_t>(column)));
}

std::int64_t integer(const FlowRow& row, FlowColumn column) {
  return std::get<std::int64_t>(row.at(static_cast<std::size_t>(column)));
}

std::vector<FlowRecord> everyShape() {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  const auto udp6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::53", 53);
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.3", "198.51.100.1", 8, 0, 77);
  const auto ping6 = icmpTuple(Protocol::Icmpv6, "2001:db8:1::2", "2001:db8:2::1", 128, 0, 9);
  const auto inbound = portTuple(Protocol::Tcp, "198.51.100.9", 51000, "203.0.113.1", 8080);
  const auto gre = portTuple(Protocol::Gre, "100.64.0.4", 0, "198.51.100.7", 0);
  std::vector<FlowRecord> records{
      flowEvent(EventType::Destroy, 1, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), at(60s)),
      flowEvent(EventType::New, 2, udp6, withSnat(replyOf(udp6), "2001:db8:2::fe", 5353), at(1s)),
      flowEvent(EventType::Destroy, 3, ping, withSnat(replyOf(ping), "203.0.113.1", 1024), at(2s)),
      flowEvent(EventType::New, 4, ping6, replyOf(ping6), at(3s)),
      flowEvent(EventType::Dump, 5, inbound, withDnat(replyOf(inbound), "100.64.0.2", 80), at(4s)),
      flowEvent(EventType::New, 0xFFFFFFFFU, gre, replyOf(gre), at(5s)),
  };
  records[0].start = at(1s);
  records[0].start_source = TimeSource::Kernel;
  records[0].end_source = TimeSource::Kernel;
  records[0].zone = 65535;
  records[0].mark = 0xFFFFFFFFU;
  return records;
}

TEST(FlowRowTest, RoundTripsEveryShape) {
  for (const FlowRecord& record : everyShape()) {
    const StoredFlow flow = firstEvent(record);
    const auto decoded = decodeFlow(encodeFlow(flow));
    ASSERT_TRUE(decoded) << decoded.error().detail;
    EXPECT_EQ(*decoded, flow) << "ct_id " << record.ct_id;
  }
}

TEST(FlowRowTest, ReplyColumnsAreNullWhenTheNatColumnsImplyThem) {
  for (const FlowRecord& record : everyShape()) {
    const FlowRow row = encodeFlow(firstEvent(record));
    EXPECT_TRUE(isNull(row, FlowColumn::ReplySrc)) << record.ct_id;
    EXPECT_TRUE(isNull(row, FlowColumn::ReplyDst)) << record.ct_id;
    EXPECT_TRUE(isNull(row, FlowColumn::ReplyDport)) << record.ct_id;
    if (!isIcmp(record.original.protocol)) {
      // For ICMP the reply's id sits in both key columns; the source one differs after SNAT.
      EXPECT_TRUE(isNull(row, FlowColumn::ReplySport)) << record.ct_id;
    }
  }
}

TEST(FlowRowTest, StoresTranslationsInTheirOwnColumns) {
  const auto records = everyShape();
  const FlowRow snat = encodeFlow(firstEvent(records[0]));
  EXPECT_EQ(std::get<IpAddress>(snat.at(static_cast<std::size_t>(FlowColumn::NatSrcIp))), ip("203.0.113.1"));
  EXPECT_EQ(integer(snat, FlowColumn::NatSrcPort), 40001);
  EXPECT_TRUE(isNull(snat, FlowColumn::NatDstIp));
  EXPECT_EQ(integer(snat, FlowColumn::CtId), 1);

  const FlowRow ping = encodeFlow(firstEvent(records[2]));
  EXPECT_EQ(integer(ping, FlowColumn::OrigSport), 77);
  EXPECT_EQ(integer(ping, FlowColumn::NatSrcPort), 1024);
  EXPECT_EQ(integer(ping, FlowColumn::Icmp), 0x08000000);

  const FlowRow dnat = encodeFlow(firstEvent(records[4]));
  EXPECT_TRUE(isNull(dnat, FlowColumn::NatSrcIp));
  EXPECT_EQ(std::get<IpAddress>(dnat.at(static_cast<std::size_t>(FlowColumn::NatDstIp))), ip("100.64.0.2"));
  EXPECT_EQ(integer(dnat, FlowColumn::NatDstPort), 80);
  EXPECT_EQ(integer(dnat, FlowColumn::Flags), flow_flags::kStartFromReceive | flow_flags::kEndFromReceive |
                                                    flow_flags::kObservedAtStart);

  // The conntrack id is unsigned: 2^32-1 is stored as itself, not as -1.
  EXPECT_EQ(integer(encodeFlow(firstEvent(records[5])), FlowColumn::CtId), 0xFFFFFFFFLL);
}

TEST(FlowRowTest, KeepsAReplyTupleTheNatColumnsDoNotExplain) {
  // A translation without the status bits: the reply differs, but `nat` says nothing.
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::New, 7, tcp, withSnat(replyOf(tcp), "192.0.2.99", 2000), at(0s));
  record.nat = {};
  const FlowRow row = encodeFlow(firstEvent(record));
  EXPECT_EQ(std::get<IpAddress>(row.at(static_cast<std::size_t>(FlowColumn::ReplyDst))), ip("192.0.2.99"));
  EXPECT_EQ(integer(row, FlowColumn::ReplyDport), 2000);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record, firstEvent(record).record);
}

TEST(FlowRowTest, UnknownStartIsIndexedUnderTheFirstEventButReadBackAsUnknown) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  const StoredFlow destroyed = firstEvent(flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s)));
  const FlowRow row = encodeFlow(destroyed);
  EXPECT_EQ(integer(row, FlowColumn::StartNs), toUnixNanos(at(30s)));
  EXPECT_NE(integer(row, FlowColumn::Flags) & flow_flags::kStartUnknown, 0);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded);
  EXPECT_FALSE(decoded->record.start);
  EXPECT_EQ(decoded->lifetime_start, at(30s));
}

TEST(FlowRowTest, ABoundEndHasItsOwnFlagAndRoundTrips) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s));
  record.start = at(1s);
  record.end_source = TimeSource::Bound;
  const StoredFlow flow = firstEvent(record);
  const FlowRow row = encodeFlow(flow);
  EXPECT_EQ(integer(row, FlowColumn::Flags), flow_flags::kStartFromReceive | flow_flags::kEndIsBound);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(decoded->record.end_source, TimeSource::Bound);
  EXPECT_EQ(decoded->record.event_time_source, TimeSource::Bound);  // read back as its end
  EXPECT_EQ(*decoded, flow);
}

TEST(FlowRowTest, CountersPastSignedRangeRoundTrip) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s));
  record.counters_original = Counters{std::numeric_limits<std::uint64_t>::max(), 1ULL << 63U};
  record.counters_reply.reset();
  const auto decoded = decodeFlow(encodeFlow(firstEvent(record)));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record.counters_original, record.counters_original);
  EXPECT_FALSE(decoded->record.counters_reply);
}

TEST(FlowRowTest, RefusesRowsThatNoWriterProduces) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  const FlowRow good = encodeFlow(firstEvent(flowEvent(EventType::New, 7, tcp, replyOf(tcp), at(0s))));
  const auto refused = [&](FlowColumn column, ColumnValue value, std::string_view expected) {
    FlowRow row = good;
    row.at(static_cast<std::size_t>(column)) = std::move(value);
    const auto decoded = decodeFlow(row);
    ASSERT_FALSE(decoded) << columnName(column);
    EXPECT_EQ(decoded.error().code, Errc::Storage);
    EXPECT_NE(decoded.error().detail.find(expected), std::string::npos) << decoded.error().detail;
  };
  refused(FlowColumn::CtId, std::int64_t{-1}, "flows.ct_id is out of range");
  refused(FlowColumn::Protocol, std::int64_t{256}, "flows.protocol is out of range");
  refused(FlowColumn::OrigSport, std::int64_t{65536}, "flows.orig_sport");
  refused(FlowColumn::OrigSrc, ColumnValue{}, "flows.orig_src is NULL");
  refused(FlowColumn::OrigDst, std::int64_t{1}, "flows.orig_dst is not a 4- or 16-byte address");
  refused(FlowColumn::StartNs, ColumnValue{}, "flows.start_ns is NULL");
  refused(FlowColumn::Flags, std::int64_t{32}, "flows.flags is out of range");
  refused(FlowColumn::Flags, flow_flags::kEndFromReceive | flow_flags::kEndIsBound, "both a receive time and a bound");
  refused(FlowColumn::NatSrcIp, ip("203.0.113.1"), "must be both NULL or both set");
  refused(FlowColumn::OrigBytes, std::int64_t{5}, "must be both NULL or both set");
}

}  // namespace
}  // namespace ctaudit::storage
