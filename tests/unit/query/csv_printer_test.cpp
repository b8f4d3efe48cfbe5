// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/csv_printer.hpp"

#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/nat_flow_builder.hpp"

namespace ctaudit::query {
namespace {

using testing::NatFlowBuilder;

constexpr std::string_view kHeader =
    "start,end,protocol,src_ip,src_port,dst_ip,dst_port,nat_src_ip,nat_src_port,nat_dst_ip,nat_dst_port,ct_id,"
    "zone,mark,packets_out,bytes_out,packets_in,bytes_in,time_source_start,time_source_end,observed_at_start\r\n";

std::string csv(const std::vector<FlowRecord>& flows) {
  std::ostringstream out;
  printCsv(out, flows);
  return out.str();
}

TEST(CsvPrinterTest, QuotesOnlyFieldsThatNeedIt) {
  EXPECT_EQ(csvField("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(csvField(""), "");
  EXPECT_EQ(csvField("a,b"), "\"a,b\"");
  EXPECT_EQ(csvField("say \"hi\""), "\"say \"\"hi\"\"\"");
  EXPECT_EQ(csvField("two\nlines"), "\"two\nlines\"");
  EXPECT_EQ(csvField("cr\r"), "\"cr\r\"");
  EXPECT_EQ(csvField("2001:db8::1"), "2001:db8::1");
}

TEST(CsvPrinterTest, HeaderEvenWithoutFlows) {
  EXPECT_EQ(csv({}), kHeader);
  EXPECT_EQ(std::string(kCsvHeader) + "\r\n", kHeader);
}

TEST(CsvPrinterTest, OneRowPerFlowWithNanosecondTimes) {
  const std::vector<FlowRecord> flows{
      NatFlowBuilder{}
          .ctId(3054219)
          .zone(2)
          .mark(0x10)
          .start("2026-11-25T10:00:01.123456789Z")
          .end("2026-11-25T10:02:01Z", TimeSource::Receive)
          .counters({12, 1830}, {10, 48213})
          .build(),
      NatFlowBuilder{}.ctId(5).start("2026-11-25T10:00:02Z", TimeSource::Receive).open().observedAtStart().build(),
  };
  EXPECT_EQ(csv(flows),
            std::string(kHeader) +
                "2026-11-25T10:00:01.123456789Z,2026-11-25T10:02:01.000000000Z,tcp,100.64.0.2,33000,198.51.100.1,443,"
                "203.0.113.7,40001,,,3054219,2,16,12,1830,10,48213,kernel,receive,false\r\n"
                "2026-11-25T10:00:02.000000000Z,,tcp,100.64.0.2,33000,198.51.100.1,443,"
                "203.0.113.7,40001,,,5,0,0,,,,,receive,,true\r\n");
}

TEST(CsvPrinterTest, ABoundEndSaysSo) {
  const std::vector<FlowRecord> flows{NatFlowBuilder{}.ctId(7).end("2026-11-25T11:00:00Z", TimeSource::Bound).build()};
  EXPECT_EQ(csv(flows), std::string(kHeader) +
                            "2026-11-25T10:00:00.000000000Z,2026-11-25T11:00:00.000000000Z,tcp,100.64.0.2,33000,"
                            "198.51.100.1,443,203.0.113.7,40001,,,7,0,0,,,,,kernel,bound,false\r\n");
}

TEST(CsvPrinterTest, IcmpIdDnatAndIpv6) {
  const std::vector<FlowRecord> flows{
      NatFlowBuilder{}.ctId(9).protocol(Protocol::Icmp).inside("100.64.0.2", 1234).translated("203.0.113.7", 40001)
          .destination("192.0.2.1", 0).build(),
      NatFlowBuilder{}.ctId(10).inside("198.51.100.9", 51000).noSnat().destination("2001:db8::1", 8080)
          .inside("2001:db8:9::9", 51000).dnatTo("2001:db8:1::2", 80).build(),
  };
  EXPECT_EQ(csv(flows),
            std::string(kHeader) +
                "2026-11-25T10:00:00.000000000Z,2026-11-25T10:01:00.000000000Z,icmp,100.64.0.2,1234,192.0.2.1,,"
                "203.0.113.7,40001,,,9,0,0,,,,,kernel,kernel,false\r\n"
                "2026-11-25T10:00:00.000000000Z,2026-11-25T10:01:00.000000000Z,tcp,2001:db8:9::9,51000,2001:db8::1,"
                "8080,,,2001:db8:1::2,80,10,0,0,,,,,kernel,kernel,false\r\n");
}

}  // namespace
}  // namespace ctaudit::query
