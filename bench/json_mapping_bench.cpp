// SPDX-License-Identifier: GPL-2.0-or-later
// Google Benchmark: what one event costs on the daemon's CPU path outside SQLite, piece by piece.
//
//   json/nlohmann     the mapping as it was (nlohmann::ordered_json, tests/support reference)
//   json/fmt          the same line through {fmt} (format_to into a reused buffer)
//   json/hand         storage::appendJsonLine into a reused buffer: what ships
//   community_id      the SHA-1 Community ID alone (part of every line)
//   rfc3339, address  the text conversions the line needs
//   decode            daemon::decodeConntrack of a captured DESTROY (tests/data/ctnetlink)
// allocs/op counts operator new per iteration (tests/support/counting_allocator).
//
// Run: build/ci/bench/json_mapping_bench [--benchmark_filter=json]; for instruction counts,
// valgrind --tool=callgrind build/ci/bench/json_mapping_bench --benchmark_filter=... (see
// docs/benchmarks.md, "Where the CPU goes"). Each variant is checked once to write exactly the
// line the shipped mapping writes, so that they are compared doing the same work.
#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <benchmark/benchmark.h>
#include <fmt/format.h>

#include "daemon/conntrack_decoder.hpp"
#include "flow/ct_status.hpp"
#include "flow/nat.hpp"
#include "storage/community_id.hpp"
#include "storage/json_mapping.hpp"
#include "tests/support/counting_allocator.hpp"
#include "tests/support/nlohmann_json_mapping.hpp"

namespace ctaudit {
namespace {

using namespace std::chrono_literals;

// Reports the allocations per iteration of the benchmark that ran since `before`.
void countAllocations(benchmark::State& state, std::uint64_t before) {
  state.counters["allocs/op"] = benchmark::Counter(
      static_cast<double>(testing::allocationCount() - before), benchmark::Counter::kAvgIterations);
}

constexpr Timestamp kT0 = fromUnixNanos(1'795'600'803'123'456'789);

FlowTuple tcp(std::string_view src, std::uint16_t sport, std::string_view dst, std::uint16_t dport) {
  FlowTuple t;
  t.protocol = Protocol::Tcp;
  t.src = IpAddress::parse(src).value();
  t.dst = IpAddress::parse(dst).value();
  t.src_port = sport;
  t.dst_port = dport;
  return t;
}

// The most common line: a masqueraded TCP flow's DESTROY with counters and kernel times.
FlowRecord destroyRecord() {
  FlowRecord r;
  r.event = EventType::Destroy;
  r.ct_id = 3'405'691'582;
  r.original = tcp("100.64.0.2", 33000, "198.51.100.1", 443);
  r.reply = tcp("198.51.100.1", 443, "203.0.113.1", 40001);
  r.status = ct_status::kSeenReply | ct_status::kAssured | ct_status::kConfirmed | ct_status::kSrcNat |
             ct_status::kSrcNatDone | ct_status::kDstNatDone;
  r.nat = deriveNat(r.status, r.original, r.reply);
  r.tcp_state = 7;
  r.counters_original = Counters{12, 1'840};
  r.counters_reply = Counters{10, 9'120};
  r.start = kT0 - 27us;
  r.start_source = TimeSource::Kernel;
  r.end = kT0 + 125s;
  r.end_source = TimeSource::Kernel;
  r.event_time = kT0 + 125s + 13us;
  r.event_time_source = TimeSource::Kernel;
  return r;
}

const storage::JsonContext kContext{"gw1.example.net"};

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "json_mapping_bench: %s\n", why.c_str());
  std::exit(1);  // NOLINT(concurrency-mt-unsafe): before any benchmark thread runs
}

// Text formatted into a stack buffer, alive until the end of the full expression that uses it.
struct Text {
  std::array<char, 48> data{};
  std::size_t size{0};
  [[nodiscard]] std::string_view view() const noexcept { return {data.data(), size}; }
};

// The {fmt} variant: one format_to per object, the same escaping for the one outside string. It
// writes only the members this record has (it is a measurement, not a second mapping); main()
// checks it writes the shipped line.
void fmtJsonLine(std::string& out, const FlowRecord& r, const storage::JsonContext& context) {
  auto it = std::back_inserter(out);
  const auto time = [](Timestamp t) {
    Text text;
    text.size = static_cast<std::size_t>(formatRfc3339(t, std::span<char, kRfc3339Size>(text.data.data(), kRfc3339Size)) -
                                         text.data.data());
    return text;
  };
  const auto ip = [](const IpAddress& a) {
    Text text;
    text.size = static_cast<std::size_t>(
        a.format(std::span<char, IpAddress::kMaxTextSize>(text.data.data(), IpAddress::kMaxTextSize)) - text.data.data());
    return text;
  };
  std::array<char, storage::kCommunityIdSize> id{};
  (void)storage::communityId(r.original, id);
  it = fmt::format_to(it,
                      R"({{"@timestamp":"{}","event":{{"kind":"event","category":["network"],"type":["connection","end"],)"
                      R"("action":"destroy","start":"{}","end":"{}","duration":{}}},)",
                      time(r.event_time).view(), time(*r.start).view(), time(*r.end).view(),
                      (*r.end - *r.start).count());
  it = fmt::format_to(it, R"("network":{{"type":"ipv4","transport":"{}","iana_number":"{}","community_id":"{}"}},)",
                      protocolName(r.original.protocol), static_cast<unsigned>(r.original.protocol),
                      std::string_view(id.data(), id.size()));
  it = fmt::format_to(it,
                      R"("source":{{"ip":"{}","port":{},"bytes":{},"packets":{},"nat":{{"ip":"{}","port":{}}}}},)"
                      R"("destination":{{"ip":"{}","port":{},"bytes":{},"packets":{}}},"observer":{{"hostname":)",
                      ip(r.original.src).view(), r.original.src_port, r.counters_original->bytes,
                      r.counters_original->packets, ip(r.nat.translated_source->address).view(),
                      r.nat.translated_source->port, ip(r.original.dst).view(), r.original.dst_port,
                      r.counters_reply->bytes, r.counters_reply->packets);
  storage::appendJsonString(out, context.observer_hostname);
  it = std::back_inserter(out);
  it = fmt::format_to(it, R"(}},"conntrack":{{"id":{},"zone":{},"mark":{},"status":[)", r.ct_id, r.zone, r.mark);
  bool first = true;
  for (unsigned bit = 0; bit < 32; ++bit) {
    if ((r.status & (1U << bit)) != 0) {
      it = fmt::format_to(it, R"({}"{}")", first ? "" : ",", statusBitName(bit));
      first = false;
    }
  }
  const auto tuple = [&](std::string_view key, const FlowTuple& t) {
    it = fmt::format_to(it, R"("{}":{{"protocol":{},"src":"{}","dst":"{}","sport":{},"dport":{}}})", key,
                        static_cast<unsigned>(t.protocol), ip(t.src).view(), ip(t.dst).view(), t.src_port, t.dst_port);
  };
  it = fmt::format_to(it, R"(],"tcp_state":"{}",)", tcpStateName(*r.tcp_state));
  tuple("original", r.original);
  it = fmt::format_to(it, ",");
  tuple("reply", r.reply);
  it = fmt::format_to(it, R"(,"time_source":{{"start":"kernel","end":"kernel","event":"kernel"}}}}}})");
}

void BM_JsonNlohmann(benchmark::State& state) {
  const FlowRecord record = destroyRecord();
  const std::uint64_t before = testing::allocationCount();
  for (auto _ : state) {
    std::string line = testing::nlohmannJsonLine(record, kContext);
    benchmark::DoNotOptimize(line);
  }
  countAllocations(state, before);
}
BENCHMARK(BM_JsonNlohmann)->Name("json/nlohmann");

void BM_JsonFmt(benchmark::State& state) {
  const FlowRecord record = destroyRecord();
  std::string buffer;
  buffer.reserve(4096);
  const std::uint64_t before = testing::allocationCount();
  for (auto _ : state) {
    buffer.clear();
    fmtJsonLine(buffer, record, kContext);
    benchmark::DoNotOptimize(buffer.data());
  }
  countAllocations(state, before);
}
BENCHMARK(BM_JsonFmt)->Name("json/fmt");

void BM_JsonHand(benchmark::State& state) {
  const FlowRecord record = destroyRecord();
  std::string buffer;
  buffer.reserve(4096);
  const std::uint64_t before = testing::allocationCount();
  for (auto _ : state) {
    buffer.clear();
    storage::appendJsonLine(buffer, record, kContext);
    benchmark::DoNotOptimize(buffer.data());
  }
  countAllocations(state, before);
}
BENCHMARK(BM_JsonHand)->Name("json/hand");

void BM_CommunityId(benchmark::State& state) {
  const FlowRecord record = destroyRecord();
  std::array<char, storage::kCommunityIdSize> id{};
  const std::uint64_t before = testing::allocationCount();
  for (auto _ : state) {
    benchmark::DoNotOptimize(storage::communityId(record.original, id));
  }
  countAllocations(state, before);
}
BENCHMARK(BM_CommunityId)->Name("community_id");

void BM_Rfc3339(benchmark::State& state) {
  std::array<char, kRfc3339Size> text{};
  Timestamp t = kT0;
  for (auto _ : state) {
    benchmark::DoNotOptimize(formatRfc3339(t, text));
    t += 1ns;
  }
}
BENCHMARK(BM_Rfc3339)->Name("rfc3339");

void BM_Address(benchmark::State& state) {
  const IpAddress address = IpAddress::parse(state.range(0) == 4 ? "203.0.113.254" : "2001:db8::53").value();
  std::array<char, IpAddress::kMaxTextSize> text{};
  for (auto _ : state) {
    benchmark::DoNotOptimize(address.format(text));
  }
}
BENCHMARK(BM_Address)->Name("address")->Arg(4)->Arg(6);

std::vector<std::byte> readCapture(const char* name) {
  const std::string path = std::string(CTAUDIT_BENCH_DATA_DIR) + "/ctnetlink/" + name;
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) {
    die("cannot read " + path);
  }
  std::vector<std::byte> message(bytes.size());
  std::transform(bytes.begin(), bytes.end(), message.begin(), [](char c) { return static_cast<std::byte>(c); });
  return message;
}

void BM_Decode(benchmark::State& state) {
  const std::vector<std::byte> message = readCapture("udp4_snat_destroy.bin");
  const daemon::DecodeContext context{kT0, daemon::MessageOrigin::Event};
  const std::uint64_t before = testing::allocationCount();
  for (auto _ : state) {
    auto record = daemon::decodeConntrack(message, context);
    benchmark::DoNotOptimize(record);
  }
  countAllocations(state, before);
}
BENCHMARK(BM_Decode)->Name("decode");

}  // namespace
}  // namespace ctaudit

int main(int argc, char** argv) {
  using namespace ctaudit;
  const FlowRecord record = destroyRecord();
  const std::string shipped = storage::toJsonLine(record, kContext);
  std::string fmt_line;
  fmtJsonLine(fmt_line, record, kContext);
  if (fmt_line != shipped) {
    die("the fmt variant writes another line:\n" + fmt_line + "\n" + shipped);
  }
  if (testing::nlohmannJsonLine(record, kContext) != shipped) {
    die("the nlohmann variant writes another line");
  }
  if (!daemon::decodeConntrack(readCapture("udp4_snat_destroy.bin"), {kT0, daemon::MessageOrigin::Event})) {
    die("the capture does not decode");
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) {
    return 1;
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
