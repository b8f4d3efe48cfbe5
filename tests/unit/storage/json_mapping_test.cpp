// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/json_mapping.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "flow/ct_status.hpp"
#include "flow/gap_record.hpp"
#include "flow/nat.hpp"
#include "tests/support/file_text.hpp"
#include "tests/support/nlohmann_json_mapping.hpp"

namespace ctaudit::storage {
namespace {

using ctaudit::testing::readFile;

using namespace std::chrono_literals;

// The golden files hold the exact line toJsonLine() must produce, plus a newline. After an
// intended change of the mapping, regenerate them with
//   CTAUDIT_UPDATE_GOLDEN=1 build/ci/tests/ctaudit_unit_tests --gtest_filter='JsonMappingTest.*'
// and review the diff like code: it is the change SIEM users will see.
const std::filesystem::path kGoldenDir = std::filesystem::path{CTAUDIT_TEST_DATA_DIR} / "json";

const JsonContext kContext{"gw1.example.net"};

// 2026-11-25T10:00:03.123456789Z
constexpr Timestamp kT0 = fromUnixNanos(1'795'600'803'123'456'789);

constexpr std::uint32_t kSnatNew =
    ct_status::kConfirmed | ct_status::kSrcNat | ct_status::kSrcNatDone | ct_status::kDstNatDone;
constexpr std::uint32_t kSnatSeen = kSnatNew | ct_status::kSeenReply;
constexpr std::uint32_t kSnatAssured = kSnatSeen | ct_status::kAssured;

constexpr std::uint8_t kSynSent = 1;
constexpr std::uint8_t kEstablished = 3;
constexpr std::uint8_t kTimeWait = 7;

IpAddress ip(std::string_view text) { return IpAddress::parse(text).value(); }

FlowTuple ports(Protocol protocol, std::string_view src, std::uint16_t sport, std::string_view dst,
                std::uint16_t dport) {
  FlowTuple tuple;
  tuple.protocol = protocol;
  tuple.src = ip(src);
  tuple.dst = ip(dst);
  tuple.src_port = sport;
  tuple.dst_port = dport;
  return tuple;
}

FlowTuple icmp(std::string_view src, std::string_view dst, std::uint8_t type, std::uint16_t id) {
  FlowTuple tuple;
  tuple.protocol = Protocol::Icmp;
  tuple.src = ip(src);
  tuple.dst = ip(dst);
  tuple.icmp_type = type;
  tuple.icmp_id = id;
  return tuple;
}

// A record as the decoder would build it: the NAT mapping derived from status and tuples.
FlowRecord record(EventType event, std::uint32_t ct_id, const FlowTuple& original, const FlowTuple& reply,
                  std::uint32_t status) {
  FlowRecord r;
  r.event = event;
  r.ct_id = ct_id;
  r.original = original;
  r.reply = reply;
  r.status = status;
  r.nat = deriveNat(status, original, reply);
  return r;
}

// A masqueraded HTTPS connection from a CGN subscriber, seen at NEW, UPDATE, DESTROY and in a dump.
FlowTuple snatOriginal() { return ports(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443); }
FlowTuple snatReply() { return ports(Protocol::Tcp, "198.51.100.1", 443, "203.0.113.1", 40001); }

FlowRecord newTcpSnat() {
  FlowRecord r = record(EventType::New, 3'405'691'582, snatOriginal(), snatReply(), kSnatNew);
  r.tcp_state = kSynSent;
  r.event_time = kT0;
  r.event_time_source = TimeSource::Kernel;
  r.start = kT0;
  r.start_source = TimeSource::Kernel;
  return r;
}

FlowRecord updateTcpSnat() {
  FlowRecord r = record(EventType::Update, 3'405'691'582, snatOriginal(), snatReply(), kSnatAssured);
  r.tcp_state = kEstablished;
  r.event_time = kT0 + 41ms;
  r.event_time_source = TimeSource::Receive;
  return r;
}

FlowRecord destroyTcpSnat() {
  FlowRecord r = record(EventType::Destroy, 3'405'691'582, snatOriginal(), snatReply(), kSnatAssured);
  r.tcp_state = kTimeWait;
  r.counters_original = Counters{12, 1'840};
  r.counters_reply = Counters{10, 9'120};
  r.start = kT0 - 27us;  // confirmation time, a little before the NEW event was stamped
  r.start_source = TimeSource::Kernel;
  r.end = kT0 + 125s + 500ms;
  r.end_source = TimeSource::Kernel;
  r.event_time = kT0 + 125s + 500ms + 13us;
  r.event_time_source = TimeSource::Kernel;
  return r;
}

FlowRecord dumpObservedAtStart() {
  FlowRecord r = record(EventType::Dump, 17, snatOriginal(), snatReply(), kSnatAssured);
  r.tcp_state = kEstablished;
  r.counters_original = Counters{1'200, 96'000};
  r.counters_reply = Counters{2'400, 3'100'000};
  r.start = kT0 - 3600s;
  r.start_source = TimeSource::Kernel;
  r.event_time = kT0;
  r.event_time_source = TimeSource::Receive;
  r.observed_at_start = true;
  return r;
}

// A ping whose echo id the masquerade rule had to remap (another subscriber held 1234).
FlowRecord icmpPing() {
  FlowRecord r = record(EventType::Destroy, 88, icmp("100.64.0.2", "198.51.100.1", 8, 1234),
                        icmp("198.51.100.1", "203.0.113.1", 0, 61000), kSnatSeen);
  r.counters_original = Counters{3, 252};
  r.counters_reply = Counters{3, 252};
  r.start = kT0;
  r.start_source = TimeSource::Kernel;
  r.end = kT0 + 32s;
  r.end_source = TimeSource::Kernel;
  r.event_time = kT0 + 32s;
  r.event_time_source = TimeSource::Kernel;
  return r;
}

FlowRecord ipv6UdpMasquerade() {
  FlowRecord r = record(EventType::Destroy, 4'000'000'001,
                        ports(Protocol::Udp, "fd00::2", 5353, "2001:db8::53", 53),
                        ports(Protocol::Udp, "2001:db8::53", 53, "2001:db8:1::1", 45000), kSnatSeen);
  r.counters_original = Counters{1, 73};
  r.counters_reply = Counters{1, 205};
  r.start = kT0;
  r.start_source = TimeSource::Kernel;
  r.end = kT0 + 30s + 2ms;
  r.end_source = TimeSource::Kernel;
  r.event_time = kT0 + 30s + 2ms;
  r.event_time_source = TimeSource::Kernel;
  return r;
}

// A port forward in conntrack zone 7 with a mark: the outside client's flow to the router's 8080
// is sent to an inside server's port 80. Without the kernel event time the times are receive times.
FlowRecord dnat() {
  FlowRecord r = record(EventType::New, 501, ports(Protocol::Tcp, "198.51.100.9", 51000, "203.0.113.1", 8080),
                        ports(Protocol::Tcp, "100.64.0.2", 80, "198.51.100.9", 51000),
                        ct_status::kConfirmed | ct_status::kDstNat | ct_status::kSrcNatDone |
                            ct_status::kDstNatDone);
  r.zone = 7;
  r.mark = 0x2a;
  r.tcp_state = kSynSent;
  r.start = kT0;
  r.start_source = TimeSource::Receive;
  r.event_time = kT0;
  r.event_time_source = TimeSource::Receive;
  return r;
}

// A protocol conntrack tracks without ports.
FlowRecord greNoPorts() {
  FlowTuple original;
  original.protocol = Protocol::Gre;
  original.src = ip("192.0.2.10");
  original.dst = ip("192.0.2.20");
  FlowTuple reply = original;
  std::swap(reply.src, reply.dst);
  FlowRecord r = record(EventType::New, 9, original, reply, ct_status::kConfirmed);
  r.start = kT0;
  r.event_time = kT0;
  return r;
}

// A flow the daemon closed at restart: its DESTROY was lost while the daemon was down, so the end is
// only a bound (the flow had ended by then), and there are no counters.
FlowRecord destroyBound() {
  FlowRecord r = record(EventType::Destroy, 3'405'691'582, snatOriginal(), snatReply(), kSnatAssured);
  r.tcp_state = kEstablished;
  r.start = kT0;
  r.start_source = TimeSource::Kernel;
  r.end = kT0 + 3600s;
  r.end_source = TimeSource::Bound;
  r.event_time = kT0 + 3600s;
  r.event_time_source = TimeSource::Bound;
  return r;
}

struct GoldenCase {
  std::string name;
  FlowRecord record;
};

std::vector<GoldenCase> goldenCases() {
  return {
      {"new_tcp_snat", newTcpSnat()},
      {"update", updateTcpSnat()},
      {"destroy_tcp_snat", destroyTcpSnat()},
      {"dump_observed_at_start", dumpObservedAtStart()},
      {"icmp_ping", icmpPing()},
      {"ipv6_udp_masquerade", ipv6UdpMasquerade()},
      {"dnat", dnat()},
      {"gre_no_ports", greNoPorts()},
      {"destroy_bound", destroyBound()},
  };
}

bool updatingGolden() {
  const char* value = std::getenv("CTAUDIT_UPDATE_GOLDEN");  // NOLINT(concurrency-mt-unsafe): no threads here
  return value != nullptr && std::string_view{value} == "1";
}

// "" when the file is missing, so that the comparison below names it.
TEST(JsonMappingTest, MatchesGoldenFiles) {
  for (const GoldenCase& c : goldenCases()) {
    const std::string line = toJsonLine(c.record, kContext);
    const std::filesystem::path path = kGoldenDir / (c.name + ".json");
    if (updatingGolden()) {
      std::filesystem::create_directories(kGoldenDir);
      std::ofstream(path, std::ios::binary | std::ios::trunc) << line << '\n';
      continue;
    }
    EXPECT_EQ(readFile(path), line + '\n') << "golden file " << path
                                           << " differs; see the comment at the top of this test";
  }
}

// Gaps, one per reason, as the daemon writes them.
struct GoldenGap {
  std::string name;
  GapRecord gap;
};

std::vector<GoldenGap> goldenGaps() {
  GapRecord overrun;
  overrun.reason = GapReason::KernelOverrun;
  overrun.start = kT0;
  overrun.end = kT0 + 2s + 250ms;
  overrun.overruns = 3;
  GapRecord queue;
  queue.reason = GapReason::QueueOverflow;
  queue.start = kT0;
  queue.end = kT0 + 500ms;
  queue.lost_records = 1'234;
  GapRecord sink;
  sink.reason = GapReason::SinkFailure;
  sink.start = kT0;
  sink.end = kT0 + 90s;
  sink.lost_records = 52'000;
  sink.sink = "sqlite";
  GapRecord down;
  down.reason = GapReason::DaemonDown;
  down.start = kT0 - 3600s;
  down.end = kT0;
  GapRecord malformed;
  malformed.reason = GapReason::MalformedEvent;
  malformed.start = kT0;
  malformed.end = kT0 + 30ms;
  malformed.lost_records = 5;
  GapRecord expired;
  expired.reason = GapReason::RetentionExpired;
  expired.start = kT0 - 24h;
  expired.end = kT0;
  return {{"gap_kernel_overrun", overrun},
          {"gap_queue_overflow", queue},
          {"gap_sink_failure", sink},
          {"gap_daemon_down", down},
          {"gap_malformed_event", malformed},
          {"gap_retention_expired", expired}};
}

TEST(JsonMappingTest, GapsMatchGoldenFiles) {
  for (const GoldenGap& c : goldenGaps()) {
    const std::string line = toJsonLine(c.gap, kContext);
    const std::filesystem::path path = kGoldenDir / (c.name + ".json");
    if (updatingGolden()) {
      std::ofstream(path, std::ios::binary | std::ios::trunc) << line << '\n';
      continue;
    }
    EXPECT_EQ(readFile(path), line + '\n') << "golden file " << path
                                           << " differs; see the comment at the top of this file";
  }
}

TEST(JsonMappingTest, AGapIsAnEcsPipelineError) {
  for (const GoldenGap& c : goldenGaps()) {
    SCOPED_TRACE(c.name);
    const std::string line = toJsonLine(c.gap, kContext);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const auto doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(doc.is_discarded()) << line;
    EXPECT_EQ(doc.at("@timestamp"), formatRfc3339(c.gap.end));
    EXPECT_EQ(doc.at("event").at("kind"), "pipeline_error");
    EXPECT_EQ(doc.at("event").at("category"), nlohmann::json::array({"network"}));
    EXPECT_EQ(doc.at("event").at("type"), nlohmann::json::array({"info"}));
    EXPECT_EQ(doc.at("event").at("action"), "gap");
    EXPECT_EQ(doc.at("event").at("reason"), gapReasonName(c.gap.reason));
    EXPECT_EQ(doc.at("event").at("start"), formatRfc3339(c.gap.start));
    EXPECT_EQ(doc.at("event").at("end"), formatRfc3339(c.gap.end));
    EXPECT_EQ(doc.at("event").at("duration"), (c.gap.end - c.gap.start).count());
    EXPECT_EQ(doc.at("observer").at("hostname"), kContext.observer_hostname);
    const auto& details = doc.at("ctaudit").at("gap");
    EXPECT_EQ(details.at("reason"), gapReasonName(c.gap.reason));
    EXPECT_EQ(details.at("lost_records"), c.gap.lost_records);
    EXPECT_EQ(details.at("overruns"), c.gap.overruns);
    EXPECT_EQ(details.contains("sink"), !c.gap.sink.empty());
    EXPECT_FALSE(doc.contains("source")) << "a gap is about no flow in particular";
  }
}

TEST(JsonMappingTest, EveryLineParsesBackWithTheEcsKeys) {
  for (const GoldenCase& c : goldenCases()) {
    SCOPED_TRACE(c.name);
    const std::string line = toJsonLine(c.record, kContext);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    const auto doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(doc.is_discarded()) << line;

    EXPECT_EQ(doc.at("@timestamp"), formatRfc3339(c.record.event_time));
    EXPECT_EQ(doc.at("event").at("kind"), "event");
    EXPECT_EQ(doc.at("event").at("category"), nlohmann::json::array({"network"}));
    EXPECT_EQ(doc.at("event").at("type").at(0), "connection");
    EXPECT_TRUE(doc.at("event").at("action").is_string());
    EXPECT_EQ(doc.at("network").at("type"), c.record.family() == Family::Ipv4 ? "ipv4" : "ipv6");
    EXPECT_EQ(doc.at("network").at("transport"), protocolName(c.record.original.protocol));
    EXPECT_EQ(doc.at("network").at("iana_number"),
              std::to_string(static_cast<unsigned>(c.record.original.protocol)));
    EXPECT_EQ(doc.at("network").at("community_id").get<std::string>().substr(0, 2), "1:");
    EXPECT_EQ(doc.at("source").at("ip"), c.record.original.src.toString());
    EXPECT_EQ(doc.at("destination").at("ip"), c.record.original.dst.toString());
    EXPECT_EQ(doc.at("source").contains("port"), hasPorts(c.record.original.protocol));
    EXPECT_EQ(doc.at("destination").contains("port"), hasPorts(c.record.original.protocol));
    EXPECT_EQ(doc.at("observer").at("hostname"), kContext.observer_hostname);
    EXPECT_EQ(doc.at("conntrack").at("id"), c.record.ct_id);
    EXPECT_TRUE(doc.at("conntrack").at("status").is_array());

    EXPECT_EQ(doc.at("source").contains("nat"), c.record.nat.translated_source.has_value());
    if (c.record.nat.translated_source) {
      EXPECT_EQ(doc.at("source").at("nat").at("ip"), c.record.nat.translated_source->address.toString());
      EXPECT_EQ(doc.at("source").at("nat").at("port"), c.record.nat.translated_source->port);
    }
    EXPECT_EQ(doc.at("destination").contains("nat"), c.record.nat.translated_destination.has_value());
    if (c.record.nat.translated_destination) {
      EXPECT_EQ(doc.at("destination").at("nat").at("ip"), c.record.nat.translated_destination->address.toString());
      EXPECT_EQ(doc.at("destination").at("nat").at("port"), c.record.nat.translated_destination->port);
    }
    EXPECT_EQ(doc.at("source").contains("bytes"), c.record.counters_original.has_value());
    EXPECT_EQ(doc.at("destination").contains("bytes"), c.record.counters_reply.has_value());
    if (c.record.start && c.record.end) {
      EXPECT_EQ(doc.at("event").at("duration"), (*c.record.end - *c.record.start).count());
    } else {
      EXPECT_FALSE(doc.at("event").contains("duration"));
    }
    EXPECT_EQ(doc.at("conntrack").contains("observed_at_start"), c.record.observed_at_start);
  }
}

TEST(JsonMappingTest, EventTypesFollowEcsCategorisation) {
  const auto typeOf = [](EventType event) {
    FlowRecord r = newTcpSnat();
    r.event = event;
    const auto doc = nlohmann::json::parse(toJsonLine(r, kContext));
    return std::make_pair(doc.at("event").at("type").at(1).get<std::string>(),
                          doc.at("event").at("action").get<std::string>());
  };
  EXPECT_EQ(typeOf(EventType::New), std::make_pair(std::string{"start"}, std::string{"new"}));
  EXPECT_EQ(typeOf(EventType::Dump), std::make_pair(std::string{"start"}, std::string{"dump"}));
  EXPECT_EQ(typeOf(EventType::Update), std::make_pair(std::string{"info"}, std::string{"update"}));
  EXPECT_EQ(typeOf(EventType::Destroy), std::make_pair(std::string{"end"}, std::string{"destroy"}));
}

TEST(JsonMappingTest, ABoundEndIsNamedAsSuch) {
  const auto doc = nlohmann::json::parse(toJsonLine(destroyBound(), kContext));
  EXPECT_EQ(doc.at("conntrack").at("time_source").at("end"), "bound");
  EXPECT_EQ(doc.at("conntrack").at("time_source").at("start"), "kernel");
  EXPECT_EQ(doc.at("event").at("end"), formatRfc3339(kT0 + 3600s));
}

// The query tool shows an unknown start as when the flow was first seen, a bound: named so, and no
// duration from it (it would be less than the flow's, where a bound end's is more).
TEST(JsonMappingTest, ABoundStartIsNamedAsSuchAndGivesNoDuration) {
  FlowRecord r = destroyTcpSnat();
  r.start_source = TimeSource::Bound;
  const auto doc = nlohmann::json::parse(toJsonLine(r, kContext));
  EXPECT_EQ(doc.at("conntrack").at("time_source").at("start"), "bound");
  EXPECT_EQ(doc.at("event").at("start"), formatRfc3339(*r.start));
  EXPECT_FALSE(doc.at("event").contains("duration"));
}

TEST(JsonMappingTest, IcmpIdIsTheNatPortButNotASourcePort) {
  const auto doc = nlohmann::json::parse(toJsonLine(icmpPing(), kContext));
  EXPECT_FALSE(doc.at("source").contains("port"));
  EXPECT_EQ(doc.at("source").at("nat").at("port"), 61000);
  EXPECT_EQ(doc.at("conntrack").at("original").at("id"), 1234);
  EXPECT_EQ(doc.at("conntrack").at("original").at("type"), 8);
  EXPECT_EQ(doc.at("conntrack").at("reply").at("type"), 0);
  EXPECT_FALSE(doc.at("conntrack").at("original").contains("sport"));
}

TEST(JsonMappingTest, EndBeforeStartGivesNoDuration) {
  FlowRecord r = destroyTcpSnat();
  r.start_source = TimeSource::Receive;
  r.start = *r.end + 1ms;
  const auto doc = nlohmann::json::parse(toJsonLine(r, kContext));
  EXPECT_TRUE(doc.at("event").contains("start"));
  EXPECT_TRUE(doc.at("event").contains("end"));
  EXPECT_FALSE(doc.at("event").contains("duration"));
}

// The host name is the one string that does not come from our own formatting; a byte that is not
// UTF-8 must not make the mapping throw (nlohmann's strict mode would).
TEST(JsonMappingTest, InvalidUtf8HostnameDoesNotThrow) {
  const JsonContext context{"gw\xff"};
  std::string line;
  EXPECT_NO_THROW(line = toJsonLine(newTcpSnat(), context));
  const auto doc = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ(doc.at("observer").at("hostname"), "gw\xEF\xBF\xBD");
}

// The mapping is written by hand; nlohmann's serialiser, which it replaced, is the reference for
// escaping. Random byte strings, weighted towards what is hard (quotes, backslashes, control
// characters, UTF-8 lead and continuation bytes, truncated and overlong sequences, surrogates),
// must come out exactly as nlohmann's dump(error_handler_t::replace) writes them, and parse back.
TEST(JsonMappingTest, EscapesLikeNlohmannForRandomBytes) {
  std::mt19937 random(20261125);
  constexpr std::array<unsigned char, 24> kHard{'"',   '\\',  '\n',  '\r',  '\t',  0x00U, 0x01U, 0x1FU,
                                                0x7FU, 0x80U, 0xBFU, 0xC0U, 0xC2U, 0xDFU, 0xE0U, 0xEDU,
                                                0xEFU, 0xF0U, 0xF4U, 0xF5U, 0xFFU, 0xA0U, 0x9FU, 0x8FU};
  std::uniform_int_distribution<int> length(0, 40);
  std::uniform_int_distribution<int> kind(0, 3);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<std::size_t> hard(0, kHard.size() - 1);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    const int n = length(random);
    for (int i = 0; i < n; ++i) {
      switch (kind(random)) {
        case 0: text += static_cast<char>('a' + i % 26); break;
        case 1: text += static_cast<char>(kHard.at(hard(random))); break;
        case 2: text += "\u00e9\u20ac\U0001F600"[static_cast<std::size_t>(byte(random)) % 9]; break;
        default: text += static_cast<char>(byte(random)); break;
      }
    }
    std::string ours;
    appendJsonString(ours, text);
    const std::string reference = nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    ASSERT_EQ(ours, reference) << "input bytes: " << ::testing::PrintToString(std::vector<unsigned char>(text.begin(), text.end()));
    const auto parsed = nlohmann::json::parse(ours, nullptr, /*allow_exceptions=*/false);
    ASSERT_FALSE(parsed.is_discarded()) << ours;
  }
}

TEST(JsonMappingTest, ValidUtf8AndEscapesRoundTrip) {
  const std::string text = "gw-\u00e9\u20ac\U0001F600 \"q\" \\ \b\f\n\r\t\x01\x7f end";
  std::string out;
  appendJsonString(out, text);
  EXPECT_EQ(nlohmann::json::parse(out).get<std::string>(), text);
}

// Random records of every event type, family, protocol, status and optional field: the hand-written
// mapping must write exactly the line the nlohmann mapping wrote.
TEST(JsonMappingTest, MatchesTheNlohmannMappingForRandomRecords) {
  std::mt19937_64 random(4);
  const auto pick = [&](std::uint64_t n) { return random() % n; };
  constexpr std::array<Protocol, 7> kProtocols{Protocol::Tcp,  Protocol::Udp,    Protocol::Icmp,
                                               Protocol::Icmpv6, Protocol::Gre, Protocol::Sctp,
                                               static_cast<Protocol>(99)};
  const auto address = [&](bool v6) {
    if (!v6) {
      return IpAddress::v4(static_cast<std::uint32_t>(random()));
    }
    std::array<std::uint8_t, 16> bytes{};
    for (auto& b : bytes) {
      b = pick(3) == 0 ? 0 : static_cast<std::uint8_t>(random());  // runs of zeros for "::"
    }
    return IpAddress::v6(bytes);
  };
  const auto tuple = [&](Protocol protocol, bool v6) {
    FlowTuple t;
    t.protocol = protocol;
    t.src = address(v6);
    t.dst = address(v6);
    t.src_port = static_cast<std::uint16_t>(random());
    t.dst_port = static_cast<std::uint16_t>(random());
    t.icmp_type = static_cast<std::uint8_t>(pick(3) == 0 ? random() : 8);
    t.icmp_code = static_cast<std::uint8_t>(random());
    t.icmp_id = static_cast<std::uint16_t>(random());
    return t;
  };
  // 1827 to 2112: any two are less than INT64_MAX ns apart, where the reference computes the
  // duration in signed arithmetic (TheLongestPossibleLine... covers the far ends).
  const auto time = [&]() {
    return fromUnixNanos(static_cast<std::int64_t>(random() % 9'000'000'000'000'000'000ULL) -
                         4'500'000'000'000'000'000LL);
  };
  for (int round = 0; round < 5000; ++round) {
    const bool v6 = pick(2) == 0;
    const Protocol protocol = kProtocols.at(pick(kProtocols.size()));
    const std::uint32_t status = static_cast<std::uint32_t>(random()) & (pick(4) == 0 ? 0xFFFFFFFFU : 0x1FFU);
    FlowRecord r = record(static_cast<EventType>(pick(4)), static_cast<std::uint32_t>(random()),
                          tuple(protocol, v6), tuple(protocol, v6), status);
    r.zone = static_cast<std::uint16_t>(random());
    r.mark = static_cast<std::uint32_t>(random());
    if (pick(2) == 0) {
      r.tcp_state = static_cast<std::uint8_t>(pick(12));
    }
    if (pick(2) == 0) {
      r.counters_original = Counters{random(), random()};
      r.counters_reply = Counters{random() >> pick(64), random() >> pick(64)};
    }
    if (pick(3) != 0) {
      r.start = time();
      r.start_source = static_cast<TimeSource>(pick(3));
    }
    if (pick(3) != 0) {
      r.end = pick(2) == 0 && r.start ? *r.start + std::chrono::nanoseconds(random() % 1'000'000'000'000) : time();
      r.end_source = static_cast<TimeSource>(pick(3));
    }
    r.event_time = time();
    r.event_time_source = static_cast<TimeSource>(pick(3));
    r.observed_at_start = pick(2) == 0;
    const JsonContext context{pick(8) == 0 ? std::string("gw\"\xff\n") : std::string("gw1.example.net")};
    ASSERT_EQ(toJsonLine(r, context), testing::nlohmannJsonLine(r, context)) << "round " << round;
  }
}

TEST(JsonMappingTest, GapsMatchTheNlohmannMapping) {
  for (const GapReason reason :
       {GapReason::KernelOverrun, GapReason::QueueOverflow, GapReason::SinkFailure, GapReason::DaemonDown}) {
    GapRecord gap;
    gap.reason = reason;
    gap.start = kT0;
    gap.end = reason == GapReason::DaemonDown ? kT0 - 1s : kT0 + 90s;
    gap.lost_records = 18'446'744'073'709'551'615ULL;
    gap.overruns = 3;
    gap.sink = reason == GapReason::SinkFailure ? "sqlite \"main\"\xc3" : "";
    EXPECT_EQ(toJsonLine(gap, kContext), testing::nlohmannJsonLine(gap, kContext));
  }
}

// appendJsonLine adds to what the buffer holds and, once the buffer is large enough, never
// reallocates it: the JSON-lines sink formats a whole batch into one reused buffer.
TEST(JsonMappingTest, AppendsWithoutReallocatingAReusedBuffer) {
  std::string buffer = "prefix\n";
  appendJsonLine(buffer, destroyTcpSnat(), kContext);
  EXPECT_EQ(buffer, "prefix\n" + toJsonLine(destroyTcpSnat(), kContext));
  buffer.clear();
  buffer.reserve(64 * 1024);
  const char* data = buffer.data();
  for (int i = 0; i < 50; ++i) {
    appendJsonLine(buffer, destroyTcpSnat(), kContext);
    buffer += '\n';
  }
  EXPECT_EQ(buffer.data(), data);
}

// The writer makes room for a bounded line (4 KiB plus the outside strings at six bytes a byte)
// before it writes; the longest record there is must stay well inside that bound.
TEST(JsonMappingTest, TheLongestPossibleLineStaysInsideTheWritersBound) {
  const IpAddress longest = IpAddress::parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff").value();
  FlowTuple original;
  original.protocol = Protocol::Tcp;
  original.src = longest;
  original.dst = longest;
  original.src_port = 65535;
  original.dst_port = 65535;
  FlowRecord r = record(EventType::Destroy, 4'294'967'295, original, original, 0xFFFFFFFFU);
  r.nat.translated_source = Endpoint{longest, 65535};
  r.nat.translated_destination = Endpoint{longest, 65535};
  r.zone = 65535;
  r.mark = 4'294'967'295;
  r.tcp_state = 255;
  r.counters_original = Counters{18'446'744'073'709'551'615ULL, 18'446'744'073'709'551'615ULL};
  r.counters_reply = r.counters_original;
  r.start = fromUnixNanos(-4'500'000'000'000'000'000);
  r.end = fromUnixNanos(4'500'000'000'000'000'000);  // 9e18 ns: the longest duration the reference can print
  r.event_time = *r.end;
  r.observed_at_start = true;
  const std::string hostile(300, '\x01');  // each byte becomes \u0001: six bytes
  const std::string line = toJsonLine(r, JsonContext{hostile});
  EXPECT_EQ(line, testing::nlohmannJsonLine(r, JsonContext{hostile}));
  EXPECT_LT(line.size() - 6 * hostile.size(), 2048U) << "the fixed part of the longest line";
  // A host name too long for the writer's stack room takes the other way, with the same result.
  const std::string very_long(1500, '\x01');
  EXPECT_EQ(toJsonLine(r, JsonContext{very_long}), testing::nlohmannJsonLine(r, JsonContext{very_long}));

  // Times further apart than INT64_MAX ns give INT64_MAX, the largest ECS long: Elasticsearch
  // rejects a larger one, and with it the line (an exploratory run found 11019168111553825513 on
  // a gap line, for a --from 292 years before the log).
  r.start = fromUnixNanos(-9'000'000'000'000'000'000);
  r.end = fromUnixNanos(9'000'000'000'000'000'000);
  const auto doc = nlohmann::json::parse(toJsonLine(r, kContext));
  EXPECT_EQ(doc.at("event").at("duration").get<std::int64_t>(), std::numeric_limits<std::int64_t>::max());
  GapRecord gap;
  gap.start = Timestamp::min();
  gap.end = fromUnixNanos(1'795'600'803'000'000'000);
  const auto gap_doc = nlohmann::json::parse(toJsonLine(gap, kContext));
  EXPECT_EQ(gap_doc.at("event").at("duration").get<std::int64_t>(), std::numeric_limits<std::int64_t>::max());
}

}  // namespace
}  // namespace ctaudit::storage
