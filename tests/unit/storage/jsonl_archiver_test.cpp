// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_archiver.hpp"

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/null_sink.h>
#include <zlib.h>
#include <zstd.h>

#include "flow/nat.hpp"
#include "flow/unique_c.hpp"
#include "storage/jsonl_sink.hpp"
#include "tests/support/file_text.hpp"
#include "tests/support/manual_clock.hpp"
#include "tests/support/temp_dir.hpp"

namespace ctaudit::storage {
namespace {

using ctaudit::testing::readFile;

using ctaudit::testing::ManualClock;
using ctaudit::testing::TempDir;
using namespace std::chrono_literals;

std::shared_ptr<spdlog::logger> quietLog() {
  return std::make_shared<spdlog::logger>("jsonl", std::make_shared<spdlog::sinks::null_sink_mt>());
}

void writeFile(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// What zcat / zstdcat would print; nullopt when the data does not decode completely.
std::optional<std::string> decompress(const std::filesystem::path& path) {
  const std::string packed = readFile(path);
  std::string text;
  std::vector<char> out(64 * 1024);
  if (path.extension() == ".gz") {
    z_stream zs{};
    if (inflateInit2(&zs, 15 + 16) != Z_OK) {
      return std::nullopt;
    }
    zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(packed.data()));  // NOLINT: zlib's API
    zs.avail_in = static_cast<uInt>(packed.size());
    int rc = Z_OK;
    while (rc == Z_OK) {
      zs.next_out = reinterpret_cast<Bytef*>(out.data());  // NOLINT: zlib's API
      zs.avail_out = static_cast<uInt>(out.size());
      rc = inflate(&zs, Z_NO_FLUSH);
      text.append(out.data(), out.size() - zs.avail_out);
    }
    inflateEnd(&zs);
    return rc == Z_STREAM_END ? std::optional{text} : std::nullopt;
  }
  const UniqueC<ZSTD_DCtx, ZSTD_freeDCtx> dctx{ZSTD_createDCtx()};
  ZSTD_inBuffer in{packed.data(), packed.size(), 0};
  std::size_t remaining = 1;
  while (in.pos < in.size) {
    ZSTD_outBuffer o{out.data(), out.size(), 0};
    remaining = ZSTD_decompressStream(dctx.get(), &o, &in);
    if (ZSTD_isError(remaining) != 0U) {
      return std::nullopt;
    }
    text.append(out.data(), o.pos);
  }
  return remaining == 0 ? std::optional{text} : std::nullopt;
}

std::string someLines(int count, int seed) {
  std::string text;
  for (int i = 0; i < count; ++i) {
    text += R"({"n":)" + std::to_string(seed * 100000 + i) + R"(,"pad":"flow record text that repeats"})" + "\n";
  }
  return text;
}

std::vector<std::string> namesIn(const std::filesystem::path& dir) {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

TEST(JsonlArchiverTest, CompressionRoundTripsAndReplacesThePlainFile) {
  for (const Compression compression : {Compression::Gzip, Compression::Zstd}) {
    const TempDir dir;
    const auto plain = dir / "flows-20261125T170000Z-20261125T180000Z.jsonl";
    const std::string text = someLines(20000, 1);
    writeFile(plain, text);
    const std::atomic<bool> stop{false};
    ASSERT_TRUE(compressClosedFile(plain, compression, stop)) << compressionName(compression);
    const auto packed = plain.string() + std::string(compressionSuffix(compression));
    EXPECT_EQ(namesIn(dir.path()), std::vector<std::string>{std::filesystem::path(packed).filename().string()});
    EXPECT_LT(std::filesystem::file_size(packed), text.size() / 5);
    EXPECT_EQ(decompress(packed), text) << compressionName(compression);
  }
}

TEST(JsonlArchiverTest, AStoppedCompressionLeavesThePlainFileAlone) {
  const TempDir dir;
  const auto plain = dir / "flows-20261125T170000Z-20261125T180000Z.jsonl";
  writeFile(plain, someLines(100, 2));
  const std::atomic<bool> stop{true};
  const auto result = compressClosedFile(plain, Compression::Zstd, stop);
  ASSERT_FALSE(result);
  EXPECT_EQ(result.error().detail, "stopped");
  EXPECT_EQ(namesIn(dir.path()), std::vector<std::string>{plain.filename().string()});
}

// A directory of closed files around a ManualClock that starts at the real time, since the grace
// also counts from the files' inode change time.
struct ArchiveFixture {
  TempDir dir;
  std::filesystem::path active = dir / "flows.jsonl";
  ManualClock clock{SystemClock{}.now()};

  // A closed file that ended `ago` before the clock's time, holding `text`.
  std::filesystem::path closed(std::chrono::seconds ago, const std::string& text, std::chrono::seconds length = 1h) {
    const Timestamp end = std::chrono::floor<std::chrono::seconds>(clock.now()) - ago;
    const auto path = closedFilePath(active, end - length, end);
    writeFile(path, text);
    return path;
  }
};

TEST(JsonlArchiverTest, CompressesOnlyAfterTheGrace) {
  ArchiveFixture f;
  const std::string text = someLines(50, 3);
  const auto plain = f.closed(0s, text);
  RotationSettings settings;
  settings.compression = Compression::Gzip;
  settings.grace = 5min;
  JsonlArchiver archiver(f.active, settings, f.clock, quietLog());

  auto pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.compressed, 0U);
  ASSERT_TRUE(pass.next_due);
  EXPECT_GE(*pass.next_due, f.clock.now() + 5min - 1s);
  EXPECT_TRUE(std::filesystem::exists(plain)) << "a shipper may still be reading it";

  f.clock.advance(5min + 2s);
  pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.compressed, 1U);
  EXPECT_FALSE(std::filesystem::exists(plain));
  EXPECT_EQ(decompress(plain.string() + ".gz"), text);
  EXPECT_EQ(archiver.runOnce(f.clock.now()).compressed, 0U) << "nothing is compressed twice";
}

TEST(JsonlArchiverTest, FinishesInterruptedCompressionsAtStart) {
  ArchiveFixture f;
  // Killed while compressing: a partial temporary beside the complete plain file.
  const std::string first = someLines(30, 4);
  const auto a = f.closed(2h, first);
  writeFile(a.string() + ".zst.tmp", "partial garbage");
  // Killed after the rename, before the unlink: the compressed twin is complete.
  const std::string second = someLines(30, 5);
  const auto b = f.closed(1h, second);
  const std::atomic<bool> stop{false};
  writeFile(f.dir / "copy", second);
  ASSERT_TRUE(compressClosedFile(f.dir / "copy", Compression::Zstd, stop));
  std::filesystem::rename(f.dir / "copy.zst", b.string() + ".zst");
  // Neither the active file nor logrotate's files are the archiver's.
  writeFile(f.active, "{}\n");
  writeFile(f.dir / "flows.jsonl.1", "{}\n");

  RotationSettings settings;
  settings.compression = Compression::Zstd;
  settings.grace = 5min;
  JsonlArchiver archiver(f.active, settings, f.clock, quietLog());
  // The grace also runs from the inode change time, which is now for files made by the test.
  f.clock.advance(5min + 1s);
  const auto pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.repaired, 2U);
  EXPECT_EQ(pass.compressed, 1U);
  EXPECT_EQ(namesIn(f.dir.path()),
            (std::vector<std::string>{a.filename().string() + ".zst", b.filename().string() + ".zst", "flows.jsonl",
                                      "flows.jsonl.1"}));
  EXPECT_EQ(decompress(a.string() + ".zst"), first);
  EXPECT_EQ(decompress(b.string() + ".zst"), second);
}

TEST(JsonlArchiverTest, KeepsTheNewestClosedFilesAndDeletesOlderOnesAfterTheGrace) {
  ArchiveFixture f;
  std::vector<std::filesystem::path> files;
  for (int i = 5; i >= 1; --i) {
    files.push_back(f.closed(std::chrono::hours{i}, someLines(5, i)));
  }
  const auto newest = f.closed(0s, someLines(5, 9), 1min);
  RotationSettings settings;
  settings.keep = 2;
  settings.grace = 5min;
  JsonlArchiver archiver(f.active, settings, f.clock, quietLog());
  EXPECT_EQ(archiver.runOnce(f.clock.now()).deleted, 0U) << "the files were just made: all within their grace";
  f.clock.advance(5min + 1s);
  const auto pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.deleted, 4U);
  EXPECT_EQ(namesIn(f.dir.path()), (std::vector<std::string>{files[4].filename().string(), newest.filename().string()}));
  EXPECT_EQ(archiver.runOnce(f.clock.now()).deleted, 0U);
}

TEST(JsonlArchiverTest, NeverDeletesAFileWithinItsGrace) {
  ArchiveFixture f;
  const auto a = f.closed(0s, "a\n", 2s);
  const auto b = f.closed(0s, "b\n", 1s);
  RotationSettings settings;
  settings.keep = 1;
  settings.grace = 30s;
  JsonlArchiver archiver(f.active, settings, f.clock, quietLog());
  auto pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.deleted, 0U);
  EXPECT_TRUE(pass.next_due);
  f.clock.advance(31s);
  pass = archiver.runOnce(f.clock.now());
  EXPECT_EQ(pass.deleted, 1U);
  EXPECT_FALSE(std::filesystem::exists(a));
  EXPECT_TRUE(std::filesystem::exists(b));
}

TEST(JsonlArchiverTest, TheThreadCompressesAfterAWake) {
  ArchiveFixture f;
  const std::string text = someLines(10, 6);
  const auto plain = f.closed(1h, text);
  // The grace counts from the later of the name's end and the file's ctime (closedAt), and the
  // file was written after the fixture's clock was read: without this the test passed only when
  // the write fell in the same kernel tick (coarse ctime) as the clock's reading, and failed under
  // ASan when it did not (the file was never due, the wait below ran out).
  f.clock.advance(1s);
  RotationSettings settings;
  settings.compression = Compression::Gzip;
  settings.grace = 0s;
  {
    JsonlArchiver archiver(f.active, settings, f.clock, quietLog());
    archiver.start();
    archiver.wake();
    // The first pass runs at start; wait for its result on disk (bounded, no fixed sleep).
    for (int i = 0; i < 500 && std::filesystem::exists(plain); ++i) {
      std::this_thread::sleep_for(10ms);
    }
  }  // joins
  EXPECT_FALSE(std::filesystem::exists(plain));
  EXPECT_EQ(decompress(plain.string() + ".gz"), text);
}

// ---------------------------------------------------------------------------------------------
// The sink's side: rotation at record boundaries.

FlowRecord flow(std::uint16_t port) {
  FlowRecord r;
  r.event = EventType::New;
  r.ct_id = 7000U + port;
  r.original.protocol = Protocol::Udp;
  r.original.src = IpAddress::parse("100.64.0.9").value();
  r.original.dst = IpAddress::parse("198.51.100.7").value();
  r.original.src_port = port;
  r.original.dst_port = 53;
  r.reply = r.original;
  std::swap(r.reply.src, r.reply.dst);
  std::swap(r.reply.src_port, r.reply.dst_port);
  r.event_time = fromUnixNanos(1'795'600'803'000'000'000) + std::chrono::seconds{port};
  return r;
}

std::vector<FlowRecord> batch(std::uint16_t first, std::uint16_t count) {
  std::vector<FlowRecord> records;
  for (std::uint16_t i = 0; i < count; ++i) {
    records.push_back(flow(static_cast<std::uint16_t>(first + i)));
  }
  return records;
}

// Every line of every file in the directory but the .torn one, plain or compressed.
std::multiset<std::string> allLines(const std::filesystem::path& dir) {
  std::multiset<std::string> lines;
  for (const auto& name : namesIn(dir)) {
    const auto path = dir / name;
    const auto text = path.extension() == ".gz" || path.extension() == ".zst" ? decompress(path) : readFile(path);
    EXPECT_TRUE(text) << name;
    std::size_t begin = 0;
    for (std::size_t end = text->find('\n'); end != std::string::npos; end = text->find('\n', begin)) {
      lines.insert(text->substr(begin, end - begin));
      begin = end + 1;
    }
    EXPECT_EQ(begin, text->size()) << name << " ends in a torn line";
  }
  return lines;
}

// A ManualClock that the sink's archiver thread may read while the test moves it.
class SharedManualClock final : public Clock {
public:
  explicit SharedManualClock(Timestamp start) : now_(start) {}
  [[nodiscard]] Timestamp now() const noexcept override { return now_.load(); }
  void set(Timestamp t) noexcept { now_.store(t); }
  void advance(std::chrono::nanoseconds d) noexcept { now_.store(now_.load() + d); }

private:
  std::atomic<Timestamp> now_;
};

struct SinkFixture {
  TempDir dir;
  std::filesystem::path path = dir / "flows.jsonl";
  // 2026-11-25T17:59:58.5Z
  SharedManualClock clock{fromUnixNanos(1'795'629'598'500'000'000)};
  std::unique_ptr<JsonLinesSink> sink;

  void open(const RotationSettings& settings) {
    auto opened = JsonLinesSink::open(path, JsonContext{"gw"}, false, quietLog(), settings, &clock);
    ASSERT_TRUE(opened) << opened.error().detail;
    sink = std::move(opened).value();
  }
};

TEST(JsonlSinkRotationTest, ClosesTheFileAtTheHourBetweenTwoBatches) {
  SinkFixture f;
  RotationSettings settings;
  settings.policy = parseRotationPolicy("1h").value();
  f.open(settings);
  ASSERT_EQ(f.sink->write(batch(1, 3)), SinkStatus::Ok);
  f.clock.advance(1s);  // 17:59:59.5
  ASSERT_EQ(f.sink->write(batch(4, 3)), SinkStatus::Ok);
  EXPECT_EQ(f.sink->flush(), SinkStatus::Ok);
  EXPECT_EQ(f.sink->rotations(), 0U);
  f.clock.advance(600ms);  // 18:00:00.1: the flush tick closes it even without new lines
  EXPECT_EQ(f.sink->flush(), SinkStatus::Ok);
  EXPECT_EQ(f.sink->rotations(), 1U);
  ASSERT_EQ(f.sink->write(batch(7, 2)), SinkStatus::Ok);
  EXPECT_EQ(namesIn(f.dir.path()),
            (std::vector<std::string>{"flows-20261125T175958Z-20261125T180000Z.jsonl", "flows.jsonl"}));
  const std::string first = readFile(f.dir / "flows-20261125T175958Z-20261125T180000Z.jsonl");
  EXPECT_EQ(std::count(first.begin(), first.end(), '\n'), 6);
  f.clock.advance(1h);  // 19:00:00.1: the next file is named by its whole hour
  ASSERT_EQ(f.sink->write(batch(9, 1)), SinkStatus::Ok);
  EXPECT_EQ(namesIn(f.dir.path()),
            (std::vector<std::string>{"flows-20261125T175958Z-20261125T180000Z.jsonl",
                                      "flows-20261125T180000Z-20261125T190000Z.jsonl", "flows.jsonl"}));
  EXPECT_EQ(readFile(f.path).size(), toJsonLine(flow(9), JsonContext{"gw"}).size() + 1);
}

TEST(JsonlSinkRotationTest, SizeRotationKeepsEveryLineOnceAndNeverSplitsABatch) {
  SinkFixture f;
  RotationSettings settings;
  settings.policy = parseRotationPolicy("2K").value();
  f.open(settings);
  std::multiset<std::string> expected;
  std::uint16_t port = 1;
  for (int i = 0; i < 40; ++i) {
    // 1 to 3 lines of about 625 bytes: no batch alone passes 2K.
    const auto records = batch(port, static_cast<std::uint16_t>(1 + i % 3));
    port = static_cast<std::uint16_t>(port + records.size());
    for (const auto& r : records) {
      expected.insert(toJsonLine(r, JsonContext{"gw"}));
    }
    ASSERT_EQ(f.sink->write(records), SinkStatus::Ok);
    f.clock.advance(1100ms);  // more than the one second between two rotations
  }
  EXPECT_GT(f.sink->rotations(), 5U);
  EXPECT_EQ(allLines(f.dir.path()), expected);
  for (const auto& name : namesIn(f.dir.path())) {
    const auto size = std::filesystem::file_size(f.dir / name);
    EXPECT_LE(size, 2048U) << name;
  }
}

TEST(JsonlSinkRotationTest, AtMostOneSizeRotationPerSecondSinceNamesHaveSeconds) {
  SinkFixture f;
  RotationSettings settings;
  settings.policy = parseRotationPolicy("1K").value();
  f.open(settings);
  for (std::uint16_t i = 0; i < 12; ++i) {
    ASSERT_EQ(f.sink->write(batch(static_cast<std::uint16_t>(10 * i + 1), 2)), SinkStatus::Ok);
    f.clock.advance(10ms);
  }
  // All within 17:59:58.5-17:59:58.62: one rotation, then the name it would take exists.
  EXPECT_EQ(f.sink->rotations(), 1U);
  f.clock.advance(1s);
  ASSERT_EQ(f.sink->write(batch(500, 1)), SinkStatus::Ok);
  EXPECT_EQ(f.sink->rotations(), 2U);
  EXPECT_EQ(allLines(f.dir.path()).size(), 25U);
}

TEST(JsonlSinkRotationTest, AFileLeftInAnEarlierPeriodIsClosedAtOpen) {
  SinkFixture f;
  writeFile(f.path, "{\"left\":1}\n");
  // Its birth time cannot be set: move the clock two hours past it instead.
  const Timestamp written = SystemClock{}.now();
  f.clock.set(written + 2h);
  RotationSettings settings;
  settings.policy = parseRotationPolicy("1h").value();
  f.open(settings);
  const auto names = namesIn(f.dir.path());
  ASSERT_EQ(names.size(), 2U);
  EXPECT_EQ(names[1], "flows.jsonl");
  const auto closed = parseClosedFileName(f.path, names[0]);
  ASSERT_TRUE(closed) << names[0];
  // It ends at its last write (rounded up to the second), not at the time it was closed.
  EXPECT_LE(closed->end, std::chrono::ceil<std::chrono::seconds>(written + 1s));
  EXPECT_GE(closed->end, std::chrono::floor<std::chrono::seconds>(written - 1s));
  EXPECT_EQ(readFile(closed->path), "{\"left\":1}\n");
  EXPECT_EQ(std::filesystem::file_size(f.path), 0U);
}

TEST(JsonlSinkRotationTest, LogrotateStyleReopenStillWorksWithRotationOn) {
  SinkFixture f;
  RotationSettings settings;
  settings.policy = parseRotationPolicy("1h").value();
  f.open(settings);
  ASSERT_EQ(f.sink->write(batch(1, 2)), SinkStatus::Ok);
  std::filesystem::rename(f.path, f.dir / "flows.jsonl.1");
  f.sink->reopen();
  ASSERT_EQ(f.sink->write(batch(3, 2)), SinkStatus::Ok);
  EXPECT_EQ(namesIn(f.dir.path()), (std::vector<std::string>{"flows.jsonl", "flows.jsonl.1"}));
  EXPECT_EQ(allLines(f.dir.path()).size(), 4U);
}

}  // namespace
}  // namespace ctaudit::storage
