// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/schema.hpp"

#include <gtest/gtest.h>

#include "storage/flow_row.hpp"
#include "storage/sqlite_sink.hpp"
#include "tests/support/flow_builders.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/storage/sqlite_test_util.hpp"

namespace ctaudit::storage {
namespace {

using namespace std::chrono_literals;
using ctaudit::testing::at;
using ctaudit::testing::flowEvent;
using ctaudit::testing::icmpTuple;
using ctaudit::testing::ip;
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::TempDir;
using ctaudit::testing::withSnat;
using testing::count;
using testing::scalar;

SqliteDb openMemory() {
  sqlite3* raw = nullptr;
  EXPECT_EQ(sqlite3_open(":memory:", &raw), SQLITE_OK);
  return SqliteDb(raw);
}

// What endpointAddressTextSql renders for `address` (with some port), evaluated by SQLite.
std::string renderedBySqlite(sqlite3* db, const IpAddress& address) {
  const std::string sql = "SELECT " + endpointAddressTextSql("?1");
  sqlite3_stmt* raw = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &raw, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  const SqliteStmt stmt(raw);
  const ColumnValue stored = endpointValue(address, 65535);  // as the flows table holds it
  EXPECT_EQ(bindValue(stmt.get(), 1, stored), SQLITE_OK);
  EXPECT_EQ(sqlite3_step(stmt.get()), SQLITE_ROW);
  const auto* text = sqlite3_column_text(stmt.get(), 0);
  return text == nullptr ? "NULL" : reinterpret_cast<const char*>(text);  // NOLINT: SQLite text is unsigned char
}

TEST(SchemaTest, CreatesOnceAndThenOnlyChecks) {
  const SqliteDb db = openMemory();
  const auto created = applySchema(db.get(), "gw1", at(0s));
  ASSERT_TRUE(created) << created.error().detail;
  EXPECT_EQ(created->schema_version, kSchemaVersion);
  EXPECT_EQ(created->created_at, "2026-11-25T10:00:00.000000000Z");

  const auto again = applySchema(db.get(), "gw1", at(60s));
  ASSERT_TRUE(again) << again.error().detail;
  EXPECT_EQ(again->created_at, "2026-11-25T10:00:00.000000000Z");
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM meta"), 4);

  const auto checked = checkSchema(db.get());
  ASSERT_TRUE(checked) << checked.error().detail;
  EXPECT_EQ(checked->observer_hostname, "gw1");
}

TEST(SchemaTest, ReadersRefuseAnEmptyDatabase) {
  const SqliteDb db = openMemory();
  const auto checked = checkSchema(db.get());
  ASSERT_FALSE(checked);
  EXPECT_EQ(checked.error().code, Errc::Storage);
  EXPECT_NE(checked.error().detail.find("with no ctaudit schema yet"), std::string::npos) << checked.error().detail;
  EXPECT_NE(checked.error().detail.find("otherwise it is not a ctaudit flow database"), std::string::npos);
}

TEST(SchemaTest, ReadersAndWritersRefuseANewerVersion) {
  const SqliteDb db = openMemory();
  ASSERT_TRUE(applySchema(db.get(), "gw1", at(0s)));
  ASSERT_EQ(sqlite3_exec(db.get(), "PRAGMA user_version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  for (const auto& result : {checkSchema(db.get()), applySchema(db.get(), "gw1", at(0s))}) {
    ASSERT_FALSE(result);
    EXPECT_EQ(result.error().code, Errc::Storage);
    EXPECT_NE(result.error().detail.find("newer ctaudit (schema version 99"), std::string::npos)
        << result.error().detail;
  }
}

TEST(SchemaTest, AddressTextIsValidAndParsesBack) {
  const SqliteDb db = openMemory();
  const std::vector<std::pair<std::string_view, std::string_view>> cases{
      {"0.0.0.0", "0.0.0.0"},
      {"255.255.255.255", "255.255.255.255"},
      {"100.64.10.2", "100.64.10.2"},
      {"::", "0:0:0:0:0:0:0:0"},
      {"::1", "0:0:0:0:0:0:0:1"},
      {"2001:db8::1", "2001:db8:0:0:0:0:0:1"},
      {"2001:DB8:a0b:12f0::10", "2001:db8:a0b:12f0:0:0:0:10"},
      {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
      {"::ffff:192.0.2.1", "0:0:0:0:0:ffff:c000:201"},
  };
  for (const auto& [input, expected] : cases) {
    const IpAddress address = ip(input);
    const std::string text = renderedBySqlite(db.get(), address);
    EXPECT_EQ(text, expected);
    EXPECT_EQ(IpAddress::parse(text), address) << text;
  }
}

TEST(SchemaTest, TheTextViewShowsAddressesTimesAndTheWholeReplyTuple) {
  const TempDir dir;
  auto sink = SqliteSink::open(dir / "flows.db", "gw1", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  const auto udp6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::53", 53);
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.3", "198.51.100.1", 8, 0, 77);
  FlowRecord closed = flowEvent(EventType::Destroy, 1, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), at(61500ms));
  closed.start = at(1250ms);
  closed.start_source = TimeSource::Kernel;
  std::vector<FlowRecord> batch{
      closed,
      flowEvent(EventType::Dump, 2, udp6, replyOf(udp6), at(2s)),
      flowEvent(EventType::New, 3, ping, withSnat(replyOf(ping), "203.0.113.1", 1024), at(3s)),
      flowEvent(EventType::New, 4, udp6, withSnat(replyOf(udp6), "2001:db8:2::fe", 6000), at(4s)),
  };
  // Flow 4's translation is in its reply tuple only (no status bits): the packed `reply` column.
  batch[3].nat = {};
  ASSERT_EQ((*sink)->write(batch), SinkStatus::Ok);

  const SqliteDb db = testing::openRaw(dir / "flows.db");
  const auto row = [&](std::uint32_t ct_id, const std::string& columns) {
    return scalar(db.get(), "SELECT " + columns + " FROM flows_text WHERE ct_id = " + std::to_string(ct_id));
  };
  EXPECT_EQ(row(1, "proto || ' ' || orig_src || ':' || orig_sport || ' -> ' || orig_dst || ':' || orig_dport"),
            "tcp 100.64.0.2:33000 -> 198.51.100.1:443");
  EXPECT_EQ(row(1, "reply_src || ':' || reply_sport || ' -> ' || reply_dst || ':' || reply_dport"),
            "198.51.100.1:443 -> 203.0.113.1:40001");
  EXPECT_EQ(row(1, "nat_src || ':' || nat_src_port || ' ' || ifnull(nat_dst, '-')"), "203.0.113.1:40001 -");
  EXPECT_EQ(row(1, "start_time || ' ' || end_time || ' ' || duration_s"),
            "2026-11-25T10:00:01.250Z 2026-11-25T10:01:01.500Z 60.25");
  EXPECT_EQ(row(1, "start_source || ' ' || end_source || ' ' || observed_at_start || ' ' || tcp_state_name"),
            "kernel receive 0 TIME_WAIT");
  EXPECT_EQ(row(2, "orig_src || ' ' || reply_dst || ' ' || ifnull(end_time, 'open') || ' ' || observed_at_start"),
            "2001:db8:1:0:0:0:0:2 2001:db8:1:0:0:0:0:2 open 1");
  EXPECT_EQ(row(3, "proto || ' ' || icmp_type || '/' || icmp_code || ' ' || reply_icmp_type || ' ' || orig_sport || "
                   "' ' || nat_src_port || ' ' || reply_dport"),
            "icmp 8/0 0 77 1024 1024");
  EXPECT_EQ(row(4, "reply_src || ' ' || reply_sport || ' ' || reply_dst || ' ' || reply_dport || ' ' || "
                   "ifnull(nat_src, '-')"),
            "2001:db8:2:0:0:0:0:53 53 2001:db8:2:0:0:0:0:fe 6000 -");
}

}  // namespace
}  // namespace ctaudit::storage
