// SPDX-License-Identifier: GPL-2.0-or-later
// The pipeline thread against a database that other programs use: a long reader (`ctaudit`, a
// backup) must not stop ingest, and a writer holding the lock (the sqlite3 shell, a retention job)
// must cost at most one busy timeout per flush interval, while the other sink goes on.
#include <chrono>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>

#include "daemon/batcher.hpp"
#include "storage/sqlite_sink.hpp"
#include "tests/support/fake_sink.hpp"
#include "tests/support/flow_builders.hpp"
#include "tests/support/temp_dir.hpp"
#include "tests/unit/storage/sqlite_test_util.hpp"

namespace ctaudit::daemon {
namespace {

using namespace std::chrono_literals;
using storage::testing::openRaw;
using storage::testing::scalar;
using testing::at;

std::shared_ptr<spdlog::logger> quiet() {
  return std::make_shared<spdlog::logger>("test", std::make_shared<spdlog::sinks::null_sink_mt>());
}

FlowRecord flow(std::uint32_t id) {
  const FlowTuple original =
      testing::portTuple(Protocol::Tcp, "100.64.0.2", static_cast<std::uint16_t>(1024 + id), "203.0.113.2", 443);
  return testing::flowEvent(EventType::New, id, original, testing::replyOf(original), at(1s));
}

class SqliteStallTest : public ::testing::Test {
protected:
  SqliteStallTest() : path_(dir_ / "flows.db") {
    sink_ = storage::SqliteSink::open(path_, "test-host", quiet()).value();
  }
  Batcher batcher(std::size_t max_rows) {
    Batcher::Options options;
    options.max_rows = max_rows;
    return Batcher({{"sqlite", sink_.get(), "sqlite"}, {"jsonl", &jsonl_, "jsonl"}}, options, quiet());
  }

  testing::TempDir dir_;
  std::filesystem::path path_;
  std::unique_ptr<storage::SqliteSink> sink_;
  testing::FakeSink jsonl_;
};

TEST_F(SqliteStallTest, ALongReaderDoesNotStopWrites) {
  auto reader = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(reader.get(), "BEGIN", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(scalar(reader.get(), "SELECT count(*) FROM flows"), "0");  // holds its snapshot from here
  auto b = batcher(100);
  for (std::uint32_t id = 1; id <= 2000; ++id) {
    b.add(flow(id), at(1s));
  }
  EXPECT_TRUE(b.flushAll(at(2s)));
  EXPECT_EQ(sink_->stats().records_written, 2000U);
  EXPECT_EQ(scalar(reader.get(), "SELECT count(*) FROM flows"), "0") << "WAL: the reader keeps its snapshot";
  ASSERT_EQ(sqlite3_exec(reader.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  EXPECT_EQ(scalar(reader.get(), "SELECT count(*) FROM flows"), "2000");
}

TEST_F(SqliteStallTest, AHeldWriteLockCostsOneBusyTimeoutAndTheOtherSinkGoesOn) {
  auto other = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(other.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  auto b = batcher(10);
  const auto started = std::chrono::steady_clock::now();
  for (std::uint32_t id = 1; id <= 100; ++id) {  // ten full batches
    b.add(flow(id), at(1s));
  }
  const auto spent = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(jsonl_.accepted.size(), 100U);
  EXPECT_EQ(b.sinks()[0].pending, 100U);
  EXPECT_TRUE(b.sinks()[0].failing);
  // One BEGIN IMMEDIATE waited for the 250 ms busy timeout; the nine batches after it did not try.
  EXPECT_LT(spent, 1500ms);
  ASSERT_EQ(sqlite3_exec(other.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
  b.tick(at(3s));
  EXPECT_EQ(sink_->stats().records_written, 100U) << "nothing lost once the lock is released";
  EXPECT_EQ(b.dropped(), 0U);
}

}  // namespace
}  // namespace ctaudit::daemon
