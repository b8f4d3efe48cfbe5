// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_sink.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "flow/nat.hpp"
#include "tests/support/file_text.hpp"
#include "tests/support/manual_clock.hpp"
#include "tests/support/page_cache.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::storage {
namespace {

using ctaudit::testing::ManualClock;
using ctaudit::testing::readFile;

using ctaudit::testing::TempDir;
using namespace std::chrono_literals;

const JsonContext kContext{"gw1.example.net"};

// A masqueraded TCP flow at one of its events; `port` keeps the lines of one test apart.
FlowRecord flow(EventType event, std::uint16_t port) {
  FlowRecord r;
  r.event = event;
  r.ct_id = 1000U + port;
  r.original.protocol = Protocol::Tcp;
  r.original.src = IpAddress::parse("100.64.0.2").value();
  r.original.dst = IpAddress::parse("198.51.100.1").value();
  r.original.src_port = port;
  r.original.dst_port = 443;
  r.reply = r.original;
  std::swap(r.reply.src, r.reply.dst);
  std::swap(r.reply.src_port, r.reply.dst_port);
  r.reply.dst = IpAddress::parse("203.0.113.1").value();
  r.status = ct_status::kConfirmed | ct_status::kSrcNat;
  r.nat = deriveNat(r.status, r.original, r.reply);
  r.event_time = fromUnixNanos(1'795'600'803'000'000'000) + std::chrono::seconds{port};
  if (event == EventType::Destroy) {
    r.counters_original = Counters{3, 180};
    r.counters_reply = Counters{2, 120};
  }
  return r;
}

std::string lineOf(const FlowRecord& record) { return toJsonLine(record, kContext) + '\n'; }

std::string linesOf(const std::vector<FlowRecord>& records) {
  std::string text;
  for (const FlowRecord& record : records) {
    text += lineOf(record);
  }
  return text;
}

// The "jsonl" logger with its messages kept in memory.
struct CapturedLog {
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> messages = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(64);
  std::shared_ptr<spdlog::logger> logger = std::make_shared<spdlog::logger>("jsonl", messages);

  [[nodiscard]] std::vector<std::string> at(spdlog::level::level_enum level) const {
    std::vector<std::string> out;
    for (const auto& message : messages->last_raw()) {
      if (message.level == level) {
        out.emplace_back(message.payload.data(), message.payload.size());
      }
    }
    return out;
  }
};

std::unique_ptr<JsonLinesSink> openSink(const std::filesystem::path& path, const CapturedLog& log,
                                        bool include_updates = false) {
  auto sink = JsonLinesSink::open(path, kContext, include_updates, log.logger);
  if (!sink) {
    ADD_FAILURE() << sink.error().detail;
    return nullptr;
  }
  return std::move(sink).value();
}

TEST(JsonLinesSinkTest, AppendsOneLinePerRecordAndCreatesParents) {
  const TempDir dir;
  const auto path = dir / "state" / "ctaudit" / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);

  const std::vector first{flow(EventType::New, 1), flow(EventType::Destroy, 1)};
  const std::vector second{flow(EventType::Dump, 2)};
  EXPECT_EQ(sink->write(first), SinkStatus::Ok);
  EXPECT_EQ(sink->write(second), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);

  EXPECT_EQ(readFile(path), linesOf(first) + linesOf(second));
  EXPECT_EQ(sink->stats().records_written, 3U);
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777U & ~0640U, 0U) << "mode " << std::oct << (st.st_mode & 0777U);
  EXPECT_TRUE(log.at(spdlog::level::err).empty());
}

// Batches of whole blocks and more go to the disk past the page cache (DirectAppend); what is
// cached is at most the file's last, partial block.
TEST(JsonLinesSinkTest, KeepsItsLinesOutOfThePageCache) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  if (!ctaudit::testing::directWritesWork(dir.path())) {
    GTEST_SKIP() << dir.path() << " is on a file system without O_DIRECT (tmpfs?); set TMPDIR to a disk";
  }
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  std::string expected;
  for (const std::uint16_t first : {std::uint16_t{1000}, std::uint16_t{2000}, std::uint16_t{3000}}) {
    std::vector<FlowRecord> records;
    for (std::uint16_t port = first; port < first + 300U; ++port) {
      records.push_back(flow(EventType::Destroy, port));
    }
    ASSERT_EQ(sink->write(records), SinkStatus::Ok);
    ASSERT_EQ(sink->flush(), SinkStatus::Ok);
    expected += linesOf(records);
  }
  EXPECT_LE(ctaudit::testing::cachedPages(path), 1U) << "of " << expected.size() / 4096 << " pages";
  EXPECT_EQ(readFile(path), expected);
}

TEST(JsonLinesSinkTest, AppendsToWhatIsAlreadyThere) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  std::ofstream(path) << "{\"earlier\":true}\n";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector batch{flow(EventType::New, 1)};
  EXPECT_EQ(sink->write(batch), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), "{\"earlier\":true}\n" + linesOf(batch));
}

GapRecord overrun() {
  GapRecord gap;
  gap.reason = GapReason::KernelOverrun;
  gap.start = fromUnixNanos(1'795'600'803'000'000'000);
  gap.end = gap.start + 2s;
  gap.overruns = 2;
  return gap;
}

TEST(JsonLinesSinkTest, WritesAGapAsItsPipelineErrorLine) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log, /*include_updates=*/false);
  ASSERT_NE(sink, nullptr);
  const std::vector batch{flow(EventType::New, 1)};
  EXPECT_EQ(sink->write(batch), SinkStatus::Ok);
  EXPECT_EQ(sink->writeGap(overrun()), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), linesOf(batch) + toJsonLine(overrun(), kContext) + '\n');
  EXPECT_EQ(sink->stats().records_written, 1U) << "gaps are not flow records";

  GapRecord backwards = overrun();
  std::swap(backwards.start, backwards.end);
  EXPECT_EQ(sink->writeGap(backwards), SinkStatus::Rejected);
  EXPECT_EQ(readFile(path), linesOf(batch) + toJsonLine(overrun(), kContext) + '\n');
  EXPECT_EQ(log.at(spdlog::level::warn).size(), 1U);
}

TEST(JsonLinesSinkTest, AGapOnAFullDiskFails) {
  const CapturedLog log;
  const auto sink = openSink("/dev/full", log);
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(sink->writeGap(overrun()), SinkStatus::Failed);
  ASSERT_EQ(log.at(spdlog::level::err).size(), 1U);
}

// kill -9 in the middle of a write(2) leaves the file ending in part of a line. The next start
// moves that part aside so that the first new line is not glued to it.
TEST(JsonLinesSinkTest, MovesATornLastLineAsideOnOpen) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const std::string whole = lineOf(flow(EventType::New, 1)) + lineOf(flow(EventType::New, 2));
  const std::string torn = lineOf(flow(EventType::Destroy, 1)).substr(0, 37);
  std::ofstream(path, std::ios::binary) << whole << torn;

  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(readFile(path), whole);
  const std::string saved = readFile(dir / "flows.jsonl.torn");
  ASSERT_TRUE(saved.starts_with("# ")) << saved;
  const auto note_end = saved.find('\n');
  EXPECT_NE(saved.substr(0, note_end).find("cut these 37 bytes"), std::string::npos) << saved;
  EXPECT_NE(saved.substr(0, note_end).find(path.string()), std::string::npos) << saved;
  EXPECT_EQ(saved.substr(note_end + 1), torn + '\n');
  const auto warnings = log.at(spdlog::level::warn);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("37 bytes"), std::string::npos) << warnings[0];
  EXPECT_NE(warnings[0].find("flows.jsonl.torn"), std::string::npos) << warnings[0];

  const std::vector next{flow(EventType::Destroy, 2)};
  EXPECT_EQ(sink->write(next), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), whole + linesOf(next));
}

TEST(JsonLinesSinkTest, AWholeFileIsLeftAlone) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const std::string whole = lineOf(flow(EventType::New, 1));
  std::ofstream(path, std::ios::binary) << whole;
  const CapturedLog log;
  ASSERT_NE(openSink(path, log), nullptr);
  ASSERT_NE(openSink(dir / "empty.jsonl", log), nullptr);
  EXPECT_EQ(readFile(path), whole);
  EXPECT_FALSE(std::filesystem::exists(dir / "flows.jsonl.torn"));
  EXPECT_FALSE(std::filesystem::exists(dir / "empty.jsonl.torn"));
  EXPECT_TRUE(log.at(spdlog::level::warn).empty());
}

// No newline in the last 64 KiB or at all: the search goes back chunk by chunk, and a file that is
// one unfinished line is emptied.
TEST(JsonLinesSinkTest, ALongTornTailAndAFileWithoutAnyNewline) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const std::string whole = lineOf(flow(EventType::New, 1));
  const std::string long_tail(200'000, 'x');
  std::ofstream(path, std::ios::binary) << whole << long_tail;
  const CapturedLog log;
  ASSERT_NE(openSink(path, log), nullptr);
  EXPECT_EQ(readFile(path), whole);
  const std::string saved = readFile(dir / "flows.jsonl.torn");
  EXPECT_EQ(saved.substr(saved.find('\n') + 1), long_tail + '\n');

  const auto lone = dir / "lone.jsonl";
  std::ofstream(lone, std::ios::binary) << "{\"partial\":";
  ASSERT_NE(openSink(lone, log), nullptr);
  EXPECT_EQ(readFile(lone), "");
  const std::string lone_saved = readFile(dir / "lone.jsonl.torn");
  EXPECT_EQ(lone_saved.substr(lone_saved.find('\n') + 1), "{\"partial\":\n");
}

// Where the torn part cannot be saved, nothing is cut; a newline ends it so the next line is whole.
TEST(JsonLinesSinkTest, ATornLineThatCannotBeSavedIsEndedInstead) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  std::filesystem::create_directory(dir / "flows.jsonl.torn");
  const std::string whole = lineOf(flow(EventType::New, 1));
  std::ofstream(path, std::ios::binary) << whole << "{\"torn\"";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  EXPECT_EQ(readFile(path), whole + "{\"torn\"\n");
  const auto warnings = log.at(spdlog::level::warn);
  ASSERT_EQ(warnings.size(), 1U);
  EXPECT_NE(warnings[0].find("ended with a newline"), std::string::npos) << warnings[0];
}

// SIGHUP without a rotation reopens the same file; a half line left in it is moved aside then too.
TEST(JsonLinesSinkTest, ReopenMovesATornLastLineAsideToo) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector batch{flow(EventType::New, 1)};
  EXPECT_EQ(sink->write(batch), SinkStatus::Ok);
  std::ofstream(path, std::ios::binary | std::ios::app) << "{\"half";
  sink->reopen();
  EXPECT_EQ(readFile(path), linesOf(batch));
  EXPECT_TRUE(std::filesystem::exists(dir / "flows.jsonl.torn"));
}

TEST(JsonLinesSinkTest, SkipsUpdatesUnlessAsked) {
  const TempDir dir;
  const CapturedLog log;
  const std::vector batch{flow(EventType::New, 1), flow(EventType::Update, 1), flow(EventType::Destroy, 1)};

  const auto without = openSink(dir / "without.jsonl", log, /*include_updates=*/false);
  ASSERT_NE(without, nullptr);
  EXPECT_EQ(without->write(batch), SinkStatus::Ok);
  EXPECT_EQ(readFile(dir / "without.jsonl"), lineOf(batch[0]) + lineOf(batch[2]));

  const auto with = openSink(dir / "with.jsonl", log, /*include_updates=*/true);
  ASSERT_NE(with, nullptr);
  EXPECT_EQ(with->write(batch), SinkStatus::Ok);
  EXPECT_EQ(readFile(dir / "with.jsonl"), linesOf(batch));

  // A batch of updates alone writes nothing and is still accepted.
  const std::vector updates{flow(EventType::Update, 2)};
  EXPECT_EQ(without->write(updates), SinkStatus::Ok);
  EXPECT_EQ(readFile(dir / "without.jsonl"), lineOf(batch[0]) + lineOf(batch[2]));
}

// What logrotate does without copytruncate: rename the file, then send SIGHUP. The sink notices the
// rename at its next write already, so the SIGHUP finds the new file open.
TEST(JsonLinesSinkTest, ReopenAfterRenameKeepsEveryLine) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const auto rotated = dir / "flows.jsonl.1";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);

  const std::vector before{flow(EventType::New, 1), flow(EventType::New, 2)};
  const std::vector between{flow(EventType::Destroy, 1)};  // renamed, not yet reopened
  const std::vector after{flow(EventType::Destroy, 2), flow(EventType::New, 3)};
  EXPECT_EQ(sink->write(before), SinkStatus::Ok);
  std::filesystem::rename(path, rotated);
  EXPECT_EQ(sink->write(between), SinkStatus::Ok);
  sink->reopen();
  EXPECT_EQ(sink->write(after), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);

  EXPECT_EQ(readFile(rotated), linesOf(before));
  EXPECT_EQ(readFile(path), linesOf(between) + linesOf(after));
  EXPECT_TRUE(log.at(spdlog::level::err).empty());
  // The documented logrotate stanza renames, then sends SIGHUP: the rename is usually seen first,
  // and is no reason for a warning (an exploratory run found 8 of 9 rotations warned about).
  EXPECT_TRUE(log.at(spdlog::level::warn).empty());
  const auto infos = log.at(spdlog::level::info);
  EXPECT_TRUE(std::any_of(infos.begin(), infos.end(), [](const std::string& line) {
    return line.find("was moved or replaced (rotated)") != std::string::npos;
  }));
}

// A second daemon with its own --db and the same --jsonl (one started by hand beside the service)
// wrote every record into the SIEM's feed a second time.
TEST(JsonLinesSinkTest, ASecondWriterOfTheFileIsRefusedAcrossReopens) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto first = openSink(path, log);
  ASSERT_NE(first, nullptr);
  const auto second = JsonLinesSink::open(path, kContext, false, log.logger);
  ASSERT_FALSE(second);
  EXPECT_EQ(second.error().detail,
            "JSON lines file " + path.string() +
                " is being written by another process (another ctauditd?): stop it first, or give this one another "
                "--jsonl; two daemons on one file would write every record twice");

  first->reopen();  // a SIGHUP without a rotation: the same file again, and the lock with it
  EXPECT_FALSE(JsonLinesSink::open(path, kContext, false, log.logger));
  std::filesystem::rename(path, dir / "flows.jsonl.1");
  first->reopen();  // after logrotate's rename: the new file is locked
  EXPECT_FALSE(JsonLinesSink::open(path, kContext, false, log.logger));
  EXPECT_TRUE(JsonLinesSink::open(dir / "flows.jsonl.1", kContext, false, log.logger)) << "the old file is let go";
  EXPECT_TRUE(log.at(spdlog::level::warn).empty());
  EXPECT_TRUE(log.at(spdlog::level::err).empty());
}

// Deleted by hand while the daemon writes it: without noticing, the sink would write to the
// unlinked file until the next SIGHUP or rotation, and every line would be lost with it.
TEST(JsonLinesSinkTest, ADeletedFileIsReplacedAtTheNextWrite) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector before{flow(EventType::New, 1)};
  const std::vector after{flow(EventType::Destroy, 1), flow(EventType::New, 2)};
  EXPECT_EQ(sink->write(before), SinkStatus::Ok);
  std::filesystem::remove(path);
  EXPECT_EQ(sink->write(after), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), linesOf(after));
  const auto errors = log.at(spdlog::level::err);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find("was deleted while ctauditd wrote it"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("(1 since it was last seen, recorded as a gap)"), std::string::npos) << errors[0];
  // The line written after the file was last seen went with it: a gap (an exploratory run lost
  // 2,048 lines so with no gap at all). The batch after is in the new file.
  const auto loss = sink->takeSyncLoss();
  ASSERT_TRUE(loss);
  EXPECT_EQ(loss->records, 1U);
  EXPECT_EQ(loss->earliest, before[0].event_time);
  EXPECT_EQ(loss->latest, before[0].event_time);
  EXPECT_FALSE(sink->takeSyncLoss());
}

// logrotate's copytruncate (which docs/operations.md says not to use) copies the file and cuts it
// to nothing; lines written in between are in neither, which an exploratory run found lost with no
// word. The cut is noticed at the next batch: an error, and the lines since the last look a gap.
TEST(JsonLinesSinkTest, AFileCutByAnotherProcessIsAnErrorAndAGap) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector first{flow(EventType::New, 1), flow(EventType::New, 2)};
  const std::vector second{flow(EventType::Destroy, 1)};
  EXPECT_EQ(sink->write(first), SinkStatus::Ok);
  std::filesystem::resize_file(path, 0);  // what copytruncate does after its copy
  EXPECT_EQ(sink->write(second), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), linesOf(second)) << "written from the start of the cut file";
  const auto errors = log.at(spdlog::level::err);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find("was cut from " + std::to_string(linesOf(first).size()) + " to 0 bytes by another process"),
            std::string::npos)
      << errors[0];
  const auto loss = sink->takeSyncLoss();
  ASSERT_TRUE(loss);
  EXPECT_EQ(loss->records, 2U);
  // A file that only grows, or a new one after a rename, says nothing.
  EXPECT_EQ(sink->write(first), SinkStatus::Ok);
  std::filesystem::rename(path, dir / "flows.jsonl.1");
  EXPECT_EQ(sink->write(second), SinkStatus::Ok);
  EXPECT_EQ(log.at(spdlog::level::err).size(), 1U);
  EXPECT_FALSE(sink->takeSyncLoss());
}

TEST(JsonLinesSinkTest, ReopenThatFailsKeepsWritingToTheOldFile) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const auto rotated = dir / "flows.jsonl.1";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);

  const std::vector before{flow(EventType::New, 1)};
  const std::vector after{flow(EventType::Destroy, 1)};
  EXPECT_EQ(sink->write(before), SinkStatus::Ok);
  std::filesystem::rename(path, rotated);
  std::filesystem::create_directory(path);  // the path cannot be opened as a file now
  sink->reopen();
  EXPECT_EQ(sink->write(after), SinkStatus::Ok);

  EXPECT_EQ(readFile(rotated), linesOf(before) + linesOf(after));
  const auto errors = log.at(spdlog::level::err);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find(path.string()), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("Is a directory"), std::string::npos) << errors[0];
}

// Deleted, and the path cannot be opened again: writing to the unlinked file would lose every line
// without a trace, so the sink fails (the batcher keeps the lines, as for a full disk) until the
// path can be opened, which it tries a minute later.
TEST(JsonLinesSinkTest, ADeletedFileThatCannotBeReplacedRefusesWrites) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  ManualClock clock;
  auto sink = JsonLinesSink::open(path, kContext, false, log.logger, {}, &clock);
  ASSERT_TRUE(sink) << sink.error().detail;
  const std::vector before{flow(EventType::New, 1)};
  const std::vector after{flow(EventType::Destroy, 1)};
  EXPECT_EQ((*sink)->write(before), SinkStatus::Ok);
  std::filesystem::remove(path);
  std::filesystem::create_directory(path);  // the path cannot be opened as a file now
  EXPECT_EQ((*sink)->write(after), SinkStatus::Failed);
  EXPECT_EQ((*sink)->write(after), SinkStatus::Failed) << "still refused";
  std::filesystem::remove(path);
  clock.advance(30s);
  EXPECT_EQ((*sink)->write(after), SinkStatus::Failed) << "not tried again before a minute";
  clock.advance(31s);
  EXPECT_EQ((*sink)->write(after), SinkStatus::Ok) << "a minute later the path opens";
  EXPECT_EQ(readFile(path), linesOf(after));
}

TEST(JsonLinesSinkTest, DashOpensStandardOutput) {
  const CapturedLog log;
  const auto sink = openSink("-", log);
  ASSERT_NE(sink, nullptr);
  // Nothing to print here (the test's own stdout is gtest's): an update-only batch writes nothing.
  const std::vector updates{flow(EventType::Update, 1)};
  EXPECT_EQ(sink->write(updates), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);
  sink->reopen();
  EXPECT_TRUE(log.at(spdlog::level::err).empty());
}

// A FIFO with a (non-blocking) reader end open, and a sink writing into it: a shipper's pipe.
struct FifoWithReader {
  FifoWithReader() {
    EXPECT_EQ(::mkfifo(path.c_str(), 0600), 0);
    reader.emplace(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    EXPECT_TRUE(reader->valid());
    sink = openSink(path, log);
  }
  TempDir dir;
  std::filesystem::path path = dir / "pipe";
  std::optional<UniqueFd> reader;
  CapturedLog log;
  std::unique_ptr<JsonLinesSink> sink;
};

// A FIFO behaves like standard output piped into a shipper: written to, never synced.
TEST(JsonLinesSinkTest, WritesIntoAPipe) {
  FifoWithReader fifo;
  ASSERT_NE(fifo.sink, nullptr);
  const auto& sink = fifo.sink;
  const auto& log = fifo.log;
  const UniqueFd& reader = *fifo.reader;

  const std::vector batch{flow(EventType::New, 1), flow(EventType::Destroy, 1)};
  EXPECT_EQ(sink->write(batch), SinkStatus::Ok);
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);

  std::string received(8192, '\0');
  const ssize_t n = ::read(reader.get(), received.data(), received.size());
  ASSERT_GT(n, 0);
  received.resize(static_cast<std::size_t>(n));
  EXPECT_EQ(received, linesOf(batch));
  EXPECT_TRUE(log.at(spdlog::level::err).empty());
}

// A SIGHUP after the FIFO's reader went away: the FIFO cannot be opened again until one comes
// back, and only the next SIGHUP tries (the minute's look again is for moved regular files).
TEST(JsonLinesSinkTest, AFifoWhoseReaderWentAwayWaitsForTheNextSighup) {
  FifoWithReader fifo;
  ASSERT_NE(fifo.sink, nullptr);
  const auto& sink = fifo.sink;
  const auto& log = fifo.log;
  fifo.reader.reset();
  sink->reopen();
  const auto errors = log.at(spdlog::level::err);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find("trying again at the next SIGHUP"), std::string::npos) << errors[0];
  EXPECT_EQ(errors[0].find(" s or "), std::string::npos) << errors[0];
}

// A FIFO that no process reads yet: an error at once, not a start that hangs in open(2) before it
// has said anything. Writes still wait for the reader, as the test above reads them.
TEST(JsonLinesSinkTest, AFifoWithoutAReaderIsAnErrorNotAHang) {
  const TempDir dir;
  const auto path = dir / "pipe";
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0);
  const CapturedLog log;
  const auto sink = JsonLinesSink::open(path, kContext, false, log.logger);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().sys_errno, ENXIO);
  EXPECT_NE(sink.error().detail.find("start its reader first"), std::string::npos) << sink.error().detail;
}

// A database reached through another name (here a link; a bind mount is the same): found on the
// file opened, before anything is cut off it or appended.
TEST(JsonLinesSinkTest, ADatabaseIsRefusedWhateverNameLeadsToIt) {
  const TempDir dir;
  const std::string database = std::string("SQLite format 3\0", 16) + std::string(4080, '\x01');
  std::ofstream(dir / "flows.db", std::ios::binary) << database;
  std::filesystem::create_symlink(dir / "flows.db", dir / "flows.jsonl");
  const CapturedLog log;
  const auto sink = JsonLinesSink::open(dir / "flows.jsonl", kContext, false, log.logger);
  ASSERT_FALSE(sink);
  EXPECT_NE(sink.error().detail.find("is a SQLite database"), std::string::npos) << sink.error().detail;
  EXPECT_EQ(readFile(dir / "flows.db"), database);
  EXPECT_FALSE(std::filesystem::exists(dir / "flows.jsonl.torn"));
}

// open(2) gives ENXIO for a socket too, which no reader will fix.
TEST(JsonLinesSinkTest, ASocketIsNamedAsOne) {
  const TempDir dir;
  const auto path = dir / "sock";
  const UniqueFd listener{::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  ASSERT_TRUE(listener.valid());
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  ASSERT_LT(path.native().size(), sizeof address.sun_path);
  std::copy(path.native().begin(), path.native().end(), address.sun_path);
  ASSERT_EQ(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  const CapturedLog log;
  const auto sink = JsonLinesSink::open(path, kContext, false, log.logger);
  ASSERT_FALSE(sink);
  EXPECT_EQ(sink.error().sys_errno, ENXIO);
  EXPECT_NE(sink.error().detail.find("a socket"), std::string::npos) << sink.error().detail;
}

TEST(JsonLinesSinkTest, UnwritablePathGivesAClearError) {
  const TempDir dir;
  const CapturedLog log;
  std::ofstream(dir / "plain-file") << "x";

  const auto under_file = JsonLinesSink::open(dir / "plain-file" / "flows.jsonl", kContext, false, log.logger);
  ASSERT_FALSE(under_file);
  EXPECT_EQ(under_file.error().code, Errc::Io);
  EXPECT_NE(under_file.error().sys_errno, 0);
  EXPECT_NE(under_file.error().detail.find((dir / "plain-file").string()), std::string::npos)
      << under_file.error().detail;

  const auto directory = JsonLinesSink::open(dir.path(), kContext, false, log.logger);
  ASSERT_FALSE(directory);
  EXPECT_EQ(directory.error().code, Errc::Io);
  EXPECT_EQ(directory.error().sys_errno, EISDIR);
  EXPECT_NE(directory.error().detail.find(dir.path().string()), std::string::npos) << directory.error().detail;
  EXPECT_NE(directory.error().detail.find("Is a directory"), std::string::npos) << directory.error().detail;
}

// A batch of more lines than JsonLinesSink writes at a time: kChunkBytes is 1 MiB, a line here
// ~730 bytes. Every third event an UPDATE, which the sink leaves out by default.
std::vector<FlowRecord> bigBatch(std::uint16_t first_port, std::size_t flows) {
  std::vector<FlowRecord> batch;
  for (std::size_t i = 0; i < flows; ++i) {
    const EventType event = i % 3 == 0 ? EventType::Update : (i % 3 == 1 ? EventType::New : EventType::Destroy);
    batch.push_back(flow(event, static_cast<std::uint16_t>(first_port + i)));
  }
  return batch;
}

std::vector<FlowRecord> withoutUpdates(const std::vector<FlowRecord>& batch) {
  std::vector<FlowRecord> kept;
  std::copy_if(batch.begin(), batch.end(), std::back_inserter(kept),
               [](const FlowRecord& r) { return r.event != EventType::Update; });
  return kept;
}

// Reads what the FIFO holds now (its reader end is non-blocking).
std::string drain(int fd) {
  std::string all;
  std::array<char, 65536> chunk{};
  for (ssize_t n = 0; (n = ::read(fd, chunk.data(), chunk.size())) > 0;) {
    all.append(chunk.data(), static_cast<std::size_t>(n));
  }
  return all;
}

// Found by an exploratory run: a FIFO reader that stopped reading (kill -STOP) froze the whole
// pipeline thread in write(2): no database commit, no stats file, no SIGTERM. A write now waits
// kRoomWait for room, then answers Retry with what the pipe took; the rest follows once the
// reader reads again, every line once.
TEST(JsonLinesSinkTest, AFifoReaderThatStopsHoldsAWriteForAMomentOnly) {
  FifoWithReader fifo;
  ASSERT_NE(fifo.sink, nullptr);
  const auto& sink = fifo.sink;
  const UniqueFd& reader = *fifo.reader;
  const auto batch = withoutUpdates(bigBatch(1, 300));  // about 180 KB: more than the 64 KiB a pipe holds
  const auto began = std::chrono::steady_clock::now();
  EXPECT_EQ(sink->write(batch), SinkStatus::Retry);
  const auto waited = std::chrono::steady_clock::now() - began;
  EXPECT_GE(waited, std::chrono::milliseconds{200});
  const std::size_t taken = sink->acceptedOfFailedBatch();
  ASSERT_GT(taken, 0U);
  ASSERT_LT(taken, batch.size());

  std::string received = drain(reader.get());
  std::span<const FlowRecord> rest(batch);
  rest = rest.subspan(taken);
  for (int tries = 0; tries < 1000 && !rest.empty(); ++tries) {  // the batcher's retries, reading in between
    if (sink->write(rest) == SinkStatus::Ok) {
      rest = {};
    } else {
      rest = rest.subspan(sink->acceptedOfFailedBatch());
    }
    received += drain(reader.get());
  }
  ASSERT_TRUE(rest.empty());
  EXPECT_EQ(sink->flush(), SinkStatus::Ok);
  received += drain(reader.get());
  EXPECT_EQ(received, linesOf(batch)) << "every line once, in order, none cut";
}

TEST(JsonLinesSinkTest, ABatchOfSeveralChunksIsWrittenWholeAndInOrder) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const auto batch = bigBatch(1, 5000);
  ASSERT_GT(linesOf(withoutUpdates(batch)).size(), 2 * (std::size_t{1} << 20U)) << "not several chunks";

  ASSERT_EQ(sink->write(batch), SinkStatus::Ok);
  EXPECT_EQ(readFile(path), linesOf(withoutUpdates(batch)));
}

// The rotation check comes before a batch's first chunk is written, counting the batch's lines at
// the longest line so far: the file that would pass the size is closed first, and the batch goes
// whole into the new one. Checked only after formatting it all (or per chunk), the batch would
// be split across the two files.
TEST(JsonLinesSinkTest, ABatchOfSeveralChunksIsNotSplitByARotation) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const ManualClock clock;
  RotationSettings rotation;
  rotation.policy.max_bytes = 2 * (std::size_t{1} << 20U);
  auto opened = JsonLinesSink::open(path, kContext, false, log.logger, rotation, &clock);
  ASSERT_TRUE(opened) << opened.error().detail;
  const auto& sink = *opened;
  const auto first = bigBatch(1, 1800);      // 1,200 lines, ~0.85 MiB: one chunk
  const auto second = bigBatch(2001, 3000);  // 2,000 lines, ~1.4 MiB: two chunks, together past 2 MiB
  ASSERT_GT(linesOf(withoutUpdates(second)).size(), std::size_t{1} << 20U);

  ASSERT_EQ(sink->write(first), SinkStatus::Ok);
  ASSERT_EQ(sink->write(second), SinkStatus::Ok);
  std::vector<std::filesystem::path> closed;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    if (entry.path() != path) {
      closed.push_back(entry.path());
    }
  }
  ASSERT_EQ(closed.size(), 1U) << "one rotation, before the second batch";
  EXPECT_EQ(readFile(closed[0]), linesOf(withoutUpdates(first)));
  EXPECT_EQ(readFile(path), linesOf(withoutUpdates(second)));
}

// The file was moved away and someone else's file now sits at the path: a rotation at a flush
// (before the next batch would reopen) must not rename that file as if it were ours.
TEST(JsonLinesSinkTest, ARotationNeverRenamesAFileThatIsNotTheOneWritten) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  ManualClock clock;
  RotationSettings rotation;
  rotation.policy.period = std::chrono::seconds{3600};
  auto opened = JsonLinesSink::open(path, kContext, false, log.logger, rotation, &clock);
  ASSERT_TRUE(opened) << opened.error().detail;
  const auto& sink = *opened;
  ASSERT_EQ(sink->write(std::vector{flow(EventType::New, 1)}), SinkStatus::Ok);
  std::filesystem::rename(path, dir / "moved.jsonl");
  std::ofstream(path) << "someone else's\n";
  clock.advance(std::chrono::hours{2});  // the period is over: the flush would rotate
  (void)sink->flush();
  EXPECT_EQ(readFile(path), "someone else's\n") << "left where it is";
  std::size_t files = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 2U) << "nothing renamed to a closed name";
}

// /dev/full answers every write with ENOSPC: a full disk without filling one.
TEST(JsonLinesSinkTest, FullDiskFailsTheBatchAndLogsOncePerEpisode) {
  const CapturedLog log;
  const auto sink = openSink("/dev/full", log);
  ASSERT_NE(sink, nullptr);
  const std::vector batch{flow(EventType::New, 1), flow(EventType::New, 2)};

  EXPECT_EQ(sink->write(batch), SinkStatus::Failed);
  EXPECT_EQ(sink->write(batch), SinkStatus::Failed);
  EXPECT_EQ(sink->write(batch), SinkStatus::Failed);
  EXPECT_EQ(sink->stats().batches_failed, 3U);
  const auto errors = log.at(spdlog::level::err);
  ASSERT_EQ(errors.size(), 1U);
  EXPECT_NE(errors[0].find("No space left on device"), std::string::npos) << errors[0];
  EXPECT_NE(errors[0].find("/dev/full"), std::string::npos) << errors[0];
}

// Writes `batch` after one line already in the file, in a forked child (a gtest death test)
// whose file size limit (RLIMIT_FSIZE) leaves `room` bytes past that line: the kernel takes part
// of the batch and refuses the rest with EFBIG, the same pattern as a disk filling up mid-batch.
// The limit and SIGXFSZ are per process, so the test process is left alone. The sink must fail
// the batch and say so once; keep the whole lines it wrote (a shipper may have read them: cutting
// them off made it read them twice once retried); never shrink the file (a shipper takes that
// for a truncation and reads it all again); count the cut line as taken and finish it first once
// there is room; and say which records it took.
void expectWholeLinesKept(const std::vector<FlowRecord>& batch, std::size_t room) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector first{flow(EventType::New, 1)};
  ASSERT_EQ(sink->write(first), SinkStatus::Ok);
  const std::string before = readFile(path);
  const auto limit = static_cast<rlim_t>(before.size() + room);
  // What fits: the whole lines within `room`, then the start of the next; the records taken run
  // to the one of that cut line.
  std::string kept;
  std::string cut_line;
  std::size_t accepted = 0;
  std::size_t lines = 0;
  for (std::size_t i = 0; i < batch.size() && cut_line.empty(); ++i) {
    if (batch[i].event == EventType::Update) {
      continue;  // no line
    }
    const std::string line = lineOf(batch[i]);
    if (kept.size() + line.size() > room) {
      cut_line = line;
    } else {
      kept += line;
    }
    accepted = i + 1;
    ++lines;
  }
  ASSERT_FALSE(cut_line.empty()) << "room for the whole batch";
  const std::string cut_start = cut_line.substr(0, room - kept.size());
  ASSERT_FALSE(cut_start.empty());

  const auto in_child = [&] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{limit, RLIM_INFINITY};
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 2;
    }
    const SinkStatus status = sink->write(batch);
    const auto errors = log.at(spdlog::level::err);
    const bool nothing_taken_back = readFile(path) == before + kept + cut_start;
    const bool logged = errors.size() == 1 &&
                        errors[0].find("failed in line " + std::to_string(lines) + " of the batch's") != std::string::npos &&
                        errors[0].find("File too large") != std::string::npos &&
                        errors[0].find("the rest of that line goes first") != std::string::npos;
    const bool told = sink->acceptedOfFailedBatch() == accepted;
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 3;
    }
    const bool finished = sink->flush() == SinkStatus::Ok && readFile(path) == before + kept + cut_line;
    return status == SinkStatus::Failed && nothing_taken_back && logged && told && finished ? 0 : 1;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
  // The parent's file is the same one: the child's writes are visible here too.
  EXPECT_EQ(readFile(path), before + kept + cut_line);
}

TEST(JsonLinesSinkDeathTest, APartialBatchKeepsItsWholeLinesAndFinishesTheCutOne) {
  const std::vector batch{flow(EventType::New, 2), flow(EventType::New, 3), flow(EventType::New, 4)};
  expectWholeLinesKept(batch, lineOf(batch[0]).size() * 3 / 2);  // one and a half of the lines
}

// A write that fails in a later chunk of a batch keeps the chunks before it too: their lines are
// in the file, and only the rest is retried.
TEST(JsonLinesSinkDeathTest, APartialBatchOfSeveralChunksKeepsTheChunksWritten) {
  expectWholeLinesKept(bigBatch(2, 5000), 3 * (std::size_t{1} << 20U) / 2);  // a chunk and a half
}

// A review found two ways a cut line went wrong: a gap line cut part way was reported not taken,
// and written again whole after its rest; and a SIGHUP while a line was cut dropped its rest (one
// record lost) and cut the file back (a shrink a shipper reads as a truncation). Now the gap line
// is taken, the reopen waits for the cut line, and every line is in the file once.
TEST(JsonLinesSinkDeathTest, ACutGapLineIsTakenAndAReopenWaitsForACutLine) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector first{flow(EventType::New, 1)};
  ASSERT_EQ(sink->write(first), SinkStatus::Ok);
  const std::string before = readFile(path);
  GapRecord gap;
  gap.reason = GapReason::KernelOverrun;
  gap.start = first[0].event_time;
  gap.end = first[0].event_time + 2s;
  gap.overruns = 1;
  const std::string gap_line = toJsonLine(gap, kContext) + '\n';
  const std::vector batch{flow(EventType::New, 2), flow(EventType::New, 3)};
  const auto in_child = [&] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{static_cast<rlim_t>(before.size() + gap_line.size() / 2), RLIM_INFINITY};
    const rlimit more{static_cast<rlim_t>(before.size() + gap_line.size() + lineOf(batch[0]).size() / 2),
                      RLIM_INFINITY};
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 2;
    }
    const bool gap_taken = sink->writeGap(gap) == SinkStatus::Ok;
    if (::setrlimit(RLIMIT_FSIZE, &more) != 0) {
      return 3;
    }
    const bool batch_cut = sink->write(batch) == SinkStatus::Failed && sink->acceptedOfFailedBatch() == 1;
    const auto size_cut = std::filesystem::file_size(path);
    sink->reopen();  // a SIGHUP now: the cut line's rest cannot be written yet
    const bool nothing_cut_back = std::filesystem::file_size(path) == size_cut;
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 4;
    }
    const bool rest = sink->write(std::span(batch).subspan(1)) == SinkStatus::Ok && sink->flush() == SinkStatus::Ok;
    const bool once = readFile(path) == before + gap_line + linesOf(batch);
    return gap_taken && batch_cut && nothing_cut_back && rest && once ? 0 : 1;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
}

// A cut line whose rest finds no room before the stop: the record counted as written is lost after
// all. At the stop the sink gives it up as a loss (the database records the gap), says where its
// start is, and leaves the file as it is; the next open moves that start to .torn. A cut line
// finished in time is no loss.
TEST(JsonLinesSinkDeathTest, ACutLineNeverFinishedIsALossAtTheStop) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector first{flow(EventType::New, 1)};
  ASSERT_EQ(sink->write(first), SinkStatus::Ok);
  const std::string before = readFile(path);
  std::vector batch{flow(EventType::New, 2), flow(EventType::New, 3)};
  batch[1].event_time = batch[0].event_time + 5s;
  const std::string cut_start = lineOf(batch[0]) + lineOf(batch[1]).substr(0, 20);
  const auto in_child = [&] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{static_cast<rlim_t>(before.size() + cut_start.size()), RLIM_INFINITY};
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 2;
    }
    const bool cut = sink->write(batch) == SinkStatus::Failed && sink->acceptedOfFailedBatch() == 2;
    const bool flush_fails = sink->flush() == SinkStatus::Failed;
    const bool no_loss_yet = !sink->takeSyncLoss();
    const bool given_up = sink->abandonUnfinished();
    const auto loss = sink->takeSyncLoss();
    const bool lost = loss && loss->records == 1 && loss->earliest == batch[1].event_time &&
                      loss->latest == batch[1].event_time;
    const auto errors = log.at(spdlog::level::err);
    const bool said = !errors.empty() && errors.back().find("recorded as a gap") != std::string::npos &&
                      errors.back().find("flows.jsonl.torn") != std::string::npos;
    const bool left = readFile(path) == before + cut_start;
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 3;
    }
    return cut && flush_fails && no_loss_yet && given_up && lost && said && left ? 0 : 1;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
  // The next start: the start of the cut line goes to .torn, the whole lines stay.
  sink.reset();  // the stop (in this process, which never cut the line: the child wrote it)
  const CapturedLog next_log;
  ASSERT_NE(openSink(path, next_log), nullptr);
  EXPECT_EQ(readFile(path), before + lineOf(batch[0]));
  EXPECT_NE(readFile(dir / "flows.jsonl.torn").find(lineOf(batch[1]).substr(0, 20)), std::string::npos);

  // Finished before the stop: nothing to give up.
  const auto other = dir / "other.jsonl";
  const auto finishing = openSink(other, log);
  ASSERT_NE(finishing, nullptr);
  const auto finished_in_child = [&] {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{static_cast<rlim_t>(lineOf(batch[0]).size() / 2), RLIM_INFINITY};
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 2;
    }
    const bool cut = finishing->write(batch) == SinkStatus::Failed && finishing->acceptedOfFailedBatch() == 1;
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 3;
    }
    const bool flushed = finishing->flush() == SinkStatus::Ok;
    const bool nothing_given_up = !finishing->abandonUnfinished();
    return cut && flushed && nothing_given_up && !finishing->takeSyncLoss() && readFile(other) == lineOf(batch[0]) ? 0 : 1;
  };
  EXPECT_EXIT(std::_Exit(finished_in_child()), ::testing::ExitedWithCode(0), "");
}

// Deleted, then a SIGHUP before the next batch (logrotate's rotate 0, or rm and kill -HUP): the
// lines written since the file was last seen are a gap all the same.
TEST(JsonLinesSinkTest, ADeletedFileThenASighupIsAGapToo) {
  const TempDir dir;
  const auto path = dir / "flows.jsonl";
  const CapturedLog log;
  const auto sink = openSink(path, log);
  ASSERT_NE(sink, nullptr);
  const std::vector batch{flow(EventType::New, 1), flow(EventType::New, 2)};
  ASSERT_EQ(sink->write(batch), SinkStatus::Ok);
  std::filesystem::remove(path);
  sink->reopen();
  const auto loss = sink->takeSyncLoss();
  ASSERT_TRUE(loss);
  EXPECT_EQ(loss->records, 2U);
  // A rename and a SIGHUP keep the lines in the renamed file: no gap.
  ASSERT_EQ(sink->write(batch), SinkStatus::Ok);
  std::filesystem::rename(path, dir / "flows.jsonl.1");
  sink->reopen();
  ASSERT_EQ(sink->write(batch), SinkStatus::Ok);
  EXPECT_FALSE(sink->takeSyncLoss());
}

// `ctauditd --jsonl - | shipper`, and the shipper exits: no one can ever read that output again.
// The sink says so once and answers every later write at once (gone(), so the daemon gives the
// lines up as gaps instead of holding them for retries), where it used to retry each flush
// interval until the daemon's queue share overflowed. Runs in a forked child: `connect` makes its
// fd 1 the writing end of the shipper's connection and returns the reading end, and `hang_up`
// makes the shipper exit.
int stdoutWhoseReaderExits(const std::function<int()>& connect, const std::function<void(int)>& hang_up,
                           std::string_view error_text) {
  const CapturedLog log;
  const std::vector batch{flow(EventType::New, 2)};
  std::signal(SIGPIPE, SIG_IGN);  // as ctauditd's main does
  const int reader = connect();
  if (reader < 0) {
    return 2;
  }
  auto sink = JsonLinesSink::open("-", kContext, false, log.logger);
  if (!sink) {
    return 3;
  }
  const bool writes = (*sink)->write(batch) == SinkStatus::Ok && !(*sink)->gone();
  hang_up(reader);
  // The first failure already says "gone": a retry would fail the same way forever.
  const bool failed = (*sink)->write(batch) == SinkStatus::Failed && (*sink)->gone();
  const bool still = (*sink)->write(batch) == SinkStatus::Failed && (*sink)->gone();
  const auto errors = log.at(spdlog::level::err);
  const auto said = std::count_if(errors.begin(), errors.end(), [&](const std::string& line) {
    return line.find(error_text) != std::string::npos && line.find("the database goes on") != std::string::npos;
  });
  return writes && failed && still && said == 1 ? 0 : 1;
}

TEST(JsonLinesSinkDeathTest, StandardOutputWhosePipeReaderExitedIsGone) {
  const auto pipe_to_stdout = [] {
    std::array<int, 2> ends{};
    if (::pipe2(ends.data(), O_CLOEXEC) != 0 || ::dup2(ends[1], STDOUT_FILENO) < 0) {
      return -1;
    }
    ::close(ends[1]);
    return ends[0];
  };
  EXPECT_EXIT(std::_Exit(stdoutWhoseReaderExits(pipe_to_stdout, ::close, "Broken pipe")),
              ::testing::ExitedWithCode(0), "");
}

// A shipper connected over TCP (`ctauditd --jsonl - | ncat host port`, or a socket handed over by
// systemd) that exits with unread lines resets the connection: the next write fails with
// ECONNRESET, not EPIPE, and the reader is just as gone.
TEST(JsonLinesSinkDeathTest, StandardOutputWhoseSocketPeerResetIsGone) {
  const auto socket_to_stdout = [] {
    const UniqueFd listener{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    auto* const generic = reinterpret_cast<sockaddr*>(&address);
    if (!listener.valid() || ::bind(listener.get(), generic, length) != 0 || ::listen(listener.get(), 1) != 0 ||
        ::getsockname(listener.get(), generic, &length) != 0) {
      return -1;
    }
    const UniqueFd writer{::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)};
    if (!writer.valid() || ::connect(writer.get(), generic, length) != 0 || ::dup2(writer.get(), STDOUT_FILENO) < 0) {
      return -1;
    }
    return ::accept4(listener.get(), nullptr, nullptr, SOCK_CLOEXEC);
  };
  // Closing a socket with unread data resets the connection; on loopback the RST has arrived when
  // close() returns.
  const auto reset = [](int reader) {
    const linger abort{1, 0};
    ::setsockopt(reader, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    ::close(reader);
  };
  EXPECT_EXIT(std::_Exit(stdoutWhoseReaderExits(socket_to_stdout, reset, "Connection reset by peer")),
              ::testing::ExitedWithCode(0), "");
}

// Standard output cannot be cut back (it may be a pipe, or a file someone else opened): after a
// partial write the sink keeps the rest of the cut line and writes it before anything else, so
// the stream holds only whole lines. Here "standard output" is a file, in a forked child.
TEST(JsonLinesSinkDeathTest, StandardOutputFinishesACutLineFirst) {
  const TempDir dir;
  const auto path = dir / "stdout.jsonl";
  const CapturedLog log;
  const std::vector batch{flow(EventType::New, 2), flow(EventType::New, 3), flow(EventType::New, 4)};
  const std::vector next{flow(EventType::Destroy, 2)};
  const auto limit = static_cast<rlim_t>(lineOf(batch[0]).size() * 3 / 2);

  const auto in_child = [&] {
    const UniqueFd file{::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600)};
    if (!file.valid() || ::dup2(file.get(), STDOUT_FILENO) < 0) {
      return 2;
    }
    auto sink = JsonLinesSink::open("-", kContext, false, log.logger);
    if (!sink) {
      return 3;
    }
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{limit, RLIM_INFINITY};
    const rlimit unlimited{RLIM_INFINITY, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) {
      return 4;
    }
    const SinkStatus failed = (*sink)->write(batch);
    const bool torn = readFile(path).back() != '\n';
    const bool cut_line_counts = (*sink)->acceptedOfFailedBatch() == 2;  // the whole one, and the one to finish
    if (::setrlimit(RLIMIT_FSIZE, &unlimited) != 0) {
      return 5;
    }
    const SinkStatus ok = (*sink)->write(next);
    const bool whole = readFile(path) == lineOf(batch[0]) + lineOf(batch[1]) + linesOf(next);
    return failed == SinkStatus::Failed && torn && cut_line_counts && ok == SinkStatus::Ok && whole ? 0 : 1;
  };
  EXPECT_EXIT(std::_Exit(in_child()), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace ctaudit::storage
