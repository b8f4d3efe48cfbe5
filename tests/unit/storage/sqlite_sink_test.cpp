// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/sqlite_sink.hpp"

#include <gtest/gtest.h>
#include <spdlog/sinks/ringbuffer_sink.h>

#include <algorithm>
#include <fstream>
#include <vector>

#include "ctaudit_version.hpp"
#include "storage/flow_reader.hpp"
#include "storage/flow_row.hpp"
#include "storage/schema.hpp"
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
using testing::count;
using testing::openRaw;
using testing::scalar;

class SqliteSinkTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
    ASSERT_TRUE(sink) << sink.error().detail;
    sink_ = std::move(*sink);
  }

  SinkStatus write(std::vector<FlowRecord> batch) { return sink_->write(batch); }

  std::vector<FlowRecord> readAll() {
    auto reader = FlowReader::open(path_);
    EXPECT_TRUE(reader) << reader.error().detail;
    if (!reader) {
      return {};
    }
    auto records = (*reader)->find(FlowQuery{});
    EXPECT_TRUE(records) << records.error().detail;
    return records ? *records : std::vector<FlowRecord>{};
  }

  std::int64_t rows() {
    const SqliteDb db = openRaw(path_);
    return count(db.get(), "SELECT count(*) FROM flows");
  }

  // Closes the sink and opens the file again, as a daemon restart does.
  void restart() {
    sink_.reset();
    auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
    ASSERT_TRUE(sink) << sink.error().detail;
    sink_ = std::move(*sink);
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "state" / "ctaudit" / "flows.db";
  std::unique_ptr<SqliteSink> sink_;

  FlowTuple tcp_ = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  FlowTuple masqueraded_ = withSnat(replyOf(tcp_), "203.0.113.1", 40001);
};

TEST_F(SqliteSinkTest, CreatesDirectoriesAndAVersionedWalDatabase) {
  ASSERT_TRUE(std::filesystem::exists(path_));
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(count(db.get(), "PRAGMA application_id"), kApplicationId);
  EXPECT_EQ(scalar(db.get(), "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(count(db.get(), "PRAGMA auto_vacuum"), 2);  // INCREMENTAL
  EXPECT_EQ(scalar(db.get(), "SELECT value FROM meta WHERE key = 'observer_hostname'"), "gw1.example.net");
  EXPECT_EQ(scalar(db.get(), "SELECT value FROM meta WHERE key = 'created_at'").back(), 'Z');
  EXPECT_EQ(scalar(db.get(), "SELECT value FROM meta WHERE key = 'created_by'").substr(0, 8), "ctaudit ");
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name LIKE 'flows_%'"), 9);
}

TEST_F(SqliteSinkTest, RoundTripsEveryKindOfFlowExactly) {
  const auto udp6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::53", 53);
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.3", "198.51.100.1", 8, 0, 77);
  const auto inbound = portTuple(Protocol::Tcp, "198.51.100.9", 51000, "203.0.113.1", 8080);
  const auto plain = portTuple(Protocol::Udp, "192.0.2.10", 123, "192.0.2.20", 123);
  std::vector<FlowRecord> batch{
      flowEvent(EventType::Destroy, 1, tcp_, masqueraded_, at(60s)),
      flowEvent(EventType::New, 2, udp6, withSnat(replyOf(udp6), "2001:db8:2::fe", 61000), at(2s)),
      flowEvent(EventType::Destroy, 3, ping, withSnat(replyOf(ping), "203.0.113.1", 1024), at(33s)),
      flowEvent(EventType::New, 4, inbound, withDnat(replyOf(inbound), "100.64.0.2", 80), at(4s)),
      flowEvent(EventType::Destroy, 0xFFFFFFF0U, plain, replyOf(plain), at(35s)),
  };
  batch[0].start = at(1s);
  batch[0].start_source = TimeSource::Kernel;
  batch[0].end_source = TimeSource::Kernel;
  batch[0].event_time_source = TimeSource::Kernel;  // read back as its end
  batch[0].zone = 3;
  batch[0].mark = 0xDEADBEEF;
  batch[2].start = at(3s);
  batch[4].start = at(5s);
  ASSERT_EQ(write(batch), SinkStatus::Ok);
  EXPECT_EQ(sink_->stats().records_written, 5U);

  // Oldest start first: 1s, 2s, 3s, 4s, 5s.
  EXPECT_EQ(readAll(), batch);
}

TEST_F(SqliteSinkTest, NewThenDestroyIsOneRowWithTheKernelStart) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  FlowRecord destroy = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(90s));
  destroy.start = at(1500ms);
  destroy.start_source = TimeSource::Kernel;
  ASSERT_EQ(write({destroy}), SinkStatus::Ok);

  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0], destroy);  // everything the DESTROY said, the NEW's receive start replaced
  EXPECT_EQ(rows(), 1);
}

TEST_F(SqliteSinkTest, DestroyKeepsTheNewsStartWhenItCarriesNone) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(90s))}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].start, at(2s));
  EXPECT_EQ(records[0].end, at(90s));
  EXPECT_EQ(records[0].counters_reply, (Counters{8, 4000}));
}

TEST_F(SqliteSinkTest, NewAndDestroyInOneBatchAreOneRow) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s)),
                   flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(3s))}),
            SinkStatus::Ok);
  EXPECT_EQ(rows(), 1);
  ASSERT_EQ(readAll().size(), 1U);
  EXPECT_EQ(readAll()[0].end, at(3s));
}

TEST_F(SqliteSinkTest, DestroyOfAFlowNeverSeenOpenIsStoredInFull) {
  FlowRecord destroy = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(90s));
  destroy.start = at(30s);
  destroy.start_source = TimeSource::Kernel;
  ASSERT_EQ(write({destroy}), SinkStatus::Ok);
  EXPECT_EQ(readAll(), std::vector<FlowRecord>{destroy});
}

TEST_F(SqliteSinkTest, NewAndDumpOfTheSameFlowAreOneRowInEitherOrder) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s)),
                   flowEvent(EventType::Dump, 42, tcp_, masqueraded_, at(3s))}),
            SinkStatus::Ok);
  const auto other = portTuple(Protocol::Tcp, "100.64.0.9", 34000, "198.51.100.1", 443);
  const auto other_reply = withSnat(replyOf(other), "203.0.113.1", 40002);
  ASSERT_EQ(write({flowEvent(EventType::Dump, 43, other, other_reply, at(3s)),
                   flowEvent(EventType::New, 43, other, other_reply, at(2s))}),
            SinkStatus::Ok);
  EXPECT_EQ(rows(), 2);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 2U);
  for (const FlowRecord& record : records) {
    EXPECT_EQ(record.start, at(2s)) << record.ct_id;
    EXPECT_FALSE(record.observed_at_start) << record.ct_id;  // both NEWs were seen
    EXPECT_EQ(record.counters_original, (Counters{10, 1000})) << record.ct_id;
  }
}

TEST_F(SqliteSinkTest, AFlowOnlyInTheDumpIsObservedAtStart) {
  ASSERT_EQ(write({flowEvent(EventType::Dump, 42, tcp_, masqueraded_, at(3s))}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_TRUE(records[0].observed_at_start);
  EXPECT_EQ(records[0].event, EventType::New);
}

TEST_F(SqliteSinkTest, UpdateChangesTheOpenRowsState) {
  FlowRecord created = flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s));
  ASSERT_EQ(write({created}), SinkStatus::Ok);
  FlowRecord update = flowEvent(EventType::Update, 42, tcp_, masqueraded_, at(3s));
  update.mark = 9;
  ASSERT_EQ(write({update}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].tcp_state, update.tcp_state);
  EXPECT_NE(records[0].tcp_state, created.tcp_state);
  EXPECT_EQ(records[0].mark, 9U);
  EXPECT_EQ(records[0].start, at(2s));
  EXPECT_FALSE(records[0].end);
}

TEST_F(SqliteSinkTest, UpdateWithoutAnOpenRowOpensOne) {
  ASSERT_EQ(write({flowEvent(EventType::Update, 42, tcp_, masqueraded_, at(3s))}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].start);  // an UPDATE does not say when the flow began
  EXPECT_FALSE(records[0].end);
  EXPECT_EQ(records[0].event_time, at(3s));
  EXPECT_EQ(records[0].nat, flowEvent(EventType::Update, 42, tcp_, masqueraded_, at(3s)).nat);
}

TEST_F(SqliteSinkTest, AReusedIdOfAnotherTupleOrZoneIsAnotherFlow) {
  const auto other = portTuple(Protocol::Tcp, "100.64.0.9", 34000, "198.51.100.1", 443);
  FlowRecord other_zone = flowEvent(EventType::New, 42, tcp_, masqueraded_, at(4s));
  other_zone.zone = 1;
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s)),
                   flowEvent(EventType::New, 42, other, replyOf(other), at(3s)), other_zone,
                   flowEvent(EventType::Destroy, 42, other, replyOf(other), at(5s))}),
            SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 3U);
  EXPECT_FALSE(records[0].end);
  EXPECT_EQ(records[1].end, at(5s));
  EXPECT_EQ(records[1].original, other);
  EXPECT_FALSE(records[2].end);
}

// Restart reconciliation: the DESTROY was lost while the daemon was down, so the daemon closes the
// open row with a bound. It reads back as such, and the view names it.
TEST_F(SqliteSinkTest, ABoundEndIsStoredAndReadBackAsABound) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  FlowRecord bound = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(300s));
  bound.end_source = TimeSource::Bound;
  bound.counters_original.reset();
  bound.counters_reply.reset();
  ASSERT_EQ(write({bound}), SinkStatus::Ok);
  EXPECT_EQ(rows(), 1);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].end, at(300s));
  EXPECT_EQ(records[0].end_source, TimeSource::Bound);
  EXPECT_EQ(records[0].start, at(2s));
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(scalar(db.get(), "SELECT end_source FROM flows_text"), "bound");
  EXPECT_EQ(count(db.get(), "SELECT (packed >> 16) & 16 FROM flows"), 16);
}

TEST_F(SqliteSinkTest, AClosedFlowIsNotReopenedByALateEventOfTheSameKey) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s)),
                   flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(3s)),
                   flowEvent(EventType::New, 42, tcp_, masqueraded_, at(10s))}),
            SinkStatus::Ok);
  EXPECT_EQ(rows(), 2);
}

// The daemon's FlowTable ends a flow whose key came back as another entry (another mapping) with
// a bound DESTROY just before the new entry's first record, often in one batch: two rows, each
// with its own mapping.
TEST_F(SqliteSinkTest, ABoundEndThenTheSameKeyWithAnotherMappingAreTwoRows) {
  FlowRecord dumped = flowEvent(EventType::Dump, 42, tcp_, masqueraded_, at(2s));
  ASSERT_EQ(write({dumped}), SinkStatus::Ok);
  FlowRecord bound = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s));
  bound.end_source = TimeSource::Bound;
  bound.event_time_source = TimeSource::Bound;
  bound.counters_original.reset();
  bound.counters_reply.reset();
  const auto remapped = withSnat(replyOf(tcp_), "203.0.113.1", 40594);
  FlowRecord again = flowEvent(EventType::Dump, 42, tcp_, remapped, at(10s));
  ASSERT_EQ(write({bound, again}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 2U);
  EXPECT_EQ(records[0].reply, masqueraded_);
  EXPECT_EQ(records[0].end, at(9s));
  EXPECT_EQ(records[1].reply, remapped);
  EXPECT_FALSE(records[1].end);
}

// Two daemons on one file would store every flow twice: the second stops at its start, saying what
// to do; once the first is gone the file opens again.
TEST_F(SqliteSinkTest, ASecondWriterOnTheSameFileIsRefused) {
  auto second = SqliteSink::open(path_, "gw2.example.net", testing::nullLogger());
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().code, Errc::Io);
  EXPECT_NE(second.error().detail.find("is being written by another process (another ctauditd?)"), std::string::npos)
      << second.error().detail;
  EXPECT_NE(second.error().detail.find("systemctl stop ctauditd"), std::string::npos);
  sink_.reset();
  auto again = SqliteSink::open(path_, "gw2.example.net", testing::nullLogger());
  ASSERT_TRUE(again) << again.error().detail;
  ASSERT_EQ((*again)->write({{flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s))}}), SinkStatus::Ok);
}

TEST_F(SqliteSinkTest, SaysWhenItsFileWasDeletedOrReplaced) {
  EXPECT_FALSE(sink_->fileMoved());
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s))}), SinkStatus::Ok);
  EXPECT_FALSE(sink_->fileMoved());
  std::filesystem::remove(path_);
  EXPECT_TRUE(sink_->fileMoved()) << "deleted";
  std::ofstream(path_) << "another file at the path";
  EXPECT_TRUE(sink_->fileMoved()) << "replaced";
}

TEST_F(SqliteSinkTest, AFailingRecordRollsTheWholeBatchBackAndIsLoggedOnce) {
  auto messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  sink_.reset();  // the file takes one writer at a time
  auto sink = SqliteSink::open(path_, "gw1.example.net", std::make_shared<spdlog::logger>("sqlite", messages));
  ASSERT_TRUE(sink) << sink.error().detail;
  // Refuses one port, as a full disk or a broken row would refuse one write.
  testing::execute(path_, "CREATE TRIGGER refuse BEFORE INSERT ON flows WHEN (NEW.orig_src & 65535) = 666 "
                          "BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
  const auto bad = portTuple(Protocol::Tcp, "100.64.0.9", 666, "198.51.100.1", 443);
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  const std::vector<FlowRecord> batch{
      flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s)),
      flowEvent(EventType::Destroy, 2, other, replyOf(other), at(2s)),
      flowEvent(EventType::New, 3, bad, replyOf(bad), at(3s)),
  };
  EXPECT_EQ((*sink)->write(batch), SinkStatus::Rejected);
  EXPECT_EQ((*sink)->write(batch), SinkStatus::Rejected);
  EXPECT_EQ(rows(), 0);
  EXPECT_EQ((*sink)->stats().batches_failed, 2U);

  const std::vector<FlowRecord> good(batch.begin(), batch.begin() + 2);
  EXPECT_EQ((*sink)->write(good), SinkStatus::Ok);
  EXPECT_EQ(rows(), 2);

  const auto logged = messages->last_formatted();
  ASSERT_EQ(logged.size(), 2U);
  EXPECT_NE(logged[0].find("refused by test"), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("rolled back"), std::string::npos) << logged[0];
  EXPECT_NE(logged[1].find("writing flows again"), std::string::npos) << logged[1];
}

// Without a statement journal (OR FAIL), a statement that stops half-way keeps the rows it wrote
// before the failure until the transaction ends: the 40th of 64 new rows fails in the second
// 32-row INSERT, and the rolled-back batch must leave none of the 64, nor of the rows it closed.
TEST_F(SqliteSinkTest, AStatementThatStopsHalfWayLeavesNothingOfItsBatch) {
  const auto tuple = [](std::uint16_t port) { return portTuple(Protocol::Udp, "100.64.0.3", port, "198.51.100.1", 53); };
  ASSERT_EQ(write({flowEvent(EventType::New, 1000, tuple(999), replyOf(tuple(999)), at(0s))}), SinkStatus::Ok);
  testing::execute(path_, "CREATE TRIGGER refuse BEFORE INSERT ON flows WHEN (NEW.orig_src & 65535) = 1039 "
                          "BEGIN SELECT RAISE(FAIL, 'refused by test'); END");
  std::vector<FlowRecord> batch{flowEvent(EventType::Destroy, 1000, tuple(999), replyOf(tuple(999)), at(1s))};
  for (std::uint16_t n = 0; n < 64; ++n) {
    batch.push_back(flowEvent(EventType::New, 1 + n, tuple(1000 + n), replyOf(tuple(1000 + n)), at(1s)));
  }
  EXPECT_EQ(write(batch), SinkStatus::Rejected);
  EXPECT_EQ(rows(), 1);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows WHERE dur_ms IS NULL"), 1);  // 1000 still open
}

// A trigger added at the shell runs under the sink's OR FAIL, which overrides the conflict clause
// of the trigger's own statements (docs/schema.md); an UPSERT in it keeps working.
TEST_F(SqliteSinkTest, AnUpsertInATriggerAddedAtTheShellKeepsWorking) {
  testing::execute(path_, "CREATE TABLE per_host (host PRIMARY KEY, flows INTEGER NOT NULL);"
                          "CREATE TRIGGER count_flows AFTER INSERT ON flows BEGIN "
                          "INSERT INTO per_host (host, flows) VALUES (NEW.orig_src >> 16, 1) "
                          "ON CONFLICT (host) DO UPDATE SET flows = flows + 1; END");
  std::vector<FlowRecord> batch;
  for (std::uint16_t n = 0; n < 40; ++n) {
    const auto tuple = portTuple(Protocol::Udp, n % 2 == 0 ? "100.64.0.3" : "100.64.0.4", 5000 + n, "198.51.100.1", 53);
    batch.push_back(flowEvent(EventType::New, 1 + n, tuple, replyOf(tuple), at(1s)));
  }
  ASSERT_EQ(write(batch), SinkStatus::Ok);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(scalar(db.get(), "SELECT group_concat(flows) FROM per_host"), "20,20");
}

TEST_F(SqliteSinkTest, ABusyDatabaseAsksForARetryAndKeepsNothing) {
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const std::vector<FlowRecord> batch{flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s))};
  EXPECT_EQ(sink_->write(batch), SinkStatus::Retry);
  EXPECT_EQ(sink_->stats().batches_retried, 1U);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sink_->write(batch), SinkStatus::Ok);
  EXPECT_EQ(rows(), 1);
}

TEST_F(SqliteSinkTest, AnEmptyBatchAndFlushAreOk) {
  EXPECT_EQ(write({}), SinkStatus::Ok);
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
}

// The WAL is checkpointed every kCheckpointPages (10,000) pages, not SQLite's default 1,000: the
// pages that batch after batch change again are then copied into the database once for several
// batches. With the default, the -wal file would stop growing at about 1,000 pages plus a batch
// (4.3 MB here), since a checkpoint lets the next commit start the file over.
TEST_F(SqliteSinkTest, TheWalHoldsSeveralThousandPagesBeforeACheckpoint) {
  std::uint32_t ct_id = 0;
  for (int batch_no = 0; batch_no < 80; ++batch_no) {
    std::vector<FlowRecord> batch;
    for (int i = 0; i < 2000; ++i) {
      ++ct_id;
      const std::string inside = "100.64." + std::to_string(ct_id / 250 % 250) + "." + std::to_string(ct_id % 250 + 1);
      const auto tuple = portTuple(Protocol::Udp, inside, static_cast<std::uint16_t>(1024 + ct_id % 60000),
                                   "198.51.100.1", 53);
      batch.push_back(flowEvent(EventType::New, ct_id, tuple, replyOf(tuple), at(std::chrono::seconds{batch_no})));
    }
    ASSERT_EQ(write(batch), SinkStatus::Ok);
  }
  const std::filesystem::path wal = path_.string() + "-wal";
  EXPECT_GT(std::filesystem::file_size(wal), std::uintmax_t{8} << 20U);
}

// A reader without write access to the directory can only open a WAL database whose -wal and -shm
// files exist (the package test checks that with a real group member); they must outlive the
// daemon, with the database file's permissions.
TEST_F(SqliteSinkTest, KeepsTheWalAndShmFilesAfterClosing) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  sink_.reset();
  const auto permissions = [](const std::filesystem::path& file) {
    std::error_code ec;
    const auto status = std::filesystem::status(file, ec);
    EXPECT_FALSE(ec) << file << ": " << ec.message();
    return status.permissions();
  };
  for (const char* suffix : {"-wal", "-shm"}) {
    const std::filesystem::path file = path_.string() + suffix;
    ASSERT_TRUE(std::filesystem::exists(file)) << file;
    EXPECT_EQ(permissions(file), permissions(path_)) << file;
  }
  EXPECT_EQ(readAll().size(), 1U);
}

TEST_F(SqliteSinkTest, ReopeningKeepsTheRowsAndRecordsARenamedHost) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  sink_.reset();
  auto reopened = SqliteSink::open(path_, "gw1-renamed", testing::nullLogger());
  ASSERT_TRUE(reopened) << reopened.error().detail;
  ASSERT_EQ((*reopened)->write({{flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s))}}), SinkStatus::Ok);
  EXPECT_EQ(rows(), 1);
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->observerHostname(), "gw1-renamed");
}

TEST_F(SqliteSinkTest, RefusesADatabaseOfANewerVersion) {
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    const std::string newer = "PRAGMA user_version = " + std::to_string(kSchemaVersion + 1);
    ASSERT_EQ(sqlite3_exec(db.get(), newer.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto sink = SqliteSink::open(path_, "gw1", testing::nullLogger());
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, Errc::Storage);
  EXPECT_NE(sink.error().detail.find("newer ctaudit"), std::string::npos) << sink.error().detail;
  EXPECT_NE(sink.error().detail.find(path_.string()), std::string::npos) << sink.error().detail;
}

TEST_F(SqliteSinkTest, RefusesAnotherApplicationsDatabase) {
  const auto foreign = dir_ / "foreign.db";
  {
    const SqliteDb db = openRaw(foreign);
    ASSERT_EQ(sqlite3_exec(db.get(), "CREATE TABLE t (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto sink = SqliteSink::open(foreign, "gw1", testing::nullLogger());
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, Errc::Storage);
  EXPECT_NE(sink.error().detail.find("another application"), std::string::npos) << sink.error().detail;

  const auto text = dir_ / "notes.txt";
  {
    std::FILE* file = std::fopen(text.c_str(), "w");
    ASSERT_NE(file, nullptr);
    std::fputs("this is not a database, but it is long enough to hold a header of one hundred bytes or so......\n",
               file);
    std::fclose(file);
  }
  auto refused = SqliteSink::open(text, "gw1", testing::nullLogger());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::Storage) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("is not a SQLite database"), std::string::npos) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("check the database path"), std::string::npos) << refused.error().detail;
}

// A ctaudit file cut short: the daemon says it is damaged and how to start again, and leaves it.
TEST_F(SqliteSinkTest, ADamagedFileIsRefusedSayingHowToStartAgain) {
  sink_.reset();
  std::filesystem::resize_file(path_, 4096);  // page 1 only: the tables' pages are gone
  auto refused = SqliteSink::open(path_, "gw1", testing::nullLogger());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::Storage) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("is damaged"), std::string::npos) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("move it aside"), std::string::npos) << refused.error().detail;
  EXPECT_EQ(std::filesystem::file_size(path_), 4096U);
}

// Writes 4096 bytes of garbage over the root page of table or index `name` in the closed file.
void damageRootPage(const std::filesystem::path& path, const std::string& name) {
  std::int64_t page = 0;
  {
    const SqliteDb raw = openRaw(path);
    page = count(raw.get(), "SELECT rootpage FROM sqlite_master WHERE name = '" + name + "'");
  }
  ASSERT_GT(page, 1);
  std::fstream file(path, std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>((page - 1) * 4096));
  const std::string garbage(4096, '\x5a');
  file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
}

// Found by an exploratory run: a file damaged past the pages that opening it reads starts, then
// refuses every batch, and the daemon said only "until this is fixed", waiting for ever. The log
// now says that it will not recover, and what to do.
TEST_F(SqliteSinkTest, DamageFoundByAWriteIsLoggedAsDamageWithWhatToDo) {
  sink_.reset();
  damageRootPage(path_, "flows_nat_src");
  auto messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  auto sink = SqliteSink::open(path_, "gw1.example.net", std::make_shared<spdlog::logger>("sqlite", messages));
  ASSERT_TRUE(sink) << "opening does not read that index: " << sink.error().detail;
  const std::vector<FlowRecord> batch{flowEvent(EventType::Destroy, 1, tcp_, masqueraded_, at(1s))};
  EXPECT_EQ((*sink)->write(batch), SinkStatus::Failed);
  const auto logged = messages->last_formatted();
  ASSERT_FALSE(logged.empty());
  EXPECT_NE(logged.back().find("is damaged and will not recover by itself"), std::string::npos) << logged.back();
  EXPECT_NE(logged.back().find("move the file aside with its -wal and -shm"), std::string::npos) << logged.back();
}

// The same run: damage in the flows table's own pages, which opening reads after the schema, was
// refused with SQLite's words alone ("database disk image is malformed").
TEST_F(SqliteSinkTest, DamageInTheFlowsTableIsRefusedSayingHowToStartAgain) {
  sink_.reset();
  damageRootPage(path_, "flows");
  auto refused = SqliteSink::open(path_, "gw1", testing::nullLogger());
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().detail.find("is damaged"), std::string::npos) << refused.error().detail;
  EXPECT_NE(refused.error().detail.find("move it aside"), std::string::npos) << refused.error().detail;
}

TEST_F(SqliteSinkTest, AnUncreatableDirectoryIsAnIoError) {
  const auto blocker = dir_ / "file";
  std::FILE* file = std::fopen(blocker.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fclose(file);
  auto sink = SqliteSink::open(blocker / "sub" / "flows.db", "gw1", testing::nullLogger());
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().code, Errc::Io);
  EXPECT_NE(sink.error().sys_errno, 0);
}

GapRecord gap(GapReason reason, Timestamp start, Timestamp end) {
  GapRecord g;
  g.reason = reason;
  g.start = start;
  g.end = end;
  return g;
}

TEST_F(SqliteSinkTest, WritesGapsAsRowsTheShellCanRead) {
  GapRecord overrun = gap(GapReason::KernelOverrun, at(10s), at(12s));
  overrun.overruns = 3;
  GapRecord sink_failure = gap(GapReason::SinkFailure, at(20s), at(80s));
  sink_failure.lost_records = 1500;
  sink_failure.sink = "jsonl";
  EXPECT_EQ(sink_->writeGap(overrun), SinkStatus::Ok);
  EXPECT_EQ(sink_->writeGap(sink_failure), SinkStatus::Ok);

  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM gaps"), 2);
  EXPECT_EQ(scalar(db.get(), "SELECT reason || ' ' || start_ns || ' ' || end_ns || ' ' || lost_records || ' ' || "
                             "overruns || ' ' || ifnull(sink, 'NULL') FROM gaps ORDER BY id LIMIT 1"),
            "kernel_overrun " + std::to_string(toUnixNanos(at(10s))) + " " + std::to_string(toUnixNanos(at(12s))) +
                " 0 3 NULL");
  EXPECT_EQ(scalar(db.get(), "SELECT reason || ' ' || lost_records || ' ' || sink || ' ' || start_time || ' ' || "
                             "duration_s FROM gaps_text WHERE id = 2"),
            "sink_failure 1500 jsonl 2026-11-25T10:00:20.000Z 60.0");
  EXPECT_EQ(sink_->stats().records_written, 0U) << "gaps are not flow records";
}

TEST_F(SqliteSinkTest, AGapThatEndsBeforeItStartsIsRefused) {
  EXPECT_EQ(sink_->writeGap(gap(GapReason::QueueOverflow, at(12s), at(10s))), SinkStatus::Rejected);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM gaps"), 0);
}

TEST_F(SqliteSinkTest, AGapWaitsWhileTheDatabaseIsBusy) {
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const GapRecord overrun = gap(GapReason::KernelOverrun, at(10s), at(12s));
  EXPECT_EQ(sink_->writeGap(overrun), SinkStatus::Retry);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sink_->writeGap(overrun), SinkStatus::Ok);
  EXPECT_EQ(count(other.get(), "SELECT count(*) FROM gaps"), 1);
}

// The daemon's runs: what a restart learns about the run before it.
class SqliteRunTest : public SqliteSinkTest {
protected:
  // The runs table as "started alive stopped" (ns offsets from kTestEpoch in seconds; "-" for NULL).
  std::string runs() {
    const SqliteDb db = openRaw(path_);
    const std::string sql =
        "SELECT group_concat(((started_ns - " + std::to_string(toUnixNanos(at(0s))) + ") / 1000000000) || ' ' || " +
        "((alive_ns - " + std::to_string(toUnixNanos(at(0s))) + ") / 1000000000) || ' ' || " +
        "ifnull((stopped_ns - " + std::to_string(toUnixNanos(at(0s))) + ") / 1000000000, '-'), ', ') " +
        "FROM (SELECT * FROM runs ORDER BY id)";
    return scalar(db.get(), sql);
  }
};

TEST_F(SqliteRunTest, TheFirstRunHasNoPrevious) {
  auto history = sink_->beginRun(at(0s));
  ASSERT_TRUE(history) << history.error().detail;
  EXPECT_EQ(*history, RunHistory{});
  EXPECT_EQ(runs(), "0 0 -");
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(scalar(db.get(), "SELECT version FROM runs"), kVersion);
  EXPECT_EQ(scalar(db.get(), "SELECT observer_hostname FROM runs"), "gw1.example.net");
  EXPECT_EQ(scalar(db.get(), "SELECT started || ' ' || clean_stop FROM runs_text"), "2026-11-25T10:00:00.000Z 0");
}

TEST_F(SqliteRunTest, ACleanStopIsRememberedByTheNextRun) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  ASSERT_TRUE(sink_->endRun(at(100s)));
  restart();
  auto history = sink_->beginRun(at(300s));
  ASSERT_TRUE(history) << history.error().detail;
  EXPECT_EQ(history->previous_start, at(0s));
  EXPECT_EQ(history->previous_alive, at(100s));
  EXPECT_TRUE(history->previous_clean);
  EXPECT_EQ(runs(), "0 100 100, 300 300 -");
}

// The -wal file holds up to kCheckpointPages while the daemon runs; a clean stop empties it into
// the database file, so that the stopped daemon leaves the flows in flows.db alone.
TEST_F(SqliteRunTest, ACleanStopLeavesTheWalEmpty) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(39s))}), SinkStatus::Ok);
  const std::filesystem::path wal = path_.string() + "-wal";
  ASSERT_GT(std::filesystem::file_size(wal), 0U) << "the batch's commit is in the WAL";
  ASSERT_TRUE(sink_->endRun(at(100s)));
  EXPECT_EQ(std::filesystem::file_size(wal), 0U);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows"), 1);
}

// kill -9: no endRun. The next run learns the last heartbeat that reached the database.
TEST_F(SqliteRunTest, AKilledRunEndsAtItsLastCommittedHeartbeat) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  sink_->noteAlive(at(40s));
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(39s))}), SinkStatus::Ok);
  sink_->noteAlive(at(41s));  // remembered, never committed: lost with the process
  restart();
  auto history = sink_->beginRun(at(300s));
  ASSERT_TRUE(history) << history.error().detail;
  EXPECT_EQ(history->previous_start, at(0s));
  EXPECT_EQ(history->previous_alive, at(40s));
  EXPECT_FALSE(history->previous_clean);
  EXPECT_EQ(runs(), "0 40 -, 300 300 -");
}

TEST_F(SqliteRunTest, TheHeartbeatRidesOnCommitsAndFlushWritesOnlyAStaleOne) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  sink_->noteAlive(at(1s));
  EXPECT_EQ(runs(), "0 0 -") << "noteAlive alone writes nothing";
  EXPECT_EQ(sink_->writeGap(gap(GapReason::KernelOverrun, at(0s), at(1s))), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 0 -") << "a gap's commit does not carry it";
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s))}), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 1 -") << "a batch's commit carries it";

  sink_->noteAlive(at(2s));
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 1 -") << "one second stale: flush leaves it for the next commit";
  const auto interval = std::chrono::duration_cast<std::chrono::seconds>(SqliteSink::kHeartbeatInterval).count();
  sink_->noteAlive(at(1s) + SqliteSink::kHeartbeatInterval);
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 " + std::to_string(1 + interval) + " -") << "stale long enough: flush commits it";

  // The clock stepped back: the latest heartbeat wins, and is not held back by the interval.
  sink_->noteAlive(at(3s));
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 3 -");
}

// While a batch waits for a retry, its records are older than any heartbeat noted since: flush
// must not commit one alone, or a kill then would leave the run claiming records it never had.
TEST_F(SqliteRunTest, FlushCommitsNoHeartbeatWhileABatchWaitsForARetry) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  sink_->noteAlive(at(10s));
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(9s))}), SinkStatus::Retry);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 0 -");
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(9s))}), SinkStatus::Ok);
  EXPECT_EQ(runs(), "0 10 -") << "the retried batch carries it";
}

// A flush writes the gaps first, then the batch. When the batch then fails (a full disk), the
// gap's commit must not have stored the heartbeat: a kill would leave the run claiming the
// batch's records, and the next start's daemon_down gap would begin after them.
TEST_F(SqliteRunTest, AGapCommittedBeforeAFailingBatchCarriesNoHeartbeat) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  sink_->noteAlive(at(10s));
  EXPECT_EQ(sink_->writeGap(gap(GapReason::KernelOverrun, at(1s), at(2s))), SinkStatus::Ok);
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(9s))}), SinkStatus::Retry);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(sink_->writeGap(gap(GapReason::KernelOverrun, at(3s), at(4s))), SinkStatus::Ok);
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok) << "still waiting for the batch: no heartbeat alone";
  EXPECT_EQ(runs(), "0 0 -");
  EXPECT_EQ(count(other.get(), "SELECT count(*) FROM gaps"), 2) << "the gaps themselves are written";
}

// A start that fails after beginRun logged nothing: abandonRun takes its row back, so that the next
// start learns the run before it and its gap reaches back to that run's end.
TEST_F(SqliteRunTest, AnAbandonedRunLeavesThePreviousOneAsTheLast) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  ASSERT_TRUE(sink_->endRun(at(100s)));
  restart();
  ASSERT_TRUE(sink_->beginRun(at(200s)));
  ASSERT_TRUE(sink_->abandonRun());
  EXPECT_EQ(runs(), "0 100 100");
  EXPECT_FALSE(sink_->abandonRun()) << "no run going on any more";
  restart();
  auto history = sink_->beginRun(at(300s));
  ASSERT_TRUE(history) << history.error().detail;
  EXPECT_EQ(history->previous_alive, at(100s));
  EXPECT_TRUE(history->previous_clean);
}

// A start that failed after its gap or rows were committed keeps its run: the gap is on record,
// and without the run the next start would record the same hole again.
TEST_F(SqliteRunTest, AnAbandonedRunThatWroteStays) {
  ASSERT_TRUE(sink_->beginRun(at(0s)));
  ASSERT_TRUE(sink_->endRun(at(100s)));
  restart();
  ASSERT_TRUE(sink_->beginRun(at(200s)));
  EXPECT_EQ(sink_->writeGap(gap(GapReason::DaemonDown, at(100s), at(200s))), SinkStatus::Ok);
  ASSERT_TRUE(sink_->abandonRun());
  EXPECT_EQ(runs(), "0 100 100, 200 200 -");
}

TEST_F(SqliteRunTest, HeartbeatsOutsideARunAreIgnored) {
  sink_->noteAlive(at(5s));
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(5s))}), SinkStatus::Ok);
  ASSERT_TRUE(sink_->beginRun(at(10s)));
  ASSERT_TRUE(sink_->endRun(at(20s)));
  sink_->noteAlive(at(30s));
  ASSERT_EQ(write({flowEvent(EventType::New, 2, tcp_, masqueraded_, at(30s))}), SinkStatus::Ok);
  EXPECT_EQ(sink_->flush(), SinkStatus::Ok);
  EXPECT_EQ(runs(), "10 20 20");
}

TEST_F(SqliteRunTest, MisuseIsAnErrorNotARow) {
  const auto ended = sink_->endRun(at(1s));
  ASSERT_FALSE(ended);
  EXPECT_EQ(ended.error().code, Errc::Storage);
  ASSERT_TRUE(sink_->beginRun(at(2s)));
  const auto again = sink_->beginRun(at(3s));
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error().code, Errc::Storage);
  ASSERT_TRUE(sink_->endRun(at(4s)));
  EXPECT_FALSE(sink_->endRun(at(5s)));
  EXPECT_EQ(runs(), "2 4 4");
}

TEST_F(SqliteRunTest, BeginRunOnABusyDatabaseRecordsNothing) {
  const SqliteDb other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  const auto history = sink_->beginRun(at(0s));
  ASSERT_FALSE(history);
  EXPECT_NE(history.error().detail.find("daemon's start"), std::string::npos) << history.error().detail;
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(runs(), "");
  EXPECT_TRUE(sink_->beginRun(at(1s)));
}

TEST_F(SqliteSinkTest, OpenFlowsAreTheRowsWithoutAnEnd) {
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  const auto third = portTuple(Protocol::Tcp, "100.64.0.9", 34000, "198.51.100.1", 443);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s)),
                   flowEvent(EventType::New, 2, other, replyOf(other), at(2s)),
                   flowEvent(EventType::Destroy, 2, other, replyOf(other), at(3s)),
                   flowEvent(EventType::Dump, 3, third, replyOf(third), at(4s))}),
            SinkStatus::Ok);
  auto open = sink_->openFlows();
  ASSERT_TRUE(open) << open.error().detail;
  std::sort(open->begin(), open->end(), [](const FlowRecord& a, const FlowRecord& b) { return a.ct_id < b.ct_id; });
  ASSERT_EQ(open->size(), 2U);
  const auto stored = readAll();  // oldest first: 1, 2, 3
  ASSERT_EQ(stored.size(), 3U);
  EXPECT_EQ((*open)[0], stored[0]);
  EXPECT_EQ((*open)[1], stored[2]);
  EXPECT_EQ((*open)[0].event, EventType::New);
  EXPECT_FALSE((*open)[0].observed_at_start);
  EXPECT_TRUE((*open)[1].observed_at_start);
}

TEST_F(SqliteSinkTest, OpenFlowsLeavesOutARowThatDoesNotDecode) {
  auto messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  sink_.reset();  // the file takes one writer at a time
  auto sink = SqliteSink::open(path_, "gw1.example.net", std::make_shared<spdlog::logger>("sqlite", messages));
  ASSERT_TRUE(sink) << sink.error().detail;
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ((*sink)->write({{flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s)),
                             flowEvent(EventType::New, 2, other, replyOf(other), at(2s))}}),
            SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "UPDATE flows SET packed = -1 WHERE ct_id = 2 - 2147483648", nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  auto open = (*sink)->openFlows();
  ASSERT_TRUE(open) << open.error().detail;
  ASSERT_EQ(open->size(), 1U);
  EXPECT_EQ((*open)[0].ct_id, 1U);
  const auto logged = messages->last_formatted();
  ASSERT_EQ(logged.size(), 1U);
  EXPECT_NE(logged[0].find("row id 2"), std::string::npos) << logged[0];
  EXPECT_NE(logged[0].find("flows.packed"), std::string::npos) << logged[0];
}

TEST_F(SqliteSinkTest, AVersionOneFileFromBeforeGapsAndRunsGetsThem) {
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP VIEW gaps_text; DROP VIEW runs_text; DROP TABLE gaps; DROP TABLE runs",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  EXPECT_TRUE((*sink)->beginRun(at(0s)));
  EXPECT_EQ((*sink)->writeGap(gap(GapReason::DaemonDown, at(0s), at(1s))), SinkStatus::Ok);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM sqlite_master WHERE name IN ('gaps', 'gaps_time', 'runs', "
                            "'gaps_text', 'runs_text')"),
            5);
}

// The open rows in flows_open_* (flag kInOpenIndex), as the reader's open arm selects them.
std::int64_t rowsInOpenIndex(sqlite3* db) {
  return count(db, "SELECT count(*) FROM flows INDEXED BY flows_open_nat WHERE dur_ms IS NULL AND " +
                       std::string(kInOpenIndexSql));
}

// meta.open_index_from as stored: the first row that may be open outside flows_open_*.
std::string openIndexFromIn(sqlite3* db) { return scalar(db, "SELECT value FROM meta WHERE key = 'open_index_from'"); }

std::vector<std::uint32_t> ctIdsOf(const std::vector<FlowRecord>& records) {
  std::vector<std::uint32_t> ids;
  for (const FlowRecord& record : records) {
    ids.push_back(record.ct_id);
  }
  return ids;
}

std::vector<std::uint32_t> ctIdsAlive(const std::filesystem::path& path, Timestamp from) {
  auto reader = FlowReader::open(path);
  EXPECT_TRUE(reader) << reader.error().detail;
  FlowQuery query;
  query.from = from;
  query.to = from;
  auto records = reader ? (*reader)->find(query) : Result<std::vector<FlowRecord>>{std::vector<FlowRecord>{}};
  EXPECT_TRUE(records) << records.error().detail;
  return records ? ctIdsOf(*records) : std::vector<std::uint32_t>{};
}

TEST_F(SqliteSinkTest, ARowOpenForFiveMinutesGoesIntoTheOpenIndexesUntilItEnds) {
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  const auto brief = portTuple(Protocol::Udp, "100.64.0.4", 5001, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s)),
                   flowEvent(EventType::New, 3, brief, replyOf(brief), at(1s))}),
            SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 3, brief, replyOf(brief), at(200s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(rowsInOpenIndex(db.get()), 0);
    EXPECT_EQ(openIndexFromIn(db.get()), "1");
  }
  // Five minutes after the first batch: its row still open goes in, the closed one does not, and
  // the rows from here on are the ones that may be open outside the indexes.
  ASSERT_EQ(write({flowEvent(EventType::New, 2, other, replyOf(other), at(400s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(rowsInOpenIndex(db.get()), 1);
    EXPECT_EQ(scalar(db.get(), "SELECT group_concat(id) FROM flows WHERE dur_ms IS NULL AND " +
                                   std::string(kInOpenIndexSql)),
              "1");
    EXPECT_EQ(openIndexFromIn(db.get()), "3");
  }
  // Over an hour later, where the recent rows no longer reach back to flow 1's start: found through
  // flows_open_*; flow 2, newer than open_index_from, through the rows after it.
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{1, 2}));

  // An event of the flow keeps its row in the indexes; its end takes it out.
  auto update = flowEvent(EventType::Update, 1, tcp_, masqueraded_, at(410s));
  update.counters_original = Counters{10, 1000};
  ASSERT_EQ(write({update}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(rowsInOpenIndex(db.get()), 1);
  }
  restart();
  auto open = sink_->openFlows();
  ASSERT_TRUE(open) << open.error().detail;
  EXPECT_EQ(ctIdsOf(*open), (std::vector<std::uint32_t>{1, 2}));  // one in the index, one after it
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 1, tcp_, masqueraded_, at(420s))}), SinkStatus::Ok);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(rowsInOpenIndex(db.get()), 0);
  EXPECT_EQ(rows(), 3);  // the DESTROY closed flow 1's row, found through the map loaded at open
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{2}));
}

// Expiry that deletes the newest rows lets SQLite give their ids out again (retention.cpp): a new
// open row below open_index_from brings it down, or no lookup would find the row once it is older
// than the recent window.
TEST_F(SqliteSinkTest, ARowThatReusesAnIdBelowOpenIndexFromBringsItDown) {
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  const auto third = portTuple(Protocol::Udp, "100.64.0.4", 5001, "198.51.100.1", 53);
  const auto fourth = portTuple(Protocol::Udp, "100.64.0.5", 5002, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s)),
                   flowEvent(EventType::New, 2, other, replyOf(other), at(1s))}),
            SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::New, 3, third, replyOf(third), at(400s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(openIndexFromIn(db.get()), "3");
    ASSERT_EQ(sqlite3_exec(db.get(), "DELETE FROM flows WHERE id >= 2", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ASSERT_EQ(write({flowEvent(EventType::New, 4, fourth, replyOf(fourth), at(410s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(scalar(db.get(), "SELECT group_concat(id) FROM flows WHERE ct_id = 4 - 2147483648"), "2");
    EXPECT_EQ(openIndexFromIn(db.get()), "2");
  }
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{1, 4}));
}

// A reused id and a pass in the same batch: the pass starts from where the reused id brought
// open_index_from down, so the new row is in flows_open_* once open_index_from has moved past it.
TEST_F(SqliteSinkTest, APassInTheBatchOfAReusedIdAddsTheNewRow) {
  const auto tuple = [](int n) {
    return portTuple(Protocol::Udp, "100.64.0." + std::to_string(n), 5000, "198.51.100.1", 53);
  };
  const auto open = [&](std::uint32_t ct_id, std::chrono::seconds at_s) {
    return flowEvent(EventType::New, ct_id, tuple(static_cast<int>(ct_id)), replyOf(tuple(static_cast<int>(ct_id))),
                     at(at_s));
  };
  ASSERT_EQ(write({open(1, 0s), open(2, 0s)}), SinkStatus::Ok);  // ids 1, 2
  ASSERT_EQ(write({open(3, 200s)}), SinkStatus::Ok);              // id 3
  ASSERT_EQ(write({open(4, 310s)}), SinkStatus::Ok);              // id 4; ids 1 and 2 go in
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(openIndexFromIn(db.get()), "3");
    ASSERT_EQ(sqlite3_exec(db.get(), "DELETE FROM flows WHERE id >= 2", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  // Id 2 again, and the rows written at 200 s (id 3, gone) are now five minutes old.
  ASSERT_EQ(write({open(5, 520s)}), SinkStatus::Ok);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(scalar(db.get(), "SELECT group_concat(id) FROM flows WHERE ct_id = 5 - 2147483648"), "2");
  EXPECT_EQ(openIndexFromIn(db.get()), "4");
  EXPECT_EQ(rowsInOpenIndex(db.get()), 2);
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{1, 5}));
}

// The pass is upkeep: when it cannot write (here a trigger a person added at the shell refuses it),
// the batch is still written, open_index_from stays, every open row is still found, and a later
// pass does the work.
TEST_F(SqliteSinkTest, APassThatFailsCostsTheBatchNothing) {
  auto messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(16);
  sink_.reset();  // the file takes one writer at a time
  auto sink = SqliteSink::open(path_, "gw1.example.net", std::make_shared<spdlog::logger>("sqlite", messages));
  ASSERT_TRUE(sink) << sink.error().detail;
  sink_ = std::move(*sink);
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(),
                           "CREATE TRIGGER refuse BEFORE UPDATE OF packed ON flows WHEN (NEW.packed & 131072) != 0 "
                           "BEGIN SELECT RAISE(ABORT, 'refused by a test'); END",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  ASSERT_EQ(write({flowEvent(EventType::New, 2, other, replyOf(other), at(400s))}), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(rows(), 2);
    EXPECT_EQ(rowsInOpenIndex(db.get()), 0);
    EXPECT_EQ(openIndexFromIn(db.get()), "1");
    const auto logged = messages->last_formatted();
    ASSERT_FALSE(logged.empty());
    EXPECT_NE(logged.back().find("refused by a test"), std::string::npos) << logged.back();
  }
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{1, 2}));
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP TRIGGER refuse", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto update = flowEvent(EventType::Update, 1, tcp_, masqueraded_, at(420s));
  ASSERT_EQ(write({update}), SinkStatus::Ok);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(rowsInOpenIndex(db.get()), 1);
  EXPECT_EQ(openIndexFromIn(db.get()), "2");
  EXPECT_EQ(ctIdsAlive(path_, at(5000s)), (std::vector<std::uint32_t>{1, 2}));
}

// An open row the sink's map cannot hold (it does not decode) would never be found by a pass: it
// goes into flows_open_* when the sink opens the database, so lookups keep finding it.
TEST_F(SqliteSinkTest, AnOpenRowThatDoesNotDecodeGoesIntoTheOpenIndexesAtOpen) {
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(1s)),
                   flowEvent(EventType::New, 2, other, replyOf(other), at(2s))}),
            SinkStatus::Ok);
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "UPDATE flows SET icmp = 'x' WHERE ct_id = 2 - 2147483648", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
    EXPECT_EQ(rowsInOpenIndex(db.get()), 0);
  }
  auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(scalar(db.get(), "SELECT group_concat(id) FROM flows WHERE dur_ms IS NULL AND " +
                                 std::string(kInOpenIndexSql)),
            "2");
}

// The sink's multi-row INSERT and UPDATE need no statement journal (kOrigSrcKeySql, flowInsertSql):
// SQLite keeps one for a statement that writes several rows and may stop half-way with ABORT,
// which a constraint (HaltIfNull, Halt with P2 = OE_Abort = 2) or a function call in an index
// expression (Function, PureFunc: one can raise an error) may do. The program of each statement
// on the real schema has neither.
TEST_F(SqliteSinkTest, TheBatchStatementsCannotAbortHalfWay) {
  const SqliteDb db = openRaw(path_);
  const auto columns = allFlowColumns();
  for (const std::string& sql : {flowInsertSql(32), flowUpdateManySql(columns, 32)}) {
    sqlite3_stmt* raw = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db.get(), ("EXPLAIN " + sql).c_str(), -1, &raw, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db.get());
    const SqliteStmt program(raw);
    int halts = 0;
    while (sqlite3_step(program.get()) == SQLITE_ROW) {
      const std::string opcode = reinterpret_cast<const char*>(sqlite3_column_text(program.get(), 1));  // NOLINT: SQLite text is unsigned char
      EXPECT_NE(opcode, "Function") << sql;
      EXPECT_NE(opcode, "PureFunc") << sql;
      if (opcode.starts_with("Halt")) {
        ++halts;
        EXPECT_NE(sqlite3_column_int(program.get(), 3), 2) << opcode << " aborts in " << sql;
      }
    }
    EXPECT_GT(halts, 1) << sql;  // the NOT NULL checks are there, with FAIL
  }
}

// The key of the flows_orig_src family in versions 4 and 5: typeof() and substr() (kOrigSrcKeySql).
constexpr std::string_view kVersion5SourceKey =
    "(CASE WHEN typeof(orig_src) = 'integer' THEN orig_src >> 16 ELSE substr(orig_src, 1, 16) END)";

// Turns the file at `path` into what version 6 wrote: the same without the flows_dnat family.
void makeVersion6(const std::filesystem::path& path) {
  const SqliteDb db = openRaw(path);
  const std::string sql = "BEGIN; DROP INDEX flows_dnat; DROP INDEX flows_open_dnat; DROP INDEX flows_long_dnat;"
                          "PRAGMA user_version = 6; COMMIT";
  ASSERT_EQ(sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db.get());
}

// Turns the file at `path` into what version 5 wrote: version 6 but for that key.
void makeVersion5(const std::filesystem::path& path) {
  makeVersion6(path);
  const SqliteDb db = openRaw(path);
  const std::string key(kVersion5SourceKey);
  const std::string sql = "BEGIN; DROP INDEX flows_orig_src; DROP INDEX flows_open_src; DROP INDEX flows_long_src;"
                          "CREATE INDEX flows_orig_src ON flows ((id >> 20), " + key + ");"
                          "CREATE INDEX flows_open_src ON flows (" + key + ") WHERE dur_ms IS NULL AND " +
                          std::string(kInOpenIndexSql) + ";"
                          "CREATE INDEX flows_long_src ON flows (" + key + ", start_ms, dur_ms) WHERE dur_ms > 3600000;"
                          "PRAGMA user_version = 5; COMMIT";
  ASSERT_EQ(sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db.get());
}

// The CREATE INDEX text of every index on flows as it stands in the file, sorted.
std::vector<std::string> flowIndexesIn(sqlite3* db) {
  const std::string joined = scalar(db, "SELECT group_concat(sql, char(10)) FROM (SELECT sql FROM sqlite_master "
                                        "WHERE type = 'index' AND tbl_name = 'flows' ORDER BY sql)");
  std::vector<std::string> sql;
  for (std::size_t at = 0; at < joined.size();) {
    const std::size_t end = std::min(joined.find('\n', at), joined.size());
    sql.push_back(joined.substr(at, end - at));
    at = end + 1;
  }
  return sql;
}

// This version's CREATE INDEX text for flows, sorted like flowIndexesIn.
std::vector<std::string> currentFlowIndexes() {
  const auto indexes = createIndexSql();
  std::vector<std::string> sql(indexes.begin(), indexes.end());
  std::sort(sql.begin(), sql.end());
  return sql;
}

// After an upgrade: this version's number and indexes, and a sound file.
void expectCurrentSchema(sqlite3* db) {
  EXPECT_EQ(count(db, "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(flowIndexesIn(db), currentFlowIndexes());
  EXPECT_EQ(scalar(db, "PRAGMA integrity_check"), "ok");
}

// Version 5 keyed the flows_orig_src family by an expression with functions in it: the daemon
// builds those three indexes again (and the flows_dnat family, new in version 7), leaves the other
// three alone, and every lookup by source then finds its flows through them.
TEST_F(SqliteSinkTest, UpgradesAVersionFiveFileByRebuildingTheIndexesKeyedBySource) {
  const auto v6 = portTuple(Protocol::Udp, "2001:db8:1::2", 5353, "2001:db8:2::53", 53);
  const auto long_flow = portTuple(Protocol::Tcp, "100.64.0.7", 33001, "198.51.100.1", 443);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s)),
                   flowEvent(EventType::Destroy, 2, v6, replyOf(v6), at(1s)),
                   flowEvent(EventType::New, 3, long_flow, replyOf(long_flow), at(2s))}),
            SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 3, long_flow, replyOf(long_flow), at(std::chrono::hours{2}))}),
            SinkStatus::Ok);
  sink_.reset();
  std::int64_t nat_src_root = 0;
  {
    makeVersion5(path_);
    const SqliteDb db = openRaw(path_);
    nat_src_root = count(db.get(), "SELECT rootpage FROM sqlite_master WHERE name = 'flows_nat_src'");
    EXPECT_EQ(count(db.get(), "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND sql LIKE '%substr(%'"), 3);
  }
  auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  sink_ = std::move(*sink);
  {
    const SqliteDb db = openRaw(path_);
    expectCurrentSchema(db.get());
    EXPECT_EQ(count(db.get(), "SELECT rootpage FROM sqlite_master WHERE name = 'flows_nat_src'"), nat_src_root);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader) << reader.error().detail;
  const auto from = [&](std::string_view cidr) {
    FlowQuery query;
    query.source = IpNetwork::parse(cidr);
    query.from = at(0s);
    query.to = at(std::chrono::hours{3});
    auto records = (*reader)->find(query);
    EXPECT_TRUE(records) << records.error().detail;
    return records ? ctIdsOf(*records) : std::vector<std::uint32_t>{};
  };
  EXPECT_EQ(from("100.64.0.0/10"), (std::vector<std::uint32_t>{1, 3}));
  EXPECT_EQ(from("100.64.0.7"), std::vector<std::uint32_t>{3});
  EXPECT_EQ(from("2001:db8:1::2"), std::vector<std::uint32_t>{2});
}

// Version 6 had no flows_dnat family: the daemon builds it, and a port forward's flows, the
// recent, the long and the long-open one, are then found through it.
TEST_F(SqliteSinkTest, UpgradesAVersionSixFileByBuildingThePortForwardIndexes) {
  const auto recent = portTuple(Protocol::Tcp, "198.51.100.9", 51000, "203.0.113.1", 8080);
  const auto long_one = portTuple(Protocol::Tcp, "198.51.100.10", 51001, "203.0.113.1", 8080);
  const auto still_open = portTuple(Protocol::Tcp, "198.51.100.11", 51002, "203.0.113.1", 8080);
  const auto elsewhere = portTuple(Protocol::Tcp, "198.51.100.12", 51003, "203.0.113.1", 8081);
  const auto forwarded = [](const FlowTuple& original) { return withDnat(replyOf(original), "100.64.0.2", 80); };
  ASSERT_EQ(write({flowEvent(EventType::New, 1, long_one, forwarded(long_one), at(0s)),
                   flowEvent(EventType::New, 2, still_open, forwarded(still_open), at(1s))}),
            SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 1, long_one, forwarded(long_one), at(std::chrono::hours{3})),
                   flowEvent(EventType::Destroy, 3, recent, forwarded(recent), at(std::chrono::hours{3})),
                   flowEvent(EventType::Destroy, 4, elsewhere, forwarded(elsewhere), at(std::chrono::hours{3}))}),
            SinkStatus::Ok);
  sink_.reset();
  makeVersion6(path_);
  auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  sink_ = std::move(*sink);
  {
    const SqliteDb db = openRaw(path_);
    expectCurrentSchema(db.get());
    EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows INDEXED BY flows_dnat WHERE nat_dst IS NOT NULL AND "
                              "(id >> 20) = 0"),
              4);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader) << reader.error().detail;
  FlowQuery query;
  query.forwarded_address = IpAddress::parse("203.0.113.1");
  query.forwarded_port = 8080;
  query.from = at(std::chrono::hours{3});
  query.to = query.from;
  auto records = (*reader)->find(query);
  ASSERT_TRUE(records) << records.error().detail;
  EXPECT_EQ(ctIdsOf(*records), (std::vector<std::uint32_t>{1, 2, 3}));
}

// An upgrade tells the caller that it started (and, when it runs longer, every few seconds), so
// that the daemon can keep systemd's start timeout at bay; opening a current file does not.
TEST_F(SqliteSinkTest, AnUpgradeReportsThatItRuns) {
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s))}), SinkStatus::Ok);
  sink_.reset();
  int reports = 0;
  const auto count_reports = [&reports] { ++reports; };
  auto current = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger(), count_reports);
  ASSERT_TRUE(current) << current.error().detail;
  current->reset();
  EXPECT_EQ(reports, 0);
  makeVersion5(path_);
  auto upgraded = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger(), count_reports);
  ASSERT_TRUE(upgraded) << upgraded.error().detail;
  EXPECT_EQ(reports, 1);
}

// Version 4 had every open row in flows_open_* (WHERE dur_ms IS NULL) and no open_index_from: the
// daemon upgrades such a file in place, its open rows into the new indexes.
TEST_F(SqliteSinkTest, UpgradesAVersionFourFileWithItsOpenRowsInTheOpenIndexes) {
  const auto other = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 1, tcp_, masqueraded_, at(0s)),
                   flowEvent(EventType::Destroy, 2, other, replyOf(other), at(1s))}),
            SinkStatus::Ok);
  sink_.reset();
  makeVersion5(path_);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(),
                           ("BEGIN; DROP INDEX flows_open_nat; DROP INDEX flows_open_src;"
                            "CREATE INDEX flows_open_nat ON flows (nat_src) WHERE dur_ms IS NULL;"
                            "CREATE INDEX flows_open_src ON flows (" +
                            std::string(kVersion5SourceKey) +
                            ") WHERE dur_ms IS NULL;"
                            "UPDATE flows SET packed = packed & ~131072 WHERE dur_ms IS NULL;"
                            "DELETE FROM meta WHERE key = 'open_index_from'; PRAGMA user_version = 4; COMMIT")
                               .c_str(),
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db.get());
    EXPECT_EQ(rowsInOpenIndex(db.get()), 0);
  }
  auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(sink) << sink.error().detail;
  sink_ = std::move(*sink);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(rowsInOpenIndex(db.get()), 1);
  EXPECT_EQ(openIndexFromIn(db.get()), "3");
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM sqlite_master WHERE sql LIKE '%131072%'"), 3);
  EXPECT_EQ(flowIndexesIn(db.get()), currentFlowIndexes());
  // Found a day later through the open index alone: no row is after open_index_from.
  EXPECT_EQ(ctIdsAlive(path_, at(86400s)), (std::vector<std::uint32_t>{1}));
  auto open = sink_->openFlows();
  ASSERT_TRUE(open) << open.error().detail;
  ASSERT_EQ(open->size(), 1U);
  EXPECT_EQ(open->front().ct_id, 1U);
}

TEST_F(SqliteSinkTest, OpenFlowsReadsThePartialIndexAndTheRowsNotInItYet) {
  const SqliteDb db = openRaw(path_);
  const std::string plan = testing::queryPlan(db.get(), openRowsSql());
  EXPECT_NE(plan.find("flows_open_nat"), std::string::npos) << plan;
  EXPECT_NE(plan.find("INTEGER PRIMARY KEY (rowid>?)"), std::string::npos) << plan;
}

TEST_F(SqliteSinkTest, TheOpenFlowReadIsAPointReadByRowid) {
  const SqliteDb db = openRaw(path_);
  const std::string plan = testing::queryPlan(db.get(), readOpenFlowSql());
  EXPECT_NE(plan.find("USING INTEGER PRIMARY KEY (rowid=?)"), std::string::npos) << plan;
}

// The sink keeps the open rows' ids in memory; a rolled-back batch must leave that map as the
// database is. Here the batch closes flow 42 and then fails: 42's row is open again, so its later
// DESTROY must close that row, not insert a second one.
TEST_F(SqliteSinkTest, ARolledBackBatchLeavesTheOpenRowsAsTheDatabaseHasThem) {
  testing::execute(path_, "CREATE TRIGGER refuse BEFORE INSERT ON flows WHEN (NEW.orig_src & 65535) = 666 "
                          "BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
  const auto bad = portTuple(Protocol::Tcp, "100.64.0.9", 666, "198.51.100.1", 443);
  const auto udp = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(5s)),
                   flowEvent(EventType::New, 7, udp, replyOf(udp), at(5s)),
                   flowEvent(EventType::New, 3, bad, replyOf(bad), at(6s))}),
            SinkStatus::Rejected);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s)),
                   flowEvent(EventType::New, 7, udp, replyOf(udp), at(9s))}),
            SinkStatus::Ok);
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 7, udp, replyOf(udp), at(10s))}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 2U);
  EXPECT_EQ(records[0].start, at(2s));
  EXPECT_EQ(records[0].end, at(9s));
  EXPECT_EQ(records[1].start, at(9s));
  EXPECT_EQ(records[1].end, at(10s));
}

// Another writer (a person at the sqlite3 shell) closing or deleting an open row: the flow's next
// event finds no open row, as a lookup in the database would, and opens a new one.
TEST_F(SqliteSinkTest, ARowClosedOrDeletedByAnotherWriterIsNoLongerOpen) {
  const auto udp = portTuple(Protocol::Udp, "100.64.0.3", 5000, "198.51.100.1", 53);
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s)),
                   flowEvent(EventType::New, 7, udp, replyOf(udp), at(2s))}),
            SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(),
                           "UPDATE flows SET dur_ms = 1 WHERE (orig_src & 65535) = 33000; DELETE FROM flows WHERE (orig_src & 65535) = 5000",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  ASSERT_EQ(write({flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s)),
                   flowEvent(EventType::Destroy, 7, udp, replyOf(udp), at(9s))}),
            SinkStatus::Ok);
  EXPECT_EQ(rows(), 3);
}

// The sink holds each open row's columns in memory; another writer's change to an open row must
// still count, as when the row was read back for every event. Here someone at the shell sets a
// status bit on flow 42's open row; the DESTROY, which reports no status, must keep that bit.
TEST_F(SqliteSinkTest, AnOpenRowChangedByAnotherWriterIsReadAgain) {
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  constexpr std::uint32_t kBit = 1U << 13;  // a status bit flowEvent() never sets
  testing::execute(path_, "UPDATE flows SET packed = packed | (" + std::to_string(kBit) + " << " +
                              std::to_string(kStatusShift) + ")");
  FlowRecord destroy = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s));
  destroy.status = 0;
  destroy.counters_original = Counters{3, 300};
  destroy.counters_reply = Counters{2, 200};
  ASSERT_EQ(write({destroy}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_NE(records[0].status & kBit, 0U);
  EXPECT_EQ(records[0].end, at(9s));
}

// A rolled-back batch that changed a row that stays open: the row's next event must merge into the
// row as the database has it, not as the rolled-back batch left it in memory. The counters of the
// refused UPDATE must not come back with the DESTROY, which carries none.
TEST_F(SqliteSinkTest, ARolledBackUpdateOfAnOpenRowIsForgotten) {
  testing::execute(path_, "CREATE TRIGGER refuse BEFORE INSERT ON flows WHEN (NEW.orig_src & 65535) = 666 "
                          "BEGIN SELECT RAISE(ABORT, 'refused by test'); END");
  const auto bad = portTuple(Protocol::Tcp, "100.64.0.9", 666, "198.51.100.1", 443);
  ASSERT_EQ(write({flowEvent(EventType::New, 42, tcp_, masqueraded_, at(2s))}), SinkStatus::Ok);
  FlowRecord update = flowEvent(EventType::Update, 42, tcp_, masqueraded_, at(3s));
  update.counters_original = Counters{5, 500};
  update.counters_reply = Counters{4, 400};
  ASSERT_EQ(write({update, flowEvent(EventType::New, 3, bad, replyOf(bad), at(3s))}), SinkStatus::Rejected);
  FlowRecord destroy = flowEvent(EventType::Destroy, 42, tcp_, masqueraded_, at(9s));
  destroy.counters_original.reset();  // as with nf_conntrack_acct=0
  destroy.counters_reply.reset();
  ASSERT_EQ(write({destroy}), SinkStatus::Ok);
  const auto records = readAll();
  ASSERT_EQ(records.size(), 1U);
  EXPECT_FALSE(records[0].counters_original);
  EXPECT_FALSE(records[0].counters_reply);
  EXPECT_EQ(records[0].end, at(9s));
}

// ICMP keeps its id in the port columns; the NEW's row must be found by the DESTROY all the same,
// also after a restart, when the key comes from the decoded row.
TEST_F(SqliteSinkTest, AnIcmpFlowIsClosedByItsDestroyAlsoAfterARestart) {
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.2", "198.51.100.1", 8, 0, 77);
  const auto pong = icmpTuple(Protocol::Icmp, "198.51.100.1", "100.64.0.2", 0, 0, 77);
  const auto ping2 = icmpTuple(Protocol::Icmp, "100.64.0.2", "198.51.100.1", 8, 0, 78);
  const auto pong2 = icmpTuple(Protocol::Icmp, "198.51.100.1", "100.64.0.2", 0, 0, 78);
  ASSERT_EQ(write({flowEvent(EventType::New, 5, ping, pong, at(1s)), flowEvent(EventType::New, 6, ping2, pong2, at(1s)),
                   flowEvent(EventType::Destroy, 5, ping, pong, at(3s))}),
            SinkStatus::Ok);
  sink_.reset();
  auto reopened = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(reopened) << reopened.error().detail;
  ASSERT_EQ((*reopened)->write({{flowEvent(EventType::Destroy, 6, ping2, pong2, at(4s))}}), SinkStatus::Ok);
  EXPECT_EQ(rows(), 2);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(count(db.get(), "SELECT count(*) FROM flows WHERE dur_ms IS NULL"), 0);
}

}  // namespace
}  // namespace ctaudit::storage
