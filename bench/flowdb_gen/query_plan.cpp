// SPDX-License-Identifier: GPL-2.0-or-later
// query_plan: what FlowReader runs for `ctaudit who` and `ctaudit flows --src`, and where the time
// goes. Builds the same FlowQuery the CLI builds, asks `spans` for the rowid ranges
// (rowsStartedBetween), compiles the statement (compileFlowQuery), and prints the ranges, the SQL
// with its parameters, SQLite's EXPLAIN QUERY PLAN, and per run the time of the span lookup and of
// the statement, the rows, and the statement's counters (VM steps, full-scan steps, sorts).
//
//   query_plan --db FILE --who ADDR:PORT --at UNIX_S [--slack-ms N] [--runs N]
//   query_plan --db FILE --src ADDR[/LEN] --from UNIX_S --to UNIX_S [--runs N]
//
// A measurement tool for bench/query-ladder.sh's findings (docs/benchmarks.md); not installed.
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "flow/ip_address.hpp"
#include "flow/time.hpp"
#include "storage/flow_query.hpp"
#include "storage/flow_query_sql.hpp"
#include "storage/read_only_db.hpp"
#include "storage/spans.hpp"

namespace {

using ctaudit::storage::CompiledQuery;

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "query_plan: " << why
            << "\nusage: query_plan --db FILE (--who ADDR:PORT --at UNIX_S [--slack-ms N] |"
               " --src ADDR[/LEN] --from UNIX_S --to UNIX_S) [--runs N]\n";
  std::exit(64);
}

std::int64_t number(std::string_view text, std::string_view name) {
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    usage(std::string(name) + ": not a number: '" + std::string(text) + "'");
  }
  return value;
}

ctaudit::Timestamp seconds(std::int64_t s) { return ctaudit::fromUnixNanos(s * 1'000'000'000); }

std::string describe(const CompiledQuery::Parameter& value) {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    return std::to_string(*integer);
  }
  if (const auto* blob = std::get_if<ctaudit::storage::Blob>(&value)) {
    return "blob(" + std::to_string(blob->size) + " bytes)";
  }
  return "NULL";
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  std::string db_path;
  ctaudit::storage::FlowQuery query;
  std::optional<std::int64_t> at;
  std::optional<std::int64_t> from;
  std::optional<std::int64_t> to;
  std::int64_t slack_ms = 0;
  std::int64_t runs = 5;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) {
        usage(std::string(arg) + " needs a value");
      }
      return argv[++i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    };
    if (arg == "--db") {
      db_path = std::string(value());
    } else if (arg == "--who") {
      const auto parsed = ctaudit::Endpoint::parse(value(), false);
      if (!parsed) {
        usage("--who: " + parsed.error().detail);
      }
      query.nat_source_address = parsed->address;
      query.nat_source_port = parsed->port;
    } else if (arg == "--src") {
      const auto network = ctaudit::IpNetwork::parse(value());
      if (!network) {
        usage("--src: not an address or CIDR block");
      }
      query.source = *network;
    } else if (arg == "--at") {
      at = number(value(), arg);
    } else if (arg == "--slack-ms") {
      slack_ms = number(value(), arg);
    } else if (arg == "--from") {
      from = number(value(), arg);
    } else if (arg == "--to") {
      to = number(value(), arg);
    } else if (arg == "--runs") {
      runs = std::max<std::int64_t>(1, number(value(), arg));
    } else {
      usage("unknown option '" + std::string(arg) + "'");
    }
  }
  if (db_path.empty() || (query.nat_source_address.has_value() == query.source.has_value())) {
    usage("give --db and one of --who or --src");
  }
  if (query.nat_source_address) {
    if (!at) {
      usage("--who needs --at");
    }
    // As query/who.cpp's toFlowQuery: the window [at - slack, at + slack].
    query.from = seconds(*at) - std::chrono::milliseconds(slack_ms);
    query.to = seconds(*at) + std::chrono::milliseconds(slack_ms);
  } else {
    if (!from || !to) {
      usage("--src needs --from and --to");
    }
    query.from = seconds(*from);
    query.to = seconds(*to);
  }

  auto db = ctaudit::storage::openReadOnly(db_path);
  if (!db) {
    std::cerr << "query_plan: " << db.error().detail << '\n';
    return 66;
  }
  sqlite3* raw = db->get();
  const auto window = ctaudit::storage::recentStartWindow(query);
  for (std::int64_t run = 0; run < runs; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<ctaudit::storage::IdRange> ranges;
    if (window) {
      auto found = ctaudit::storage::rowsToSearch(raw, window->from_ms, window->to_ms);
      if (!found) {
        std::cerr << "query_plan: " << found.error().detail << '\n';
        return 70;
      }
      ranges = std::move(*found);
    }
    const double spans_ms = msSince(t0);
    const CompiledQuery compiled = ctaudit::storage::compileFlowQuery(query, ranges);
    if (run == 0) {
      std::cout << "window " << (window ? std::to_string(window->from_ms) + ".." + std::to_string(window->to_ms) : "none")
                << ", ranges:";
      std::int64_t rows_in_ranges = 0;
      for (const auto& range : ranges) {
        std::cout << ' ' << range.first << '-' << range.last;
        rows_in_ranges += range.last - range.first + 1;
      }
      std::cout << " (" << rows_in_ranges << " rowids)\n" << compiled.sql << "\nparameters:";
      for (std::size_t k = 0; k < compiled.parameters.size(); ++k) {
        std::cout << " ?" << k + 1 << '=' << describe(compiled.parameters[k]);
      }
      std::cout << '\n';
      auto plan = ctaudit::storage::prepare(raw, "EXPLAIN QUERY PLAN " + compiled.sql);
      if (!plan) {
        std::cerr << "query_plan: " << plan.error().detail << '\n';
        return 70;
      }
      while (sqlite3_step(plan->get()) == SQLITE_ROW) {
        std::cout << "plan: " << sqlite3_column_int(plan->get(), 0) << ' ' << sqlite3_column_int(plan->get(), 1) << ' '
                  << reinterpret_cast<const char*>(sqlite3_column_text(plan->get(), 3)) << '\n';  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): UTF-8 text
      }
    }
    const auto t1 = std::chrono::steady_clock::now();
    auto stmt = ctaudit::storage::prepare(raw, compiled.sql);
    if (!stmt) {
      std::cerr << "query_plan: " << stmt.error().detail << '\n';
      return 70;
    }
    for (std::size_t k = 0; k < compiled.parameters.size(); ++k) {
      if (ctaudit::storage::bindValue(stmt->get(), static_cast<int>(k + 1), compiled.parameters[k]) != SQLITE_OK) {
        std::cerr << "query_plan: cannot bind ?" << k + 1 << ": " << sqlite3_errmsg(raw) << '\n';
        return 70;
      }
    }
    std::int64_t rows = 0;
    int rc = 0;
    while ((rc = sqlite3_step(stmt->get())) == SQLITE_ROW) {
      ++rows;
    }
    if (rc != SQLITE_DONE) {
      std::cerr << "query_plan: " << sqlite3_errmsg(raw) << '\n';
      return 70;
    }
    std::cout << "run " << run << ": spans " << spans_ms << " ms, statement " << msSince(t1) << " ms, " << rows
              << " rows, vm steps " << sqlite3_stmt_status(stmt->get(), SQLITE_STMTSTATUS_VM_STEP, 0)
              << ", full-scan steps " << sqlite3_stmt_status(stmt->get(), SQLITE_STMTSTATUS_FULLSCAN_STEP, 0)
              << ", sorts " << sqlite3_stmt_status(stmt->get(), SQLITE_STMTSTATUS_SORT, 0) << '\n';
  }
  return 0;
}
