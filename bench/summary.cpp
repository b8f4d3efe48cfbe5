// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/summary.hpp"

#include <cstring>
#include <sstream>
#include <utility>
#include <vector>

namespace ctaudit::bench {
namespace {

std::string errnoName(int err) {
  const char* name = ::strerrorname_np(err);
  return name != nullptr ? name : "errno_" + std::to_string(err);
}

double perSecond(std::uint64_t count, std::chrono::nanoseconds elapsed) {
  const double s = std::chrono::duration<double>(elapsed).count();
  return s > 0.0 ? static_cast<double>(count) / s : 0.0;
}

std::string fixed(double value, int decimals) {
  std::ostringstream out;
  out.setf(std::ios::fixed);
  out.precision(decimals);
  out << value;
  return out.str();
}

}  // namespace

std::string formatFields(const SummaryFields& fields, bool json) {
  std::ostringstream out;
  if (json) {
    out << '{';
    const char* separator = "";
    for (const auto& [key, value] : fields) {
      out << separator << '"' << key << "\":" << value;
      separator = ",";
    }
    out << "}\n";
  } else {
    for (const auto& [key, value] : fields) {
      out << key << '=' << value << '\n';
    }
  }
  return out.str();
}

std::string formatSummary(const RunTotals& totals, const LoadgenOptions& options) {
  const auto count = [](std::uint64_t v) { return std::to_string(v); };
  // Values are numbers or booleans, so both formats print them as they are.
  const std::vector<std::pair<std::string, std::string>> fields{
      {"created", count(totals.created)},
      {"deleted", count(totals.deleted)},
      {"create_errors", count(totals.create_errors)},
      {"delete_errors", count(totals.delete_errors)},
      {"acks_missing", count(totals.acks_missing)},
      {"requests", count(totals.requests)},
      {"sends", count(totals.sends)},
      {"left_alive", count(totals.left_alive)},
      {"forced_deletes", count(totals.forced_deletes)},
      {"socket_overruns", count(totals.socket_overruns)},
      {"elapsed_s", fixed(std::chrono::duration<double>(totals.elapsed).count(), 3)},
      {"requests_per_s", fixed(perSecond(totals.requests, totals.elapsed), 0)},
      {"create_phase_s", fixed(std::chrono::duration<double>(totals.create_phase).count(), 3)},
      {"create_phase_requests_per_s", fixed(perSecond(totals.create_phase_requests, totals.create_phase), 0)},
      {"target_rate", fixed(options.rate, 0)},
      {"batch", count(options.batch)},
      {"live_max", count(options.live)},
      {"interrupted", totals.interrupted ? "true" : "false"},
  };
  std::ostringstream out;
  if (options.format == SummaryFormat::KeyValue) {
    for (const auto& [key, value] : fields) {
      out << key << '=' << value << '\n';
    }
    for (const auto& [err, n] : totals.errors_by_errno) {
      out << "errors." << errnoName(err) << '=' << n << '\n';
    }
    return out.str();
  }
  out << '{';
  for (const auto& [key, value] : fields) {
    out << '"' << key << "\":" << value << ',';
  }
  out << "\"errors\":{";
  const char* separator = "";
  for (const auto& [err, n] : totals.errors_by_errno) {
    out << separator << '"' << errnoName(err) << "\":" << n;
    separator = ",";
  }
  out << "}}\n";
  return out.str();
}

}  // namespace ctaudit::bench
