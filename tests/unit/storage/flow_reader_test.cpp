// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_reader.hpp"
#include "storage/schema.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <optional>
#include <vector>

#include "storage/flow_query_sql.hpp"
#include "storage/read_only_db.hpp"
#include "storage/row_prefetch.hpp"
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
using ctaudit::testing::withDnat;
using ctaudit::testing::withSnat;
using testing::openRaw;
using testing::queryPlan;

// Builds a FlowQuery a field at a time (GCC 12 warns about partial designated initializers).
class Query {
public:
  Query& natSource(std::string_view address, std::optional<std::uint16_t> port = std::nullopt) {
    query_.nat_source_address = ip(address);
    query_.nat_source_port = port;
    return *this;
  }
  Query& natPort(std::uint16_t port) {
    query_.nat_port = port;
    return *this;
  }
  Query& nat(std::string_view address, std::optional<std::uint16_t> port = std::nullopt) {
    query_.nat_address = ip(address);
    query_.nat_port = port;
    return *this;
  }
  Query& source(std::string_view cidr) {
    query_.source = IpNetwork::parse(cidr);
    EXPECT_TRUE(query_.source) << cidr;
    return *this;
  }
  Query& destination(std::string_view address, std::optional<std::uint16_t> port = std::nullopt) {
    query_.destination_address = ip(address);
    query_.destination_port = port;
    return *this;
  }
  Query& protocol(Protocol protocol) {
    query_.protocol = protocol;
    return *this;
  }
  Query& zone(std::uint16_t zone) {
    query_.zone = zone;
    return *this;
  }
  Query& from(Timestamp from) {
    query_.from = from;
    return *this;
  }
  Query& to(Timestamp to) {
    query_.to = to;
    return *this;
  }
  Query& between(Timestamp from, Timestamp to) { return this->from(from).to(to); }
  Query& limit(std::size_t limit) {
    query_.limit = limit;
    return *this;
  }
  operator const FlowQuery&() const { return query_; }  // NOLINT(google-explicit-constructor): test shorthand

private:
  FlowQuery query_;
};

// A database filled through SqliteSink, read through FlowReader.
class FlowReaderTest : public ::testing::Test {
protected:
  void SetUp() override {
    auto sink = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
    ASSERT_TRUE(sink) << sink.error().detail;
    sink_ = std::move(*sink);
  }

  void write(const std::vector<FlowRecord>& batch) { ASSERT_EQ(sink_->write(batch), SinkStatus::Ok); }

  // A TCP flow from `inside`, masqueraded to 203.0.113.1:`nat_port`, alive [start, end].
  static std::vector<FlowRecord> masqueraded(std::uint32_t ct_id, std::string_view inside, std::uint16_t nat_port,
                                             Timestamp start, std::optional<Timestamp> end) {
    const auto orig = portTuple(Protocol::Tcp, inside, 33000, "198.51.100.1", 443);
    const auto reply = withSnat(replyOf(orig), "203.0.113.1", nat_port);
    std::vector<FlowRecord> events{flowEvent(EventType::New, ct_id, orig, reply, start)};
    if (end) {
      events.push_back(flowEvent(EventType::Destroy, ct_id, orig, reply, *end));
    }
    return events;
  }

  std::vector<FlowRecord> find(const FlowQuery& query) {
    auto reader = FlowReader::open(path_);
    EXPECT_TRUE(reader) << reader.error().detail;
    if (!reader) {
      return {};
    }
    auto found = (*reader)->find(query);
    EXPECT_TRUE(found) << found.error().detail;
    return found ? *found : std::vector<FlowRecord>{};
  }

  static std::vector<std::uint32_t> ids(const std::vector<FlowRecord>& records) {
    std::vector<std::uint32_t> out;
    for (const FlowRecord& record : records) {
      out.push_back(record.ct_id);
    }
    return out;
  }

  std::vector<std::uint32_t> whoAt(std::string_view nat_address, std::uint16_t nat_port, Timestamp from,
                                   Timestamp to) {
    return ids(find(Query().natSource(nat_address, nat_port).between(from, to)));
  }

  TempDir dir_;
  std::filesystem::path path_ = dir_ / "flows.db";
  std::unique_ptr<SqliteSink> sink_;
};

TEST_F(FlowReaderTest, AMissingFileIsAnIoErrorNamingThePathAndIsNotCreated) {
  const auto missing = dir_ / "nowhere" / "flows.db";
  auto reader = FlowReader::open(missing);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Io);
  EXPECT_EQ(reader.error().sys_errno, ENOENT);
  EXPECT_NE(reader.error().detail.find(missing.string()), std::string::npos) << reader.error().detail;
  EXPECT_FALSE(std::filesystem::exists(missing));
  EXPECT_FALSE(std::filesystem::exists(missing.parent_path()));
}

TEST_F(FlowReaderTest, ADirectoryIsAnIoError) {
  auto reader = FlowReader::open(dir_.path());
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Io);
}

// A FIFO would block SQLite's open until someone writes to it.
TEST_F(FlowReaderTest, AFifoIsAnIoErrorAndNotWaitedOn) {
  const auto fifo = dir_ / "fifo.db";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  auto reader = FlowReader::open(fifo);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Io);
  EXPECT_NE(reader.error().detail.find("not a regular file"), std::string::npos) << reader.error().detail;
}

TEST_F(FlowReaderTest, AFileThatIsNotSqliteIsAStorageError) {
  const auto text = dir_ / "notes.txt";
  std::FILE* file = std::fopen(text.c_str(), "w");
  ASSERT_NE(file, nullptr);
  std::fputs("not a database; long enough to be more than the one hundred byte header a database has at its start\n",
             file);
  std::fclose(file);
  auto reader = FlowReader::open(text);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Storage);
  EXPECT_NE(reader.error().detail.find("not a SQLite database"), std::string::npos) << reader.error().detail;
}

TEST_F(FlowReaderTest, AnotherApplicationsDatabaseIsAStorageError) {
  const auto foreign = dir_ / "foreign.db";
  {
    const SqliteDb db = openRaw(foreign);
    ASSERT_EQ(sqlite3_exec(db.get(), "CREATE TABLE flows (x)", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto reader = FlowReader::open(foreign);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Storage);
  EXPECT_NE(reader.error().detail.find("not a ctaudit database"), std::string::npos) << reader.error().detail;
}

// A file refused by its header is not opened by SQLite, which would create -wal and -shm files
// beside a WAL database even for a read-only connection: ctaudit leaves files it is pointed at
// as it found them (another application's database, the wrong file passed by mistake).
TEST_F(FlowReaderTest, AFileRefusedByItsHeaderGetsNoWalOrShmBesideIt) {
  const auto foreign = dir_ / "foreign-wal.db";
  {
    const SqliteDb db = openRaw(foreign);
    ASSERT_EQ(sqlite3_exec(db.get(), "PRAGMA journal_mode = WAL; CREATE TABLE t (x); PRAGMA application_id = 7",
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }  // the last connection checkpoints and deletes its -wal and -shm
  ASSERT_FALSE(std::filesystem::exists(dir_ / "foreign-wal.db-shm"));
  const auto newer = dir_ / "newer.db";
  {
    const SqliteDb db = openRaw(newer);
    const std::string sql = "PRAGMA journal_mode = WAL; PRAGMA application_id = " + std::to_string(kApplicationId) +
                            "; PRAGMA user_version = " + std::to_string(kSchemaVersion + 1);
    ASSERT_EQ(sqlite3_exec(db.get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  const auto empty = dir_ / "empty.db";
  std::fclose(std::fopen(empty.c_str(), "w"));

  auto reader = FlowReader::open(foreign);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("not a ctaudit database (application_id 7"), std::string::npos)
      << reader.error().detail;
  reader = FlowReader::open(newer);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("written by a newer ctaudit"), std::string::npos) << reader.error().detail;
  reader = FlowReader::open(empty);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Storage);
  EXPECT_NE(reader.error().detail.find("the file is empty"), std::string::npos) << reader.error().detail;
  for (const char* name : {"foreign-wal.db", "newer.db", "empty.db"}) {
    for (const char* suffix : {"-wal", "-shm", "-journal"}) {
      EXPECT_FALSE(std::filesystem::exists(dir_ / (std::string(name) + suffix))) << name << suffix;
    }
  }
}

// A database a starting daemon is still creating: empty, then a header without tables, perhaps
// only in the -wal. Looping ctaudit over a daemon's start said "not a ctaudit database" once in
// 400 runs; it now says that the file may be being created.
TEST_F(FlowReaderTest, AFileWithoutTablesMayBeADatabaseBeingCreated) {
  const auto header_only = dir_ / "header-only.db";
  {
    const SqliteDb db = openRaw(header_only);
    ASSERT_EQ(sqlite3_exec(db.get(), "PRAGMA journal_mode = DELETE; CREATE TABLE t (x); DROP TABLE t", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
  }
  const auto in_wal = dir_ / "in-wal.db";
  const SqliteDb creating = openRaw(in_wal);  // held open, so that its -wal keeps its frames
  ASSERT_EQ(sqlite3_exec(creating.get(), "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0; "
                                         "CREATE TABLE t (x); DROP TABLE t",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  const auto empty = dir_ / "empty-new.db";
  std::fclose(std::fopen(empty.c_str(), "w"));
  for (const auto& path : {header_only, in_wal, empty}) {
    auto reader = FlowReader::open(path);
    ASSERT_FALSE(reader) << path;
    EXPECT_EQ(reader.error().code, Errc::Storage);
    EXPECT_NE(reader.error().detail.find("with no ctaudit schema yet: a ctauditd starting on it may be creating it "
                                         "(try again in a moment)"),
              std::string::npos)
        << reader.error().detail;
  }
}

// After an upgrade, until the next checkpoint, the file's own header still names the old version
// and only page 1 in the -wal the new one. The header check leaves such a file to SQLite, which
// reads through the WAL, also when --db names it through a symbolic link (SQLite keeps the -wal
// beside the link's target).
TEST_F(FlowReaderTest, AHeaderNewerInTheWalThanInTheFileIsReadThroughTheWal) {
  write(masqueraded(1, "100.64.0.2", 40001, at(1s), at(2s)));
  sink_.reset();  // checkpointed: the file's header says version kSchemaVersion
  const SqliteDb holder = openRaw(path_);
  const std::string older = "PRAGMA wal_autocheckpoint = 0; PRAGMA user_version = " + std::to_string(kSchemaVersion - 1) +
                            "; PRAGMA wal_checkpoint(TRUNCATE); PRAGMA user_version = " + std::to_string(kSchemaVersion);
  ASSERT_EQ(sqlite3_exec(holder.get(), older.c_str(), nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(holder.get());
  // The file says the old version, the -wal (kept: `holder` is open) the current one.
  std::array<unsigned char, 64> header{};
  std::FILE* file = std::fopen(path_.c_str(), "rb");
  ASSERT_NE(file, nullptr);
  ASSERT_EQ(std::fread(header.data(), 1, header.size(), file), header.size());
  std::fclose(file);
  ASSERT_EQ(header[63], kSchemaVersion - 1);
  ASSERT_GT(std::filesystem::file_size(path_.string() + "-wal"), 0U);

  const auto link = dir_ / "link.db";
  std::filesystem::create_symlink(path_, link);
  for (const auto& name : {path_, link}) {
    auto reader = FlowReader::open(name);
    ASSERT_TRUE(reader) << name << ": " << reader.error().detail;
  }
}

TEST_F(FlowReaderTest, ANewerSchemaVersionIsAStorageError) {
  {
    const SqliteDb db = openRaw(path_);
    const std::string newer = "PRAGMA user_version = " + std::to_string(kSchemaVersion + 1);
    ASSERT_EQ(sqlite3_exec(db.get(), newer.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_EQ(reader.error().code, Errc::Storage);
  EXPECT_NE(reader.error().detail.find("schema version " + std::to_string(kSchemaVersion + 1)), std::string::npos)
      << reader.error().detail;
}

// A version-1 file (addresses as BLOBs, end_ns), version-2 file (nanoseconds, times in the
// indexes) or version-3 file (four counter columns, indexes without buckets) is refused with what
// to do, not misread; a version-4 to version-6 file too, read-only, until the daemon has upgraded
// it.
TEST_F(FlowReaderTest, AnOlderSchemaVersionIsAStorageErrorSayingWhatToDo) {
  static_assert(kSchemaVersion == 7, "add the version before this one below");
  for (const int version : {1, 2, 3, 4, 5, 6}) {
    {
      const SqliteDb db = openRaw(path_);
      ASSERT_EQ(sqlite3_exec(db.get(), ("PRAGMA user_version = " + std::to_string(version)).c_str(), nullptr, nullptr,
                             nullptr),
                SQLITE_OK);
    }
    auto reader = FlowReader::open(path_);
    ASSERT_FALSE(reader);
    EXPECT_EQ(reader.error().code, Errc::Storage);
    EXPECT_NE(reader.error().detail.find("older ctaudit (schema version " + std::to_string(version)), std::string::npos)
        << reader.error().detail;
    EXPECT_NE(reader.error().detail.find("docs/schema.md"), std::string::npos) << reader.error().detail;
  }
}

TEST_F(FlowReaderTest, TheReadOnlyConnectionRefusesAttachWritesAndSettings) {
  auto db = openReadOnly(path_);
  ASSERT_TRUE(db) << db.error().detail;
  const auto refused = [&](const std::string& sql) {
    EXPECT_EQ(sqlite3_exec(db->get(), sql.c_str(), nullptr, nullptr, nullptr), SQLITE_AUTH) << sql;
  };
  refused("ATTACH DATABASE '" + (dir_ / "other.db").string() + "' AS other");
  refused("INSERT INTO meta (key, value) VALUES ('k', 'v')");
  refused("UPDATE meta SET value = 'x'");
  refused("DELETE FROM flows");
  refused("CREATE TABLE t (x)");
  refused("DROP VIEW flows_text");
  refused("PRAGMA user_version = 8");
  refused("PRAGMA journal_mode = DELETE");
  refused("VACUUM");
  EXPECT_FALSE(std::filesystem::exists(dir_ / "other.db"));

  EXPECT_EQ(testing::count(db->get(), "SELECT count(*) FROM flows"), 0);
  EXPECT_EQ(testing::count(db->get(), "PRAGMA user_version"), kSchemaVersion);
  EXPECT_EQ(testing::scalar(db->get(), "SELECT value FROM meta WHERE key = 'observer_hostname'"), "gw1.example.net");
}

// RowPrefetch's connections: a small page cache, set before the authorizer, which still refuses
// the pragma afterwards; a file that is not a database fails at open then, having been read.
TEST_F(FlowReaderTest, AReadOnlyConnectionWithItsOwnCacheSizeStillRefusesSettings) {
  auto db = openReadOnly(path_, std::chrono::milliseconds{0}, 32);
  ASSERT_TRUE(db) << db.error().detail;
  EXPECT_EQ(sqlite3_exec(db->get(), "PRAGMA cache_size = 100000", nullptr, nullptr, nullptr), SQLITE_AUTH);
  EXPECT_EQ(testing::count(db->get(), "SELECT count(*) FROM flows"), 0);
  const auto junk = dir_ / "junk.db";
  std::ofstream(junk) << std::string(8192, 'x');
  auto refused = openReadOnly(junk, std::chrono::milliseconds{0}, 32);
  ASSERT_FALSE(refused);
  EXPECT_NE(refused.error().detail.find("cannot set the page cache size"), std::string::npos) << refused.error().detail;
}

TEST_F(FlowReaderTest, ReportsTheObserverHostname) {
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  EXPECT_EQ((*reader)->observerHostname(), "gw1.example.net");
}

TEST_F(FlowReaderTest, SeesWhatTheSinkCommitsWhileOpen) {
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  write(masqueraded(1, "100.64.0.2", 40001, at(0s), at(60s)));
  auto found = (*reader)->find(FlowQuery{});
  ASSERT_TRUE(found);
  EXPECT_EQ(found->size(), 1U);
}

// forEach() hands each flow over as it is read, with the time its row is indexed under, and stops
// when told to (ctaudit flows streams its output, and stops when the output went away).
TEST_F(FlowReaderTest, ForEachVisitsInOrderWithTheIndexedTimeAndStopsWhenAsked) {
  write(masqueraded(1, "100.64.0.2", 40001, at(0s), at(60s)));
  // First seen in the start-up dump, with no kernel start time (nf_conntrack_timestamp was off).
  const auto orig = portTuple(Protocol::Tcp, "100.64.0.3", 33001, "198.51.100.1", 443);
  const auto reply = withSnat(replyOf(orig), "203.0.113.1", 40002);
  FlowRecord dumped = flowEvent(EventType::Dump, 2, orig, reply, at(10s));
  dumped.start.reset();
  FlowRecord destroyed = flowEvent(EventType::Destroy, 2, orig, reply, at(90s));
  write({dumped});
  write({destroyed});
  write(masqueraded(3, "100.64.0.4", 40003, at(20s), at(30s)));

  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  std::vector<std::pair<std::uint32_t, Timestamp>> seen;
  const auto collect = [&seen](const StoredFlow& flow) {
    seen.emplace_back(flow.record.ct_id, flow.lifetime_start);
    return true;
  };
  ASSERT_TRUE((*reader)->forEach(FlowQuery{}, collect));
  EXPECT_EQ(seen, (std::vector<std::pair<std::uint32_t, Timestamp>>{{1, at(0s)}, {2, at(10s)}, {3, at(20s)}}));
  std::size_t visits = 0;
  ASSERT_TRUE((*reader)->forEach(FlowQuery{}, [&visits](const StoredFlow&) { return ++visits < 2; }));
  EXPECT_EQ(visits, 2U) << "stopped when the visitor said so";
  const auto found = (*reader)->find(FlowQuery{});
  ASSERT_TRUE(found);
  ASSERT_EQ(found->size(), 3U);
  EXPECT_FALSE((*found)[1].start) << "the start stays unknown; only the row's index time is the first sighting";
}

// The product's question: which inside host had 203.0.113.1:40001 at time T? Two subscribers get
// the same translated port one after the other.
TEST_F(FlowReaderTest, WhoReturnsOnlyTheHostThatHeldTheTranslatedPortAtThatTime) {
  write(masqueraded(1, "100.64.0.2", 40001, at(0s), at(60s)));
  write(masqueraded(2, "100.64.0.7", 40001, at(120s), at(180s)));
  write(masqueraded(3, "100.64.0.9", 40002, at(30s), at(150s)));  // same time, another port

  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(30s), at(30s)), std::vector<std::uint32_t>{1});
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(150s), at(150s)), std::vector<std::uint32_t>{2});
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(90s), at(90s)).empty());  // between the two
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(181s), at(181s)).empty());
  // Lifetimes include their ends.
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(0s), at(0s)), std::vector<std::uint32_t>{1});
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(60s), at(60s)), std::vector<std::uint32_t>{1});
  // With enough slack around T both show up, oldest first.
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(50s), at(130s)), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_TRUE(whoAt("203.0.113.2", 40001, at(30s), at(30s)).empty());

  const auto records = find(Query().natSource("203.0.113.1", 40001).between(at(30s), at(30s)));
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].original.src, ip("100.64.0.2"));
  EXPECT_EQ(records[0].event, EventType::Destroy);
}

// flows_nat_src and flows_orig_src are keyed by the bucket of 2^20 rowids first
// (kIndexBucketShift): a lookup must ask every bucket its rowid ranges cover, and the buckets of
// the whole file when it has no lower time bound.
TEST_F(FlowReaderTest, LookupsFindRowsOnBothSidesOfABucketBoundary) {
  write(masqueraded(1, "100.64.0.2", 40001, at(0s), at(5s)));
  sink_.reset();
  {
    // A row just below the boundary, so that the sink's next rows straddle it. It has no span:
    // lookups in time do not see it.
    const SqliteDb db = openRaw(path_);
    const std::int64_t filler = (std::int64_t{1} << kIndexBucketShift) - 3;
    ASSERT_EQ(sqlite3_exec(db.get(),
                           ("INSERT INTO flows (id, start_ms, dur_ms, orig_src, orig_dst, packed, zone_mark, ct_id) "
                            "VALUES (" + std::to_string(filler) + ", 0, 1, 0, 0, 6, 0, 0)").c_str(),
                           nullptr, nullptr, nullptr),
              SQLITE_OK);
  }
  SetUp();
  std::vector<FlowRecord> batch;
  for (std::uint32_t ct_id = 2; ct_id <= 5; ++ct_id) {
    const auto flow = masqueraded(ct_id, ct_id % 2 == 0 ? "100.64.0.4" : "100.64.0.5", 40001,
                                  at(std::chrono::seconds{10 * ct_id}), at(std::chrono::seconds{10 * ct_id + 5}));
    batch.insert(batch.end(), flow.begin(), flow.end());
  }
  write(batch);
  {
    const SqliteDb db = openRaw(path_);
    EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows WHERE id >> 20 = 0"), 4);  // 1, filler, 2, 3
    EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows WHERE id >> 20 = 1"), 2);  // 4, 5
  }
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(0s), at(60s)), (std::vector<std::uint32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(40s), at(40s)), std::vector<std::uint32_t>{4});
  EXPECT_EQ(ids(find(Query().source("100.64.0.4").between(at(0s), at(60s)))), (std::vector<std::uint32_t>{2, 4}));
  EXPECT_EQ(ids(find(Query().source("100.64.0.0/24").between(at(35s), at(60s)))), (std::vector<std::uint32_t>{3, 4, 5}));
  // No lower bound: every bucket of the file.
  EXPECT_EQ(ids(find(Query().natSource("203.0.113.1", 40001).to(at(60s)))), (std::vector<std::uint32_t>{1, 2, 3, 4, 5}));
  EXPECT_EQ(ids(find(Query().source("100.64.0.5").to(at(60s)))), (std::vector<std::uint32_t>{3, 5}));
}

// The row holds whole milliseconds, its start rounded down and its end up: a time within the
// millisecond after a stored end is after the flow, one within the millisecond before a stored
// start may be its start.
TEST_F(FlowReaderTest, TimesBetweenMillisecondsAreComparedWithTheRoundedBounds) {
  write(masqueraded(1, "100.64.0.2", 40001, at(10s), at(60s)));
  write(masqueraded(2, "100.64.0.3", 40002, at(10s) + 1ns, at(60s) + 1ns));  // stored 10.000 .. 60.001
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(60s), at(60s)), std::vector<std::uint32_t>{1});
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(60s) + 999ns, at(60s) + 999ns).empty());
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(60s) + 1ns, at(61s)).empty());
  EXPECT_EQ(whoAt("203.0.113.1", 40002, at(60s) + 999'999ns, at(60s) + 999'999ns), std::vector<std::uint32_t>{2});
  EXPECT_EQ(whoAt("203.0.113.1", 40002, at(10s), at(10s)), std::vector<std::uint32_t>{2});  // rounded down
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(10s) - 1ns, at(10s) - 1ns).empty());
  EXPECT_EQ(ids(find(Query().source("100.64.0.0/24").from(at(60s) + 1ns))), std::vector<std::uint32_t>{2});
}

TEST_F(FlowReaderTest, AnOpenFlowMatchesAnyTimeAfterItsStart) {
  write(masqueraded(1, "100.64.0.2", 40001, at(10s), std::nullopt));
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(10s), at(10s)), std::vector<std::uint32_t>{1});
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(std::chrono::hours{24 * 400}), at(std::chrono::hours{24 * 400})),
            std::vector<std::uint32_t>{1});
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(9s), at(9s)).empty());
  const auto records = find(FlowQuery{});
  ASSERT_EQ(records.size(), 1U);
  EXPECT_EQ(records[0].event, EventType::New);
  EXPECT_FALSE(records[0].end);
}

TEST_F(FlowReaderTest, AFlowWithNoStartCountsFromItsEnd) {
  const auto orig = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  write({flowEvent(EventType::Destroy, 1, orig, withSnat(replyOf(orig), "203.0.113.1", 40001), at(100s))});
  EXPECT_TRUE(whoAt("203.0.113.1", 40001, at(50s), at(50s)).empty());
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(100s), at(100s)), std::vector<std::uint32_t>{1});
  EXPECT_EQ(whoAt("203.0.113.1", 40001, at(50s), at(100s)), std::vector<std::uint32_t>{1});
}

TEST_F(FlowReaderTest, FiltersOnTheSubscribersBlock) {
  write(masqueraded(1, "100.64.0.2", 40001, at(1s), at(60s)));
  write(masqueraded(2, "100.64.1.9", 40002, at(2s), at(60s)));
  write(masqueraded(3, "100.65.0.1", 40003, at(3s), at(60s)));
  // 6440:2::1 starts with the bytes of 100.64.0.2: an IPv4 block must not match it.
  const auto v6 = portTuple(Protocol::Tcp, "6440:2::1", 33000, "2001:db8:2::1", 443);
  write({flowEvent(EventType::New, 4, v6, withSnat(replyOf(v6), "2001:db8:2::fe", 40004), at(4s))});
  // The IPv6 key is the whole endpoint: the lowest and highest port of one host, and its neighbour.
  const auto v6_high = portTuple(Protocol::Udp, "6440:2::1", 65535, "2001:db8:2::53", 53);
  const auto v6_low = portTuple(Protocol::Udp, "6440:2::2", 0, "2001:db8:2::53", 53);
  write({flowEvent(EventType::New, 5, v6_high, replyOf(v6_high), at(5s)),
         flowEvent(EventType::New, 6, v6_low, replyOf(v6_low), at(6s))});

  const auto in = [&](std::string_view cidr) {
    return ids(find(Query().source(cidr)));
  };
  EXPECT_EQ(in("100.64.0.0/16"), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_EQ(in("100.64.0.0/10"), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(in("100.64.0.2"), std::vector<std::uint32_t>{1});
  EXPECT_EQ(in("100.64.0.0/8"), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(in("6440::/16"), (std::vector<std::uint32_t>{4, 5, 6}));
  EXPECT_EQ(in("6440:2::1"), (std::vector<std::uint32_t>{4, 5}));
  EXPECT_EQ(in("6440:2::2"), std::vector<std::uint32_t>{6});
  EXPECT_EQ(in("6440:2::/127"), (std::vector<std::uint32_t>{4, 5}));
  EXPECT_EQ(in("6440:2::2/127"), std::vector<std::uint32_t>{6});
  EXPECT_TRUE(in("6440:2::3").empty());
  EXPECT_TRUE(in("10.0.0.0/8").empty());
  EXPECT_EQ(in("0.0.0.0/0"), (std::vector<std::uint32_t>{1, 2, 3}));
}

TEST_F(FlowReaderTest, FiltersOnProtocolDestinationAndEitherTranslation) {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  const auto udp = portTuple(Protocol::Udp, "100.64.0.2", 5353, "198.51.100.53", 53);
  const auto ping = icmpTuple(Protocol::Icmp, "100.64.0.2", "198.51.100.1", 8, 0, 77);
  const auto inbound = portTuple(Protocol::Tcp, "198.51.100.9", 51000, "203.0.113.1", 8080);
  // Found by an exploratory run: --dst 198.51.100.1:443 also listed a ping whose echo id was 443.
  const auto ping_443 = icmpTuple(Protocol::Icmp, "100.64.0.3", "198.51.100.1", 8, 0, 443);
  const auto gre = portTuple(Protocol::Gre, "100.64.0.3", 0, "198.51.100.1", 0);
  write({
      flowEvent(EventType::New, 1, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), at(1s)),
      flowEvent(EventType::New, 2, udp, withSnat(replyOf(udp), "203.0.113.1", 40002), at(2s)),
      flowEvent(EventType::New, 3, ping, withSnat(replyOf(ping), "203.0.113.1", 1024), at(3s)),
      flowEvent(EventType::New, 4, inbound, withDnat(replyOf(inbound), "100.64.0.5", 80), at(4s)),
  });
  write({flowEvent(EventType::New, 5, ping_443, withSnat(replyOf(ping_443), "203.0.113.1", 443), at(5s)),
         flowEvent(EventType::New, 6, gre, withSnat(replyOf(gre), "203.0.113.1", 0), at(6s))});
  EXPECT_TRUE(ids(find(Query().destination("198.51.100.1", 0))).empty()) << "GRE has no port 0";
  EXPECT_EQ(ids(find(Query().destination("198.51.100.1"))), (std::vector<std::uint32_t>{1, 3, 5, 6}));
  EXPECT_EQ(ids(find(Query().protocol(Protocol::Udp))), std::vector<std::uint32_t>{2});
  EXPECT_EQ(ids(find(Query().protocol(Protocol::Icmp))), (std::vector<std::uint32_t>{3, 5}));
  EXPECT_EQ(ids(find(Query().destination("198.51.100.1", 443))),
            std::vector<std::uint32_t>{1});
  // The ICMP id plays the port's role.
  EXPECT_EQ(ids(find(Query().natSource("203.0.113.1", 1024))),
            std::vector<std::uint32_t>{3});
  EXPECT_EQ(ids(find(Query().nat("203.0.113.1"))), (std::vector<std::uint32_t>{1, 2, 3, 5, 6}));
  EXPECT_EQ(ids(find(Query().nat("100.64.0.5"))), std::vector<std::uint32_t>{4});
  EXPECT_EQ(ids(find(Query().nat("100.64.0.5", 80))), std::vector<std::uint32_t>{4});
  EXPECT_TRUE(ids(find(Query().nat("100.64.0.5", 81))).empty());
  EXPECT_EQ(ids(find(Query().natPort(40002))), std::vector<std::uint32_t>{2});
  // Found by an exploratory run: `flows --nat 203.0.113.1:0` listed every GRE flow through it, and
  // a NAT port of 443 the ping whose translated id was 443. --proto asks for those.
  EXPECT_TRUE(ids(find(Query().nat("203.0.113.1", 0))).empty()) << "GRE has no port 0";
  EXPECT_TRUE(ids(find(Query().nat("203.0.113.1", 443))).empty()) << "an echo id is no port";
  EXPECT_EQ(ids(find(Query().nat("203.0.113.1", 0).protocol(Protocol::Gre))), std::vector<std::uint32_t>{6});
  EXPECT_EQ(ids(find(Query().nat("203.0.113.1", 443).protocol(Protocol::Icmp))), std::vector<std::uint32_t>{5});
}

// who --dst (a review): of the flows that held one translated source, those to the destination the
// report names, where the packets went: the DNAT target when the flow has one. Through every arm of
// a lookup at a time: started in the window, open, and longer than kLongFlowMs.
TEST_F(FlowReaderTest, WhoNarrowsByTheDestinationThePacketsReached) {
  const Timestamp t = at(100'000s);
  const auto to = [](std::string_view inside, std::string_view destination, std::uint16_t port) {
    return portTuple(Protocol::Tcp, inside, 33000, destination, port);
  };
  const auto snat = [](const FlowTuple& orig) { return withSnat(replyOf(orig), "203.0.113.1", 40001); };
  const auto a = to("100.64.0.2", "198.51.100.1", 443);
  const auto b = to("100.64.0.3", "198.51.100.2", 443);
  const auto c = to("100.64.0.4", "198.51.100.3", 443);
  // A redirect of DNS to an outside resolver, masqueraded too: the victim is the resolver.
  const auto d = to("100.64.0.5", "198.51.100.4", 53);
  FlowTuple d_reply = withSnat(withDnat(replyOf(d), "198.51.100.53", 53), "203.0.113.1", 40001);
  write({flowEvent(EventType::New, 1, a, snat(a), t - 10s)});
  write({flowEvent(EventType::New, 2, b, snat(b), t - 7'200s)});  // open for two hours
  write({flowEvent(EventType::New, 3, c, snat(c), t - 7'300s), flowEvent(EventType::Destroy, 3, c, snat(c), t + 5s)});
  write({flowEvent(EventType::New, 4, d, d_reply, t - 5s)});
  write({flowEvent(EventType::Destroy, 1, a, snat(a), t + 1s)});
  const auto who = [&](std::string_view destination, std::optional<std::uint16_t> port) {
    FlowQuery query = Query().natSource("203.0.113.1", 40001).between(t, t).destination(destination, port);
    query.destination_reached = true;
    return ids(find(query));
  };
  EXPECT_EQ(ids(find(Query().natSource("203.0.113.1", 40001).between(t, t))), (std::vector<std::uint32_t>{3, 2, 1, 4}));
  EXPECT_EQ(who("198.51.100.1", 443), std::vector<std::uint32_t>{1});
  EXPECT_EQ(who("198.51.100.1", 444), std::vector<std::uint32_t>{});
  EXPECT_EQ(who("198.51.100.2", std::nullopt), std::vector<std::uint32_t>{2}) << "the open arm";
  EXPECT_EQ(who("198.51.100.3", 443), std::vector<std::uint32_t>{3}) << "the long arm";
  EXPECT_EQ(who("198.51.100.53", 53), std::vector<std::uint32_t>{4}) << "where DNAT sent it";
  EXPECT_EQ(who("198.51.100.4", 53), std::vector<std::uint32_t>{}) << "not where it was first addressed";
}

// Found by an exploratory run: one inside address in two conntrack zones (two VRFs behind one
// gateway) is two subscribers, and nothing could ask for one of them.
TEST_F(FlowReaderTest, FiltersOnTheZone) {
  const auto tcp = portTuple(Protocol::Tcp, "100.64.0.2", 33000, "198.51.100.1", 443);
  FlowRecord zone_0 = flowEvent(EventType::New, 1, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40001), at(1s));
  FlowRecord zone_7 = flowEvent(EventType::New, 2, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40002), at(2s));
  zone_7.zone = 7;
  FlowRecord zone_65535 = flowEvent(EventType::New, 3, tcp, withSnat(replyOf(tcp), "203.0.113.1", 40003), at(3s));
  zone_65535.zone = 65535;
  write({zone_0, zone_7, zone_65535});
  EXPECT_EQ(ids(find(Query().source("100.64.0.2"))), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(ids(find(Query().source("100.64.0.2").zone(7))), std::vector<std::uint32_t>{2});
  EXPECT_EQ(ids(find(Query().zone(0))), std::vector<std::uint32_t>{1});
  EXPECT_EQ(ids(find(Query().zone(65535))), std::vector<std::uint32_t>{3});
  EXPECT_TRUE(ids(find(Query().zone(8))).empty());
}

// A lookup at T reads three kinds of rows (flow_query_sql.hpp): those that started within
// kLongFlowMs before T, by their spans; open ones; and longer ones that started before that. Each
// kind is found through its own arm, and whatever the key: nat_src, the source, or none.
TEST_F(FlowReaderTest, FindsEveryFlowAliveAtATimeWhicheverArmHoldsIt) {
  const Timestamp t = at(100'000s);
  const auto flow = [](std::uint32_t ct_id, Timestamp start, std::optional<Timestamp> end) {
    return masqueraded(ct_id, "100.64.0.1", 40001, start, end);
  };
  // One batch each, so that the rows land in different spans as a running daemon writes them.
  write(flow(1, t - 10s, t + 5s));          // recent, short: arm 1
  write(flow(2, t - 3h, std::nullopt));     // open for hours: arm 2
  write(flow(3, t - 2h, t + 1s));           // longer than an hour: arm 3
  write(flow(4, t - 2h, t - 90min));        // long, ended before T
  write(flow(5, t - 50min, t + 1s));        // 51 minutes: short, arm 1
  write(flow(6, t + 10s, t + 20s));         // starts after T
  write(flow(7, t - 20s, t - 1s));          // ended before T
  write(flow(8, t - 30min, std::nullopt));  // open, started within the hour: arm 1
  const std::vector<std::uint32_t> alive{2, 3, 5, 8, 1};  // by start

  EXPECT_EQ(whoAt("203.0.113.1", 40001, t, t), alive);
  EXPECT_EQ(ids(find(Query().natSource("203.0.113.1", std::nullopt).between(t, t))), alive);
  EXPECT_EQ(ids(find(Query().source("100.64.0.1").between(t, t))), alive);
  EXPECT_EQ(ids(find(Query().source("100.64.0.0/10").between(t, t))), alive);
  EXPECT_EQ(ids(find(Query().between(t, t))), alive);
  // A window: everything that overlaps it, each row once.
  EXPECT_EQ(ids(find(Query().natSource("203.0.113.1", 40001).between(t - 100min, t))),
            (std::vector<std::uint32_t>{2, 3, 4, 5, 8, 7, 1}));
}

// A row whose start moved earlier after it was inserted (a kernel start replaced the receive time
// of its first event) gets a span of its own: a lookup near the new start finds it.
TEST_F(FlowReaderTest, FindsAFlowWhoseStartMovedAfterItWasInserted) {
  const Timestamp t = at(100'000s);
  const auto orig = portTuple(Protocol::Tcp, "100.64.0.1", 33000, "198.51.100.1", 443);
  const auto reply = withSnat(replyOf(orig), "203.0.113.1", 40001);
  FlowRecord first = flowEvent(EventType::Update, 1, orig, reply, t);
  first.start = t;  // first seen at t: the receive time stands in for the start
  write({first});
  FlowRecord destroy = flowEvent(EventType::Destroy, 1, orig, reply, t + 5s);
  destroy.start = t - 20min;
  destroy.start_source = TimeSource::Kernel;
  write({destroy});

  const auto found = find(Query().natSource("203.0.113.1", 40001).between(t - 15min, t - 15min));
  ASSERT_EQ(ids(found), std::vector<std::uint32_t>{1});
  EXPECT_EQ(found[0].start, t - 20min);
  const SqliteDb db = openRaw(path_);
  EXPECT_EQ(testing::count(db.get(), "SELECT count(*) FROM spans WHERE first_id = last_id AND min_start_ms = " +
                                         std::to_string(toUnixNanos(t - 20min) / 1'000'000)),
            1);
}

TEST_F(FlowReaderTest, LimitsAndOrdersByStart) {
  // Written out of start order, in one batch.
  write({masqueraded(3, "100.64.0.3", 40003, at(30s), std::nullopt)[0],
         masqueraded(1, "100.64.0.1", 40001, at(10s), std::nullopt)[0],
         masqueraded(2, "100.64.0.2", 40002, at(20s), std::nullopt)[0]});
  EXPECT_EQ(ids(find(FlowQuery{})), (std::vector<std::uint32_t>{1, 2, 3}));
  EXPECT_EQ(ids(find(Query().limit(2))), (std::vector<std::uint32_t>{1, 2}));
  EXPECT_TRUE(ids(find(Query().limit(0))).empty());
  EXPECT_EQ(ids(find(Query().from(at(15s)).limit(1))), std::vector<std::uint32_t>{1});  // still open
  EXPECT_EQ(ids(find(Query().to(at(25s)))), (std::vector<std::uint32_t>{1, 2}));
}

TEST_F(FlowReaderTest, ValuesAreParametersNotSqlText) {
  FlowQuery query;
  query.nat_source_address = ip("203.0.113.1");
  query.nat_source_port = 40001;
  query.source = IpNetwork::parse("100.64.0.0/10");
  query.protocol = Protocol::Tcp;
  query.from = at(1s);
  query.to = at(2s);
  query.limit = 5;
  const std::vector<IdRange> started{{1234567, 7654321}};
  const CompiledQuery compiled = compileFlowQuery(query, started);
  // endpoint, block low/high, protocol, to, from, the range's two buckets and two ids, the long
  // flows' start bound, limit; each bound once and named by number in every arm.
  EXPECT_EQ(compiled.parameters.size(), 12U);
  EXPECT_EQ(compiled.sql.find("40001"), std::string::npos) << compiled.sql;
  EXPECT_EQ(compiled.sql.find("1234567"), std::string::npos) << compiled.sql;
  EXPECT_EQ(compiled.sql.find(std::to_string(toUnixNanos(at(1s)) / 1'000'000)), std::string::npos) << compiled.sql;
}

GapRecord gapOf(GapReason reason, Timestamp start, Timestamp end) {
  GapRecord gap;
  gap.reason = reason;
  gap.start = start;
  gap.end = end;
  return gap;
}

TEST_F(FlowReaderTest, GapsAreThoseOverlappingTheWindowOldestFirst) {
  GapRecord sink_failure = gapOf(GapReason::SinkFailure, at(50s), at(70s));
  sink_failure.lost_records = 12;
  sink_failure.sink = "sqlite";
  GapRecord overrun = gapOf(GapReason::KernelOverrun, at(10s), at(20s));
  overrun.overruns = 4;
  const GapRecord down = gapOf(GapReason::DaemonDown, at(100s), at(200s));
  for (const GapRecord& gap : {sink_failure, overrun, down}) {
    ASSERT_EQ(sink_->writeGap(gap), SinkStatus::Ok);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader) << reader.error().detail;
  const auto gaps = [&](Timestamp from, Timestamp to) {
    auto found = (*reader)->gaps(from, to);
    EXPECT_TRUE(found) << found.error().detail;
    return found ? *found : std::vector<GapRecord>{};
  };
  EXPECT_EQ(gaps(at(0s), at(300s)), (std::vector<GapRecord>{overrun, sink_failure, down}));
  EXPECT_EQ(gaps(at(15s), at(15s)), std::vector<GapRecord>{overrun});
  EXPECT_EQ(gaps(at(20s), at(50s)), (std::vector<GapRecord>{overrun, sink_failure})) << "ends included";
  EXPECT_TRUE(gaps(at(21s), at(49s)).empty());
  EXPECT_TRUE(gaps(at(201s), at(900s)).empty());
  EXPECT_EQ(gaps(at(150s), at(150s)), std::vector<GapRecord>{down});
}

TEST_F(FlowReaderTest, AGapRowNoWriterProducesIsAnError) {
  ASSERT_EQ(sink_->writeGap(gapOf(GapReason::KernelOverrun, at(10s), at(20s))), SinkStatus::Ok);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "UPDATE gaps SET reason = 'cosmic_ray'", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  const auto gaps = (*reader)->gaps(at(0s), at(30s));
  ASSERT_FALSE(gaps);
  EXPECT_EQ(gaps.error().code, Errc::Storage);
  EXPECT_NE(gaps.error().detail.find("gaps row id 1: unknown reason 'cosmic_ray'"), std::string::npos)
      << gaps.error().detail;
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "UPDATE gaps SET reason = 'kernel_overrun', lost_records = -3", nullptr, nullptr,
                           nullptr),
              SQLITE_OK);
  }
  const auto negative = (*reader)->gaps(at(0s), at(30s));
  ASSERT_FALSE(negative);
  EXPECT_NE(negative.error().detail.find("gaps row id 1: a negative count (lost_records -3"), std::string::npos)
      << negative.error().detail;
}

TEST_F(FlowReaderTest, LoggedPeriodsAreTheRunsToTheirStopOrLastHeartbeat) {
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader);
  auto none = (*reader)->loggedPeriods();
  ASSERT_TRUE(none) << none.error().detail;
  EXPECT_TRUE(none->empty());

  ASSERT_TRUE(sink_->beginRun(at(0s)));
  ASSERT_TRUE(sink_->endRun(at(100s)));  // stopped cleanly
  sink_.reset();
  auto second = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(second);
  ASSERT_TRUE((*second)->beginRun(at(200s)));
  (*second)->noteAlive(at(250s));
  ASSERT_EQ((*second)->writeGap(gapOf(GapReason::KernelOverrun, at(240s), at(241s))), SinkStatus::Ok);
  EXPECT_EQ((*second)->flush(), SinkStatus::Ok);  // the gap carried no heartbeat; 50 s stale: flush does
  second->reset();  // killed: no endRun
  auto third = SqliteSink::open(path_, "gw1.example.net", testing::nullLogger());
  ASSERT_TRUE(third);
  ASSERT_TRUE((*third)->beginRun(at(400s)));  // still running

  auto periods = (*reader)->loggedPeriods();
  ASSERT_TRUE(periods) << periods.error().detail;
  EXPECT_EQ(*periods, (std::vector<LoggedPeriod>{{at(0s), at(100s), true},
                                                 {at(200s), at(250s), false},
                                                 {at(400s), at(400s), false}}));
}

// Every readable file has gaps and runs (only the current schema version is read, and it creates
// them). Without them an answer of "nobody" could not say whether events were lost, so a file whose
// tables were dropped at the shell is refused at open, naming what is missing; so is a renamed
// column, which a query would otherwise report with its whole SQL.
TEST_F(FlowReaderTest, AFileMissingATableOrColumnIsRefusedAtOpenSayingWhich) {
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP VIEW gaps_text; DROP TABLE gaps", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  auto reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("the table 'gaps' is missing"), std::string::npos) << reader.error().detail;
  EXPECT_NE(reader.error().detail.find("changed after ctauditd wrote it"), std::string::npos);
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP VIEW IF EXISTS flows_text; ALTER TABLE flows RENAME COLUMN nat_src TO x",
                           nullptr, nullptr, nullptr),
              SQLITE_OK)
        << sqlite3_errmsg(db.get());
  }
  reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("the table 'flows'"), std::string::npos) << reader.error().detail;
  EXPECT_NE(reader.error().detail.find("no such column: nat_src"), std::string::npos) << reader.error().detail;
  EXPECT_EQ(reader.error().detail.find("SELECT"), std::string::npos) << reader.error().detail;
}

TEST_F(FlowReaderTest, AMissingIndexThatQueriesNameIsNamedInOneLine) {
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP INDEX flows_long_nat", nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db.get());
  }
  auto reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("the index 'flows_long_nat'"), std::string::npos) << reader.error().detail;
}

// A ctaudit file cut short (a copy, a full disk): its header passes, SQLite finds it malformed,
// and the message says so and where else the flows are.
TEST_F(FlowReaderTest, ADamagedFileSaysWhereElseTheFlowsAre) {
  write(masqueraded(1, "100.64.0.2", 40001, at(1s), at(2s)));
  sink_.reset();
  std::filesystem::resize_file(path_, 4096);  // page 1 only: the tables' pages are gone
  auto reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("is damaged"), std::string::npos) << reader.error().detail;
  EXPECT_NE(reader.error().detail.find("the JSON-lines files"), std::string::npos) << reader.error().detail;
  EXPECT_NE(reader.error().detail.find("A damaged database"), std::string::npos) << reader.error().detail;
}

// A damaged page that only a query reaches: the query's error says the same.
TEST_F(FlowReaderTest, ADamagedPageFoundByAQuerySaysTheFileIsDamaged) {
  write(masqueraded(1, "100.64.0.2", 40001, at(1s), at(2s)));
  sink_.reset();
  std::int64_t root = 0;
  {
    const SqliteDb db = openRaw(path_);
    root = testing::count(db.get(), "SELECT rootpage FROM sqlite_master WHERE name = 'flows'");
    ASSERT_EQ(sqlite3_exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr), SQLITE_OK);
  }
  ASSERT_GT(root, 1);
  {
    std::fstream file(path_, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp((root - 1) * 4096);
    const std::string garbage(4096, '\xff');  // no b-tree page starts with 0xFF
    file.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }
  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader) << reader.error().detail;
  auto found = (*reader)->find(FlowQuery{});
  ASSERT_FALSE(found);
  EXPECT_EQ(found.error().code, Errc::Storage);
  EXPECT_NE(found.error().detail.find("is damaged"), std::string::npos) << found.error().detail;
  EXPECT_NE(found.error().detail.find("A damaged database"), std::string::npos) << found.error().detail;
}

// A program other than ctauditd that keeps the file locked (an exclusive-mode connection, which
// WAL readers cannot get past) past the reader's busy timeout: waits that long, then says so.
// The wait is the busy timeout, shortened here to 200 ms.
TEST_F(FlowReaderTest, AFileLockedPastTheBusyTimeoutSaysAnotherProgramHoldsIt) {
  write(masqueraded(1, "100.64.0.2", 40001, at(1s), at(2s)));
  sink_.reset();
  const SqliteDb holder = openRaw(path_);
  ASSERT_EQ(sqlite3_exec(holder.get(), "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE", nullptr, nullptr, nullptr),
            SQLITE_OK)
      << sqlite3_errmsg(holder.get());
  const auto started = std::chrono::steady_clock::now();
  auto reader = FlowReader::open(path_, 200ms);
  ASSERT_FALSE(reader);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 200ms - 50ms);
  EXPECT_NE(reader.error().detail.find("stayed locked for 200 ms: another program holds it"), std::string::npos)
      << reader.error().detail;
  EXPECT_EQ(sqlite3_exec(holder.get(), "COMMIT", nullptr, nullptr, nullptr), SQLITE_OK);
}

TEST_F(FlowReaderTest, AMissingMetaTableIsNamedInOneLine) {
  sink_.reset();
  {
    const SqliteDb db = openRaw(path_);
    ASSERT_EQ(sqlite3_exec(db.get(), "DROP TABLE meta", nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db.get());
  }
  auto reader = FlowReader::open(path_);
  ASSERT_FALSE(reader);
  EXPECT_NE(reader.error().detail.find("the table 'meta' is missing"), std::string::npos) << reader.error().detail;
  EXPECT_EQ(reader.error().detail.find("SELECT"), std::string::npos) << reader.error().detail;
}

TEST_F(FlowReaderTest, TheGapLookupUsesItsIndex) {
  const SqliteDb db = openRaw(path_);
  const std::string plan = queryPlan(db.get(),
                                     "SELECT id, reason, start_ns, end_ns, lost_records, overruns, sink FROM gaps"
                                     " WHERE start_ns <= ?1 AND end_ns >= ?2 ORDER BY start_ns, id");
  EXPECT_NE(plan.find("USING INDEX gaps_time (start_ns<?)"), std::string::npos) << plan;
}

// EXPLAIN QUERY PLAN on the real schema: each query shape is served by the index made for it, and
// no arm of a lookup in time scans the table (flow_query_sql.hpp).
TEST_F(FlowReaderTest, EachQueryShapeUsesItsIndex) {
  const SqliteDb db = openRaw(path_);
  const std::vector<IdRange> started{{10, 20}, {40, 50}};
  const auto plan = [&](const FlowQuery& query) { return queryPlan(db.get(), compileFlowQuery(query, started).sql); };
  const auto uses = [](const std::string& text, std::string_view step) {
    return text.find(step) != std::string::npos;
  };

  const std::string who = plan(Query().natSource("203.0.113.1", 40001).between(at(0s), at(1s)).limit(100));
  // Two ranges, two arms through flows_nat_src, each searching every bucket of its range (the list
  // the recursive CTE makes) for the key: the rowid is the end of each entry.
  EXPECT_TRUE(uses(who, "USING INDEX flows_nat_src (<expr>=? AND nat_src=? AND rowid>? AND rowid<?)")) << who;
  EXPECT_TRUE(uses(who, "LIST SUBQUERY")) << who;
  EXPECT_TRUE(uses(who, "USING INDEX flows_open_nat (nat_src=?)")) << who;
  EXPECT_TRUE(uses(who, "USING INDEX flows_long_nat (nat_src=? AND start_ms<?)")) << who;
  EXPECT_FALSE(uses(who, "SCAN flows")) << who;

  // who --dst: the destination is a filter on the rows the translated source finds.
  FlowQuery who_dst = Query().natSource("203.0.113.1", 40001).destination("198.51.100.1", 443).between(at(0s), at(1s));
  who_dst.destination_reached = true;
  const std::string to_victim = plan(who_dst);
  EXPECT_TRUE(uses(to_victim, "USING INDEX flows_nat_src (<expr>=? AND nat_src=? AND rowid>? AND rowid<?)"))
      << to_victim;
  EXPECT_TRUE(uses(to_victim, "USING INDEX flows_open_nat (nat_src=?)")) << to_victim;
  EXPECT_TRUE(uses(to_victim, "USING INDEX flows_long_nat (nat_src=? AND start_ms<?)")) << to_victim;
  EXPECT_FALSE(uses(to_victim, "SCAN flows")) << to_victim;

  // who's second question, a port forward: the original destination of the DNAT'd rows.
  FlowQuery forward = Query().between(at(0s), at(1s));
  forward.forwarded_address = ip("203.0.113.1");
  forward.forwarded_port = 8080;
  const std::string forwarded = plan(forward);
  EXPECT_TRUE(uses(forwarded, "USING INDEX flows_dnat (<expr>=? AND orig_dst=? AND rowid>? AND rowid<?)"))
      << forwarded;
  EXPECT_TRUE(uses(forwarded, "USING INDEX flows_open_dnat (orig_dst=?)")) << forwarded;
  EXPECT_TRUE(uses(forwarded, "USING INDEX flows_long_dnat (orig_dst=? AND start_ms<?)")) << forwarded;
  EXPECT_FALSE(uses(forwarded, "SCAN flows")) << forwarded;
  // With who --dst, the victim is the forwarded flow's source: a filter on the rows found.
  forward.source = IpNetwork::parse("198.51.100.1");
  forward.forwarded_port.reset();
  const std::string forwarded_to = plan(forward);
  EXPECT_TRUE(uses(forwarded_to, "USING INDEX flows_dnat (<expr>=? AND orig_dst>? AND orig_dst<?)")) << forwarded_to;
  EXPECT_TRUE(uses(forwarded_to, "USING INDEX flows_long_dnat (orig_dst>? AND orig_dst<?)")) << forwarded_to;
  EXPECT_FALSE(uses(forwarded_to, "SCAN flows")) << forwarded_to;
  EXPECT_FALSE(compileKeyIdQuery(forward, started));

  const std::string nat_address = plan(Query().natSource("203.0.113.1", std::nullopt).between(at(0s), at(1s)));
  EXPECT_TRUE(uses(nat_address, "flows_nat_src (<expr>=? AND nat_src>? AND nat_src<?)")) << nat_address;
  EXPECT_TRUE(uses(nat_address, "flows_long_nat (nat_src>? AND nat_src<?)")) << nat_address;
  EXPECT_FALSE(uses(nat_address, "SCAN flows")) << nat_address;

  const std::string by_source = plan(Query().source("100.64.0.0/10").between(at(0s), at(1s)));
  EXPECT_TRUE(uses(by_source, "USING INDEX flows_open_src (<expr>>? AND <expr><?)")) << by_source;
  EXPECT_TRUE(uses(by_source, "USING INDEX flows_long_src (<expr>>? AND <expr><?)")) << by_source;
  EXPECT_FALSE(uses(by_source, "SCAN flows")) << by_source;

  const std::string host = plan(Query().source("100.64.0.2").between(at(0s), at(1s)));
  EXPECT_TRUE(uses(host, "USING INDEX flows_orig_src (<expr>=? AND <expr>=? AND rowid>? AND rowid<?)")) << host;
  EXPECT_TRUE(uses(host, "USING INDEX flows_open_src (<expr>=?)")) << host;
  EXPECT_TRUE(uses(host, "USING INDEX flows_long_src (<expr>=? AND start_ms<?)")) << host;
  EXPECT_FALSE(uses(host, "SCAN flows")) << host;

  // An IPv6 key holds the port (kOrigSrcKeySql): one host is a range of keys in each bucket.
  const std::string host6 = plan(Query().source("2001:db8:1::2").between(at(0s), at(1s)));
  EXPECT_TRUE(uses(host6, "USING INDEX flows_orig_src (<expr>=? AND <expr>>? AND <expr><?)")) << host6;
  EXPECT_TRUE(uses(host6, "USING INDEX flows_open_src (<expr>>? AND <expr><?)")) << host6;
  EXPECT_FALSE(uses(host6, "SCAN flows")) << host6;

  // Time alone: the rows of the window by rowid, and the open and long rows from their partial
  // indexes, whole: those hold the conntrack table and the flows longer than kLongFlowMs only.
  const std::string by_time = plan(Query().between(at(0s), at(1s)));
  EXPECT_TRUE(uses(by_time, "SEARCH flows USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)")) << by_time;
  EXPECT_TRUE(uses(by_time, "SCAN flows USING INDEX flows_open_nat")) << by_time;
  EXPECT_TRUE(uses(by_time, "SCAN flows USING INDEX flows_long_src")) << by_time;

  // Without a lower bound on the lifetime, one pass through the key's index, bucket by bucket.
  const std::string until = plan(Query().natSource("203.0.113.1", 40001).to(at(1s)));
  EXPECT_TRUE(uses(until, "flows_nat_src (<expr>=? AND nat_src=?)")) << until;
  EXPECT_FALSE(uses(until, "SCAN flows")) << until;
  const std::string host_until = plan(Query().source("100.64.0.2").to(at(1s)));
  EXPECT_TRUE(uses(host_until, "flows_orig_src (<expr>=? AND <expr>=?)")) << host_until;
  EXPECT_FALSE(uses(host_until, "SCAN flows")) << host_until;
}

// How many times the bytecode of `sql` reads a column of a row of the flows table: SQLite plans
// an expression index as "USING INDEX" even when it never seeks the row (its DeferredSeek is only
// done when a column of the row is read), so the plan alone cannot say.
int flowsColumnReads(sqlite3* db, const std::string& sql) {
  const std::int64_t flows_root = testing::count(db, "SELECT rootpage FROM sqlite_master WHERE name = 'flows'");
  sqlite3_stmt* raw = nullptr;
  EXPECT_EQ(sqlite3_prepare_v2(db, ("EXPLAIN " + sql).c_str(), -1, &raw, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  const SqliteStmt stmt(raw);
  std::vector<std::int64_t> table_cursors;
  int reads = 0;
  while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): SQLite's text is unsigned char
    const std::string opcode = reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1));
    const std::int64_t p1 = sqlite3_column_int64(stmt.get(), 2);
    if (opcode == "OpenRead" && sqlite3_column_int64(stmt.get(), 3) == flows_root) {
      table_cursors.push_back(p1);
    } else if (opcode == "Column" && std::find(table_cursors.begin(), table_cursors.end(), p1) != table_cursors.end()) {
      ++reads;
    }
  }
  return reads;
}

// What RowPrefetch reads ahead: the ids of the key's rows, from the key's index alone (a cold
// disk serves those entries a few pages at a time, where the rows are a page each).
TEST_F(FlowReaderTest, TheKeyIdQueryReadsOnlyTheIndex) {
  const SqliteDb db = openRaw(path_);
  const std::vector<IdRange> started{{10, 20}, {40, 50}};
  const auto check = [&](const FlowQuery& query, std::string_view index_step) {
    const auto compiled = compileKeyIdQuery(query, started);
    ASSERT_TRUE(compiled);
    const std::string plan = queryPlan(db.get(), compiled->sql);
    EXPECT_NE(plan.find(index_step), std::string::npos) << plan;
    EXPECT_EQ(plan.find("SCAN flows"), std::string::npos) << plan;
    EXPECT_EQ(flowsColumnReads(db.get(), compiled->sql), 0) << compiled->sql;
    // The test can fail: the query itself reads the rows.
    EXPECT_GT(flowsColumnReads(db.get(), compileFlowQuery(query, started).sql), 0);
  };
  check(Query().natSource("203.0.113.1", 40001).between(at(0s), at(1s)),
        "flows_nat_src (<expr>=? AND nat_src=? AND rowid>? AND rowid<?)");
  check(Query().source("100.64.0.2").between(at(0s), at(1s)),
        "flows_orig_src (<expr>=? AND <expr>=? AND rowid>? AND rowid<?)");
  check(Query().source("2001:db8:1::2").between(at(0s), at(1s)),
        "flows_orig_src (<expr>=? AND <expr>>? AND <expr><?)");
  check(Query().source("100.64.0.2").to(at(1s)), "flows_orig_src (<expr>=? AND <expr>=?)");
  // No key: the rows lie in rowid ranges. No ranges: only the open and long rows, a few.
  EXPECT_FALSE(compileKeyIdQuery(Query().between(at(0s), at(1s)), started));
  EXPECT_FALSE(compileKeyIdQuery(Query().source("100.64.0.2").between(at(0s), at(1s)), {}));
}

// The key id query run, not only planned: each arm's parameters are the ones its placeholders
// name, so it returns exactly the key's rows in the ranges, in the order the query reads them.
TEST_F(FlowReaderTest, TheKeyIdQueryFindsTheKeysRowsInTheRangesInReadOrder) {
  std::vector<FlowRecord> batch;
  for (std::uint32_t ct_id = 1; ct_id <= 12; ++ct_id) {
    const auto flow = masqueraded(ct_id, ct_id % 2 == 1 ? "100.64.0.2" : "100.64.0.3",
                                  static_cast<std::uint16_t>(40000 + ct_id), at(std::chrono::seconds{ct_id}),
                                  at(std::chrono::seconds{ct_id + 1}));
    batch.insert(batch.end(), flow.begin(), flow.end());
  }
  write(batch);
  const SqliteDb db = openRaw(path_);
  // ct_id is stored biased by 2^31 (flow_row.hpp).
  ASSERT_EQ(testing::count(db.get(), "SELECT count(*) FROM flows WHERE id = ct_id + 2147483648"), 12)
      << "rowids in start order";
  const std::vector<IdRange> started{{1, 5}, {8, 12}};
  const auto run = [&](const CompiledQuery& compiled) {
    std::vector<std::int64_t> ids;
    sqlite3_stmt* raw = nullptr;
    EXPECT_EQ(sqlite3_prepare_v2(db.get(), compiled.sql.c_str(), -1, &raw, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db.get());
    const SqliteStmt stmt(raw);
    for (std::size_t i = 0; i < compiled.parameters.size(); ++i) {
      EXPECT_EQ(bindValue(stmt.get(), static_cast<int>(i + 1), compiled.parameters[i]), SQLITE_OK);
    }
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) {
      ids.push_back(sqlite3_column_int64(stmt.get(), 0));
    }
    return ids;
  };
  const auto keyIds = [&](const FlowQuery& query) {
    const auto compiled = compileKeyIdQuery(query, started);
    EXPECT_TRUE(compiled);
    return compiled ? run(*compiled) : std::vector<std::int64_t>{};
  };
  const FlowQuery host = Query().source("100.64.0.2").between(at(0s), at(100s));
  EXPECT_EQ(keyIds(host), (std::vector<std::int64_t>{1, 3, 5, 9, 11}));
  EXPECT_EQ(run(compileFlowQuery(host, started)), keyIds(host)) << "the rows the query itself reads";
  EXPECT_EQ(keyIds(Query().natSource("203.0.113.1").between(at(0s), at(100s))),
            (std::vector<std::int64_t>{1, 2, 3, 4, 5, 8, 9, 10, 11, 12}));
  EXPECT_EQ(keyIds(Query().natSource("203.0.113.1", 40009).between(at(0s), at(100s))), std::vector<std::int64_t>{9});
  // Without a lower bound every bucket, and in each the index's order: by address, then rowid.
  EXPECT_EQ(keyIds(Query().source("100.64.0.0/24").to(at(100s))),
            (std::vector<std::int64_t>{1, 3, 5, 7, 9, 11, 2, 4, 6, 8, 10, 12}));
  EXPECT_FALSE(compileKeyIdQuery(Query().natSource("203.0.113.1").source("100.64.0.2").between(at(0s), at(100s)),
                                 started))
      << "two keys: SQLite may read the rows through either index";
}

// Enough rows of one subscriber for FlowReader to read them ahead from other connections, with the
// query's read transaction open beside them: the answer is the same rows, once each, in start
// order, read ahead or not.
TEST_F(FlowReaderTest, AManyRowLookupReadAheadFindsEachRowOnce) {
  constexpr std::uint32_t kFlows = 4 * RowPrefetch::kMinRows;
  std::vector<FlowRecord> batch;
  std::vector<std::uint32_t> expected;
  for (std::uint32_t ct_id = 1; ct_id <= kFlows; ++ct_id) {
    const bool mine = ct_id % 4 != 0;
    const auto start = at(std::chrono::seconds{ct_id});
    // Every tenth of the subscriber's flows stays open; the others last 30 s.
    const std::optional<Timestamp> end =
        ct_id % 10 == 1 ? std::nullopt : std::optional<Timestamp>{start + 30s};
    const auto flow = masqueraded(ct_id, mine ? "100.64.0.2" : "100.64.0.3",
                                  static_cast<std::uint16_t>(40000 + ct_id), start, end);
    batch.insert(batch.end(), flow.begin(), flow.end());
    if (mine && (ct_id >= 60 - 30 || !end)) {  // ended before 60 s, or open since
      expected.push_back(ct_id);
    }
  }
  write(batch);
  const FlowQuery query = Query().source("100.64.0.2").between(at(60s), at(std::chrono::hours{1}));
  EXPECT_EQ(ids(find(query)), expected);

  auto reader = FlowReader::open(path_);
  ASSERT_TRUE(reader) << reader.error().detail;
  (*reader)->setReadAhead(FlowReader::ReadAhead::Always);
  auto found = (*reader)->find(query);
  ASSERT_TRUE(found) << found.error().detail;
  EXPECT_EQ(ids(*found), expected);
  // Every flow of the subscriber that started in the ranges searched: all of them here.
  EXPECT_EQ((*reader)->rowsReadAhead(), kFlows / 4 * 3);
}

}  // namespace
}  // namespace ctaudit::storage
