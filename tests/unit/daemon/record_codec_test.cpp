// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_codec.hpp"

#include <filesystem>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "daemon/conntrack_decoder.hpp"
#include "daemon/pipeline_batch.hpp"
#include "tests/support/file_text.hpp"

namespace ctaudit::daemon {
namespace {

IpAddress v4(std::uint32_t host_order) { return IpAddress::v4(host_order); }
IpAddress v6(const char* text) { return *IpAddress::parse(text); }

// A masqueraded IPv4 TCP flow as the decoder makes it at NEW.
FlowRecord snatNew() {
  FlowRecord r;
  r.event = EventType::New;
  r.ct_id = 0xDEADBEEF;
  r.original = {v4(0x64400005), v4(0xC6336401), Protocol::Tcp, 40000, 443};
  r.reply = {v4(0xC6336401), v4(0xCB007107), Protocol::Tcp, 443, 40001};
  r.status = ct_status::kSrcNat | ct_status::kConfirmed;
  r.nat = deriveNat(r.status, r.original, r.reply);
  r.tcp_state = 3;
  r.event_time = fromUnixNanos(1'795'600'803'123'456'789);
  r.event_time_source = TimeSource::Kernel;
  r.start = r.event_time;
  r.start_source = TimeSource::Kernel;
  return r;
}

FlowRecord snatDestroy() {
  FlowRecord r = snatNew();
  r.event = EventType::Destroy;
  r.counters_original = Counters{12, 3'400};
  r.counters_reply = Counters{10, 120'000};
  r.start = r.event_time - std::chrono::milliseconds{66};
  r.end = r.event_time;
  r.end_source = TimeSource::Kernel;
  return r;
}

FlowRecord roundTrip(const FlowRecord& record) {
  std::vector<std::byte> bytes;
  const std::size_t size = packRecord(record, bytes);
  EXPECT_EQ(size, bytes.size());
  EXPECT_EQ(packedRecordSize(bytes.data()), size);
  const std::byte* at = bytes.data();
  FlowRecord back = unpackRecord(at);
  EXPECT_EQ(at, bytes.data() + bytes.size()) << "reads exactly what was written";
  return back;
}

TEST(RecordCodecTest, AnIpv4NatFlowComesBackWholeAndSmall) {
  for (const FlowRecord& record : {snatNew(), snatDestroy()}) {
    EXPECT_EQ(roundTrip(record), record);
  }
  std::vector<std::byte> bytes;
  // The sizes docs/operations.md gives for --queue-max: a quarter of a 280-byte queue item or less.
  EXPECT_LE(packRecord(snatNew(), bytes), 60U);
  bytes.clear();
  EXPECT_LE(packRecord(snatDestroy(), bytes), 75U);
}

TEST(RecordCodecTest, EveryMessageTheKernelSentComesBackWhole) {
  // tests/data/ctnetlink: NEW, UPDATE, DESTROY and dump rows the kernel sent, IPv4 and IPv6, SNAT,
  // DNAT, ICMP, GRE, zones.
  int decoded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(std::filesystem::path(CTAUDIT_TEST_DATA_DIR) / "ctnetlink")) {
    if (entry.path().extension() != ".bin") {
      continue;
    }
    const std::string text = testing::readFile(entry.path());
    const auto* bytes = reinterpret_cast<const std::byte*>(text.data());
    const MessageOrigin origin =
        entry.path().stem().string().ends_with("_dump") ? MessageOrigin::Dump : MessageOrigin::Event;
    const auto record =
        decodeConntrack({bytes, text.size()}, DecodeContext{fromUnixNanos(1'795'620'549'000'000'000), origin});
    ASSERT_TRUE(record) << entry.path();
    EXPECT_EQ(roundTrip(*record), *record) << entry.path();
    ++decoded;
  }
  EXPECT_GE(decoded, 13);
}

TEST(RecordCodecTest, IcmpIdsDnatAndIpv6ComeBackWhole) {
  FlowRecord icmp;
  icmp.event = EventType::Update;
  icmp.original = {v4(0x64400005), v4(0xC0000201), Protocol::Icmp, 0, 0, 8, 0, 777};
  icmp.reply = {v4(0xC0000201), v4(0xCB007107), Protocol::Icmp, 0, 0, 0, 0, 1234};
  icmp.status = ct_status::kSrcNat;
  icmp.nat = deriveNat(icmp.status, icmp.original, icmp.reply);
  ASSERT_TRUE(icmp.nat.translated_source);
  EXPECT_EQ(roundTrip(icmp), icmp);

  FlowRecord dnat;
  dnat.event = EventType::Dump;
  dnat.observed_at_start = true;
  dnat.original = {v6("2001:db8::1"), v6("2001:db8:ffff::80"), Protocol::Udp, 5353, 53};
  dnat.reply = {v6("2001:db8:10::53"), v6("2001:db8::1"), Protocol::Udp, 5300, 5353};
  dnat.status = ct_status::kDstNat;
  dnat.nat = deriveNat(dnat.status, dnat.original, dnat.reply);
  ASSERT_TRUE(dnat.nat.translated_destination);
  dnat.zone = 65535;
  dnat.mark = 0xFFFFFFFF;
  dnat.counters_original = Counters{std::numeric_limits<std::uint64_t>::max(), 0};
  dnat.start = fromUnixNanos(std::numeric_limits<std::int64_t>::min());
  dnat.start_source = TimeSource::Bound;
  dnat.event_time = fromUnixNanos(std::numeric_limits<std::int64_t>::max());
  dnat.end = fromUnixNanos(0);
  dnat.end_source = TimeSource::Receive;
  EXPECT_EQ(roundTrip(dnat), dnat);
  std::vector<std::byte> bytes;
  EXPECT_LE(packRecord(dnat, bytes), kMaxPackedRecordBytes);
}

TEST(RecordCodecTest, TheLargestRecordFitsItsSizeByte) {
  FlowRecord r;
  r.event = EventType::Destroy;
  r.ct_id = 0xFFFFFFFF;
  r.original = {v6("2001:db8:ffff:ffff:ffff:ffff:ffff:1"), v6("2001:db8:ffff:ffff:ffff:ffff:ffff:2"), Protocol::Tcp,
                65535, 65535};
  r.reply = {v6("2001:db8:ffff:ffff:ffff:ffff:ffff:3"), v6("2001:db8:ffff:ffff:ffff:ffff:ffff:4"), Protocol::Tcp,
             65535, 65535};
  r.nat.translated_source = Endpoint{v6("2001:db8:ffff:ffff:ffff:ffff:ffff:5"), 65535};
  r.nat.translated_destination = Endpoint{v6("2001:db8:ffff:ffff:ffff:ffff:ffff:6"), 65535};
  r.zone = 65535;
  r.mark = 0xFFFFFFFF;
  r.status = 0xFFFFFFFF;
  r.tcp_state = 255;
  constexpr auto kMax = std::numeric_limits<std::uint64_t>::max();
  r.counters_original = Counters{kMax, kMax};
  r.counters_reply = Counters{kMax, kMax};
  r.event_time = fromUnixNanos(std::numeric_limits<std::int64_t>::min());
  r.start = fromUnixNanos(std::numeric_limits<std::int64_t>::max());
  r.end = fromUnixNanos(std::numeric_limits<std::int64_t>::max());
  std::vector<std::byte> bytes;
  EXPECT_LE(packRecord(r, bytes), kMaxPackedRecordBytes);
  EXPECT_EQ(roundTrip(r), r);
}

TEST(RecordCodecTest, NatEndpointsThatAreNotTheReplyTuplesAreStored) {
  // deriveNat() takes them from the reply tuple, but a record is carried as it is, whatever made it.
  FlowRecord r = snatNew();
  r.nat.translated_source = Endpoint{v6("2001:db8::7"), 9};
  r.nat.translated_destination = Endpoint{v4(0xC0000202), 8080};
  EXPECT_EQ(roundTrip(r), r);
}

TEST(RecordCodecTest, ManyMixedRecordsRoundTripThroughABatchInOrder) {
  std::mt19937_64 random(20261126);
  PipelineBatch batch;
  std::vector<PipelineItem> expected;
  for (int i = 0; i < 2000; ++i) {
    FlowRecord r = (random() % 2) != 0 ? snatNew() : snatDestroy();
    r.ct_id = static_cast<std::uint32_t>(random());
    r.original.src_port = static_cast<std::uint16_t>(random());
    r.mark = static_cast<std::uint32_t>(random() >> (random() % 64));
    r.event_time = fromUnixNanos(static_cast<std::int64_t>(random()));
    if (random() % 3 == 0) {
      r.original.src = v6("2001:db8::1");
      r.reply.dst = v6("2001:db8::2");
      r.nat = deriveNat(r.status, r.original, r.reply);
    }
    if (random() % 5 == 0) {
      r.tcp_state.reset();
    }
    expected.emplace_back(r);
    batch.push(r);
    if (random() % 100 == 0) {
      GapRecord gap;
      gap.sink = "sqlite";
      expected.emplace_back(GapReport{gap});
      batch.push(GapReport{gap});
    }
  }
  EXPECT_EQ(batch.unpack(), expected);
}

}  // namespace
}  // namespace ctaudit::daemon
