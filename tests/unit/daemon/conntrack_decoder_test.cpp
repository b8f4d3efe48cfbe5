// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/conntrack_decoder.hpp"

#include <libmnl/libmnl.h>
#include <libnetfilter_conntrack/libnetfilter_conntrack.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "flow/ct_status.hpp"
#include "flow/unique_c.hpp"
#include "tests/support/ct_message_builder.hpp"

namespace ctaudit::daemon {
namespace {

using ctaudit::testing::CtAttrPath;
using ctaudit::testing::CtMessageBuilder;
using ctaudit::testing::greTuple;
using ctaudit::testing::icmpTuple;
using ctaudit::testing::invertTuple;
using ctaudit::testing::protocolTuple;
using ctaudit::testing::tcpTuple;
using ctaudit::testing::udpTuple;

constexpr Timestamp kReceive = fromUnixNanos(1'795'617'349'000'000'000);
constexpr Timestamp kStart = fromUnixNanos(1'795'617'300'100'000'000);
constexpr Timestamp kStop = fromUnixNanos(1'795'617'340'200'000'000);
constexpr Timestamp kEvent = fromUnixNanos(1'795'617'348'999'000'000);

constexpr std::uint32_t kNatDone = ct_status::kConfirmed | ct_status::kSeenReply | ct_status::kAssured;

Result<FlowRecord> decode(const std::vector<std::byte>& message, MessageOrigin origin = MessageOrigin::Event) {
  return decodeConntrack(message, DecodeContext{kReceive, origin});
}

FlowRecord decodeOk(const std::vector<std::byte>& message, MessageOrigin origin = MessageOrigin::Event) {
  auto result = decode(message, origin);
  if (!result) {
    ADD_FAILURE() << "decode failed: " << result.error().detail;
    return {};
  }
  return std::move(result).value();
}

// The error detail of a message that must not decode.
std::string decodeError(const std::vector<std::byte>& message, MessageOrigin origin = MessageOrigin::Event) {
  const auto result = decode(message, origin);
  if (result) {
    ADD_FAILURE() << "decoded a message that should have failed";
    return {};
  }
  EXPECT_EQ(result.error().code, Errc::Decode);
  return result.error().detail;
}

Endpoint endpoint(const char* address, std::uint16_t port) { return Endpoint{*IpAddress::parse(address), port}; }

std::vector<std::byte> readCapture(const std::string& name) {
  const std::filesystem::path path = std::filesystem::path(CTAUDIT_TEST_DATA_DIR) / "ctnetlink" / name;
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in) << "cannot open " << path;
  const std::vector<char> chars{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  std::vector<std::byte> bytes(chars.size());
  std::memcpy(bytes.data(), chars.data(), chars.size());
  return bytes;
}

// A message with everything the decoder reads, for the truncation loops.
CtMessageBuilder fullDestroy() {
  return CtMessageBuilder{}
      .destroyEvent()
      .original(tcpTuple("2001:db8:1::2", 40000, "2001:db8:2::9", 443))
      .snat(endpoint("2001:db8:2::fe", 61000))
      .dnat(endpoint("2001:db8:3::5", 8443))
      .status(kNatDone)
      .id(0x9000'0001U)
      .mark(0x42)
      .zone(3)
      .originalTupleZone(3)
      .tcpState(7)
      .countersOriginal(10, 1000)
      .countersReply(8, 9000)
      .timestampStart(kStart)
      .timestampStop(kStop)
      .eventTimestamp(kEvent);
}

// ---------------------------------------------------------------------------------------------
// Messages the kernel sent (Linux 6.18; see tests/data/ctnetlink/README.md).

TEST(ConntrackDecoderKernelTest, UdpSnatNew) {
  const FlowRecord record = decodeOk(readCapture("udp4_snat_new.bin"));
  EXPECT_EQ(record.event, EventType::New);
  EXPECT_EQ(record.ct_id, 0x20cb43faU);
  EXPECT_EQ(record.family(), Family::Ipv4);
  EXPECT_EQ(record.original, udpTuple("10.1.0.2", 40000, "192.0.2.2", 5353));
  EXPECT_EQ(record.reply, udpTuple("192.0.2.2", 5353, "192.0.2.1", 40000));
  EXPECT_EQ(record.status, 0x198U);
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "192.0.2.1:40000");
  EXPECT_FALSE(record.nat.translated_destination);
  EXPECT_EQ(record.event_time, fromUnixNanos(1795620548735557510));
  EXPECT_EQ(record.event_time_source, TimeSource::Kernel);
  EXPECT_EQ(record.start, record.event_time);
  EXPECT_EQ(record.start_source, TimeSource::Kernel);
  EXPECT_FALSE(record.end);
  EXPECT_FALSE(record.counters_original);
  EXPECT_FALSE(record.counters_reply);
  EXPECT_FALSE(record.tcp_state);
  EXPECT_FALSE(record.observed_at_start);
}

TEST(ConntrackDecoderKernelTest, UdpSnatDestroyCarriesCountersAndTimes) {
  const FlowRecord record = decodeOk(readCapture("udp4_snat_destroy.bin"));
  EXPECT_EQ(record.event, EventType::Destroy);
  EXPECT_EQ(record.ct_id, 0x20cb43faU);
  EXPECT_EQ(record.counters_original, (Counters{1, 34}));
  EXPECT_EQ(record.counters_reply, (Counters{0, 0}));
  EXPECT_EQ(record.start, fromUnixNanos(1795620548735557248));
  EXPECT_EQ(record.start_source, TimeSource::Kernel);
  EXPECT_EQ(record.end, fromUnixNanos(1795620549887895797));
  EXPECT_EQ(record.end_source, TimeSource::Kernel);
  EXPECT_EQ(record.event_time, fromUnixNanos(1795620549887895844));
  EXPECT_EQ(record.event_time_source, TimeSource::Kernel);
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "192.0.2.1:40000");
}

TEST(ConntrackDecoderKernelTest, UdpSnatDumpRow) {
  const auto message = readCapture("udp4_snat_dump.bin");
  const FlowRecord record = decodeOk(message, MessageOrigin::Dump);
  EXPECT_EQ(record.event, EventType::Dump);
  EXPECT_TRUE(record.observed_at_start);
  EXPECT_EQ(record.start, fromUnixNanos(1795620548735557248));
  EXPECT_EQ(record.start_source, TimeSource::Kernel);
  EXPECT_EQ(record.event_time, kReceive);  // dumps carry no event timestamp
  EXPECT_EQ(record.event_time_source, TimeSource::Receive);
  EXPECT_FALSE(record.end);
  EXPECT_EQ(record.counters_original, (Counters{1, 34}));
  // The same bytes read from the event socket would be an update: NLM_F_MULTI, no NLM_F_CREATE.
  EXPECT_EQ(decodeOk(message).event, EventType::Update);
}

TEST(ConntrackDecoderKernelTest, IcmpSnatUpdateHasIdNotPorts) {
  const FlowRecord record = decodeOk(readCapture("icmp4_snat_update.bin"));
  EXPECT_EQ(record.event, EventType::Update);
  EXPECT_EQ(record.original, icmpTuple("10.1.0.2", "192.0.2.2", 8, 0, 7524));
  EXPECT_EQ(record.reply, icmpTuple("192.0.2.2", "192.0.2.1", 0, 0, 7524));
  EXPECT_EQ(record.original.src_port, 0);
  EXPECT_EQ(record.original.dst_port, 0);
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "192.0.2.1:7524");
  EXPECT_FALSE(record.start);
  EXPECT_FALSE(record.end);
  EXPECT_EQ(record.event_time_source, TimeSource::Kernel);
}

TEST(ConntrackDecoderKernelTest, Icmpv6SnatNew) {
  const FlowRecord record = decodeOk(readCapture("icmp6_snat_new.bin"));
  EXPECT_EQ(record.event, EventType::New);
  EXPECT_EQ(record.family(), Family::Ipv6);
  EXPECT_EQ(record.original, icmpTuple("fd00:1::2", "2001:db8:2::2", 128, 0, 7525));
  EXPECT_EQ(record.reply, icmpTuple("2001:db8:2::2", "2001:db8:2::1", 129, 0, 7525));
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "[2001:db8:2::1]:7525");
}

TEST(ConntrackDecoderKernelTest, TcpDnatNewAndDestroy) {
  const FlowRecord created = decodeOk(readCapture("tcp4_dnat_new.bin"));
  EXPECT_EQ(created.event, EventType::New);
  EXPECT_EQ(created.original, tcpTuple("192.0.2.2", 37994, "192.0.2.1", 8080));
  EXPECT_EQ(created.reply, tcpTuple("10.1.0.2", 80, "192.0.2.2", 37994));
  EXPECT_EQ(created.tcp_state, 1);  // SYN_SENT
  EXPECT_FALSE(created.nat.translated_source);
  ASSERT_TRUE(created.nat.translated_destination);
  EXPECT_EQ(created.nat.translated_destination->toString(), "10.1.0.2:80");

  const FlowRecord destroyed = decodeOk(readCapture("tcp4_dnat_destroy.bin"));
  EXPECT_EQ(destroyed.event, EventType::Destroy);
  EXPECT_EQ(destroyed.key(), created.key());
  EXPECT_EQ(destroyed.tcp_state, 7);  // TIME_WAIT
  EXPECT_EQ(destroyed.counters_original, (Counters{5, 271}));
  EXPECT_EQ(destroyed.counters_reply, (Counters{3, 164}));
  EXPECT_EQ(destroyed.start, fromUnixNanos(1795620549054624440));
  EXPECT_EQ(destroyed.end, fromUnixNanos(1795620549887796493));
  EXPECT_EQ(destroyed.nat, created.nat);
}

TEST(ConntrackDecoderKernelTest, Tcp6SnatDestroy) {
  const FlowRecord record = decodeOk(readCapture("tcp6_snat_destroy.bin"));
  EXPECT_EQ(record.event, EventType::Destroy);
  EXPECT_EQ(record.family(), Family::Ipv6);
  EXPECT_EQ(record.original, tcpTuple("fd00:1::2", 41000, "2001:db8:2::2", 443));
  EXPECT_EQ(record.counters_original, (Counters{5, 371}));
  EXPECT_EQ(record.counters_reply, (Counters{3, 224}));
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "[2001:db8:2::1]:41000");
}

TEST(ConntrackDecoderKernelTest, GreKeysArriveAsPorts) {
  const FlowRecord created = decodeOk(readCapture("gre4_new.bin"));
  EXPECT_EQ(created.original, greTuple("10.0.0.1", "10.0.0.2", 0x1234, 0x5678));
  EXPECT_EQ(created.reply, greTuple("10.0.0.2", "10.0.0.1", 0x5678, 0x1234));
  EXPECT_EQ(created.nat, NatMapping{});
  const FlowRecord destroyed = decodeOk(readCapture("gre4_destroy.bin"));
  EXPECT_EQ(destroyed.event, EventType::Destroy);
  EXPECT_EQ(destroyed.counters_original, (Counters{0, 0}));
  EXPECT_EQ(destroyed.key(), created.key());
}

TEST(ConntrackDecoderKernelTest, OtherProtocolAndIdAbove2To31) {
  const FlowRecord record = decodeOk(readCapture("proto99_new.bin"));
  EXPECT_EQ(record.original, protocolTuple("10.0.0.1", "10.0.0.2", static_cast<Protocol>(99)));
  EXPECT_EQ(record.ct_id, 0x9fd35903U);
  EXPECT_GT(static_cast<std::int64_t>(record.ct_id), 0);
}

TEST(ConntrackDecoderKernelTest, Zones) {
  EXPECT_EQ(decodeOk(readCapture("udp4_zone_new.bin")).zone, 7);
  // conntrack --orig-zone: only CTA_TUPLE_ZONE inside the original tuple.
  EXPECT_EQ(decodeOk(readCapture("udp4_orig_zone_new.bin")).zone, 9);
}

// ---------------------------------------------------------------------------------------------
// Event types.

TEST(ConntrackDecoderTest, EventTypeFollowsMessageTypeFlagsAndOrigin) {
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.newEvent().build()).event, EventType::New);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.updateEvent().build()).event, EventType::Update);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.destroyEvent().build()).event, EventType::Destroy);
  const FlowRecord dump = decodeOk(CtMessageBuilder{}.dumpRow().build(), MessageOrigin::Dump);
  EXPECT_EQ(dump.event, EventType::Dump);
  EXPECT_TRUE(dump.observed_at_start);
  // NLM_F_CREATE alone is enough for New; NLM_F_EXCL alone is not.
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.nlmsgFlags(NLM_F_CREATE).build()).event, EventType::New);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.nlmsgFlags(NLM_F_EXCL).build()).event, EventType::Update);
  // A NEW read from a dump socket is a dump row whatever its flags.
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.newEvent().build(), MessageOrigin::Dump).event, EventType::Dump);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.destroyEvent().build(), MessageOrigin::Dump).event, EventType::Destroy);
  EXPECT_FALSE(decodeOk(CtMessageBuilder{}.newEvent().build()).observed_at_start);
}

// ---------------------------------------------------------------------------------------------
// Protocols and families.

// Found by an exploratory run: without kernel times every receive-time start was 224 ms late at a
// low rate, the reader's read-pacing wait, and a lookup in a flow's first 0.2 s missed it. A
// beginning is taken when the reader woke (the earliest it can have arrived), an end when it read.
TEST(ConntrackDecoderTest, WithoutKernelTimesABeginningIsTakenWhenTheReaderWokeAndAnEndWhenItRead) {
  constexpr Timestamp kWoke = fromUnixNanos(1'795'617'348'776'000'000);  // 224 ms before kReceive
  const auto tuple = tcpTuple("100.64.0.2", 40000, "198.51.100.1", 443);
  const DecodeContext paced{kReceive, MessageOrigin::Event, kWoke};
  const auto created = decodeConntrack(CtMessageBuilder{}.newEvent().original(tuple).build(), paced);
  ASSERT_TRUE(created);
  EXPECT_EQ(created->event_time, kWoke);
  EXPECT_EQ(created->start, kWoke);
  EXPECT_EQ(created->start_source, TimeSource::Receive);
  const auto updated = decodeConntrack(CtMessageBuilder{}.updateEvent().original(tuple).build(), paced);
  ASSERT_TRUE(updated);
  EXPECT_EQ(updated->event_time, kWoke);
  const auto destroyed = decodeConntrack(CtMessageBuilder{}.destroyEvent().original(tuple).build(), paced);
  ASSERT_TRUE(destroyed);
  EXPECT_EQ(destroyed->event_time, kReceive);
  EXPECT_EQ(destroyed->end, kReceive) << "an end is never taken early";
  // The kernel's own time wins, and a reader that did not wait reads at the receive time.
  const auto stamped = decodeConntrack(CtMessageBuilder{}.newEvent().original(tuple).eventTimestamp(kEvent).build(), paced);
  ASSERT_TRUE(stamped);
  EXPECT_EQ(stamped->event_time, kEvent);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.newEvent().original(tuple).build()).event_time, kReceive);
}

TEST(ConntrackDecoderTest, Ipv4AndIpv6Tcp) {
  const auto v4 = tcpTuple("100.64.0.2", 33000, "198.51.100.1", 80);
  FlowRecord record = decodeOk(CtMessageBuilder{}.original(v4).build());
  EXPECT_EQ(record.family(), Family::Ipv4);
  EXPECT_EQ(record.original, v4);
  EXPECT_EQ(record.reply, invertTuple(v4));

  const auto v6 = tcpTuple("2001:db8:1::2", 40000, "2001:db8:2::1", 443);
  record = decodeOk(CtMessageBuilder{}.original(v6).build());
  EXPECT_EQ(record.family(), Family::Ipv6);
  EXPECT_EQ(record.original, v6);
  EXPECT_EQ(record.reply, invertTuple(v6));
}

TEST(ConntrackDecoderTest, UdpSctpAndDccpCarryPorts) {
  for (const Protocol protocol : {Protocol::Udp, Protocol::Sctp, Protocol::Dccp, Protocol::UdpLite}) {
    FlowTuple tuple = udpTuple("100.64.0.2", 5353, "198.51.100.1", 53);
    tuple.protocol = protocol;
    const FlowRecord record = decodeOk(CtMessageBuilder{}.original(tuple).build());
    EXPECT_EQ(record.original, tuple) << protocolName(protocol);
    EXPECT_EQ(record.reply.src_port, 53) << protocolName(protocol);
  }
}

TEST(ConntrackDecoderTest, IcmpAndIcmpv6CarryTypeCodeIdAndNoPorts) {
  const auto ping = icmpTuple("100.64.0.2", "198.51.100.1", 8, 0, 4242);
  FlowRecord record = decodeOk(CtMessageBuilder{}.original(ping).build());
  EXPECT_EQ(record.original.protocol, Protocol::Icmp);
  EXPECT_EQ(record.original.icmp_type, 8);
  EXPECT_EQ(record.original.icmp_code, 0);
  EXPECT_EQ(record.original.icmp_id, 4242);
  EXPECT_EQ(record.original.src_port, 0);
  EXPECT_EQ(record.original.dst_port, 0);
  EXPECT_EQ(record.reply.icmp_type, 0);

  const auto unreachable = icmpTuple("100.64.0.2", "198.51.100.1", 3, 13, 0);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.original(unreachable).build()).original, unreachable);

  const auto ping6 = icmpTuple("2001:db8:1::2", "2001:db8:2::1", 128, 0, 99);
  record = decodeOk(CtMessageBuilder{}.original(ping6).build());
  EXPECT_EQ(record.original, ping6);
  EXPECT_EQ(record.original.protocol, Protocol::Icmpv6);
  EXPECT_EQ(record.reply.icmp_type, 129);
}

TEST(ConntrackDecoderTest, GreAndPortlessProtocolsDecode) {
  const auto pptp = greTuple("100.64.0.2", "198.51.100.1", 0x0001, 0xBEEF);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.original(pptp).build()).original, pptp);
  const auto plain_gre = greTuple("100.64.0.2", "198.51.100.1", 0, 0);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.original(plain_gre).build()).original, plain_gre);
  const auto esp = protocolTuple("2001:db8:1::2", "2001:db8:2::1", static_cast<Protocol>(50));
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.original(esp).build()).original, esp);
}

// ---------------------------------------------------------------------------------------------
// NAT.

TEST(ConntrackDecoderTest, NoNat) {
  const FlowRecord record = decodeOk(CtMessageBuilder{}.status(kNatDone).build());
  EXPECT_EQ(record.nat, NatMapping{});
}

TEST(ConntrackDecoderTest, SourceNat) {
  const FlowRecord record =
      decodeOk(CtMessageBuilder{}.status(kNatDone).snat(endpoint("203.0.113.1", 40001)).build());
  EXPECT_NE(record.status & ct_status::kSrcNat, 0U);
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "203.0.113.1:40001");
  EXPECT_FALSE(record.nat.translated_destination);
}

TEST(ConntrackDecoderTest, DestinationNat) {
  const FlowRecord record =
      decodeOk(CtMessageBuilder{}.status(kNatDone).dnat(endpoint("10.0.0.5", 8080)).build());
  EXPECT_FALSE(record.nat.translated_source);
  ASSERT_TRUE(record.nat.translated_destination);
  EXPECT_EQ(record.nat.translated_destination->toString(), "10.0.0.5:8080");
}

TEST(ConntrackDecoderTest, SourceAndDestinationNat) {
  const FlowRecord record = decodeOk(CtMessageBuilder{}
                                         .status(kNatDone)
                                         .snat(endpoint("203.0.113.1", 40001))
                                         .dnat(endpoint("10.0.0.5", 8080))
                                         .build());
  ASSERT_TRUE(record.nat.translated_source);
  ASSERT_TRUE(record.nat.translated_destination);
  EXPECT_EQ(record.nat.translated_source->toString(), "203.0.113.1:40001");
  EXPECT_EQ(record.nat.translated_destination->toString(), "10.0.0.5:8080");
}

TEST(ConntrackDecoderTest, IcmpSourceNatUsesTheId) {
  const FlowRecord record = decodeOk(CtMessageBuilder{}
                                         .original(icmpTuple("100.64.0.2", "198.51.100.1", 8, 0, 77))
                                         .snat(endpoint("203.0.113.1", 1024))
                                         .build());
  ASSERT_TRUE(record.nat.translated_source);
  EXPECT_EQ(record.nat.translated_source->toString(), "203.0.113.1:1024");
}

// ---------------------------------------------------------------------------------------------
// Scalars, counters and unknown attributes.

TEST(ConntrackDecoderTest, ScalarsAreHostOrder) {
  const FlowRecord record = decodeOk(
      CtMessageBuilder{}.id(0x01020304).mark(0xA0B0C0D0).status(0x1234).zone(0x0102).tcpState(3).build());
  EXPECT_EQ(record.ct_id, 0x01020304U);
  EXPECT_EQ(record.mark, 0xA0B0C0D0U);
  EXPECT_EQ(record.status, 0x1234U);
  EXPECT_EQ(record.zone, 0x0102);
  EXPECT_EQ(record.tcp_state, 3);
}

TEST(ConntrackDecoderTest, IdsAbove2To31StayUnsigned) {
  for (const std::uint32_t id : {0x8000'0000U, 0xFFFF'FFFFU, 0x9FD3'5903U}) {
    const FlowRecord record = decodeOk(CtMessageBuilder{}.id(id).build());
    EXPECT_EQ(record.ct_id, id);
    EXPECT_GT(static_cast<std::int64_t>(record.ct_id), 0);
  }
}

TEST(ConntrackDecoderTest, ZoneAttributeWinsOverTupleZones) {
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.zone(4).originalTupleZone(9).build()).zone, 4);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.originalTupleZone(9).replyTupleZone(8).build()).zone, 9);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.replyTupleZone(8).build()).zone, 8);
  EXPECT_EQ(decodeOk(CtMessageBuilder{}.build()).zone, 0);
}

TEST(ConntrackDecoderTest, CountersOnlyWhenPresent) {
  FlowRecord record = decodeOk(CtMessageBuilder{}.destroyEvent().build());
  EXPECT_FALSE(record.counters_original);
  EXPECT_FALSE(record.counters_reply);

  record = decodeOk(CtMessageBuilder{}.destroyEvent().countersOriginal(7, 0x1'0000'0000ULL).build());
  EXPECT_EQ(record.counters_original, (Counters{7, 0x1'0000'0000ULL}));
  EXPECT_FALSE(record.counters_reply);

  record = decodeOk(CtMessageBuilder{}.destroyEvent().countersOriginal(1, 2).countersReply(3, 4).build());
  EXPECT_EQ(record.counters_original, (Counters{1, 2}));
  EXPECT_EQ(record.counters_reply, (Counters{3, 4}));

  // An empty nest carries no counters.
  record = decodeOk(CtMessageBuilder{}.destroyEvent().countersReply(3, 4).payloadSize({CTA_COUNTERS_REPLY}, 0).build());
  EXPECT_FALSE(record.counters_reply);
}

TEST(ConntrackDecoderTest, Legacy32BitCounters) {
  const FlowRecord record =
      decodeOk(CtMessageBuilder{}.destroyEvent().counters32Original(5, 600).counters32Reply(0xFFFF'FFFFU, 1).build());
  EXPECT_EQ(record.counters_original, (Counters{5, 600}));
  EXPECT_EQ(record.counters_reply, (Counters{0xFFFF'FFFFU, 1}));
}

TEST(ConntrackDecoderTest, SkipsUnknownAttributes) {
  const std::vector<std::byte> odd{std::byte{1}, std::byte{2}, std::byte{3}};
  const auto message = CtMessageBuilder{}
                           .tcpState(3)
                           .extraAttribute({}, 26, std::vector<std::byte>(4))   // CTA_STATUS_MASK
                           .extraAttribute({}, 99, odd)                          // from the future
                           .extraAttribute({}, 99 | NLA_F_NESTED, {})
                           .extraAttribute({CTA_TUPLE_ORIG}, 17, odd)
                           .extraAttribute({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO}, 40, odd)
                           .extraAttribute({CTA_PROTOINFO, CTA_PROTOINFO_TCP}, CTA_PROTOINFO_TCP_FLAGS_ORIGINAL,
                                           std::vector<std::byte>(2))
                           .build();
  const FlowRecord record = decodeOk(message);
  EXPECT_EQ(record.original, CtMessageBuilder{}.originalTuple());
  EXPECT_EQ(record.tcp_state, 3);
}

TEST(ConntrackDecoderTest, ZeroLengthPaddingBeforeEventTimestamp) {
  const FlowRecord record =
      decodeOk(CtMessageBuilder{}.status(0x19E).eventTimestamp(kEvent).eventTimestampPadding().build());
  EXPECT_EQ(record.status, 0x19EU);
  EXPECT_EQ(record.event_time, kEvent);
}

// ---------------------------------------------------------------------------------------------
// Times.

struct TimeCase {
  const char* name;
  CtMessageBuilder message;
  MessageOrigin origin;
  Timestamp event_time;
  TimeSource event_source;
  std::optional<Timestamp> start;
  TimeSource start_source;
  std::optional<Timestamp> end;
  TimeSource end_source;
};

TEST(ConntrackDecoderTest, TimeRules) {
  using enum TimeSource;
  constexpr auto kEventOrigin = MessageOrigin::Event;
  const std::vector<TimeCase> cases{
      {"new, no kernel times", CtMessageBuilder{}.newEvent(), kEventOrigin, kReceive, Receive, kReceive, Receive,
       std::nullopt, Receive},
      {"new, event timestamp", CtMessageBuilder{}.newEvent().eventTimestamp(kEvent), kEventOrigin, kEvent, Kernel,
       kEvent, Kernel, std::nullopt, Receive},
      {"new, start and event timestamp", CtMessageBuilder{}.newEvent().timestampStart(kStart).eventTimestamp(kEvent),
       kEventOrigin, kEvent, Kernel, kStart, Kernel, std::nullopt, Receive},
      {"update, no kernel times", CtMessageBuilder{}.updateEvent(), kEventOrigin, kReceive, Receive, std::nullopt,
       Receive, std::nullopt, Receive},
      {"update, event timestamp", CtMessageBuilder{}.updateEvent().eventTimestamp(kEvent), kEventOrigin, kEvent,
       Kernel, std::nullopt, Receive, std::nullopt, Receive},
      {"destroy, all kernel times",
       CtMessageBuilder{}.destroyEvent().timestampStart(kStart).timestampStop(kStop).eventTimestamp(kEvent),
       kEventOrigin, kEvent, Kernel, kStart, Kernel, kStop, Kernel},
      {"destroy, no kernel times", CtMessageBuilder{}.destroyEvent(), kEventOrigin, kReceive, Receive, std::nullopt,
       Receive, kReceive, Receive},
      {"destroy, event timestamp only", CtMessageBuilder{}.destroyEvent().eventTimestamp(kEvent), kEventOrigin,
       kEvent, Kernel, std::nullopt, Receive, kEvent, Kernel},
      {"destroy, start only", CtMessageBuilder{}.destroyEvent().timestampStart(kStart), kEventOrigin, kReceive,
       Receive, kStart, Kernel, kReceive, Receive},
      {"destroy, zero start and stop",
       CtMessageBuilder{}.destroyEvent().timestampStart(fromUnixNanos(0)).timestampStop(fromUnixNanos(0)),
       kEventOrigin, kReceive, Receive, std::nullopt, Receive, kReceive, Receive},
      {"dump, kernel start", CtMessageBuilder{}.dumpRow().timestampStart(kStart), MessageOrigin::Dump, kReceive,
       Receive, kStart, Kernel, std::nullopt, Receive},
      {"dump, no kernel start", CtMessageBuilder{}.dumpRow(), MessageOrigin::Dump, kReceive, Receive, std::nullopt,
       Receive, std::nullopt, Receive},
  };
  for (const TimeCase& c : cases) {
    SCOPED_TRACE(c.name);
    const FlowRecord record = decodeOk(c.message.build(), c.origin);
    EXPECT_EQ(record.event_time, c.event_time);
    EXPECT_EQ(record.event_time_source, c.event_source);
    EXPECT_EQ(record.start, c.start);
    if (c.start) {
      EXPECT_EQ(record.start_source, c.start_source);
    }
    EXPECT_EQ(record.end, c.end);
    if (c.end) {
      EXPECT_EQ(record.end_source, c.end_source);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Malformed messages.

TEST(ConntrackDecoderMalformedTest, TruncatedAtEveryLength) {
  std::vector<std::vector<std::byte>> messages{
      fullDestroy().build(),
      CtMessageBuilder{}.original(icmpTuple("100.64.0.2", "198.51.100.1", 8, 0, 1)).eventTimestamp(kEvent).build(),
      readCapture("tcp4_dnat_destroy.bin"),
      readCapture("icmp6_snat_new.bin"),
  };
  for (const auto& message : messages) {
    for (std::size_t length = 0; length < message.size(); ++length) {
      const auto result = decodeConntrack(std::span(message).first(length), DecodeContext{kReceive});
      ASSERT_FALSE(result) << "length " << length;
      EXPECT_EQ(result.error().code, Errc::Decode);
      EXPECT_FALSE(result.error().detail.empty());
    }
    EXPECT_TRUE(decodeConntrack(message, DecodeContext{kReceive})) << message.size();
  }
}

// The message is cut and nlmsg_len says so: every attribute that the cut splits must be caught.
TEST(ConntrackDecoderMalformedTest, CutWithMatchingLengthNeverReadsPastTheEnd) {
  const auto full = fullDestroy().build();
  std::size_t decoded = 0;
  for (std::size_t length = 0; length <= full.size(); ++length) {
    // A fresh, exactly sized heap buffer per length, so that ASan sees any read past its end.
    std::vector<std::byte> cut(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(length));
    if (length >= sizeof(nlmsghdr)) {
      const auto nlmsg_len = static_cast<std::uint32_t>(length);
      std::memcpy(cut.data(), &nlmsg_len, sizeof(nlmsg_len));
    }
    const auto result = decode(cut);
    if (result) {
      ++decoded;
    } else {
      EXPECT_FALSE(result.error().detail.empty());
    }
  }
  // Only the cuts between two top-level attributes after the reply tuple decode: after CTA_TUPLE_REPLY,
  // CTA_ZONE, CTA_ID, CTA_STATUS, CTA_TIMEOUT, both counters, CTA_TIMESTAMP, CTA_PROTOINFO,
  // CTA_MARK and CTA_TIMESTAMP_EVENT.
  EXPECT_EQ(decoded, 11U);
}

struct SizeCase {
  CtAttrPath path;
  std::size_t bytes;
  const char* expected;  // the error detail must contain this
};

TEST(ConntrackDecoderMalformedTest, MisSizedAttributesAreNamed) {
  const std::vector<SizeCase> cases{
      {{CTA_STATUS}, 3, "CTA_STATUS: payload is 3 bytes, expected 4"},
      {{CTA_MARK}, 8, "CTA_MARK: payload is 8 bytes, expected 4"},
      {{CTA_ID}, 2, "CTA_ID: payload is 2 bytes"},
      {{CTA_ZONE}, 4, "CTA_ZONE: payload is 4 bytes, expected 2"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V6_SRC}, 4, "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V6_SRC: payload is 4"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V6_DST}, 17, "CTA_TUPLE_REPLY/CTA_TUPLE_IP/CTA_IP_V6_DST"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_NUM}, 2, "CTA_TUPLE_ORIG/CTA_TUPLE_PROTO/CTA_PROTO_NUM"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_SRC_PORT}, 4, "CTA_TUPLE_REPLY/CTA_TUPLE_PROTO/CTA_PROTO_SRC_PORT"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_DST_PORT}, 1, "CTA_PROTO_DST_PORT: payload is 1 bytes"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_ZONE}, 1, "CTA_TUPLE_ORIG/CTA_TUPLE_ZONE"},
      {{CTA_PROTOINFO, CTA_PROTOINFO_TCP, CTA_PROTOINFO_TCP_STATE}, 2,
       "CTA_PROTOINFO/CTA_PROTOINFO_TCP/CTA_PROTOINFO_TCP_STATE: payload is 2 bytes, expected 1"},
      {{CTA_COUNTERS_ORIG, CTA_COUNTERS_PACKETS}, 4, "CTA_COUNTERS_ORIG/CTA_COUNTERS_PACKETS"},
      {{CTA_COUNTERS_REPLY, CTA_COUNTERS_BYTES}, 9, "CTA_COUNTERS_REPLY/CTA_COUNTERS_BYTES"},
      {{CTA_TIMESTAMP, CTA_TIMESTAMP_START}, 4, "CTA_TIMESTAMP/CTA_TIMESTAMP_START: payload is 4 bytes, expected 8"},
      {{CTA_TIMESTAMP, CTA_TIMESTAMP_STOP}, 16, "CTA_TIMESTAMP/CTA_TIMESTAMP_STOP"},
      {{kCtaTimestampEvent}, 4, "CTA_TIMESTAMP_EVENT: payload is 4 bytes, expected 8"},
      // A nest too short to hold even one attribute header.
      {{CTA_TUPLE_ORIG}, 2, "CTA_TUPLE_ORIG: truncated or malformed attribute"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_PROTO}, 3, "CTA_TUPLE_REPLY/CTA_TUPLE_PROTO: truncated"},
      {{CTA_COUNTERS_ORIG}, 6, "CTA_COUNTERS_ORIG: truncated"},
  };
  for (const SizeCase& c : cases) {
    const auto message = fullDestroy().payloadSize(c.path, c.bytes).build();
    EXPECT_NE(decodeError(message).find(c.expected), std::string::npos)
        << "got: " << decodeError(message) << "\nwanted: " << c.expected;
  }
}

TEST(ConntrackDecoderMalformedTest, IcmpFieldsAreSizeChecked) {
  const auto ping = icmpTuple("100.64.0.2", "198.51.100.1", 8, 0, 1);
  const auto ping6 = icmpTuple("2001:db8::1", "2001:db8::2", 128, 0, 1);
  const std::vector<std::pair<CtMessageBuilder, const char*>> cases{
      {CtMessageBuilder{}.original(ping).payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMP_ID}, 4),
       "CTA_PROTO_ICMP_ID"},
      {CtMessageBuilder{}.original(ping).payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMP_TYPE}, 2),
       "CTA_PROTO_ICMP_TYPE"},
      {CtMessageBuilder{}.original(ping).payloadSize({CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_ICMP_CODE}, 0),
       "CTA_PROTO_ICMP_CODE"},
      {CtMessageBuilder{}.original(ping6).payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_ID}, 1),
       "CTA_PROTO_ICMPV6_ID"},
      {CtMessageBuilder{}.original(ping6).payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_TYPE}, 4),
       "CTA_PROTO_ICMPV6_TYPE"},
      {CtMessageBuilder{}.original(ping6).payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_ICMPV6_CODE}, 8),
       "CTA_PROTO_ICMPV6_CODE"},
      {CtMessageBuilder{}.payloadSize({CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_SRC}, 3),
       "CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC: payload is 3 bytes, expected 4"},
      {CtMessageBuilder{}.payloadSize({CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V4_DST}, 16),
       "CTA_TUPLE_REPLY/CTA_TUPLE_IP/CTA_IP_V4_DST: payload is 16 bytes, expected 4"},
  };
  for (const auto& [builder, expected] : cases) {
    const std::string detail = decodeError(builder.build());
    EXPECT_NE(detail.find(expected), std::string::npos) << detail;
  }
}

TEST(ConntrackDecoderMalformedTest, CorruptAttributeLengthsAreCaught) {
  // Longer than what is left: the walk stops there and the leftover is reported with its header.
  std::string detail = decodeError(fullDestroy().attributeLength({CTA_TUPLE_REPLY}, 2000).build());
  EXPECT_NE(detail.find("message: truncated or malformed attribute"), std::string::npos) << detail;
  EXPECT_NE(detail.find("CTA_TUPLE_REPLY claims nla_len 2000"), std::string::npos) << detail;

  // Shorter than an attribute header.
  detail = decodeError(fullDestroy().attributeLength({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO}, 3).build());
  EXPECT_NE(detail.find("CTA_TUPLE_ORIG: truncated or malformed attribute"), std::string::npos) << detail;
  EXPECT_NE(detail.find("CTA_TUPLE_PROTO claims nla_len 3"), std::string::npos) << detail;

  // Past the end of its nest, inside the message.
  detail = decodeError(
      fullDestroy().attributeLength({CTA_COUNTERS_ORIG, CTA_COUNTERS_BYTES}, 40).build());
  EXPECT_NE(detail.find("CTA_COUNTERS_ORIG: truncated or malformed attribute"), std::string::npos) << detail;

  // Shorter but aligned to the next attribute: the payload size is wrong.
  detail = decodeError(fullDestroy().attributeLength({CTA_STATUS}, 6).build());
  EXPECT_NE(detail.find("CTA_STATUS: payload is 2 bytes, expected 4"), std::string::npos) << detail;

  // Zero: libmnl cannot step over it.
  detail = decodeError(fullDestroy().attributeLength({CTA_MARK}, 0).build());
  EXPECT_NE(detail.find("CTA_MARK claims nla_len 0"), std::string::npos) << detail;
}

TEST(ConntrackDecoderMalformedTest, MissingTuplesAndTupleParts) {
  const std::vector<std::pair<CtAttrPath, const char*>> cases{
      {{CTA_TUPLE_ORIG}, "message: missing CTA_TUPLE_ORIG"},
      {{CTA_TUPLE_REPLY}, "message: missing CTA_TUPLE_REPLY"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_IP}, "CTA_TUPLE_ORIG: missing CTA_TUPLE_IP"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_PROTO}, "CTA_TUPLE_REPLY: missing CTA_TUPLE_PROTO"},
      {{CTA_TUPLE_ORIG, CTA_TUPLE_IP, CTA_IP_V4_DST}, "CTA_TUPLE_ORIG/CTA_TUPLE_IP: missing CTA_IP_V4_DST"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_IP, CTA_IP_V4_SRC}, "CTA_TUPLE_REPLY/CTA_TUPLE_IP: missing CTA_IP_V4_SRC"},
      {{CTA_TUPLE_REPLY, CTA_TUPLE_PROTO, CTA_PROTO_NUM}, "CTA_TUPLE_REPLY/CTA_TUPLE_PROTO: missing CTA_PROTO_NUM"},
  };
  for (const auto& [path, expected] : cases) {
    const std::string detail = decodeError(CtMessageBuilder{}.omit(path).build());
    EXPECT_EQ(detail, expected);
  }
  // Optional parts may be missing.
  EXPECT_TRUE(decode(CtMessageBuilder{}.omit({CTA_STATUS}).omit({CTA_ID}).omit({CTA_MARK}).build()));
  EXPECT_TRUE(decode(CtMessageBuilder{}.omit({CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_PROTO_SRC_PORT}).build()));
}

TEST(ConntrackDecoderMalformedTest, FamilyMustMatchTheAddresses) {
  std::string detail = decodeError(CtMessageBuilder{}.family(AF_INET6).build());
  EXPECT_NE(detail.find("CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC: address of the other family"), std::string::npos)
      << detail;
  detail = decodeError(CtMessageBuilder{}.original(tcpTuple("2001:db8::1", 1, "2001:db8::2", 2)).family(AF_INET).build());
  EXPECT_NE(detail.find("CTA_IP_V6_SRC"), std::string::npos) << detail;
  EXPECT_EQ(decodeError(CtMessageBuilder{}.family(AF_BRIDGE).build()), "unknown family 7 in nfgenmsg");
  EXPECT_EQ(decodeError(CtMessageBuilder{}.family(AF_UNSPEC).build()), "unknown family 0 in nfgenmsg");
}

TEST(ConntrackDecoderMalformedTest, RefusesOtherMessages) {
  const auto type = [](unsigned subsystem, unsigned kind) {
    return static_cast<std::uint16_t>((subsystem << 8U) | kind);
  };
  const std::vector<std::uint16_t> types{
      NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP,
      type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET),
      type(NFNL_SUBSYS_CTNETLINK, IPCTNL_MSG_CT_GET_STATS_CPU),
      type(NFNL_SUBSYS_CTNETLINK_EXP, IPCTNL_MSG_EXP_NEW),
      type(NFNL_SUBSYS_QUEUE, IPCTNL_MSG_CT_NEW),
  };
  for (const std::uint16_t nlmsg_type : types) {
    const std::string detail = decodeError(CtMessageBuilder{}.nlmsgType(nlmsg_type).build());
    EXPECT_EQ(detail.rfind("not a conntrack NEW or DELETE message: nlmsg_type 0x", 0), 0U) << detail;
  }
}

TEST(ConntrackDecoderMalformedTest, HeaderAndLengthProblems) {
  const auto message = CtMessageBuilder{}.build();
  EXPECT_EQ(decodeError({}), "truncated netlink header: 0 of 16 bytes");

  auto longer = message;
  longer.resize(message.size() + 4);
  EXPECT_EQ(decodeError(longer).find("4 bytes after the message"), 0U);

  auto short_len = message;
  const std::uint32_t too_short = 8;
  std::memcpy(short_len.data(), &too_short, sizeof(too_short));
  EXPECT_EQ(decodeError(short_len).find("nlmsg_len 8 is shorter than the netlink header"), 0U);

  // A header-only message: no room for nfgenmsg.
  std::vector<std::byte> header_only(message.begin(), message.begin() + 16);
  const std::uint32_t sixteen = 16;
  std::memcpy(header_only.data(), &sixteen, sizeof(sixteen));
  EXPECT_EQ(decodeError(header_only), "truncated nfgenmsg: nlmsg_len 16");

  // A message whose length is not a multiple of 4.
  auto odd = CtMessageBuilder{}.extraAttribute({}, 99, std::vector<std::byte>(1)).build();
  const auto odd_len = static_cast<std::uint32_t>(odd.size() - 3);
  std::memcpy(odd.data(), &odd_len, sizeof(odd_len));
  odd.resize(odd_len);
  EXPECT_EQ(decodeError(odd), "nlmsg_len " + std::to_string(odd_len) + " is not a multiple of 4");

  // A buffer that is not 4-byte aligned.
  std::vector<std::byte> storage(message.size() + 1);
  std::memcpy(storage.data() + 1, message.data(), message.size());
  const auto result = decodeConntrack(std::span(storage).subspan(1), DecodeContext{kReceive});
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().detail, "message buffer is not 4-byte aligned");
}

TEST(ConntrackDecoderMalformedTest, TimestampsBeyond2262AreRefused) {
  const std::vector<std::byte> all_ones(8, std::byte{0xFF});
  const std::string detail = decodeError(CtMessageBuilder{}.extraAttribute({}, kCtaTimestampEvent, all_ones).build());
  EXPECT_NE(detail.find("CTA_TIMESTAMP_EVENT: 18446744073709551615 ns is beyond"), std::string::npos) << detail;
  const std::string nested = decodeError(
      CtMessageBuilder{}.destroyEvent().timestampStart(kStart).extraAttribute({CTA_TIMESTAMP}, CTA_TIMESTAMP_STOP, all_ones).build());
  EXPECT_NE(nested.find("CTA_TIMESTAMP/CTA_TIMESTAMP_STOP: "), std::string::npos) << nested;
}

// ---------------------------------------------------------------------------------------------
// Cross-check with an independent encoder: libnetfilter_conntrack's nfct_nlmsg_build().

using Conntrack = UniqueC<nf_conntrack, nfct_destroy>;

std::vector<std::byte> buildWithLibnetfilterConntrack(const nf_conntrack& ct, std::uint8_t family) {
  constexpr std::size_t kBufferSize = 8192;  // ample for one conntrack message
  std::vector<std::uint32_t> storage(kBufferSize / sizeof(std::uint32_t));
  nlmsghdr* nlh = mnl_nlmsg_put_header(storage.data());
  nlh->nlmsg_type = static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8U) | IPCTNL_MSG_CT_NEW);
  nlh->nlmsg_flags = NLM_F_CREATE | NLM_F_EXCL;
  auto* generic = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(nfgenmsg)));
  generic->nfgen_family = family;
  generic->version = NFNETLINK_V0;
  EXPECT_EQ(nfct_nlmsg_build(nlh, &ct), 0);
  const auto* begin = reinterpret_cast<const std::byte*>(storage.data());
  return {begin, begin + nlh->nlmsg_len};
}

std::uint32_t inetAddress(const char* text) {
  std::uint32_t network_order = 0;
  std::memcpy(&network_order, IpAddress::parse(text)->bytes().data(), sizeof(network_order));
  return network_order;
}

TEST(ConntrackDecoderCrossCheckTest, DecodesLibnetfilterConntrackIpv4Tcp) {
  const Conntrack ct{nfct_new()};
  ASSERT_TRUE(ct);
  nfct_set_attr_u8(ct.get(), ATTR_L3PROTO, AF_INET);
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L3PROTO, AF_INET);
  nfct_set_attr_u8(ct.get(), ATTR_L4PROTO, IPPROTO_TCP);
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L4PROTO, IPPROTO_TCP);
  nfct_set_attr_u32(ct.get(), ATTR_IPV4_SRC, inetAddress("100.64.0.2"));
  nfct_set_attr_u32(ct.get(), ATTR_IPV4_DST, inetAddress("203.0.113.80"));
  nfct_set_attr_u32(ct.get(), ATTR_REPL_IPV4_SRC, inetAddress("10.0.0.5"));
  nfct_set_attr_u32(ct.get(), ATTR_REPL_IPV4_DST, inetAddress("198.51.100.1"));
  nfct_set_attr_u16(ct.get(), ATTR_PORT_SRC, htons(33000));
  nfct_set_attr_u16(ct.get(), ATTR_PORT_DST, htons(8080));
  nfct_set_attr_u16(ct.get(), ATTR_REPL_PORT_SRC, htons(80));
  nfct_set_attr_u16(ct.get(), ATTR_REPL_PORT_DST, htons(40001));
  nfct_set_attr_u8(ct.get(), ATTR_TCP_STATE, 3);
  nfct_set_attr_u32(ct.get(), ATTR_STATUS, kNatDone | ct_status::kSrcNat | ct_status::kDstNat);
  nfct_set_attr_u32(ct.get(), ATTR_MARK, 0xC0FFEE);
  nfct_set_attr_u16(ct.get(), ATTR_ZONE, 12);

  const FlowRecord record = decodeOk(buildWithLibnetfilterConntrack(*ct, AF_INET));
  EXPECT_EQ(record.event, EventType::New);
  EXPECT_EQ(record.original, tcpTuple("100.64.0.2", 33000, "203.0.113.80", 8080));
  EXPECT_EQ(record.reply, tcpTuple("10.0.0.5", 80, "198.51.100.1", 40001));
  EXPECT_EQ(record.tcp_state, 3);
  EXPECT_EQ(record.mark, 0xC0FFEEU);
  EXPECT_EQ(record.zone, 12);
  ASSERT_TRUE(record.nat.translated_source);
  ASSERT_TRUE(record.nat.translated_destination);
  EXPECT_EQ(record.nat.translated_source->toString(), "198.51.100.1:40001");
  EXPECT_EQ(record.nat.translated_destination->toString(), "10.0.0.5:80");
}

TEST(ConntrackDecoderCrossCheckTest, DecodesLibnetfilterConntrackIpv6Icmpv6) {
  const Conntrack ct{nfct_new()};
  ASSERT_TRUE(ct);
  const auto src = *IpAddress::parse("2001:db8:1::2");
  const auto dst = *IpAddress::parse("2001:db8:2::1");
  nfct_set_attr_u8(ct.get(), ATTR_L3PROTO, AF_INET6);
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L3PROTO, AF_INET6);
  nfct_set_attr_u8(ct.get(), ATTR_L4PROTO, IPPROTO_ICMPV6);
  nfct_set_attr_u8(ct.get(), ATTR_REPL_L4PROTO, IPPROTO_ICMPV6);
  nfct_set_attr(ct.get(), ATTR_IPV6_SRC, src.bytes().data());
  nfct_set_attr(ct.get(), ATTR_IPV6_DST, dst.bytes().data());
  nfct_set_attr(ct.get(), ATTR_REPL_IPV6_SRC, dst.bytes().data());
  nfct_set_attr(ct.get(), ATTR_REPL_IPV6_DST, src.bytes().data());
  nfct_set_attr_u8(ct.get(), ATTR_ICMP_TYPE, 128);
  nfct_set_attr_u8(ct.get(), ATTR_ICMP_CODE, 0);
  nfct_set_attr_u16(ct.get(), ATTR_ICMP_ID, htons(4711));

  const FlowRecord record = decodeOk(buildWithLibnetfilterConntrack(*ct, AF_INET6));
  EXPECT_EQ(record.family(), Family::Ipv6);
  EXPECT_EQ(record.original, icmpTuple("2001:db8:1::2", "2001:db8:2::1", 128, 0, 4711));
  EXPECT_EQ(record.reply.protocol, Protocol::Icmpv6);
  EXPECT_EQ(record.reply.src, dst);
  EXPECT_EQ(record.reply.icmp_id, 4711);
  EXPECT_EQ(record.nat, NatMapping{});
}

}  // namespace
}  // namespace ctaudit::daemon
