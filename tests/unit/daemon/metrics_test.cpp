// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/metrics.hpp"

#include <regex>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

namespace ctaudit::daemon {
namespace {

MetricsSnapshot sample() {
  MetricsSnapshot s;
  s.start_time = fromUnixNanos(1'795'600'800'500'000'000);
  s.reader.datagrams = 10;
  s.reader.messages = 12;
  s.reader.decoded = 11;
  s.reader.malformed = 1;
  s.reader.overruns = 2;
  s.reader.kernel_drops = 300;
  s.reader.resyncs = 1;
  s.reader.queue_dropped = 4;
  s.queue_records = 5;
  s.queue_records_max = 6;
  s.queue_bytes = 350;
  s.queue_capacity_bytes = 268435456;
  s.memory = ProcessMemory{331'860 * 1024, 620'460 * 1024};
  s.pipeline.closed_unseen = 7;
  s.pipeline.gaps.at(static_cast<std::size_t>(GapReason::KernelOverrun)) = 1;
  s.open_flows = 42;
  s.sinks = {{"sqlite", 100, 3, 1, 0, false}, {"jsonl", 90, 0, 1, 10, true}};
  s.sink_failure_gaps = 1;
  return s;
}

TEST(MetricsTest, ExpositionFormatThatNodeExporterReads) {
  const std::string text = formatMetrics(sample());
  // Every line is a comment or `name{labels} value`; every sample's family was declared first,
  // with a TYPE, once.
  const std::regex sample_line(R"(^([a-z_]+)(\{[a-z_]+="[a-z_]*"(,[a-z_]+="[a-z_]*")*\})? [0-9]+$)");
  const std::regex type_line(R"(^# TYPE ([a-z_]+) (counter|gauge)$)");
  std::set<std::string> declared;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (std::regex_match(line, match, type_line)) {
      EXPECT_TRUE(declared.insert(match[1]).second) << "declared twice: " << line;
      if (match[2] == "counter") {
        EXPECT_TRUE(match[1].str().ends_with("_total")) << line;
      }
      continue;
    }
    if (line.starts_with("# HELP ")) {
      continue;
    }
    ASSERT_TRUE(std::regex_match(line, match, sample_line)) << line;
    EXPECT_TRUE(declared.contains(match[1])) << "undeclared: " << line;
  }
  EXPECT_EQ(text.back(), '\n');
}

TEST(MetricsTest, TheCountersTheOperatorsGuideNames) {
  const std::string text = formatMetrics(sample());
  for (const char* line : {"ctauditd_start_time_seconds 1795600800\n",
                           "ctauditd_netlink_datagrams_total 10\n",
                           "ctauditd_netlink_messages_total 12\n",
                           "ctauditd_netlink_messages_decoded_total 11\n",
                           "ctauditd_netlink_messages_malformed_total 1\n",
                           "ctauditd_netlink_overruns_total 2\n",
                           "ctauditd_netlink_kernel_drops_total 300\n",
                           "ctauditd_resyncs_total 1\n",
                           "ctauditd_queue_records 5\n",
                           "ctauditd_queue_records_max 6\n",
                           "ctauditd_queue_bytes 350\n",
                           "ctauditd_queue_capacity_bytes 268435456\n",
                           "ctauditd_resident_memory_bytes 339824640\n",
                           "ctauditd_resident_memory_peak_bytes 635351040\n",
                           "ctauditd_open_flows 42\n",
                           "ctauditd_flows_closed_unseen_total 7\n",
                           "ctauditd_sink_records_written_total{sink=\"sqlite\"} 100\n",
                           "ctauditd_sink_records_written_total{sink=\"jsonl\"} 90\n",
                           "ctauditd_sink_records_pending{sink=\"jsonl\"} 10\n",
                           "ctauditd_sink_failing{sink=\"jsonl\"} 1\n",
                           "ctauditd_records_dropped_total{reason=\"queue_overflow\"} 4\n",
                           "ctauditd_records_dropped_total{reason=\"sink_failure\",sink=\"sqlite\"} 3\n",
                           "ctauditd_gaps_total{reason=\"kernel_overrun\"} 1\n",
                           "ctauditd_gaps_total{reason=\"sink_failure\"} 1\n",
                           "ctauditd_gaps_total{reason=\"daemon_down\"} 0\n"}) {
    EXPECT_NE(text.find(line), std::string::npos) << line;
  }
}

TEST(MetricsTest, NoMemoryMetricWhenTheMemoryIsUnknown) {
  MetricsSnapshot s = sample();
  s.memory.reset();
  EXPECT_EQ(formatMetrics(s).find("ctauditd_resident_memory"), std::string::npos);
}

}  // namespace
}  // namespace ctaudit::daemon
