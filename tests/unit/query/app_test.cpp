// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/app.hpp"

#include <algorithm>
#include <cerrno>
#include <initializer_list>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "ctaudit_version.hpp"
#include "query/cli_options.hpp"
#include "query/csv_printer.hpp"
#include "storage/json_mapping.hpp"
#include "tests/support/fake_flow_database.hpp"
#include "tests/support/nat_flow_builder.hpp"

namespace ctaudit::query {
namespace {

using testing::NatFlowBuilder;

struct RunResult {
  int status{-1};
  std::string out;
  std::string err;
};

class AppTest : public ::testing::Test {
protected:
  RunResult run(std::initializer_list<std::string_view> args, std::optional<std::string> env_database = std::nullopt) {
    const std::vector<std::string_view> list(args);
    const AppEnvironment environment{database_.opener(), std::move(env_database), {}};
    std::ostringstream out;
    std::ostringstream err;
    RunResult result;
    result.status = runCtaudit(list, out, err, environment);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  // An error run: status 2, nothing on stdout, exactly one "ctaudit: " line on stderr.
  static void expectOneErrorLine(const RunResult& result) {
    EXPECT_EQ(result.status, 2);
    EXPECT_EQ(result.out, "");
    EXPECT_TRUE(result.err.starts_with("ctaudit: ")) << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    EXPECT_TRUE(result.err.ends_with("\n"));
  }

  testing::FakeFlowDatabase database_;
};

TEST_F(AppTest, HelpAndVersionExitZero) {
  const RunResult help = run({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_TRUE(help.out.starts_with("Usage: ctaudit COMMAND")) << help.out;
  EXPECT_EQ(help.err, "");
  const RunResult who_help = run({"who", "--help"});
  EXPECT_EQ(who_help.status, 0);
  EXPECT_TRUE(who_help.out.starts_with("Usage: ctaudit who ADDR:PORT --at TIME")) << who_help.out;
  const RunResult flows_help = run({"flows", "-h"});
  EXPECT_EQ(flows_help.status, 0);
  EXPECT_NE(flows_help.out.find("default is 1000, --limit 0 prints"), std::string::npos) << flows_help.out;
  EXPECT_NE(flows_help.out.find(std::string(kDefaultDatabasePath)), std::string::npos);
  EXPECT_NE(flows_help.out.find("CTAUDIT_DB"), std::string::npos);
  const RunResult version = run({"--version"});
  EXPECT_EQ(version.status, 0);
  EXPECT_EQ(version.out, std::string("ctaudit ") + kVersion + "\n");
  EXPECT_TRUE(database_.opened.empty()) << "help and version need no database";
}

TEST_F(AppTest, WhoFoundExitsZeroAndPrintsATable) {
  database_.flows = {NatFlowBuilder{}.build()};
  const RunResult result = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_TRUE(result.out.starts_with("START ")) << result.out;
  EXPECT_NE(result.out.find("100.64.0.2:33000"), std::string::npos);
  EXPECT_EQ(result.err, "");
  ASSERT_EQ(database_.opened.size(), 1U);
  EXPECT_EQ(database_.opened[0], std::string(kDefaultDatabasePath));
  // The translated source, then a port forward of the same address and port.
  ASSERT_EQ(database_.queries.size(), 2U);
  EXPECT_EQ(database_.queries[0].nat_source_address, IpAddress::parse("203.0.113.7"));
  EXPECT_EQ(database_.queries[0].nat_source_port, 40001);
  EXPECT_EQ(database_.queries[1].forwarded_address, IpAddress::parse("203.0.113.7"));
}

TEST_F(AppTest, NothingFoundExitsOne) {
  const RunResult result = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_TRUE(result.err.starts_with("ctaudit: no flow had translated source 203.0.113.7:40001"));
  EXPECT_EQ(run({"flows", "--format", "json"}).status, 1);
}

TEST_F(AppTest, JsonIsExactlyTheSharedMappingOnePerLine) {
  database_.observer_hostname = "cgnat-7";
  database_.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:30Z").build()};
  const RunResult result = run({"flows", "--format=json"});
  EXPECT_EQ(result.status, 0);
  const storage::JsonContext context{"cgnat-7"};
  EXPECT_EQ(result.out, storage::toJsonLine(database_.flows[0], context) + "\n" +
                            storage::toJsonLine(database_.flows[1], context) + "\n");
}

// A `who` JSON line: the shared mapping, and how who found the flow at its end.
std::string whoJsonLine(const FlowRecord& flow, const storage::JsonContext& context, std::string_view match = "snat") {
  std::string line = storage::toJsonLine(flow, context);
  line.pop_back();
  return line + R"(,"ctaudit":{"who":{"match":")" + std::string(match) + R"("}}})";
}

TEST_F(AppTest, WhoJsonFollowsTheRanking) {
  database_.flows = {NatFlowBuilder{}.ctId(1).start("2026-11-25T09:00:00Z").build(),
                     NatFlowBuilder{}.ctId(2).start("2026-11-25T10:00:02Z").build()};
  const RunResult result = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "json"});
  EXPECT_EQ(result.status, 0);
  const storage::JsonContext context{database_.observer_hostname};
  EXPECT_EQ(result.out, whoJsonLine(database_.flows[1], context) + "\n" + whoJsonLine(database_.flows[0], context) + "\n");
  const auto parsed = nlohmann::json::parse(result.out.substr(0, result.out.find('\n')));
  EXPECT_EQ(parsed["ctaudit"]["who"]["match"], "snat");
}

TEST_F(AppTest, UsageErrorsExitTwoWithOneLine) {
  for (const auto& args : std::vector<std::vector<std::string_view>>{
           {},
           {"who"},
           {"who", "203.0.113.7:40001"},
           {"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03"},
           {"who", "203.0.113.7:40001", "--at", "@1", "--slack", "soon"},
           {"who", "203.0.113.7:40001", "--at", "@1", "--proto", "tcpp"},
           {"who", "203.0.113.7", "--at", "@1"},
           {"who", "2001:db8::7:40001", "--at", "@1"},
           {"flows", "--format", "yaml"},
           {"flows", "--bogus"},
           {"flows", "--limit"},
           {"flows", "--src", "10.0.0.0/99"},
           {"frobnicate"},
       }) {
    std::ostringstream out;
    std::ostringstream err;
    const AppEnvironment environment{database_.opener(), std::nullopt, {}};
    RunResult result;
    result.status = runCtaudit(args, out, err, environment);
    result.out = out.str();
    result.err = err.str();
    SCOPED_TRACE(args.empty() ? "(none)" : std::string(args.back()));
    expectOneErrorLine(result);
  }
  EXPECT_TRUE(database_.opened.empty()) << "a bad command line opens nothing";
}

TEST_F(AppTest, UnknownOptionPointsToHelp) {
  const RunResult result = run({"flows", "--frm", "@1"});
  expectOneErrorLine(result);
  EXPECT_EQ(result.err, "ctaudit: unknown option '--frm' for 'ctaudit flows'; see 'ctaudit flows --help'\n");
}

// An argument with an escape sequence in it (pasted from a report) must not reach the terminal.
TEST_F(AppTest, ControlCharactersInAnErrorAreShownNotSent) {
  const RunResult result = run({"flows", "--src", "100.64.0.7\x1b[2J"});
  expectOneErrorLine(result);
  EXPECT_EQ(result.err.find('\x1b'), std::string::npos) << result.err;
  EXPECT_NE(result.err.find("100.64.0.7\\x1b[2J"), std::string::npos) << result.err;
}

TEST_F(AppTest, UnopenableDatabaseExitsTwo) {
  database_.open_error = Error{Errc::Io, 2, "cannot open /nope.db: No such file or directory"};
  const RunResult result = run({"flows", "--db", "/nope.db"});
  expectOneErrorLine(result);
  EXPECT_EQ(result.err,
            "ctaudit: cannot open /nope.db: No such file or directory; name the database with --db PATH or "
            "CTAUDIT_DB\n");
  database_.open_error = Error{Errc::Storage, 0, "/x.db is not a ctaudit database"};
  const RunResult storage = run({"flows", "--db", "/x.db"});
  expectOneErrorLine(storage);
  EXPECT_EQ(storage.err, "ctaudit: /x.db is not a ctaudit database\n");
  // A file that is there but cannot be read gets its own advice, not another path's.
  database_.open_error = Error{Errc::Io, EACCES, "cannot open /x.db: permission denied; it needs read access"};
  const RunResult denied = run({"flows", "--db", "/x.db"});
  expectOneErrorLine(denied);
  EXPECT_EQ(denied.err.find("--db PATH"), std::string::npos) << denied.err;
}

TEST_F(AppTest, ReadErrorExitsTwo) {
  database_.find_error = Error{Errc::Storage, 0, "database disk image is malformed"};
  expectOneErrorLine(run({"who", "203.0.113.7:40001", "--at", "@1795600803"}));
}

TEST_F(AppTest, EnvironmentNamesTheDatabaseUnlessTheFlagDoes) {
  EXPECT_EQ(run({"flows"}, "/env.db").status, 1);
  EXPECT_EQ(run({"flows", "--db", "/flag.db"}, "/env.db").status, 1);
  EXPECT_EQ(run({"flows"}, "").status, 1);
  ASSERT_EQ(database_.opened.size(), 3U);
  EXPECT_EQ(database_.opened[0], "/env.db");
  EXPECT_EQ(database_.opened[1], "/flag.db");
  EXPECT_EQ(database_.opened[2], std::string(kDefaultDatabasePath));
}

TEST_F(AppTest, FlowsTruncationIsNeverSilent) {
  database_.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).build()};
  const RunResult result = run({"flows", "--limit=1", "--format", "csv"});
  EXPECT_EQ(result.status, 0);
  EXPECT_TRUE(result.err.starts_with("ctaudit: note: showing the first 1 matching flow, more match")) << result.err;
  ASSERT_EQ(database_.queries.size(), 1U);
  EXPECT_EQ(database_.queries[0].limit, 2U);
}

// --- Gaps in the log and the time no daemon ran: a "no match" there is not a forensic answer. ---

GapRecord overrunGap(std::string_view start, std::string_view end) {
  GapRecord gap;
  gap.reason = GapReason::KernelOverrun;
  gap.start = *parseTime(start);
  gap.end = *parseTime(end);
  gap.overruns = 2;
  return gap;
}

TEST_F(AppTest, WhoInsideAGapWarnsButKeepsItsExitStatus) {
  database_.gaps = {overrunGap("2026-11-25T10:00:01Z", "2026-11-25T10:00:04Z")};
  const std::string warning =
      "ctaudit: warning: the log has a gap from 2026-11-25T10:00:01Z to 2026-11-25T10:00:04Z (kernel_overrun, 2 "
      "overruns): a flow in that window may be missing\n";

  const RunResult none = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(none.status, 1);
  EXPECT_EQ(none.out, "");
  EXPECT_EQ(none.err, "ctaudit: no flow had translated source 203.0.113.7:40001 at 2026-11-25T10:00:03.000000000Z; "
                      "widen the window with --slack, e.g. --slack 5s\n"
                      "ctaudit: nor did such a flow come in through a port forward (DNAT) of 203.0.113.7:40001\n" +
                          warning);
  ASSERT_EQ(database_.gap_queries.size(), 1U);
  EXPECT_EQ(database_.gap_queries[0].first, *parseTime("2026-11-25T10:00:03Z"));
  EXPECT_EQ(database_.gap_queries[0].second, *parseTime("2026-11-25T10:00:03Z"));

  database_.flows = {NatFlowBuilder{}.build()};
  const RunResult found = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--slack", "2s"});
  EXPECT_EQ(found.status, 0);
  EXPECT_TRUE(found.out.starts_with("START ")) << found.out;
  EXPECT_EQ(found.err, warning);
  EXPECT_EQ(database_.gap_queries[1].first, *parseTime("2026-11-25T10:00:01Z"));
  EXPECT_EQ(database_.gap_queries[1].second, *parseTime("2026-11-25T10:00:05Z"));
}

TEST_F(AppTest, JsonAddsTheGapsAsPipelineErrorLinesAfterTheFlows) {
  const GapRecord overrun = overrunGap("2026-11-25T10:00:01Z", "2026-11-25T10:00:04Z");
  database_.gaps = {overrun};
  database_.flows = {NatFlowBuilder{}.build()};
  const storage::JsonContext context{database_.observer_hostname};
  const RunResult found = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "json"});
  EXPECT_EQ(found.status, 0);
  EXPECT_EQ(found.out, whoJsonLine(database_.flows[0], context) + "\n" + storage::toJsonLine(overrun, context) + "\n");
  EXPECT_TRUE(found.err.starts_with("ctaudit: warning: the log has a gap")) << found.err;

  database_.flows.clear();
  const RunResult none = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "json"});
  EXPECT_EQ(none.status, 1) << "a gap is not a match";
  EXPECT_EQ(none.out, storage::toJsonLine(overrun, context) + "\n");
}

// The daemon ran 09:00-09:30 and was started again at 10:30: 10:00 was not logged at all.
TEST_F(AppTest, WhoWhileNoDaemonRanWarnsAndJsonShowsADaemonDownGap) {
  database_.logged_periods = {{*parseTime("2026-11-25T09:00:00Z"), *parseTime("2026-11-25T09:30:00Z"), true},
                              {*parseTime("2026-11-25T10:30:00Z"), *parseTime("2026-11-25T11:00:00Z"), false}};
  const RunResult table = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(table.status, 1);
  EXPECT_NE(table.err.find("ctaudit: warning: 2026-11-25T10:00:03Z is outside the logged period (ctauditd stopped at "
                           "2026-11-25T09:30:00Z and started again at 2026-11-25T10:30:00Z): a flow in that window "
                           "may be missing\n"),
            std::string::npos)
      << table.err;

  const RunResult json = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "json"});
  EXPECT_EQ(json.status, 1);
  GapRecord down;
  down.reason = GapReason::DaemonDown;
  down.start = *parseTime("2026-11-25T10:00:03Z");
  down.end = down.start;
  EXPECT_EQ(json.out, storage::toJsonLine(down, storage::JsonContext{database_.observer_hostname}) + "\n");

  const RunResult csv = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "csv"});
  EXPECT_EQ(csv.status, 1);
  EXPECT_EQ(csv.out, std::string(kCsvHeader) + ",match\r\n") << "CSV holds flows only; the warning is on stderr";
  EXPECT_NE(csv.err.find("is outside the logged period"), std::string::npos) << csv.err;

  const RunResult covered = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:45:00Z"});
  EXPECT_EQ(covered.err.find("warning"), std::string::npos) << covered.err;
}

TEST_F(AppTest, FlowsChecksItsWindowOnlyWhenItHasOne) {
  database_.logged_periods.clear();  // nothing known
  database_.gaps = {overrunGap("2026-11-25T10:00:01Z", "2026-11-25T10:00:04Z")};
  const RunResult unbounded = run({"flows"});
  EXPECT_EQ(unbounded.err, "ctaudit: no flow matched; widen the time window or drop a filter\n");
  EXPECT_TRUE(database_.gap_queries.empty());

  database_.logged_periods = {{*parseTime("2026-11-25T09:00:00Z"), *parseTime("2026-11-25T09:30:00Z"), true}};
  database_.gaps.clear();
  database_.flows = {NatFlowBuilder{}.build()};
  // Only --from: the window reaches the end of the log, so the future is no hole...
  const RunResult inside = run({"flows", "--from", "2026-11-25T09:10:00Z"});
  EXPECT_EQ(inside.status, 0);
  EXPECT_EQ(inside.err, "");
  ASSERT_EQ(database_.gap_queries.size(), 1U);
  EXPECT_EQ(database_.gap_queries[0].second, *parseTime("2026-11-25T09:30:00Z"));
  // ...but a --from after the log's end is.
  const RunResult after = run({"flows", "--from", "2026-11-25T10:00:00Z"});
  EXPECT_EQ(after.status, 0) << "a warning never changes the exit status";
  EXPECT_EQ(after.err,
            "ctaudit: warning: 2026-11-25T10:00:00Z is outside the logged period (ctauditd stopped at "
            "2026-11-25T09:30:00Z): a flow in that window may be missing\n");
  const RunResult both = run({"flows", "--from", "2026-11-25T08:59:00Z", "--to", "2026-11-25T09:10:00Z"});
  EXPECT_EQ(both.err,
            "ctaudit: warning: 2026-11-25T08:59:00Z to 2026-11-25T09:00:00Z is outside the logged period (the log "
            "begins at 2026-11-25T09:00:00Z): a flow in that window may be missing\n");
}

TEST_F(AppTest, ADatabaseWithoutRunsSaysSoOnStderrOnly) {
  database_.logged_periods.clear();
  const RunResult json = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--format", "json"});
  EXPECT_EQ(json.status, 1);
  EXPECT_EQ(json.out, "");
  EXPECT_TRUE(json.err.starts_with("ctaudit: warning: the database records no ctauditd runs")) << json.err;
}

// The daemon may commit between two reads. Its heartbeat lands with or after the records it vouches
// for, so reading the coverage first can only under-claim what the flows read next hold.
TEST_F(AppTest, CoverageIsReadBeforeTheFlows) {
  // No match: the second find looks for a port forward of the address and port.
  EXPECT_EQ(run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"}).status, 1);
  EXPECT_EQ(database_.calls,
            (std::vector<std::string>{"loggedPeriods", "gaps", "find", "find", "retentionHorizon"}));
  database_.calls.clear();
  EXPECT_EQ(run({"flows", "--from", "2026-11-25T10:00:03Z"}).status, 1);
  EXPECT_EQ(database_.calls, (std::vector<std::string>{"loggedPeriods", "gaps", "find", "retentionHorizon"}));
}

TEST_F(AppTest, AnUnreadableGapRecordIsAnError) {
  database_.flows = {NatFlowBuilder{}.build()};
  database_.coverage_error = Error{Errc::Storage, 0, "gaps row id 3: unknown reason 'x'"};
  const RunResult who = run({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"});
  expectOneErrorLine(who);
  EXPECT_EQ(who.err, "ctaudit: gaps row id 3: unknown reason 'x'\n");
  expectOneErrorLine(run({"flows", "--to", "2026-11-25T10:00:03Z", "--format", "json"}));
  EXPECT_EQ(run({"flows"}).status, 0) << "no window, nothing to read";
}

TEST_F(AppTest, FailedOutputExitsTwo) {
  database_.flows = {NatFlowBuilder{}.build()};
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  std::ostringstream err;
  const std::vector<std::string_view> args{"flows"};
  const AppEnvironment environment{database_.opener(), std::nullopt, {}};
  EXPECT_EQ(runCtaudit(args, out, err, environment), 2);
  EXPECT_TRUE(err.str().starts_with("ctaudit: could not write the output")) << err.str();
}

TEST_F(AppTest, FailedOutputNamesTheCauseWhenKnown) {
  database_.flows = {NatFlowBuilder{}.build()};
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  std::ostringstream err;
  const std::vector<std::string_view> args{"flows"};
  const AppEnvironment environment{database_.opener(), std::nullopt, [] { return ENOSPC; }};
  EXPECT_EQ(runCtaudit(args, out, err, environment), 2);
  EXPECT_EQ(err.str(), "ctaudit: could not write the output: No space left on device\n");
}

}  // namespace
}  // namespace ctaudit::query
