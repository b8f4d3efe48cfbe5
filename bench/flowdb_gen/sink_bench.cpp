// SPDX-License-Identifier: GPL-2.0-or-later
// sink_bench: the SQLite write path on its own. Feeds SqliteSink (the daemon's sink, unchanged) a
// NEW and a DESTROY for each of --flows masqueraded flows, in batches of --batch events, with
// --live flows open at any time (the DESTROY of flow i follows the NEW of flow i + live; with
// --ends random it ends one of the open flows picked at random, as a garbage-collector sweep or
// `conntrack -F` ends them in the kernel's hash order), and prints events per second and CPU per
// 1000 events. Run it under
// `valgrind --tool=callgrind` for instruction counts that a loaded machine does not disturb.
#include <sys/resource.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "flow/nat.hpp"
#include "storage/sqlite_handles.hpp"
#include "storage/sqlite_sink.hpp"

namespace {

using ctaudit::FlowRecord;

std::uint64_t number(std::string_view text) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value == 0) {
    std::cerr << "sink_bench: not a positive number: '" << text << "'\n";
    std::exit(64);
  }
  return value;
}

double cpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

FlowRecord flow(std::uint64_t i, ctaudit::EventType event, std::int64_t base_ns) {
  FlowRecord r;
  r.event = event;
  r.ct_id = static_cast<std::uint32_t>(i * 2654435761U);
  r.original.protocol = i % 3 == 0 ? ctaudit::Protocol::Udp : ctaudit::Protocol::Tcp;
  r.original.src = ctaudit::IpAddress::v4(0x64400001U + static_cast<std::uint32_t>(i % 30000));
  r.original.dst = ctaudit::IpAddress::v4(0xC6336401U + static_cast<std::uint32_t>(i % 200));
  r.original.src_port = static_cast<std::uint16_t>(32768 + i % 28000);
  r.original.dst_port = 443;
  r.reply = r.original;
  std::swap(r.reply.src, r.reply.dst);
  std::swap(r.reply.src_port, r.reply.dst_port);
  r.reply.dst = ctaudit::IpAddress::v4(0xCB007101U + static_cast<std::uint32_t>(i % 4));
  r.reply.dst_port = static_cast<std::uint16_t>(1024 + (i * 7919) % 64000);
  r.status = event == ctaudit::EventType::New ? 0x198U : 0x19EU;
  r.nat = ctaudit::deriveNat(r.status, r.original, r.reply);
  const auto start = ctaudit::fromUnixNanos(base_ns + static_cast<std::int64_t>(i) * 10'000);
  r.start = start;
  r.start_source = ctaudit::TimeSource::Kernel;
  if (event == ctaudit::EventType::Destroy) {
    r.end = start + std::chrono::seconds(30);
    r.end_source = ctaudit::TimeSource::Kernel;
    r.event_time = *r.end;
    r.counters_original = ctaudit::Counters{10, 1200};
    r.counters_reply = ctaudit::Counters{9, 9000};
    if (r.original.protocol == ctaudit::Protocol::Tcp) {
      r.tcp_state = 7;
    }
  } else {
    r.event_time = start;
  }
  r.event_time_source = ctaudit::TimeSource::Kernel;
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  (void)ctaudit::storage::tuneSqliteForThisProcess();  // as ctauditd does
  std::uint64_t flows = 100'000;
  std::uint64_t batch = 1000;
  std::uint64_t live = 10'000;
  std::uint64_t report = 0;
  bool random_ends = false;
  std::filesystem::path path = "sink_bench.db";
  constexpr std::string_view kUsage =
      "usage: sink_bench [--flows N] [--batch N] [--live N] [--ends fifo|random] [--report N] [--db PATH]\n"
      "  writes PATH (default ./sink_bench.db, replaced) through SqliteSink; see docs/benchmarks.md\n"
      "  --report N: also print the CPU per 1000 events of every N events (how it grows with the file)\n";
  for (int i = 1; i < argc; i += 2) {
    const std::string_view arg = argv[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    if (i + 1 == argc) {  // --help, or an option without its value: say so instead of running
      std::cerr << kUsage;
      return arg == "--help" ? 0 : 64;
    }
    const std::string_view value = argv[i + 1];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    if (arg == "--flows") {
      flows = number(value);
    } else if (arg == "--batch") {
      batch = number(value);
    } else if (arg == "--live") {
      live = number(value);
    } else if (arg == "--ends" && (value == "fifo" || value == "random")) {
      random_ends = value == "random";
    } else if (arg == "--report") {
      report = number(value);
    } else if (arg == "--db") {
      path = std::string(value);
    } else {
      std::cerr << kUsage;
      return 64;
    }
  }
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
  auto log = std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
  auto sink = ctaudit::storage::SqliteSink::open(path, "gw-bench", log);
  if (!sink) {
    std::cerr << "sink_bench: " << sink.error().detail << '\n';
    return 70;
  }
  const std::int64_t base_ns = std::int64_t{1'795'000'000} * 1'000'000'000;
  std::vector<FlowRecord> pending;
  pending.reserve(batch);
  std::uint64_t events = 0;
  const double cpu0 = cpuSeconds();
  const auto wall0 = std::chrono::steady_clock::now();
  double interval_cpu0 = cpu0;
  std::uint64_t interval_events0 = 0;
  const auto emit = [&](FlowRecord record) {
    pending.push_back(std::move(record));
    if (pending.size() == batch) {
      if ((*sink)->write(pending) != ctaudit::storage::SinkStatus::Ok) {
        std::cerr << "sink_bench: a batch failed\n";
        std::exit(70);
      }
      events += pending.size();
      pending.clear();
      if (report != 0 && events - interval_events0 >= report) {
        const double now = cpuSeconds();
        std::cout << "events=" << events << " interval_cpu_ms_per_1k_events="
                  << (now - interval_cpu0) * 1e6 / static_cast<double>(events - interval_events0) << '\n';
        interval_cpu0 = now;
        interval_events0 = events;
      }
    }
  };
  std::vector<std::uint64_t> open;  // --ends random: the flows not ended yet
  std::mt19937_64 pick(1);           // the same order in every run
  for (std::uint64_t i = 0; i < flows + live; ++i) {
    if (i < flows) {
      emit(flow(i, ctaudit::EventType::New, base_ns));
      if (random_ends) {
        open.push_back(i);
      }
    }
    if (i >= live) {
      std::uint64_t ended = i - live;
      if (random_ends) {
        const std::size_t at = pick() % open.size();
        ended = open[at];
        open[at] = open.back();
        open.pop_back();
      }
      emit(flow(ended, ctaudit::EventType::Destroy, base_ns));
    }
  }
  if (!pending.empty() && (*sink)->write(pending) == ctaudit::storage::SinkStatus::Ok) {
    events += pending.size();
  }
  const double cpu = cpuSeconds() - cpu0;
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::cout << "events=" << events << " batch=" << batch << " live=" << live
            << " ends=" << (random_ends ? "random" : "fifo") << " wall_s=" << wall
            << " events_per_s=" << static_cast<double>(events) / wall << " cpu_ms_per_1k_events="
            << cpu * 1e6 / static_cast<double>(events) << " db_bytes=" << std::filesystem::file_size(path) << '\n';
  return 0;
}
