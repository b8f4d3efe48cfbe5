// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flows.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/fake_flow_database.hpp"
#include "tests/support/nat_flow_builder.hpp"

namespace ctaudit::query {
namespace {

using testing::NatFlowBuilder;

TEST(FlowsTest, QueryCarriesEveryFilter) {
  FlowsCommand flows;
  flows.source = IpNetwork::parse("100.64.0.0/10");
  flows.destination_address = IpAddress::parse("198.51.100.1");
  flows.destination_port = 443;
  flows.nat_address = IpAddress::parse("203.0.113.7");
  flows.nat_port = 40001;
  flows.protocol = Protocol::Udp;
  flows.from = parseTime("2026-11-25T10:00:00Z").value();
  flows.to = parseTime("2026-11-25T11:00:00Z").value();
  flows.limit = 10;
  const storage::FlowQuery query = toFlowQuery(flows);
  ASSERT_TRUE(query.source);
  EXPECT_EQ(query.source->toString(), "100.64.0.0/10");
  EXPECT_EQ(query.destination_address, flows.destination_address);
  EXPECT_EQ(query.destination_port, 443);
  EXPECT_EQ(query.nat_address, flows.nat_address);
  EXPECT_EQ(query.nat_port, 40001);
  EXPECT_EQ(query.protocol, Protocol::Udp);
  EXPECT_EQ(query.from, flows.from);
  EXPECT_EQ(query.to, flows.to);
  EXPECT_EQ(query.limit, 11U) << "one more, to tell whether the limit cut anything off";
  EXPECT_FALSE(query.nat_source_address) << "flows --nat matches either translation";
  EXPECT_FALSE(query.nat_source_port);
}

TEST(FlowsTest, QueryWithoutFiltersOrLimit) {
  FlowsCommand flows;
  EXPECT_EQ(toFlowQuery(flows).limit, kDefaultFlowsLimit + 1);
  flows.limit.reset();
  const storage::FlowQuery query = toFlowQuery(flows);
  EXPECT_FALSE(query.limit);
  EXPECT_FALSE(query.source);
  EXPECT_FALSE(query.from);
  EXPECT_FALSE(query.to);
  flows.limit = std::numeric_limits<std::size_t>::max();
  EXPECT_FALSE(toFlowQuery(flows).limit);
}

struct RunResult {
  ExitStatus status;
  std::string out;
  std::string err;
};

RunResult run(const FlowsCommand& flows, testing::FakeFlowDatabase& database) {
  auto finder = database.opener()("/db");
  EXPECT_TRUE(finder);
  std::ostringstream out;
  std::ostringstream err;
  const ExitStatus status = runFlows(flows, **finder, out, err);
  return {status, out.str(), err.str()};
}

TEST(FlowsTest, SaysSoWhenTheLimitCutFlowsOff) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).build(),
                    NatFlowBuilder{}.ctId(3).build()};
  FlowsCommand flows;
  flows.format = OutputFormat::Csv;
  flows.limit = 2;
  const RunResult result = run(flows, database);
  EXPECT_EQ(result.status, ExitStatus::Found);
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 3) << "header and two flows";
  EXPECT_EQ(result.err,
            "ctaudit: note: showing the first 2 matching flows, more match; narrow the filters, or raise --limit "
            "(0 for no limit)\n");
}

TEST(FlowsTest, NoNoteWhenExactlyTheLimitMatches) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).build()};
  FlowsCommand flows;
  flows.format = OutputFormat::Csv;
  flows.limit = 2;
  const RunResult result = run(flows, database);
  EXPECT_EQ(result.status, ExitStatus::Found);
  EXPECT_EQ(std::count(result.out.begin(), result.out.end(), '\n'), 3);
  EXPECT_EQ(result.err, "");
}

TEST(FlowsTest, KeepsTheReadersOldestFirstOrder) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(7).start("2026-11-25T09:00:00Z").build(),
                    NatFlowBuilder{}.ctId(5).start("2026-11-25T09:30:00Z").build()};
  FlowsCommand flows;
  flows.format = OutputFormat::Table;
  const RunResult result = run(flows, database);
  EXPECT_EQ(result.status, ExitStatus::Found);
  EXPECT_LT(result.out.find("09:00:00"), result.out.find("09:30:00"));
  EXPECT_EQ(result.out.find("GAP"), std::string::npos) << "only who has a GAP column";
}

// A flow whose start is not known (here one whose creation event was lost, seen first at its end)
// is shown from when it was first seen, marked a bound: in CSV `start` is that time and
// `time_source_start` is `bound`, where both were empty.
TEST(FlowsTest, AnUnknownStartIsShownAsABoundFromWhenTheFlowWasFirstSeen) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(7).noStart().end("2026-11-25T09:00:05Z").build()};
  FlowsCommand flows;
  flows.format = OutputFormat::Csv;
  const RunResult result = run(flows, database);
  EXPECT_EQ(result.status, ExitStatus::Found);
  EXPECT_NE(result.out.find("\r\n2026-11-25T09:00:05.000000000Z,2026-11-25T09:00:05.000000000Z,tcp,"),
            std::string::npos)
      << result.out;
  EXPECT_NE(result.out.find(",bound,kernel,false\r\n"), std::string::npos) << result.out;
}

TEST(FlowsTest, NothingFound) {
  testing::FakeFlowDatabase database;
  FlowsCommand flows;
  const RunResult table = run(flows, database);
  EXPECT_EQ(table.status, ExitStatus::NothingFound);
  EXPECT_EQ(table.out, "");
  EXPECT_EQ(table.err, "ctaudit: no flow matched; widen the time window or drop a filter\n");
  flows.format = OutputFormat::Csv;
  const RunResult csv = run(flows, database);
  EXPECT_EQ(csv.status, ExitStatus::NothingFound);
  EXPECT_TRUE(csv.out.starts_with("start,end,")) << "a script still gets the header";
  EXPECT_EQ(csv.err, "");
}

// "--dst 2001:db8::1:443" parses as an address; when it finds nothing, the port may have been meant.
TEST(FlowsTest, NothingFoundForAPortlessIpv6AddressMentionsBrackets) {
  testing::FakeFlowDatabase database;
  FlowsCommand flows;
  flows.destination_address = IpAddress::parse("2001:db8::1:443");
  const RunResult v6 = run(flows, database);
  EXPECT_NE(v6.err.find("written in brackets, [2001:db8::1]:443"), std::string::npos) << v6.err;
  flows.destination_port = 443;
  EXPECT_EQ(run(flows, database).err.find("brackets"), std::string::npos);
  flows.destination_port.reset();
  flows.protocol = Protocol::Gre;  // no ports to mean
  EXPECT_EQ(run(flows, database).err.find("brackets"), std::string::npos);
  flows.protocol.reset();
  flows.destination_address = IpAddress::parse("198.51.100.1");
  EXPECT_EQ(run(flows, database).err.find("brackets"), std::string::npos);
}

TEST(FlowsTest, ReportsReadErrors) {
  testing::FakeFlowDatabase database;
  database.find_error = Error{Errc::Io, 5, "reading /db: I/O error"};
  const RunResult result = run(FlowsCommand{}, database);
  EXPECT_EQ(result.status, ExitStatus::Error);
  EXPECT_EQ(result.err, "ctaudit: reading /db: I/O error\n");
}

// Found by an exploratory run: `--limit 0 --format csv` over 900k flows held 290 MB before the
// first line came out. Lines now go out as the flows are read: what was read before an error is
// out, and the error follows.
TEST(FlowsTest, CsvAndJsonGoOutAsTheFlowsAreRead) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).build(),
                    NatFlowBuilder{}.ctId(3).build()};
  database.find_error = Error{Errc::Io, 5, "reading /db: I/O error"};
  database.find_error_after = 2;
  FlowsCommand flows;
  flows.format = OutputFormat::Csv;
  const RunResult csv = run(flows, database);
  EXPECT_EQ(csv.status, ExitStatus::Error);
  EXPECT_EQ(std::count(csv.out.begin(), csv.out.end(), '\n'), 3) << "the header and the two flows read";
  EXPECT_EQ(csv.err, "ctaudit: reading /db: I/O error\n");
  flows.format = OutputFormat::Json;
  const RunResult json = run(flows, database);
  EXPECT_EQ(std::count(json.out.begin(), json.out.end(), '\n'), 2);
  flows.format = OutputFormat::Table;  // its widths need every row: nothing, as before
  EXPECT_EQ(run(flows, database).out, "");
}

// Runs `flows` as JSON over `count` flows into an output that takes nothing (a full disk under
// `> FILE`); returns what it said on stderr.
std::string runIntoFailedOutput(testing::FakeFlowDatabase& database, std::uint32_t count, FlowsCommand flows,
                                OutputPath path) {
  for (std::uint32_t id = 1; id <= count; ++id) {
    database.flows.push_back(NatFlowBuilder{}.ctId(id).build());
  }
  auto finder = database.opener()("/db");
  EXPECT_TRUE(finder);
  std::ostringstream out;
  out.setstate(std::ios::badbit);
  std::ostringstream err;
  flows.format = OutputFormat::Json;
  EXPECT_EQ(runFlows(flows, **finder, out, err, path), ExitStatus::Found);
  return err.str();
}

// Reading stops at the first flow the output refused.
TEST(FlowsTest, ReadingStopsWhenTheOutputFails) {
  testing::FakeFlowDatabase database;
  FlowsCommand flows;
  flows.limit.reset();
  (void)runIntoFailedOutput(database, 3, flows, OutputPath::Direct);
  EXPECT_EQ(database.visits, 1U);
}

// Into a pipe or a terminal the lines are held in a temporary file until the read is done, so
// that a reader who pauses (`| less`) does not hold the read snapshot, and with it the daemon's
// WAL; the output is the same.
TEST(FlowsTest, SpooledOutputReachesTheDestinationOnlyAfterTheRead) {
  testing::FakeFlowDatabase database;
  database.flows = {NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).build()};
  std::ostringstream out;
  std::string seen_while_reading = "not called";
  database.while_reading = [&] { seen_while_reading = out.str(); };
  auto finder = database.opener()("/db");
  ASSERT_TRUE(finder);
  std::ostringstream err;
  FlowsCommand flows;
  flows.format = OutputFormat::Csv;
  EXPECT_EQ(runFlows(flows, **finder, out, err, OutputPath::Spooled), ExitStatus::Found);
  EXPECT_EQ(seen_while_reading, "");
  const std::string spooled = out.str();
  out.str("");
  EXPECT_EQ(runFlows(flows, **finder, out, err, OutputPath::Direct), ExitStatus::Found);
  EXPECT_NE(seen_while_reading, "") << "direct: the lines were out before the read ended";
  EXPECT_EQ(spooled, out.str());
  EXPECT_EQ(std::count(spooled.begin(), spooled.end(), '\n'), 3);
}

// The limit was reached, but the destination took nothing: no note claims that flows were shown.
TEST(FlowsTest, NoLimitNoteForOutputThatTookNothing) {
  testing::FakeFlowDatabase database;
  FlowsCommand flows;
  flows.limit = 1;
  EXPECT_EQ(runIntoFailedOutput(database, 2, flows, OutputPath::Spooled), "");
  EXPECT_EQ(database.visits, 2U) << "the spool took the first; the second showed that more match";
}

}  // namespace
}  // namespace ctaudit::query
