// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flow_table.hpp"

#include <vector>

#include <gtest/gtest.h>

#include "query/text_table.hpp"
#include "tests/support/nat_flow_builder.hpp"

namespace ctaudit::query {
namespace {

using std::chrono::milliseconds;
using std::chrono::nanoseconds;
using std::chrono::seconds;
using testing::NatFlowBuilder;

TEST(TextTableTest, AlignsColumnsAndTrimsTrailingBlanks) {
  const std::vector<TableColumn> columns{{"NAME"}, {"COUNT", true}, {"NOTE"}};
  const std::vector<std::vector<std::string>> rows{{"a", "1", "x"}, {"longer-name", "12345", ""}};
  EXPECT_EQ(renderTextTable(columns, rows),
            "NAME         COUNT  NOTE\n"
            "a                1  x\n"
            "longer-name  12345\n");
}

TEST(TextTableTest, HeaderOnlyWhenNoRows) {
  const std::vector<TableColumn> columns{{"A"}, {"B", true}};
  EXPECT_EQ(renderTextTable(columns, {}), "A  B\n");
}

TEST(FlowTableTest, WhoTableWithGaps) {
  const std::vector<FlowRecord> flows{
      NatFlowBuilder{}
          .ctId(3054219)
          .start("2026-11-25T10:00:01.123456789Z")
          .end("2026-11-25T10:02:01Z")
          .counters({12, 1830}, {10, 48213})
          .build(),
      NatFlowBuilder{}
          .ctId(77)
          .inside("100.64.12.200", 51515)
          .destination("192.0.2.80", 80)
          .start("2026-11-25T10:00:05.5Z")
          .end("2026-11-25T10:00:06Z")
          .build(),
  };
  const std::vector<nanoseconds> gaps{nanoseconds{0}, milliseconds{2500}};
  EXPECT_EQ(renderFlowTable(flows, gaps),
            "START                        END                          PROTO  INSIDE               "
            "TRANSLATED         DESTINATION         CT_ID  BYTES_OUT  BYTES_IN    GAP\n"
            "2026-11-25T10:00:01.123456Z  2026-11-25T10:02:01.000000Z  tcp    100.64.0.2:33000     "
            "203.0.113.7:40001  198.51.100.1:443  3054219       1830     48213      0\n"
            "2026-11-25T10:00:05.500000Z  2026-11-25T10:00:06.000000Z  tcp    100.64.12.200:51515  "
            "203.0.113.7:40001  192.0.2.80:80          77          -         -  +2.5s\n");
}

TEST(FlowTableTest, NegativeAndFractionalGaps) {
  const std::vector<FlowRecord> flows{NatFlowBuilder{}.build(), NatFlowBuilder{}.build(), NatFlowBuilder{}.build()};
  const std::vector<nanoseconds> gaps{-seconds{90}, nanoseconds{1}, nanoseconds::max()};
  const std::string table = renderFlowTable(flows, gaps);
  EXPECT_NE(table.find("  -90s\n"), std::string::npos) << table;
  EXPECT_NE(table.find("  +0.000000001s\n"), std::string::npos) << table;
  EXPECT_NE(table.find("  +9223372036.854775807s\n"), std::string::npos) << table << "the largest, in full";
}

TEST(FlowTableTest, OpenFlowsMarksAndFootnotes) {
  const std::vector<FlowRecord> flows{
      NatFlowBuilder{}.ctId(1).start("2026-11-25T10:00:00Z", TimeSource::Receive).open().build(),
      NatFlowBuilder{}
          .ctId(2)
          .start("2026-11-25T10:00:00Z", TimeSource::Receive)
          .end("2026-11-25T10:01:00Z", TimeSource::Receive)
          .observedAtStart()
          .build(),
  };
  EXPECT_EQ(renderFlowTable(flows, {}),
            "START                          END                           PROTO  INSIDE            "
            "TRANSLATED         DESTINATION       CT_ID  BYTES_OUT  BYTES_IN\n"
            "2026-11-25T10:00:00.000000Z~   open                          tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443      1          -         -\n"
            "2026-11-25T10:00:00.000000Z~*  2026-11-25T10:01:00.000000Z~  tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443      2          -         -\n"
            "\n"
            "~ receive time: ctauditd's clock, not the kernel's: a START up to a quarter second early (when ctauditd "
            "woke for a batch of events), an END a little late (when it read the event)\n"
            "* first seen in the conntrack table when ctauditd started, not through its creation event; an "
            "unmarked START is the kernel's own time\n");
}

TEST(FlowTableTest, ABoundEndIsMarkedAndExplained) {
  const std::vector<FlowRecord> flows{NatFlowBuilder{}.ctId(1).end("2026-11-25T11:00:00Z", TimeSource::Bound).build()};
  EXPECT_EQ(renderFlowTable(flows, {}),
            "START                        END                           PROTO  INSIDE            "
            "TRANSLATED         DESTINATION       CT_ID  BYTES_OUT  BYTES_IN\n"
            "2026-11-25T10:00:00.000000Z  2026-11-25T11:00:00.000000Z^  tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443      1          -         -\n"
            "\n"
            "^ bound: the end event was lost; the flow ended at or before this time\n");
}

// A start that is not known is shown as when the flow was first seen (query::shownRecord), a bound:
// before, START was "-*" and the time `who` measured its GAP from was nowhere to be seen.
TEST(FlowTableTest, ABoundStartIsMarkedAndExplained) {
  const std::vector<FlowRecord> flows{NatFlowBuilder{}
                                          .ctId(1)
                                          .start("2026-11-25T09:59:23Z", TimeSource::Bound)
                                          .end("2026-11-25T10:02:35Z")
                                          .observedAtStart()
                                          .build()};
  EXPECT_EQ(renderFlowTable(flows, {}),
            "START                          END                          PROTO  INSIDE            "
            "TRANSLATED         DESTINATION       CT_ID  BYTES_OUT  BYTES_IN\n"
            "2026-11-25T09:59:23.000000Z^*  2026-11-25T10:02:35.000000Z  tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443      1          -         -\n"
            "\n"
            "* first seen in the conntrack table when ctauditd started, not through its creation event; an "
            "unmarked START is the kernel's own time\n"
            "^ on START: its start is not known; the flow began at or before this time, when ctauditd first saw it\n");
}

TEST(FlowTableTest, IcmpShowsTheIdAndIpv6UsesBrackets) {
  const std::vector<FlowRecord> flows{
      NatFlowBuilder{}.ctId(9).protocol(Protocol::Icmp).inside("100.64.0.2", 1234).translated("203.0.113.7", 40001)
          .destination("192.0.2.1", 0).build(),
      NatFlowBuilder{}.ctId(10).inside("2001:db8:1::2", 33000).translated("2001:db8:ffff::7", 40001)
          .destination("2001:db8:2::80", 443).build(),
      NatFlowBuilder{}.ctId(11).protocol(Protocol::Gre).inside("100.64.0.3", 0).translated("203.0.113.8", 0)
          .destination("192.0.2.2", 0).build(),
  };
  const std::string table = renderFlowTable(flows, {});
  EXPECT_NE(table.find("icmp   100.64.0.2:1234        203.0.113.7:40001         192.0.2.1 "),
            std::string::npos)
      << table;
  EXPECT_NE(table.find("tcp    [2001:db8:1::2]:33000  [2001:db8:ffff::7]:40001  [2001:db8:2::80]:443"), std::string::npos)
      << table;
  EXPECT_NE(table.find("gre    100.64.0.3             203.0.113.8               192.0.2.2 "), std::string::npos)
      << table;
}

TEST(FlowTableTest, DnatColumnOnlyWhenSomeFlowHasIt) {
  const std::vector<FlowRecord> snat_only{NatFlowBuilder{}.build()};
  EXPECT_EQ(renderFlowTable(snat_only, {}).find("DNAT_TO"), std::string::npos);
  const std::vector<FlowRecord> with_dnat{
      NatFlowBuilder{}.ctId(1).build(),
      NatFlowBuilder{}.ctId(2).inside("198.51.100.9", 51000).noSnat().destination("203.0.113.1", 8080)
          .dnatTo("100.64.0.2", 80).build(),
  };
  EXPECT_EQ(renderFlowTable(with_dnat, {}),
            "START                        END                          PROTO  INSIDE              "
            "TRANSLATED         DESTINATION       DNAT_TO        CT_ID  BYTES_OUT  BYTES_IN\n"
            "2026-11-25T10:00:00.000000Z  2026-11-25T10:01:00.000000Z  tcp    100.64.0.2:33000    "
            "203.0.113.7:40001  198.51.100.1:443  -                  1          -         -\n"
            "2026-11-25T10:00:00.000000Z  2026-11-25T10:01:00.000000Z  tcp    198.51.100.9:51000  "
            "-                  203.0.113.1:8080  100.64.0.2:80      2          -         -\n");
}

// Found by an exploratory run: one inside address in two conntrack zones (two VRFs behind one
// gateway) printed as two identical INSIDE cells. A ZONE column appears once some flow has a zone.
TEST(FlowTableTest, ZoneColumnOnlyWhenSomeFlowHasOne) {
  const std::vector<FlowRecord> zone_0{NatFlowBuilder{}.ctId(1).build()};
  EXPECT_EQ(renderFlowTable(zone_0, {}).find("ZONE"), std::string::npos);
  const std::vector<FlowRecord> zones{NatFlowBuilder{}.ctId(1).build(), NatFlowBuilder{}.ctId(2).zone(7).build()};
  EXPECT_EQ(renderFlowTable(zones, {}),
            "START                        END                          PROTO  INSIDE            "
            "TRANSLATED         DESTINATION       ZONE  CT_ID  BYTES_OUT  BYTES_IN\n"
            "2026-11-25T10:00:00.000000Z  2026-11-25T10:01:00.000000Z  tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443     0      1          -         -\n"
            "2026-11-25T10:00:00.000000Z  2026-11-25T10:01:00.000000Z  tcp    100.64.0.2:33000  "
            "203.0.113.7:40001  198.51.100.1:443     7      2          -         -\n");
}

TEST(FlowTableTest, NothingForNoFlows) { EXPECT_EQ(renderFlowTable({}, {}), ""); }

}  // namespace
}  // namespace ctaudit::query
