// SPDX-License-Identifier: GPL-2.0-or-later
// SqliteSink folds a batch's events per flow before writing (one INSERT for a flow that opens and
// closes within the batch). The promise is that the database ends up exactly as if every event had
// been written on its own; these tests hold it to that on random event sequences.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "storage/flow_row.hpp"
#include "storage/spans.hpp"
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
using ctaudit::testing::portTuple;
using ctaudit::testing::replyOf;
using ctaudit::testing::TempDir;
using ctaudit::testing::withDnat;
using ctaudit::testing::withSnat;

struct Identity {
  std::uint32_t ct_id;
  FlowTuple original;
  FlowTuple reply;
  std::uint16_t zone;
};

// Few identities, so that events of one flow meet often: a reused ct_id with another tuple, the
// same tuple in another zone, ICMP (whose id lives in the port columns), IPv6, SNAT, DNAT, none.
std::vector<Identity> identities() {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  const auto udp = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  const auto udp6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::1", 53);
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.4", "198.51.100.7", 8, 0, 77);
  const auto inbound = portTuple(Protocol::Tcp, "192.0.2.9", 50000, "203.0.113.1", 80);
  return {
      {7, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), 0},
      {7, udp, withSnat(replyOf(udp), "203.0.113.1", 40002), 0},
      {7, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), 3},
      {8, udp6, withSnat(replyOf(udp6), "2001:db8:2::fe", 61000), 0},
      {9, ping, withSnat(replyOf(ping), "203.0.113.1", 1024), 0},
      {10, inbound, withDnat(replyOf(inbound), "100.64.0.2", 80), 0},
      {11, udp, replyOf(udp), 0},
  };
}

// A random event of a random identity, the way the kernel and the daemon can produce them: events
// out of order, a Destroy without a New, a Destroy with kernel times or a bound end, changing
// state, mark and counters.
FlowRecord randomEvent(std::mt19937& random, const std::vector<Identity>& pool, std::chrono::nanoseconds& clock) {
  const Identity& who = pool[random() % pool.size()];
  clock += std::chrono::milliseconds(random() % 3000);
  static constexpr std::array kEvents{EventType::New, EventType::Update, EventType::Destroy, EventType::Dump,
                                      EventType::Destroy};
  FlowRecord record = flowEvent(kEvents[random() % kEvents.size()], who.ct_id, who.original, who.reply, at(clock));
  record.zone = who.zone;
  record.mark = static_cast<std::uint32_t>(random() % 3);
  if (record.event == EventType::Destroy && random() % 3 == 0) {
    record.start = at(clock - std::chrono::milliseconds(random() % 5000));
    record.start_source = TimeSource::Kernel;
    record.end_source = TimeSource::Kernel;
  }
  if (record.event == EventType::Destroy && random() % 5 == 0) {
    record.end_source = TimeSource::Bound;
  }
  if (record.event == EventType::Update && random() % 2 == 0) {
    record.counters_original = Counters{random() % 100, random() % 100'000};
  }
  return record;
}

// Every column of every flow row but the id, as SQL literals, sorted. Not by id: a batch inserts
// its new rows in start order, one event at a time inserts them in event order.
std::vector<std::string> flowRows(const std::filesystem::path& path) {
  const SqliteDb db = testing::openRaw(path);
  sqlite3_stmt* raw = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db.get(), ("SELECT " + flowColumnList() + " FROM flows").c_str(), -1, &raw, nullptr),
            SQLITE_OK);
  const SqliteStmt stmt(raw);
  std::vector<std::string> rows;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    std::string row;
    for (int i = 0; i < sqlite3_column_count(stmt.get()); ++i) {
      row += std::string(sqlite3_column_name(stmt.get(), i)) + "=";
      switch (sqlite3_column_type(stmt.get(), i)) {
        case SQLITE_NULL: row += "NULL"; break;
        case SQLITE_INTEGER: row += std::to_string(sqlite3_column_int64(stmt.get(), i)); break;
        default: row += "blob:" + std::to_string(sqlite3_column_bytes(stmt.get(), i)) + ":" +
                        std::string(static_cast<const char*>(sqlite3_column_blob(stmt.get(), i)),
                                    static_cast<std::size_t>(sqlite3_column_bytes(stmt.get(), i)));
      }
      row += ' ';
    }
    rows.push_back(std::move(row));
  }
  std::sort(rows.begin(), rows.end());
  return rows;
}

std::unique_ptr<SqliteSink> openSink(const std::filesystem::path& path) {
  auto sink = SqliteSink::open(path, "gw1.example.net", testing::nullLogger());
  EXPECT_TRUE(sink) << sink.error().detail;
  return sink ? std::move(*sink) : nullptr;
}

TEST(SqliteSinkFoldTest, RandomSequencesEndAsIfWrittenOneEventAtATime) {
  const auto pool = identities();
  for (std::uint32_t seed = 1; seed <= 60; ++seed) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    std::mt19937 random(seed);
    std::chrono::nanoseconds clock{0};
    std::vector<FlowRecord> events;
    const std::size_t length = 20 + random() % 200;
    for (std::size_t i = 0; i < length; ++i) {
      events.push_back(randomEvent(random, pool, clock));
    }

    const TempDir dir;
    auto one_by_one = openSink(dir / "single.db");
    auto in_batches = openSink(dir / "batched.db");
    ASSERT_TRUE(one_by_one && in_batches);
    for (const FlowRecord& event : events) {
      ASSERT_EQ(one_by_one->write(std::span(&event, 1)), SinkStatus::Ok);
    }
    // Batches of random length, the first seeds the whole sequence at once.
    for (std::size_t from = 0; from < events.size();) {
      const std::size_t size = seed % 4 == 0 ? events.size() : 1 + random() % 40;
      const auto batch = std::span(events).subspan(from, std::min(size, events.size() - from));
      ASSERT_EQ(in_batches->write(batch), SinkStatus::Ok);
      from += batch.size();
    }
    one_by_one.reset();
    in_batches.reset();

    const auto expected = flowRows(dir / "single.db");
    ASSERT_FALSE(expected.empty());
    const auto batched = flowRows(dir / "batched.db");
    ASSERT_EQ(batched.size(), expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
      ASSERT_EQ(batched[i], expected[i]) << "first difference at row " << i + 1 << " of " << expected.size();
    }
    // Both ways, every row lies in a span that holds its start (spans.hpp), and no span is wider
    // than kSpanWidthMs.
    for (const char* name : {"single.db", "batched.db"}) {
      const SqliteDb db = testing::openRaw(dir / name);
      EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows f WHERE NOT EXISTS (SELECT 1 FROM spans s"
                                         " WHERE f.id BETWEEN s.first_id AND s.last_id"
                                         " AND f.start_ms BETWEEN s.min_start_ms AND s.max_start_ms)"),
                0)
          << name;
      EXPECT_EQ(testing::count(db.get(), ("SELECT count(*) FROM spans WHERE max_start_ms - min_start_ms > " +
                                          std::to_string(kSpanWidthMs))),
                0)
          << name;
    }
  }
}

// A batch that closes many rows opened in an earlier batch runs their UPDATEs 32 to a statement,
// grouped by the columns they change: here the start (a kernel start replaces the receive time,
// and the row's span moves), the translation (known only at the end), a bound end and a plain
// end, each for more than 32 rows, and some leftovers one by one. The rows still end as if every
// event had been written on its own.
TEST(SqliteSinkFoldTest, ManyRowsClosedInALaterBatchEndAsIfWrittenOneEventAtATime) {
  std::vector<FlowRecord> opens;
  std::vector<FlowRecord> closes;
  for (std::uint16_t i = 0; i < 150; ++i) {
    const auto tuple =
        portTuple(Protocol::Tcp, "100.64.0.2", static_cast<std::uint16_t>(20000 + i), "198.51.100.1", 443);
    const auto reply = withSnat(replyOf(tuple), "203.0.113.1", static_cast<std::uint16_t>(40000 + i));
    const auto opened = 1s + i * 1ms;
    // Group 1: the NEW did not carry the translation yet.
    opens.push_back(flowEvent(EventType::New, 1000U + i, tuple, i % 4 == 1 ? replyOf(tuple) : reply, at(opened)));
    FlowRecord end = flowEvent(EventType::Destroy, 1000U + i, tuple, reply, at(5s + i * 1ms));
    if (i % 4 == 0) {  // the kernel's start replaces the receive time: the start group
      end.start = at(opened - 100ms);
      end.start_source = TimeSource::Kernel;
      end.end_source = TimeSource::Kernel;
    } else if (i % 4 == 2) {
      end.end_source = TimeSource::Bound;
    }
    end.counters_original = Counters{i, i * 100U};
    closes.push_back(end);
  }
  const TempDir dir;
  auto one_by_one = openSink(dir / "single.db");
  auto in_batches = openSink(dir / "batched.db");
  ASSERT_TRUE(one_by_one && in_batches);
  for (const auto* events : {&opens, &closes}) {
    for (const FlowRecord& event : *events) {
      ASSERT_EQ(one_by_one->write(std::span(&event, 1)), SinkStatus::Ok);
    }
    ASSERT_EQ(in_batches->write(*events), SinkStatus::Ok);
  }
  one_by_one.reset();
  in_batches.reset();
  const auto expected = flowRows(dir / "single.db");
  ASSERT_EQ(expected.size(), 150U);
  EXPECT_EQ(flowRows(dir / "batched.db"), expected);
  const SqliteDb db = testing::openRaw(dir / "batched.db");
  EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows WHERE dur_ms IS NULL"), 0);
  EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows f WHERE NOT EXISTS (SELECT 1 FROM spans s"
                                     " WHERE f.id BETWEEN s.first_id AND s.last_id"
                                     " AND f.start_ms BETWEEN s.min_start_ms AND s.max_start_ms)"),
            0);
}

TEST(SqliteSinkFoldTest, AFlowThatOpensAndClosesInOneBatchIsOneInsertedRow) {
  const TempDir dir;
  auto sink = openSink(dir / "flows.db");
  ASSERT_TRUE(sink);
  const auto pool = identities();
  const Identity& tcp = pool[0];
  const std::vector<FlowRecord> batch{
      flowEvent(EventType::New, tcp.ct_id, tcp.original, tcp.reply, at(1s)),
      flowEvent(EventType::Update, tcp.ct_id, tcp.original, tcp.reply, at(2s)),
      flowEvent(EventType::Destroy, tcp.ct_id, tcp.original, tcp.reply, at(3s)),
  };
  // An UPDATE or DELETE on flows would mean the row was written in steps.
  testing::execute(dir / "flows.db",
          "CREATE TRIGGER no_update BEFORE UPDATE ON flows BEGIN SELECT RAISE(ABORT, 'updated in steps'); END");
  ASSERT_EQ(sink->write(batch), SinkStatus::Ok);
  const SqliteDb db = testing::openRaw(dir / "flows.db");
  EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows WHERE dur_ms = 2000"), 1);
  EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows"), 1);
}

}  // namespace
}  // namespace ctaudit::storage
