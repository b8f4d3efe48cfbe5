// SPDX-License-Identifier: GPL-2.0-or-later
// flow_db_fill: writes N closed, source-NAT'd flows into a ctaudit database through SqliteSink,
// spread evenly over a time range, so that retention can be measured on a large database of old
// flows (docs/benchmarks.md, "Retention"). Flow n is TCP 100.64.(n/250 mod 250).(n mod 250 + 1):
// 1024+(n mod 60000) -> 198.51.100.10:443, translated to 203.0.113.1:(1024 + n mod 64000), with
// kernel start and end times and counters, as a DESTROY-only record (one row each). One run row
// is recorded around the range, as if a daemon had logged it. A measuring tool; not installed.
#include <charconv>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "flow/ct_status.hpp"
#include "flow/nat.hpp"
#include "flow/time.hpp"
#include "storage/sqlite_sink.hpp"

namespace {

using namespace ctaudit;

constexpr std::string_view kUsage = R"(Usage: flow_db_fill --db PATH --flows N --first TIME --last TIME [--duration DUR]
                     [--batch N]
Appends N closed flows to the ctaudit database PATH (created if missing), starting evenly
from TIME --first to TIME --last (RFC 3339 or @unix-seconds), each lasting DUR (default 30s).
)";

struct Options {
  std::string db;
  std::uint64_t flows{0};
  std::optional<Timestamp> first;
  std::optional<Timestamp> last;
  std::chrono::nanoseconds duration{std::chrono::seconds{30}};
  std::size_t batch{8192};
};

bool parseCount(std::string_view text, std::uint64_t& out) {
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc{} && end == text.data() + text.size() && out > 0;
}

Result<Options> parseArgs(std::span<char*> args) {
  Options options;
  for (std::size_t i = 1; i < args.size(); ++i) {
    const std::string_view flag = args[i];
    if (flag == "--help" || flag == "-h") {
      std::cout << kUsage;
      std::exit(0);  // NOLINT(concurrency-mt-unsafe): single-threaded tool
    }
    if (i + 1 >= args.size()) {
      return fail(Errc::Usage, std::string(flag) + " needs a value; see --help");
    }
    const std::string_view value = args[++i];
    if (flag == "--db") {
      options.db = value;
    } else if (flag == "--flows") {
      if (!parseCount(value, options.flows)) {
        return fail(Errc::Usage, "--flows: bad count '" + std::string(value) + "'");
      }
    } else if (flag == "--first" || flag == "--last") {
      auto t = parseTime(value);
      if (!t) {
        return fail(Errc::Usage, std::string(flag) + ": " + t.error().detail);
      }
      (flag == "--first" ? options.first : options.last) = *t;
    } else if (flag == "--duration") {
      auto d = parseDuration(value);
      if (!d) {
        return fail(Errc::Usage, "--duration: " + d.error().detail);
      }
      options.duration = *d;
    } else if (flag == "--batch") {
      std::uint64_t batch = 0;
      if (!parseCount(value, batch)) {
        return fail(Errc::Usage, "--batch: bad count '" + std::string(value) + "'");
      }
      options.batch = static_cast<std::size_t>(batch);
    } else {
      return fail(Errc::Usage, "unknown option '" + std::string(flag) + "'; see --help");
    }
  }
  if (options.db.empty() || options.flows == 0 || !options.first || !options.last || *options.last < *options.first) {
    return fail(Errc::Usage, "--db, --flows, --first and --last (not before --first) are required; see --help");
  }
  return options;
}

FlowRecord flowNumber(std::uint64_t n, Timestamp start, std::chrono::nanoseconds duration) {
  FlowRecord record;
  record.event = EventType::Destroy;
  record.ct_id = static_cast<std::uint32_t>(n);
  record.original.protocol = Protocol::Tcp;
  record.original.src = IpAddress::v4((100U << 24U) | (64U << 16U) | static_cast<std::uint32_t>(((n / 250) % 250) << 8U) |
                                      static_cast<std::uint32_t>(n % 250 + 1));
  record.original.dst = IpAddress::v4((198U << 24U) | (51U << 16U) | (100U << 8U) | 10U);
  record.original.src_port = static_cast<std::uint16_t>(1024 + n % 60000);
  record.original.dst_port = 443;
  record.reply = record.original;
  record.reply.src = record.original.dst;
  record.reply.src_port = record.original.dst_port;
  record.reply.dst = IpAddress::v4((203U << 24U) | (113U << 8U) | 1U);
  record.reply.dst_port = static_cast<std::uint16_t>(1024 + n % 64000);
  record.status = ct_status::kConfirmed | ct_status::kSeenReply | ct_status::kAssured | ct_status::kSrcNat |
                  ct_status::kSrcNatDone;
  record.nat = deriveNat(record.status, record.original, record.reply);
  record.tcp_state = 7;  // TIME_WAIT
  record.counters_original = Counters{12, 1500};
  record.counters_reply = Counters{10, 48000};
  record.start = start;
  record.start_source = TimeSource::Kernel;
  record.end = start + duration;
  record.end_source = TimeSource::Kernel;
  record.event_time = *record.end;
  record.event_time_source = TimeSource::Kernel;
  return record;
}

int run(const Options& options) {
  auto log = spdlog::stderr_logger_st("sqlite");
  auto sink = storage::SqliteSink::open(options.db, "flow-db-fill", log);
  if (!sink) {
    std::cerr << "flow_db_fill: " << sink.error().detail << '\n';
    return 1;
  }
  if (auto begun = (*sink)->beginRun(*options.first); !begun) {
    std::cerr << "flow_db_fill: " << begun.error().detail << '\n';
    return 1;
  }
  const auto span = *options.last - *options.first;
  const auto step = options.flows > 1 ? span / static_cast<std::int64_t>(options.flows - 1) : std::chrono::nanoseconds{0};
  std::vector<FlowRecord> batch;
  batch.reserve(options.batch);
  const auto began = std::chrono::steady_clock::now();
  for (std::uint64_t n = 0; n < options.flows; ++n) {
    batch.push_back(flowNumber(n, *options.first + step * static_cast<std::int64_t>(n), options.duration));
    if (batch.size() == options.batch || n + 1 == options.flows) {
      if ((*sink)->write(batch) != storage::SinkStatus::Ok) {
        std::cerr << "flow_db_fill: a batch was not written; see the log above\n";
        return 1;
      }
      batch.clear();
    }
  }
  if (auto ended = (*sink)->endRun(*options.last + options.duration); !ended) {
    std::cerr << "flow_db_fill: " << ended.error().detail << '\n';
    return 1;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - began).count();
  std::printf("flows=%llu seconds=%.1f rate=%.0f\n", static_cast<unsigned long long>(options.flows), seconds,  // NOLINT(cppcoreguidelines-pro-type-vararg)
              static_cast<double>(options.flows) / seconds);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const auto options = parseArgs(std::span<char*>(argv, static_cast<std::size_t>(argc)));
  if (!options) {
    std::cerr << "flow_db_fill: " << options.error().detail << '\n';
    return 2;
  }
  return run(*options);
}
