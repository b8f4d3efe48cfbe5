// SPDX-License-Identifier: GPL-2.0-or-later
// `ctaudit` against a real database that SqliteSink wrote: the gap and coverage warnings end to
// end, through openFlowReader.
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>

#include "query/app.hpp"
#include "query/flow_finder.hpp"
#include "storage/json_mapping.hpp"
#include "storage/sqlite_sink.hpp"
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

// Run 1 logged 10:00:00-10:10:00 and stopped cleanly, with a kernel overrun 10:05:00-10:05:02;
// run 2 started at 10:20:00 and was killed after its heartbeat at 10:25:00. The subscriber
// 100.64.0.2 held 203.0.113.1:40001 from 10:01:00 to 10:02:00.
class LogCheckDatabaseTest : public ::testing::Test {
protected:
  void SetUp() override {
    const auto log = std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
    {
      auto sink = storage::SqliteSink::open(path_, "gw1.example.net", log);
      ASSERT_TRUE(sink) << sink.error().detail;
      ASSERT_TRUE((*sink)->beginRun(at(0s)));
      const auto orig = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
      const auto reply = withSnat(replyOf(orig), "203.0.113.1", 40001);
      ASSERT_EQ((*sink)->write({{flowEvent(EventType::New, 1, orig, reply, at(60s)),
                                 flowEvent(EventType::Destroy, 1, orig, reply, at(120s))}}),
                storage::SinkStatus::Ok);
      overrun_.reason = GapReason::KernelOverrun;
      overrun_.start = at(300s);
      overrun_.end = at(302s);
      overrun_.overruns = 1;
      ASSERT_EQ((*sink)->writeGap(overrun_), storage::SinkStatus::Ok);
      ASSERT_TRUE((*sink)->endRun(at(600s)));
    }
    auto sink = storage::SqliteSink::open(path_, "gw1.example.net", log);
    ASSERT_TRUE(sink) << sink.error().detail;
    ASSERT_TRUE((*sink)->beginRun(at(1200s)));
    (*sink)->noteAlive(at(1500s));
    ASSERT_EQ((*sink)->flush(), storage::SinkStatus::Ok);
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
  GapRecord overrun_;
};

TEST_F(LogCheckDatabaseTest, AnAnswerInsideTheLoggedTimeHasNoWarning) {
  const RunResult result = run({"who", "203.0.113.1:40001", "--at", "2026-11-25T10:01:30Z"});
  EXPECT_EQ(result.status, 0);
  EXPECT_NE(result.out.find("100.64.0.2:33000"), std::string::npos) << result.out;
  EXPECT_EQ(result.err, "");
}

TEST_F(LogCheckDatabaseTest, NoMatchInsideARecordedGapSaysTheLogHasAHole) {
  const RunResult result = run({"who", "203.0.113.1:40001", "--at", "2026-11-25T10:05:01Z", "--format", "json"});
  EXPECT_EQ(result.status, 1);
  EXPECT_EQ(result.out, storage::toJsonLine(overrun_, storage::JsonContext{"gw1.example.net"}) + "\n");
  EXPECT_EQ(result.err,
            "ctaudit: warning: the log has a gap from 2026-11-25T10:05:00Z to 2026-11-25T10:05:02Z (kernel_overrun, "
            "1 overrun): a flow in that window may be missing\n");
}

TEST_F(LogCheckDatabaseTest, NoMatchBetweenRunsSaysNoDaemonWasRecording) {
  const RunResult result = run({"who", "203.0.113.1:40001", "--at", "2026-11-25T10:15:00Z"});
  EXPECT_EQ(result.status, 1);
  EXPECT_NE(result.err.find("ctaudit: warning: 2026-11-25T10:15:00Z is outside the logged period (ctauditd stopped "
                            "at 2026-11-25T10:10:00Z and started again at 2026-11-25T10:20:00Z)"),
            std::string::npos)
      << result.err;
}

TEST_F(LogCheckDatabaseTest, FlowsOverEverythingListsEveryHoleInOrder) {
  const RunResult result =
      run({"flows", "--from", "2026-11-25T09:59:00Z", "--to", "2026-11-25T10:30:00Z", "--format", "json"});
  EXPECT_EQ(result.status, 0);
  std::vector<std::string> lines;
  std::istringstream in(result.out);
  for (std::string line; std::getline(in, line);) {
    lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 5U) << result.out;
  EXPECT_NE(lines[0].find("\"kind\":\"event\""), std::string::npos);
  EXPECT_NE(lines[1].find("\"reason\":\"daemon_down\",\"start\":\"2026-11-25T09:59:00.000000000Z\""),
            std::string::npos)
      << lines[1];
  EXPECT_NE(lines[2].find("\"reason\":\"kernel_overrun\""), std::string::npos) << lines[2];
  EXPECT_NE(lines[3].find("\"start\":\"2026-11-25T10:10:00.000000000Z\",\"end\":\"2026-11-25T10:20:00.000000000Z\""),
            std::string::npos)
      << lines[3];
  EXPECT_NE(lines[4].find("\"start\":\"2026-11-25T10:25:00.000000000Z\",\"end\":\"2026-11-25T10:30:00.000000000Z\""),
            std::string::npos)
      << lines[4];
  EXPECT_NE(result.err.find("ctauditd was last seen alive at 2026-11-25T10:25:00Z"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace ctaudit::query
