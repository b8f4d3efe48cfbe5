// SPDX-License-Identifier: GPL-2.0-or-later
// `ctaudit` against a real database after retention expired part of it: time before the horizon
// is reported out of range, and a flow that began before the horizon and ended after it is still
// found.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "query/app.hpp"
#include "query/flow_finder.hpp"
#include "query/log_check.hpp"
#include "storage/sqlite_sink.hpp"
#include "tests/support/fake_flow_database.hpp"
#include "tests/support/flow_builders.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::query {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::at;  // kTestEpoch (2026-11-25T10:00:00Z) + offset
using ctaudit::testing::flowEvent;
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::withSnat;

struct RunResult {
  int status{-1};
  std::string out;
  std::string err;
};

// One run from 10:00 to 12:00 (stopped cleanly), retention of 1 hour expired at 12:00, so the
// horizon is 11:00. 203.0.113.1:40001 was held from 10:01 to 10:02 (expired), 203.0.113.1:40002
// from 10:30 to 11:30 (spans the horizon: kept), 203.0.113.1:40003 from 11:10 to 11:20.
class RetentionQueryTest : public ::testing::Test {
protected:
  void SetUp() override {
    const auto log = std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto sink = storage::SqliteSink::open(path_, "gw1.example.net", log);
    ASSERT_TRUE(sink) << sink.error().detail;
    ASSERT_TRUE((*sink)->beginRun(at(0s)));
    const auto add = [&](std::uint32_t id, std::uint16_t port, Timestamp start, Timestamp end) {
      const auto orig = portTuple(Protocol::Tcp, "100.64.0.2", static_cast<std::uint16_t>(port - 10000), "198.51.100.1", 443);
      const auto reply = withSnat(replyOf(orig), "203.0.113.1", port);
      ASSERT_EQ((*sink)->write({{flowEvent(EventType::New, id, orig, reply, start)}}), storage::SinkStatus::Ok);
      ASSERT_EQ((*sink)->write({{flowEvent(EventType::Destroy, id, orig, reply, end)}}), storage::SinkStatus::Ok);
    };
    add(1, 40001, at(1min), at(2min));
    add(2, 40002, at(30min), at(90min));
    add(3, 40003, at(70min), at(80min));
    ASSERT_TRUE((*sink)->endRun(at(120min)));
    ASSERT_TRUE((*sink)->enableRetention(1h));
    for (int i = 0; i < 10; ++i) {
      auto step = (*sink)->expire(at(120min), 1000);
      ASSERT_TRUE(step) << step.error().detail;
      if (step->caught_up) {
        break;
      }
    }
  }

  RunResult run(std::vector<std::string_view> args) {
    args.push_back("--db");
    args.push_back(path_string_);
    const AppEnvironment environment{openFlowReader, std::nullopt, {}};
    std::ostringstream out;
    std::ostringstream err;
    RunResult result;
    result.status = runCtaudit(args, out, err, environment);
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  ctaudit::testing::TempDir dir_;
  std::filesystem::path path_ = dir_ / "flows.db";
  std::string path_string_ = path_.string();
};

constexpr std::string_view kExpiredAt1001 =
    "ctaudit: warning: 2026-11-25T10:01:30Z is out of range: flows that ended before 2026-11-25T11:00:00Z were "
    "expired by the retention of 1 hour: a flow in that window may be missing\n";

TEST_F(RetentionQueryTest, WhoBeforeTheHorizonSaysTheTimeIsOutOfRange) {
  const RunResult result = run({"who", "203.0.113.1:40001", "--at", "2026-11-25T10:01:30Z"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.out, "");
  EXPECT_NE(result.err.find(kExpiredAt1001), std::string::npos) << result.err;
  EXPECT_EQ(result.err.find("outside the logged period"), std::string::npos) << result.err;
}

TEST_F(RetentionQueryTest, JsonCarriesTheExpiredWindowAsAPipelineErrorLine) {
  const RunResult result = run({"who", "203.0.113.1:40001", "--at", "2026-11-25T10:01:30Z", "--format", "json"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.err, kExpiredAt1001);
  const auto line = nlohmann::json::parse(result.out);
  EXPECT_EQ(line.at("event").at("kind"), "pipeline_error");
  EXPECT_EQ(line.at("event").at("reason"), "retention_expired");
  EXPECT_EQ(line.at("event").at("start"), "2026-11-25T10:01:30.000000000Z");
  EXPECT_EQ(line.at("event").at("end"), "2026-11-25T10:01:30.000000000Z");
}

TEST_F(RetentionQueryTest, AFlowThatBeganBeforeTheHorizonAndEndedAfterItIsFoundWithoutWarning) {
  const RunResult result = run({"who", "203.0.113.1:40002", "--at", "2026-11-25T11:10:00Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_NE(result.out.find("2026-11-25T10:30:00"), std::string::npos) << result.out;
  EXPECT_EQ(result.err, "");
}

TEST_F(RetentionQueryTest, ALongFlowIsFoundAtATimeBeforeTheHorizonWithTheWarning) {
  const RunResult result = run({"who", "203.0.113.1:40002", "--at", "2026-11-25T10:40:00Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_NE(result.out.find("2026-11-25T10:30:00"), std::string::npos) << result.out;
  EXPECT_NE(result.err.find("2026-11-25T10:40:00Z is out of range"), std::string::npos) << result.err;
}

TEST_F(RetentionQueryTest, FlowsAcrossTheHorizonWarnOnlyAboutThePartBeforeIt) {
  const RunResult result = run({"flows", "--from", "2026-11-25T10:00:00Z", "--to", "2026-11-25T11:30:00Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_EQ(result.out.find("203.0.113.1:40001"), std::string::npos) << "expired: " << result.out;
  EXPECT_NE(result.out.find("203.0.113.1:40002"), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("203.0.113.1:40003"), std::string::npos) << result.out;
  EXPECT_EQ(result.err,
            "ctaudit: warning: 2026-11-25T10:00:00Z to 2026-11-25T11:00:00Z is out of range: flows that ended before "
            "2026-11-25T11:00:00Z were expired by the retention of 1 hour: a flow in that window may be missing\n");
}

TEST_F(RetentionQueryTest, AWindowAfterTheHorizonHasNoWarning) {
  const RunResult result = run({"flows", "--from", "2026-11-25T11:05:00Z", "--to", "2026-11-25T11:50:00Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_EQ(result.err, "");
}

// The pure assessment: the part before the horizon is not checked against runs (retention deleted
// them), the rest is.
TEST(RetentionLogCheckTest, ThePartAfterTheHorizonIsStillCheckedAgainstTheRuns) {
  const std::vector<storage::LoggedPeriod> runs{{at(90min), at(200min), true}};
  const storage::RetentionHorizon horizon{at(60min), 400 * 24h};
  const LogCheck check = assessLog({at(30min), at(120min)}, {}, runs, horizon);
  ASSERT_EQ(check.gaps.size(), 2U);
  EXPECT_EQ(check.gaps[0].reason, GapReason::RetentionExpired);
  EXPECT_EQ(check.gaps[0].start, at(30min));
  EXPECT_EQ(check.gaps[0].end, at(60min));
  EXPECT_EQ(check.gaps[1].reason, GapReason::DaemonDown);
  EXPECT_EQ(check.gaps[1].start, at(60min));
  EXPECT_EQ(check.gaps[1].end, at(90min));
  ASSERT_EQ(check.warnings.size(), 2U);
  EXPECT_EQ(check.warnings[0],
            "ctaudit: warning: 2026-11-25T10:30:00Z to 2026-11-25T11:00:00Z is out of range: flows that ended before "
            "2026-11-25T11:00:00Z were expired by the retention of 400 days: a flow in that window may be missing");
}

TEST(RetentionLogCheckTest, WithoutAKnownPeriodTheWarningSaysRetention) {
  const LogCheck check = assessLog({at(0s), at(0s)}, {}, {}, storage::RetentionHorizon{at(1s), std::nullopt});
  ASSERT_EQ(check.warnings.size(), 1U) << "no 'records no runs' warning for time wholly out of range";
  EXPECT_NE(check.warnings[0].find("were expired by retention:"), std::string::npos) << check.warnings[0];
}

TEST(RetentionLogCheckTest, TheHorizonIsReadAfterTheFlows) {
  ctaudit::testing::FakeFlowDatabase database;
  const AppEnvironment environment{database.opener(), std::nullopt, {}};
  std::ostringstream out;
  std::ostringstream err;
  const std::vector<std::string_view> args{"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z"};
  EXPECT_EQ(runCtaudit(args, out, err, environment), 1);
  // The second find: a port forward of the address and port, as no flow had them as its source.
  EXPECT_EQ(database.calls,
            (std::vector<std::string>{"loggedPeriods", "gaps", "find", "find", "retentionHorizon"}));
}

}  // namespace
}  // namespace ctaudit::query
