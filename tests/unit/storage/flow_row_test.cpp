// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_row.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <initializer_list>
#include <limits>
#include <string>
#include <vector>

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

TEST(FlowRowTest, ReplyIsNullWhenTheNatColumnsImplyIt) {
  for (const FlowRecord& record : everyShape()) {
    const FlowRow row = encodeFlow(firstEvent(record));
    EXPECT_TRUE(isNull(row, FlowColumn::Reply)) << record.ct_id;
  }
}

TEST(FlowRowTest, StoresIpv4AsBiasedIntegersAndIpv6AsBlobs) {
  const auto records = everyShape();
  const FlowRow snat = encodeFlow(firstEvent(records[0]));
  // 100.64.0.2 = 0x64400002; 203.0.113.1:40001 = 0xCB007101 << 16 | 40001.
  // Every address column is an endpoint: 100.64.0.2:33000.
  EXPECT_EQ(integer(snat, FlowColumn::OrigSrc) >> 16, 0x64400002LL - (1LL << 31));
  EXPECT_EQ(integer(snat, FlowColumn::OrigSrc) & 0xFFFF, 33000);
  EXPECT_EQ(integer(snat, FlowColumn::NatSrc), ((0xCB007101LL << 16) | 40001) - (1LL << 47));
  EXPECT_EQ(snat.at(static_cast<std::size_t>(FlowColumn::NatSrc)), endpointValue(ip("203.0.113.1"), 40001));
  EXPECT_TRUE(isNull(snat, FlowColumn::NatDst));
  EXPECT_EQ(integer(snat, FlowColumn::CtId), 1 - (1LL << 31));
  EXPECT_EQ(integer(snat, FlowColumn::DurMs), 59'000);

  const FlowRow ping = encodeFlow(firstEvent(records[2]));
  EXPECT_EQ(integer(ping, FlowColumn::OrigSrc) & 0xFFFF, 77);
  EXPECT_EQ(integer(ping, FlowColumn::NatSrc) & 0xFFFF, 1024);
  EXPECT_EQ(integer(ping, FlowColumn::Icmp), 0x08000000);

  const FlowRow udp6 = encodeFlow(firstEvent(records[1]));
  const auto& nat6 = std::get<Blob>(udp6.at(static_cast<std::size_t>(FlowColumn::NatSrc)));
  ASSERT_EQ(nat6.size, 18);
  EXPECT_EQ(nat6.bytes[16], 5353 >> 8);
  EXPECT_EQ(nat6.bytes[17], 5353 & 0xFF);
  EXPECT_EQ(std::get<Blob>(udp6.at(static_cast<std::size_t>(FlowColumn::OrigSrc))).size, 18);
  EXPECT_TRUE(isNull(udp6, FlowColumn::DurMs));  // open

  const FlowRow dnat = encodeFlow(firstEvent(records[4]));
  EXPECT_TRUE(isNull(dnat, FlowColumn::NatSrc));
  EXPECT_EQ(dnat.at(static_cast<std::size_t>(FlowColumn::NatDst)), endpointValue(ip("100.64.0.2"), 80));
  // Open: no end, so the end's bit says whether the row is in flows_open_*, which a new row is not.
  EXPECT_EQ((integer(dnat, FlowColumn::Packed) >> kFlagsShift) & flow_flags::kAll,
            flow_flags::kStartFromReceive | flow_flags::kObservedAtStart);
  StoredFlow indexed = firstEvent(records[4]);
  indexed.in_open_index = true;
  EXPECT_EQ((integer(encodeFlow(indexed), FlowColumn::Packed) >> kFlagsShift) & flow_flags::kAll,
            flow_flags::kStartFromReceive | flow_flags::kInOpenIndex | flow_flags::kObservedAtStart);
  const auto decoded = decodeFlow(encodeFlow(indexed));
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(*decoded, indexed);
  EXPECT_EQ(integer(dnat, FlowColumn::Packed) & 0xFF, 6);  // TCP
  EXPECT_EQ(integer(dnat, FlowColumn::Packed) >> kStatusShift, records[4].status);
  EXPECT_LT(integer(dnat, FlowColumn::Packed), std::int64_t{1} << 31);  // 4 bytes

  // The conntrack id is unsigned: 2^32-1 is stored as 2^31-1, within 4 bytes, and read back.
  EXPECT_EQ(integer(encodeFlow(firstEvent(records[5])), FlowColumn::CtId), 0x7FFFFFFFLL);
}

TEST(FlowRowTest, IntegerOrderIsAddressOrder) {
  const auto v4 = [](const char* text) { return std::get<std::int64_t>(addressValue(ip(text))); };
  EXPECT_LT(v4("0.0.0.0"), v4("127.255.255.255"));
  EXPECT_LT(v4("127.255.255.255"), v4("128.0.0.0"));
  EXPECT_LT(v4("128.0.0.0"), v4("255.255.255.255"));
  EXPECT_EQ(v4("0.0.0.0"), -(1LL << 31));
  EXPECT_EQ(v4("255.255.255.255"), (1LL << 31) - 1);
}

TEST(FlowRowTest, KeepsAReplyTupleTheNatColumnsDoNotExplain) {
  // A translation without the status bits: the reply differs, but `nat` says nothing.
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::New, 7, tcp, withSnat(replyOf(tcp), "192.0.2.99", 2000), at(0s));
  record.nat = {};
  const FlowRow row = encodeFlow(firstEvent(record));
  const auto& packed = std::get<Blob>(row.at(static_cast<std::size_t>(FlowColumn::Reply)));
  ASSERT_EQ(packed.size, 12);
  EXPECT_EQ(packed.bytes[4], 192);  // reply destination 192.0.2.99
  EXPECT_EQ(packed.bytes[7], 99);
  EXPECT_EQ(packed.bytes[10], 2000 >> 8);  // reply destination port 2000
  EXPECT_EQ(packed.bytes[11], 2000 & 0xFF);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record, firstEvent(record).record);

  // The same for IPv6: 36 bytes.
  const auto udp6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::53", 53);
  FlowRecord record6 = flowEvent(EventType::New, 8, udp6, withSnat(replyOf(udp6), "2001:db8:2::fe", 6000), at(0s));
  record6.nat = {};
  const FlowRow row6 = encodeFlow(firstEvent(record6));
  EXPECT_EQ(std::get<Blob>(row6.at(static_cast<std::size_t>(FlowColumn::Reply))).size, 36);
  const auto decoded6 = decodeFlow(row6);
  ASSERT_TRUE(decoded6);
  EXPECT_EQ(decoded6->record, firstEvent(record6).record);
}

TEST(FlowRowTest, UnknownStartIsIndexedUnderTheFirstEventButReadBackAsUnknown) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  const StoredFlow destroyed = firstEvent(flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s)));
  const FlowRow row = encodeFlow(destroyed);
  EXPECT_EQ(integer(row, FlowColumn::StartMs), toUnixNanos(at(30s)) / 1'000'000);
  EXPECT_NE((integer(row, FlowColumn::Packed) >> kFlagsShift) & flow_flags::kStartUnknown, 0);
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
  EXPECT_EQ((integer(row, FlowColumn::Packed) >> kFlagsShift) & flow_flags::kAll,
            flow_flags::kStartFromReceive | flow_flags::kEndIsBound);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(decoded->record.end_source, TimeSource::Bound);
  EXPECT_EQ(decoded->record.event_time_source, TimeSource::Bound);  // read back as its end
  EXPECT_EQ(*decoded, flow);
}

TEST(FlowRowTest, TimesAreWholeMillisecondsThatCoverTheLifetime) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s) + 1ns);
  record.start = at(1s) + 999'999ns;
  record.end = at(30s) + 1ns;
  const FlowRow row = encodeFlow(firstEvent(record));
  EXPECT_EQ(integer(row, FlowColumn::StartMs), toUnixNanos(at(1s)) / 1'000'000);  // rounded down
  EXPECT_EQ(integer(row, FlowColumn::DurMs), 29'001);                              // the end rounded up
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record.start, at(1s));
  EXPECT_EQ(decoded->record.end, at(30s) + 1ms);
  // Before 1970 too: rounded towards the past, not towards zero.
  EXPECT_EQ(startMillis(fromUnixNanos(-1)), -1);
  EXPECT_EQ(endMillis(fromUnixNanos(-1)), 0);
  EXPECT_EQ(endMillis(fromUnixNanos(1)), 1);
}

// An open row pads `counters` to kOpenCountersBytes for its end and counters, and gives the padding
// back when it closes: the closed row is no longer than the open one was, so closing it does not
// split its page.
TEST(FlowRowTest, AnOpenRowReservesWhatItsDestroyFillsIn) {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  const auto reply = withSnat(replyOf(tcp), "203.0.113.1", 40001);
  const StoredFlow open = firstEvent(flowEvent(EventType::New, 7, tcp, reply, at(1s)));
  const StoredFlow closed = mergeEvent(open, flowEvent(EventType::Destroy, 7, tcp, reply, at(400s)));
  const FlowRow open_row = encodeFlow(open);
  const FlowRow closed_row = encodeFlow(closed);
  const auto& padded = std::get<Blob>(open_row.at(static_cast<std::size_t>(FlowColumn::Counters)));
  EXPECT_EQ(padded.size, kOpenCountersBytes);
  EXPECT_TRUE(std::all_of(padded.bytes.begin(), padded.bytes.begin() + padded.size, [](auto b) { return b == 0; }));
  EXPECT_TRUE(isNull(open_row, FlowColumn::DurMs));
  // What the DESTROY brought: dur_ms in SQLite's integer sizes (1, 2, 3, 4, 6 or 8 bytes), and the
  // counters' varints.
  const auto* duration = std::get_if<std::int64_t>(&closed_row[static_cast<std::size_t>(FlowColumn::DurMs)]);
  ASSERT_NE(duration, nullptr);
  const std::uint64_t m = static_cast<std::uint64_t>(*duration);
  const int duration_bytes = m < 0x80 ? 1 : m < 0x8000 ? 2 : m < 0x800000 ? 3 : 4;
  const auto& counters = std::get<Blob>(closed_row.at(static_cast<std::size_t>(FlowColumn::Counters)));
  EXPECT_LT(counters.size, kOpenCountersBytes);  // not padded once closed
  EXPECT_LE(duration_bytes + counters.size, kOpenCountersBytes);
  const auto decoded = decodeFlow(open_row);
  ASSERT_TRUE(decoded);
  EXPECT_EQ(*decoded, open);  // the padding is not part of the flow
}

// A row from the start-up dump is open and has its counters already: its padding leaves room for
// its end and their growth beyond them, not only up to kOpenCountersBytes in all.
TEST(FlowRowTest, AnOpenRowWithCountersIsPaddedBeyondThem) {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  FlowRecord dumped = flowEvent(EventType::Dump, 7, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), at(1s));
  dumped.counters_original = Counters{1000, 1'500'000};
  dumped.counters_reply = Counters{900, 90'000};
  const StoredFlow open = firstEvent(dumped);
  ASSERT_FALSE(open.record.end);
  const FlowRow row = encodeFlow(open);
  const auto& blob = std::get<Blob>(row.at(static_cast<std::size_t>(FlowColumn::Counters)));
  // 1001 and 901 take 2 bytes, 1,500,000 3 and 90,000 3: 10 bytes of varints.
  EXPECT_EQ(blob.size, 10 + kOpenRowGrowthBytes);
  const auto decoded = decodeFlow(row);
  ASSERT_TRUE(decoded) << decoded.error().detail;
  EXPECT_EQ(decoded->record.counters_original, dumped.counters_original);
  EXPECT_EQ(decoded->record.counters_reply, dumped.counters_reply);
}

// The indexes are created with kIndexBucketSql and queries compute buckets with kIndexBucketShift:
// the two must say the same, or lookups would ask the wrong buckets.
TEST(FlowRowTest, TheBucketExpressionShiftsByTheBucketShift) {
  EXPECT_EQ(kIndexBucketSql, "(id >> " + std::to_string(kIndexBucketShift) + ")");
}

TEST(FlowRowTest, CountersRoundTripToTheLimitsOfTheirVarints) {
  const auto tcp = portTuple(Protocol::Tcp, "10.0.0.2", 1000, "192.0.2.1", 80);
  FlowRecord record = flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s));
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  for (const Counters original : {Counters{kMax - 1, kMax}, Counters{0, 0}, Counters{127, 128}, Counters{1, 1ULL << 63U}}) {
    record.counters_original = original;
    record.counters_reply.reset();
    auto decoded = decodeFlow(encodeFlow(firstEvent(record)));
    ASSERT_TRUE(decoded);
    EXPECT_EQ(decoded->record.counters_original, record.counters_original);
    EXPECT_FALSE(decoded->record.counters_reply);
    record.counters_reply = original;
    record.counters_original.reset();
    decoded = decodeFlow(encodeFlow(firstEvent(record)));
    ASSERT_TRUE(decoded);
    EXPECT_FALSE(decoded->record.counters_original);
    EXPECT_EQ(decoded->record.counters_reply, record.counters_reply);
  }
  // The one value the packets + 1 varint cannot hold is stored as the one below it.
  record.counters_original = Counters{kMax, 5};
  const auto decoded = decodeFlow(encodeFlow(firstEvent(record)));
  ASSERT_TRUE(decoded);
  EXPECT_EQ(decoded->record.counters_original, (Counters{kMax - 1, 5}));
  // A closed row without counters stores NULL, not two empty directions.
  record.counters_original.reset();
  record.counters_reply.reset();
  EXPECT_TRUE(isNull(encodeFlow(firstEvent(record)), FlowColumn::Counters));
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
  refused(FlowColumn::CtId, std::int64_t{1LL << 31}, "flows.ct_id is out of range");
  refused(FlowColumn::Packed, std::int64_t{-1}, "flows.packed is out of range");
  refused(FlowColumn::OrigSrc, ColumnValue{}, "flows.orig_src is NULL");
  refused(FlowColumn::OrigDst, std::int64_t{1LL << 47}, "flows.orig_dst is out of range for an IPv4 endpoint");
  refused(FlowColumn::OrigDst, endpointValue(ip("2001:db8::1"), 80), "flows.orig_dst is of another address family");
  Blob short_blob;
  short_blob.appendPort(1);
  refused(FlowColumn::OrigSrc, short_blob, "flows.orig_src is a 2-byte blob");
  refused(FlowColumn::NatSrc, short_blob, "flows.nat_src is a 2-byte blob");
  refused(FlowColumn::NatSrc, std::int64_t{1LL << 47}, "flows.nat_src is out of range");
  refused(FlowColumn::Reply, short_blob, "flows.reply is not a packed reply tuple");
  refused(FlowColumn::StartMs, ColumnValue{}, "flows.start_ms is NULL");
  refused(FlowColumn::DurMs, std::int64_t{-1}, "flows.dur_ms is out of range");
  refused(FlowColumn::Packed, std::int64_t{1} << (32 + kStatusShift), "flows.packed is out of range");
  refused(FlowColumn::Packed, (flow_flags::kEndFromReceive | flow_flags::kEndIsBound) << kFlagsShift,
          "both a receive time and a bound");
  refused(FlowColumn::Counters, std::int64_t{5}, "flows.counters is not a BLOB");
  const auto counters = [](std::initializer_list<std::uint8_t> bytes) {
    Blob blob;
    blob.append(std::vector<std::uint8_t>(bytes));
    return blob;
  };
  refused(FlowColumn::Counters, counters({}), "flows.counters is not two directions");
  refused(FlowColumn::Counters, counters({2, 0x80}), "flows.counters is not two directions");  // truncated
  refused(FlowColumn::Counters, counters({2, 5, 0, 7}), "flows.counters is not two directions");  // not padding
  refused(FlowColumn::Counters,
          counters({0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0}),  // past 64 bits
          "flows.counters is not two directions");
  refused(FlowColumn::Counters, counters({0x81, 0x00, 0, 0}), "flows.counters is not two directions");  // overlong
  refused(FlowColumn::Counters, ColumnValue{}, "flows.counters is NULL in an open row");

  // A closed row: its counters are not padded, and NULL says that it has none.
  FlowRecord destroy = flowEvent(EventType::Destroy, 7, tcp, replyOf(tcp), at(30s));
  destroy.counters_original = Counters{10, 1200};
  destroy.counters_reply = Counters{9, 9000};
  const FlowRow closed = encodeFlow(firstEvent(destroy));
  ASSERT_TRUE(decodeFlow(closed));
  const auto refused_closed = [&](ColumnValue value, std::string_view expected) {
    FlowRow row = closed;
    row.at(static_cast<std::size_t>(FlowColumn::Counters)) = std::move(value);
    const auto decoded = decodeFlow(row);
    ASSERT_FALSE(decoded);
    EXPECT_NE(decoded.error().detail.find(expected), std::string::npos) << decoded.error().detail;
  };
  refused_closed(counters({11, 0xB0, 0x09, 10, 0xA8, 0x46, 0}), "flows.counters is not two directions");  // padded
  refused_closed(counters({0, 0}), "holds no counters in a closed row");
}

// SqliteSink holds each open row packed (PackedRow); unpacking must give the very values, and a
// row that does not fit must be refused rather than cut.
TEST(FlowRowTest, PackedRowsUnpackToTheSameValuesOrAreRefused) {
  for (const FlowRecord& record : everyShape()) {
    const FlowRow row = encodeFlow(firstEvent(record));
    PackedRow packed;
    if (packRow(row, packed)) {
      EXPECT_EQ(unpackRow(packed), row) << "ct_id " << record.ct_id;
    } else {
      EXPECT_EQ(packed.size, 0U);
    }
  }
  FlowRow extremes{};
  const std::array<std::int64_t, 9> integers{0, -1, 127, -128, 128, std::int64_t{1} << 40, -(std::int64_t{1} << 47),
                                             std::numeric_limits<std::int64_t>::max(),
                                             std::numeric_limits<std::int64_t>::min()};
  for (std::size_t i = 0; i < integers.size(); ++i) {
    extremes.at(i) = integers.at(i);
  }
  extremes.at(9) = Blob{};  // an empty BLOB is not NULL
  PackedRow packed;
  ASSERT_TRUE(packRow(extremes, packed));
  EXPECT_EQ(unpackRow(packed), extremes);

  FlowRow wide{};
  for (ColumnValue& value : wide) {
    Blob blob;
    blob.size = 18;
    blob.bytes.at(17) = 7;
    value = blob;
  }
  packed.size = 1;
  EXPECT_FALSE(packRow(wide, packed));
  EXPECT_EQ(packed.size, 0U);
}

}  // namespace
}  // namespace ctaudit::storage
