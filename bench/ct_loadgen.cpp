// SPDX-License-Identifier: GPL-2.0-or-later
// ct_loadgen: parses argv, opens the ctnetlink channel and runs the load. See --help and
// docs/benchmarks.md; the work is in ctaudit_bench_lib.
#include <iostream>
#include <string_view>
#include <variant>
#include <vector>

#include "bench/ct_channel.hpp"
#include "bench/load_run.hpp"
#include "bench/loadgen_options.hpp"
#include "bench/stop_signal.hpp"
#include "bench/summary.hpp"

namespace {

constexpr int kExitFatal = 1;
constexpr int kExitUsage = 2;
constexpr int kExitSomeFailed = 3;

}  // namespace

int main(int argc, char** argv) {
  using namespace ctaudit::bench;
  const std::vector<std::string_view> args(argv + 1, argv + argc);
  const auto parsed = parseLoadgenOptions(args);
  if (!parsed) {
    std::cerr << "ct_loadgen: " << parsed.error().detail << '\n';
    return kExitUsage;
  }
  if (std::holds_alternative<LoadgenHelp>(*parsed)) {
    std::cout << loadgenUsage();
    return 0;
  }
  const auto& options = std::get<LoadgenOptions>(*parsed);
  StopSignal stop;
  if (const auto installed = StopSignal::install(stop); !installed) {
    std::cerr << "ct_loadgen: " << installed.error().detail << '\n';
    return kExitFatal;
  }
  auto channel = CtChannel::open(options.batch);
  if (!channel) {
    std::cerr << "ct_loadgen: " << channel.error().detail << '\n';
    return kExitFatal;
  }
  LoadRun run(options, **channel, stop);
  const auto totals = run.run();
  if (!totals) {
    std::cerr << "ct_loadgen: " << totals.error().detail << '\n';
    return kExitFatal;
  }
  std::cout << formatSummary(*totals, options) << std::flush;
  const bool all_ok = totals->create_errors == 0 && totals->delete_errors == 0 && totals->acks_missing == 0;
  return all_ok ? 0 : kExitSomeFailed;
}
