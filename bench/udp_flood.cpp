// SPDX-License-Identifier: GPL-2.0-or-later
// udp_flood: real packets for the benchmark. Sends one UDP packet per new flow from many inside
// addresses and source ports, from a client namespace through a masquerading gateway namespace,
// at a set rate or as fast as it can. Parses argv and prints the summary; the work is in
// PacketFlood (ctaudit_bench_lib). See --help and docs/benchmarks.md.
#include <arpa/inet.h>

#include <charconv>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

#include "bench/packet_flood.hpp"
#include "bench/stop_signal.hpp"
#include "bench/summary.hpp"
#include "flow/time.hpp"

namespace {

constexpr int kExitFatal = 1;
constexpr int kExitUsage = 2;

constexpr std::string_view kUsage = R"(Usage: udp_flood [OPTION]...
Send one UDP packet per new flow, from many inside addresses and source ports, through the
gateway this network namespace routes to: a masquerading gateway namespace then creates one
NAT'd conntrack entry (one NEW event, later one DESTROY) per packet. Run it as root inside the
client namespace of a test topology (bench/run-benchmarks.sh builds one); it spoofs its inside
source addresses through a raw socket (CAP_NET_RAW). Documentation addresses only.

How much (at least one):
  --count N            send N packets (= new flows)
  --duration DUR       send for this long (10s, 500ms, 2m)
Pacing:
  --rate N|max         packets (= new flows) per second (default max)
  --batch N            packets per sendmmsg, 1-1024 (default 64)
What it sends:
  --src-base ADDR      first inside address (default 100.64.1.1)
  --hosts N            inside addresses from there (default 100)
  --src-ports MIN-MAX  source ports (default 1024-65535)
  --dst ADDR           destination (default 198.51.100.10)
  --dst-ports MIN-MAX  destination ports (default 10000-10999)
  --payload BYTES      UDP payload, 0-1400 (default 16)
  Flow n: dport = MIN + n mod dports, sport = MIN + (n / dports) mod sports,
  source = src-base + (n / (dports * sports)) mod hosts. The destination port varies fastest:
  a masquerading gateway has one public address and 64k ports per destination and port.
Output:
  --format kv|json     summary on stdout (default kv): packets, flows, errors (by errno name;
                       ENOBUFS: the gateway could not keep up), send_calls, elapsed_s,
                       packets_per_s, target_rate (0 = max), tuple_space, interrupted
The first SIGINT/SIGTERM stops sending. Exit status: 0 done, 1 fatal error, 2 usage error.
)";

bool parseNumber(std::string_view text, std::uint64_t min, std::uint64_t max, std::uint64_t& value) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  return ec == std::errc{} && end == text.data() + text.size() && value >= min && value <= max;
}

bool parseRange(std::string_view text, std::uint16_t& low, std::uint16_t& high) {
  const auto dash = text.find('-');
  std::uint64_t a = 0;
  std::uint64_t b = 0;
  if (dash == std::string_view::npos || !parseNumber(text.substr(0, dash), 1, 65535, a) ||
      !parseNumber(text.substr(dash + 1), 1, 65535, b) || a > b) {
    return false;
  }
  low = static_cast<std::uint16_t>(a);
  high = static_cast<std::uint16_t>(b);
  return true;
}

bool parseAddress(std::string_view text, std::array<std::uint8_t, 4>& address) {
  const std::string copy(text);
  in_addr parsed{};
  if (::inet_pton(AF_INET, copy.c_str(), &parsed) != 1) {
    return false;
  }
  std::memcpy(address.data(), &parsed, 4);
  return true;
}

// Returns an error message, or "" when `options` was filled.
std::string applyValue(ctaudit::bench::FloodOptions& options, bool& json, std::string_view name, std::string_view value) {
  std::uint64_t n = 0;
  auto& plan = options.plan;
  const std::string bad = "--" + std::string(name) + ": '" + std::string(value) + "' is not ";
  if (name == "count") {
    if (!parseNumber(value, 1, std::uint64_t{1} << 48U, n)) {
      return bad + "a number from 1";
    }
    options.count = n;
  } else if (name == "duration") {
    const auto d = ctaudit::parseDuration(value);
    if (!d || d->count() <= 0) {
      return bad + "a positive duration, e.g. 10s";
    }
    options.duration = *d;
  } else if (name == "rate") {
    if (value == "max") {
      options.rate = 0.0;
    } else if (parseNumber(value, 1, 100'000'000, n)) {
      options.rate = static_cast<double>(n);
    } else {
      return bad + "max or a number from 1 to 100000000";
    }
  } else if (name == "batch") {
    if (!parseNumber(value, 1, 1024, n)) {
      return bad + "a number from 1 to 1024";
    }
    options.batch = static_cast<std::size_t>(n);
  } else if (name == "hosts") {
    if (!parseNumber(value, 1, 1U << 20U, n)) {
      return bad + "a number from 1 to 1048576";
    }
    plan.hosts = static_cast<std::uint32_t>(n);
  } else if (name == "payload") {
    if (!parseNumber(value, 0, 1400, n)) {
      return bad + "a number from 0 to 1400";
    }
    plan.payload_bytes = static_cast<std::size_t>(n);
  } else if (name == "src-ports" || name == "dst-ports") {
    const bool ok = name == "src-ports" ? parseRange(value, plan.sport_min, plan.sport_max)
                                        : parseRange(value, plan.dport_min, plan.dport_max);
    if (!ok) {
      return bad + "MIN-MAX with 1 <= MIN <= MAX <= 65535";
    }
  } else if (name == "src-base" || name == "dst") {
    if (!parseAddress(value, name == "dst" ? plan.dst : plan.src_base)) {
      return bad + "an IPv4 address";
    }
  } else if (name == "format") {
    if (value != "kv" && value != "json") {
      return bad + "kv or json";
    }
    json = value == "json";
  } else {
    return "unknown option '--" + std::string(name) + "'; see udp_flood --help";
  }
  return "";
}

std::string summary(const ctaudit::bench::FloodTotals& totals, const ctaudit::bench::FloodOptions& options, bool json) {
  const double elapsed = std::chrono::duration<double>(totals.elapsed).count();
  char elapsed_text[32];
  char rate_text[32];
  std::snprintf(elapsed_text, sizeof elapsed_text, "%.3f", elapsed);
  std::snprintf(rate_text, sizeof rate_text, "%.0f", elapsed > 0 ? static_cast<double>(totals.packets) / elapsed : 0.0);
  std::uint64_t errors = 0;
  for (const auto& [err, count] : totals.errors_by_errno) {
    errors += count;
  }
  ctaudit::bench::SummaryFields fields{
      {"packets", std::to_string(totals.packets)},
      {"flows", std::to_string(totals.flows)},
      {"errors", std::to_string(errors)},
      {"send_calls", std::to_string(totals.send_calls)},
      {"elapsed_s", elapsed_text},
      {"packets_per_s", rate_text},
      {"target_rate", std::to_string(static_cast<std::uint64_t>(options.rate))},
      {"tuple_space", std::to_string(options.plan.tupleSpace())},
      {"interrupted", totals.interrupted ? "1" : "0"},
  };
  for (const auto& [err, count] : totals.errors_by_errno) {
    const char* name = strerrorname_np(err);
    fields.emplace_back(std::string("errors.") + (name != nullptr ? name : std::to_string(err)), std::to_string(count));
  }
  return ctaudit::bench::formatFields(fields, json);
}

}  // namespace

int main(int argc, char** argv) {
  using namespace ctaudit::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  FloodOptions options;
  bool json = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "-h" || arg == "--help") {
      std::cout << kUsage;
      return 0;
    }
    if (arg.rfind("--", 0) != 0 || i + 1 >= args.size()) {
      std::cerr << "udp_flood: '" << arg << "' is not an option with a value; see udp_flood --help\n";
      return kExitUsage;
    }
    if (const std::string error = applyValue(options, json, arg.substr(2), args[++i]); !error.empty()) {
      std::cerr << "udp_flood: " << error << '\n';
      return kExitUsage;
    }
  }
  if (!options.count && !options.duration) {
    std::cerr << "udp_flood: say how much: --count N and/or --duration DUR\n";
    return kExitUsage;
  }
  StopSignal stop;
  if (const auto installed = StopSignal::install(stop); !installed) {
    std::cerr << "udp_flood: " << installed.error().detail << '\n';
    return kExitFatal;
  }
  auto flood = PacketFlood::open(options);
  if (!flood) {
    std::cerr << "udp_flood: " << flood.error().detail << '\n';
    return kExitFatal;
  }
  const auto totals = (*flood)->run(stop);
  if (!totals) {
    std::cerr << "udp_flood: " << totals.error().detail << '\n';
    return kExitFatal;
  }
  std::cout << summary(*totals, options, json) << std::flush;
  return 0;
}
