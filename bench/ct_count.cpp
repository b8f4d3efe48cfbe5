// SPDX-License-Identifier: GPL-2.0-or-later
// ct_count: the benchmark floor. Counts the conntrack NEW and DESTROY events of its network
// namespace until SIGINT/SIGTERM, then prints what it counted and what that cost it. See --help
// and docs/benchmarks.md; the work is in EventCounter (ctaudit_bench_lib).
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include <sys/resource.h>

#include "bench/event_counter.hpp"
#include "bench/stop_signal.hpp"
#include "bench/summary.hpp"

namespace {

constexpr int kExitFatal = 1;
constexpr int kExitUsage = 2;
// While events keep coming, look for a stop signal only every so many reads: the check is a
// system call of its own, and the floor should cost as little as it can.
constexpr unsigned kBusyReadsPerStopCheck = 64;

constexpr std::string_view kUsage = R"(Usage: ct_count [--buffer-size BYTES] [--format kv|json]
Count the conntrack NEW and DESTROY events of this network namespace until SIGINT or SIGTERM,
then print the counts and the CPU time and peak memory it used: the floor a conntrack logger is
measured against (docs/benchmarks.md). Run it as root inside a network namespace of your own:
  ip netns exec NS ct_count --buffer-size 64M > counts.txt &
It prints "ct_count: ready" on stderr once it listens.

  --buffer-size BYTES  receive buffer as the kernel reports it (K, M, G suffixes; default 64M);
                       set with SO_RCVBUFFORCE (CAP_NET_ADMIN), else capped by net.core.rmem_max
  --format kv|json     key=value lines (default) or one JSON object
Keys: new, destroy, events, other, truncated, overruns (ENOBUFS), kernel_drops (SK_MEMINFO_DROPS),
datagrams, receive_calls, buffer_bytes, cpu_user_s, cpu_system_s, cpu_ms_per_1k_events,
peak_rss_kib.
)";

struct Options {
  std::size_t buffer_bytes{std::size_t{64} << 20U};
  bool json{false};
};

bool parseSize(std::string_view text, std::size_t& bytes) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || value == 0) {
    return false;
  }
  const std::string_view suffix(end, static_cast<std::size_t>(text.data() + text.size() - end));
  unsigned shift = 0;
  if (suffix == "K" || suffix == "k") {
    shift = 10;
  } else if (suffix == "M" || suffix == "m") {
    shift = 20;
  } else if (suffix == "G" || suffix == "g") {
    shift = 30;
  } else if (!suffix.empty()) {
    return false;
  }
  if (value > (std::uint64_t{2} << 30U) >> shift) {
    return false;  // more than 2 GiB: the kernel's int would overflow
  }
  bytes = static_cast<std::size_t>(value << shift);
  return true;
}

// Returns an error message, or "" when `options` was filled.
std::string parse(const std::vector<std::string_view>& args, Options& options, bool& help) {
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      help = true;
      return "";
    }
    if (arg != "--buffer-size" && arg != "--format") {
      return "unknown argument '" + std::string(arg) + "'; see ct_count --help";
    }
    if (i + 1 >= args.size()) {
      return std::string(arg) + " needs a value; see ct_count --help";
    }
    const std::string_view value = args[++i];
    if (arg == "--buffer-size") {
      if (!parseSize(value, options.buffer_bytes)) {
        return "--buffer-size: '" + std::string(value) + "' is not a size from 1 to 2G, e.g. 64M";
      }
    } else if (value == "kv" || value == "json") {
      options.json = value == "json";
    } else {
      return "--format: '" + std::string(value) + "' is not kv or json";
    }
  }
  return "";
}

double seconds(const timeval& time) {
  return static_cast<double>(time.tv_sec) + static_cast<double>(time.tv_usec) / 1e6;
}

std::string report(const ctaudit::bench::EventCounts& counts, const rusage& usage, bool json) {
  const std::uint64_t events = counts.new_events + counts.destroy_events;
  const double user = seconds(usage.ru_utime);
  const double system = seconds(usage.ru_stime);
  char per_1k[32];
  std::snprintf(per_1k, sizeof per_1k, "%.3f", events == 0 ? 0.0 : (user + system) * 1e6 / static_cast<double>(events));
  char user_text[32];
  char system_text[32];
  std::snprintf(user_text, sizeof user_text, "%.3f", user);
  std::snprintf(system_text, sizeof system_text, "%.3f", system);
  const ctaudit::bench::SummaryFields fields{
      {"new", std::to_string(counts.new_events)},
      {"destroy", std::to_string(counts.destroy_events)},
      {"events", std::to_string(events)},
      {"other", std::to_string(counts.other_messages)},
      {"truncated", std::to_string(counts.truncated)},
      {"overruns", std::to_string(counts.overruns)},
      {"kernel_drops", std::to_string(counts.kernel_drops)},
      {"datagrams", std::to_string(counts.datagrams)},
      {"receive_calls", std::to_string(counts.receive_calls)},
      {"buffer_bytes", std::to_string(counts.buffer_bytes)},
      {"cpu_user_s", user_text},
      {"cpu_system_s", system_text},
      {"cpu_ms_per_1k_events", per_1k},
      {"peak_rss_kib", std::to_string(usage.ru_maxrss)},
  };
  return ctaudit::bench::formatFields(fields, json);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ctaudit::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  Options options;
  bool help = false;
  if (const std::string error = parse(args, options, help); !error.empty()) {
    std::cerr << "ct_count: " << error << '\n';
    return kExitUsage;
  }
  if (help) {
    std::cout << kUsage;
    return 0;
  }
  StopSignal stop;
  if (const auto installed = StopSignal::install(stop); !installed) {
    std::cerr << "ct_count: " << installed.error().detail << '\n';
    return kExitFatal;
  }
  auto counter = EventCounter::open(options.buffer_bytes);
  if (!counter) {
    std::cerr << "ct_count: " << counter.error().detail << '\n';
    return kExitFatal;
  }
  std::cerr << "ct_count: ready, receive buffer " << (*counter)->counts().buffer_bytes << " bytes\n";
  unsigned busy_reads = 0;
  for (;;) {
    const auto got = (*counter)->poll(100);
    if (!got) {
      std::cerr << "ct_count: " << got.error().detail << '\n';
      return kExitFatal;
    }
    if (*got && ++busy_reads < kBusyReadsPerStopCheck) {
      continue;
    }
    busy_reads = 0;
    if (stop.received() > 0) {
      break;
    }
  }
  // Whatever arrived with the signal is counted too.
  if (const auto last = (*counter)->poll(0); !last) {
    std::cerr << "ct_count: " << last.error().detail << '\n';
    return kExitFatal;
  }
  rusage usage{};
  (void)::getrusage(RUSAGE_SELF, &usage);
  std::cout << report((*counter)->counts(), usage, options.json) << std::flush;
  return 0;
}
