// SPDX-License-Identifier: GPL-2.0-or-later
// flowdb_gen: writes N synthetic masqueraded flows of a realistic shape into a ctaudit database
// (through the same row mapping and schema as ctauditd), into ulogd2's SQLITE3 table (its shipped
// schema plus the four reply columns the benchmark adds), and as ctaudit JSON lines, for the query
// ladder (bench/query-ladder.sh). Also writes samples.tsv: real mappings to look up with `who`.
//
// Shape: --hosts inside hosts in 100.64.0.0/10 masqueraded to --public addresses in 203.0.113.0/24
// with random source ports (heavy port reuse: N / (public * 64512) flows per address and port),
// destinations in 198.51.100.0/24 and 192.0.2.0/24, 70% TCP (mostly 443), 28% UDP (mostly DNS),
// 2% ICMP; starts spread evenly over --span-hours; durations from 30 s (DNS) to minutes, 1% long
// (up to 5 h); counters both ways. Deterministic for a --seed.
//
// Speed (100M flows must build in minutes on two cores): the ctaudit schema comes from storage's
// applySchema, then its indexes on `flows` are dropped, the rows appended in rowid order (one
// prepared INSERT, reused; 1M rows per transaction; journal off, no mutex, exclusive lock) in start
// order, as the sink inserts them, with their spans recorded by the sink's SpanWriter on the way
// (storage/spans.hpp; schema version 3), and
// each index created again afterwards from its own CREATE INDEX text as applySchema wrote it, by
// SQLite's external sort: one pass instead of 100M random descents into a tree larger than the
// cache. ulogd2's table and the JSON lines are written by a second thread from a second copy of the
// same deterministic flow sequence. The file is switched to WAL at the end, as ctauditd leaves it.
// Cost: an index built by sort is packed (leaves nearly full), where the daemon's inserts leave
// some free space in them; --indexes-first inserts with the indexes in place, as the daemon does,
// to measure that difference (docs/benchmarks.md, "Query ladder").
// --through-sink writes ctaudit.db only, entirely through SqliteSink from a NEW and a DESTROY
// per flow (buildThroughSink): the page fill a gateway's database really has, where open rows grow
// when they end (docs/benchmarks.md, "Schema version 3: bytes per flow").
//
// Check (--verify N, default 10000): the first N flows are also written through SqliteSink, the
// daemon's own writer, into sink-check.db; the schema (every CREATE statement in sqlite_master,
// the header pragmas), those N rows, column by column with their storage types, and their spans
// must be equal in both files, else flowdb_gen fails. The spans of the whole file must also cover
// every row once. --integrity-check adds PRAGMA integrity_check on the built database and checks
// that every row starts inside its span (minutes at 100M flows).
#include <sqlite3.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <queue>
#include <thread>
#include <tuple>
#include <vector>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "flow/nat.hpp"
#include "flow/time.hpp"
#include "flow/unique_c.hpp"
#include "storage/flow_row.hpp"
#include "storage/json_mapping.hpp"
#include "storage/schema.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_sink.hpp"

namespace {

using ctaudit::FlowRecord;
using ctaudit::IpAddress;
using SqliteDb = ctaudit::UniqueC<sqlite3, sqlite3_close_v2>;
using SqliteStmt = ctaudit::UniqueC<sqlite3_stmt, sqlite3_finalize>;

struct Options {
  std::uint64_t flows{1'000'000};
  std::filesystem::path out_dir;
  double span_hours{24};
  std::uint32_t hosts{30'000};
  std::uint32_t publics{4};
  std::uint64_t seed{1};
  bool ulogd{true};
  bool json{true};
  std::uint32_t samples{1000};
  std::uint64_t verify{10'000};
  bool indexes_first{false};
  bool integrity_check{false};
  bool through_sink{false};
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "flowdb_gen: " << why
            << "\nusage: flowdb_gen --out DIR [--flows N] [--span-hours H] [--hosts N] [--public N] [--seed N]"
               " [--samples N] [--no-ulogd] [--no-json] [--verify N] [--indexes-first] [--through-sink] [--integrity-check]\n";
  std::exit(64);
}

std::uint64_t number(std::string_view text, std::string_view name) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size()) {
    usage(std::string(name) + ": not a number: '" + std::string(text) + "'");
  }
  return value;
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    const auto value = [&]() -> std::string_view {
      if (i + 1 >= argc) {
        usage(std::string(arg) + " needs a value");
      }
      return argv[++i];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): argv
    };
    if (arg == "--flows") {
      o.flows = number(value(), arg);
    } else if (arg == "--out") {
      o.out_dir = std::string(value());
    } else if (arg == "--span-hours") {
      o.span_hours = static_cast<double>(number(value(), arg));
    } else if (arg == "--hosts") {
      o.hosts = static_cast<std::uint32_t>(number(value(), arg));
    } else if (arg == "--public") {
      o.publics = static_cast<std::uint32_t>(number(value(), arg));
    } else if (arg == "--seed") {
      o.seed = number(value(), arg);
    } else if (arg == "--samples") {
      o.samples = static_cast<std::uint32_t>(number(value(), arg));
    } else if (arg == "--no-ulogd") {
      o.ulogd = false;
    } else if (arg == "--no-json") {
      o.json = false;
    } else if (arg == "--verify") {
      o.verify = number(value(), arg);
    } else if (arg == "--indexes-first") {
      o.indexes_first = true;
    } else if (arg == "--integrity-check") {
      o.integrity_check = true;
    } else if (arg == "--through-sink") {
      o.through_sink = true;
    } else {
      usage("unknown option '" + std::string(arg) + "'");
    }
  }
  if (o.out_dir.empty()) {
    usage("--out is required");
  }
  if (o.flows == 0 || o.hosts == 0 || o.hosts > (1U << 22U) - 2 || o.publics == 0 || o.publics > 200) {
    usage("--flows, --hosts (< 2^22) and --public (<= 200) must be positive");
  }
  return o;
}

void check(sqlite3* db, int rc, std::string_view what) {
  if (rc != SQLITE_OK && rc != SQLITE_DONE && rc != SQLITE_ROW) {
    std::cerr << "flowdb_gen: " << what << ": " << sqlite3_errmsg(db) << '\n';
    std::exit(70);
  }
}

void exec(sqlite3* db, const std::string& sql) { check(db, sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), sql); }

SqliteDb openDb(const std::filesystem::path& path) {
  std::filesystem::remove(path);
  std::filesystem::remove(path.string() + "-wal");
  std::filesystem::remove(path.string() + "-shm");
  sqlite3* raw = nullptr;
  // NOMUTEX: each connection is used by one thread only.
  const int rc =
      sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  SqliteDb db(raw);
  check(db.get(), rc, "open " + path.string());
  return db;
}

SqliteStmt prepareStmt(sqlite3* db, const std::string& sql) {
  sqlite3_stmt* raw = nullptr;
  check(db, sqlite3_prepare_v3(db, sql.c_str(), -1, SQLITE_PREPARE_PERSISTENT, &raw, nullptr), sql);
  return SqliteStmt(raw);
}

// Sets up a build: no journal and a large cache; the real settings are applied in finish().
// A bench-only file: a crash while building only means building again.
void buildPragmas(sqlite3* db) {
  exec(db, "PRAGMA journal_mode = OFF");
  exec(db, "PRAGMA synchronous = OFF");
  exec(db, "PRAGMA locking_mode = EXCLUSIVE");
  exec(db, "PRAGMA cache_size = -1000000");  // 1 GB: CREATE INDEX sorts in memory runs this large
  exec(db, "PRAGMA temp_store = FILE");      // 100M index entries: sort runs on disk, not RAM
  exec(db, "PRAGMA threads = 2");            // CREATE INDEX may sort its runs in a helper thread
}

void finish(sqlite3* db) {
  exec(db, "PRAGMA locking_mode = NORMAL");
  exec(db, "PRAGMA journal_mode = WAL");
  exec(db, "PRAGMA wal_checkpoint(TRUNCATE)");
}

// One value per row of `sql`'s first column, as text (NULL as "NULL").
std::vector<std::string> column(sqlite3* db, const std::string& sql) {
  const SqliteStmt stmt = prepareStmt(db, sql);
  std::vector<std::string> values;
  int rc = 0;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(stmt.get(), 0);
    values.emplace_back(text == nullptr ? "NULL" : reinterpret_cast<const char*>(text));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): SQLite returns UTF-8 as unsigned char
  }
  check(db, rc, sql);
  return values;
}

struct IndexDef {
  std::string name;
  std::string sql;
};

// The indexes applySchema created on `flows`, dropped so that rows append without them; put back
// by createIndexes() from the same CREATE text, so sqlite_master ends as applySchema left it.
std::vector<IndexDef> dropIndexes(sqlite3* db) {
  const SqliteStmt stmt = prepareStmt(
      db, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'flows' AND sql IS NOT NULL "
          "ORDER BY rowid");
  std::vector<IndexDef> indexes;
  int rc = 0;
  while ((rc = sqlite3_step(stmt.get())) == SQLITE_ROW) {
    indexes.push_back({reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 0)),    // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): UTF-8 text
                       reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), 1))});  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): UTF-8 text
  }
  check(db, rc, "read the index list");
  if (indexes.empty()) {
    std::cerr << "flowdb_gen: applySchema created no index on flows; nothing to rebuild\n";
    std::exit(70);
  }
  for (const auto& index : indexes) {
    exec(db, "DROP INDEX " + index.name);
  }
  return indexes;
}

void createIndexes(sqlite3* db, const std::vector<IndexDef>& indexes) {
  for (const auto& index : indexes) {
    const auto t0 = std::chrono::steady_clock::now();
    exec(db, index.sql);
    std::cerr << "flowdb_gen: " << index.name << " built in "
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  }
}

std::uint32_t hostOrder(const IpAddress& address) {
  const auto b = address.bytes();
  return (std::uint32_t{b[0]} << 24U) | (std::uint32_t{b[1]} << 16U) | (std::uint32_t{b[2]} << 8U) | b[3];
}

constexpr std::uint64_t kRowsPerTransaction = 1'000'000;

class FlowShape {
public:
  explicit FlowShape(const Options& o) : o_(o), rng_(o.seed) {}

  // The i-th flow (i in start order).
  FlowRecord next(std::uint64_t i) {
    const double span_ns = o_.span_hours * 3600e9;
    const auto base = std::int64_t{1'795'000'000} * 1'000'000'000;  // 2026-11-18, a fixed origin
    // Up to 1 ms of jitter, but less than the spacing of two flows, so that starts strictly rise
    // with i (at 100M flows in 24 h the spacing is 0.864 ms): the rows are then in start order, as
    // the sink inserts them (each batch sorted by start), and the rowid order SqliteSink gives the
    // --verify flows is i's.
    const auto slot = [&](std::uint64_t k) {
      return static_cast<std::int64_t>(span_ns * static_cast<double>(k) / static_cast<double>(o_.flows));
    };
    const auto jitter_range = static_cast<std::uint64_t>(std::clamp<std::int64_t>(slot(i + 1) - slot(i), 1, 1'000'000));
    const auto start_ns = base + slot(i) + static_cast<std::int64_t>(rng_() % jitter_range);
    const std::uint32_t host = static_cast<std::uint32_t>(rng_() % o_.hosts);
    const std::uint32_t kind = static_cast<std::uint32_t>(rng_() % 100);
    FlowRecord r;
    r.event = ctaudit::EventType::Destroy;
    r.ct_id = static_cast<std::uint32_t>(rng_());
    r.original.src = IpAddress::v4(0x64400001U + host);
    const std::uint32_t dst_pick = static_cast<std::uint32_t>(rng_() % 508);
    r.original.dst = IpAddress::v4((dst_pick < 254 ? 0xC6336401U : 0xC0000201U) + dst_pick % 254);  // 198.51.100/24, 192.0.2/24
    const IpAddress nat_address = IpAddress::v4(0xCB007101U + host % o_.publics);  // 203.0.113.1 + n, sticky per host
    const auto nat_port = static_cast<std::uint16_t>(1024 + rng_() % 64512);
    std::int64_t duration_ns = 0;
    if (kind < 2) {
      r.original.protocol = ctaudit::Protocol::Icmp;
      r.original.icmp_type = 8;
      r.original.icmp_id = static_cast<std::uint16_t>(rng_());
      r.reply = r.original;
      r.reply.icmp_type = 0;
      duration_ns = 30'000'000'000;
    } else {
      const bool udp = kind < 30;
      r.original.protocol = udp ? ctaudit::Protocol::Udp : ctaudit::Protocol::Tcp;
      r.original.src_port = static_cast<std::uint16_t>(32768 + rng_() % 28232);
      r.original.dst_port = udp ? (kind < 26 ? 53 : 443) : (kind < 85 ? 443 : kind < 97 ? 80 : 8080);
      r.reply = r.original;
      std::swap(r.reply.src_port, r.reply.dst_port);
      duration_ns = udp ? 30'000'000'000 + static_cast<std::int64_t>(rng_() % 60'000'000'000)
                        : 120'000'000'000 + static_cast<std::int64_t>(rng_() % 600'000'000'000);
      if (kind == 99) {
        duration_ns = static_cast<std::int64_t>(rng_() % 18'000'000'000'000);  // up to 5 h
      }
      if (!udp) {
        r.tcp_state = 7;  // TIME_WAIT, as most TCP flows end
      }
    }
    std::swap(r.reply.src, r.reply.dst);
    r.reply.dst = nat_address;
    if (ctaudit::isIcmp(r.original.protocol)) {
      r.reply.icmp_id = nat_port;
    } else {
      r.reply.dst_port = nat_port;
    }
    r.status = 0x19E;  // SEEN_REPLY | ASSURED | CONFIRMED | SRC_NAT | SRC_NAT_DONE | DST_NAT_DONE
    r.nat = ctaudit::deriveNat(r.status, r.original, r.reply);
    const auto packets = 2 + rng_() % 40;
    r.counters_original = ctaudit::Counters{packets, packets * (60 + rng_() % 600)};
    r.counters_reply = ctaudit::Counters{packets, packets * (60 + rng_() % 1400)};
    r.start = ctaudit::fromUnixNanos(start_ns);
    r.start_source = ctaudit::TimeSource::Kernel;
    r.end = ctaudit::fromUnixNanos(start_ns + duration_ns);
    r.end_source = ctaudit::TimeSource::Kernel;
    r.event_time = *r.end;
    r.event_time_source = ctaudit::TimeSource::Kernel;
    return r;
  }

private:
  const Options& o_;
  std::mt19937_64 rng_;
};

constexpr std::string_view kUlogdSchema =
    "CREATE TABLE ulog_ct (flow_start_sec INT UNSIGNED, flow_start_usec INT UNSIGNED, flow_end_sec INT UNSIGNED,"
    " flow_end_usec INT UNSIGNED, orig_ip_saddr INT UNSIGNED, orig_ip_daddr INT UNSIGNED,"
    " orig_l4_sport SMALLINT UNSIGNED, orig_l4_dport SMALLINT UNSIGNED, orig_ip_protocol TINYINT UNSIGNED,"
    " icmp_type TINYINT UNSIGNED, icmp_code TINYINT UNSIGNED, orig_raw_pktlen INT UNSIGNED,"
    " orig_raw_pktcount INT UNSIGNED, reply_raw_pktlen INT UNSIGNED, reply_raw_pktcount INT UNSIGNED,"
    " ct_mark INT UNSIGNED, reply_ip_saddr INT UNSIGNED, reply_ip_daddr INT UNSIGNED,"
    " reply_l4_sport SMALLINT UNSIGNED, reply_l4_dport SMALLINT UNSIGNED)";

void bindUlogd(sqlite3_stmt* s, const FlowRecord& r) {
  const auto start = ctaudit::toUnixNanos(*r.start);
  const auto end = ctaudit::toUnixNanos(*r.end);
  const std::int64_t values[] = {  // NOLINT(cppcoreguidelines-avoid-c-arrays): a fixed bind list
      start / 1'000'000'000,
      start % 1'000'000'000 / 1000,
      end / 1'000'000'000,
      end % 1'000'000'000 / 1000,
      hostOrder(r.original.src),
      hostOrder(r.original.dst),
      r.original.sourceKey(),
      r.original.destinationKey(),
      static_cast<std::uint8_t>(r.original.protocol),
      r.original.icmp_type,
      r.original.icmp_code,
      static_cast<std::int64_t>(r.counters_original->bytes),
      static_cast<std::int64_t>(r.counters_original->packets),
      static_cast<std::int64_t>(r.counters_reply->bytes),
      static_cast<std::int64_t>(r.counters_reply->packets),
      r.mark,
      hostOrder(r.reply.src),
      hostOrder(r.reply.dst),
      r.reply.sourceKey(),
      r.reply.destinationKey()};
  int param = 1;
  for (const std::int64_t v : values) {
    sqlite3_bind_int64(s, param++, v);
  }
}

// ulogd2's table and the JSON lines, from their own copy of the flow sequence (FlowShape is
// deterministic for a seed), on the second core while the main thread fills the ctaudit database.
void writeUlogdAndJson(const Options& o) {
  SqliteDb ulogd;
  SqliteStmt insert;
  if (o.ulogd) {
    ulogd = openDb(o.out_dir / "ulogd.db");
    buildPragmas(ulogd.get());
    exec(ulogd.get(), std::string(kUlogdSchema));
    insert = prepareStmt(ulogd.get(), "INSERT INTO ulog_ct VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
                                      "?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)");
  }
  std::ofstream json;
  if (o.json) {
    json.open(o.out_dir / "flows.jsonl", std::ios::trunc);
  }
  const ctaudit::storage::JsonContext context{"gw-bench.example.net"};
  FlowShape shape(o);
  for (std::uint64_t i = 0; i < o.flows; ++i) {
    if (ulogd && i % kRowsPerTransaction == 0) {
      exec(ulogd.get(), "BEGIN");
    }
    const FlowRecord r = shape.next(i);
    if (ulogd) {
      bindUlogd(insert.get(), r);
      check(ulogd.get(), sqlite3_step(insert.get()), "ulogd insert");
      sqlite3_reset(insert.get());
      if (i % kRowsPerTransaction == kRowsPerTransaction - 1 || i + 1 == o.flows) {
        exec(ulogd.get(), "COMMIT");
      }
    }
    if (json.is_open()) {
      json << ctaudit::storage::toJsonLine(r, context) << '\n';
    }
  }
  if (json.is_open() && !json.flush()) {
    std::cerr << "flowdb_gen: cannot write " << (o.out_dir / "flows.jsonl").string() << '\n';
    std::exit(74);
  }
  if (ulogd) {
    finish(ulogd.get());
  }
}

// The spans must cover rows 1..n, each row once, in ranges no wider than kSpanWidthMs (reads only
// `spans`). With `rows` also every row's start lies in its span's [min_start_ms, max_start_ms]
// (one pass over the table: minutes at 100M flows, so with --integrity-check only).
void checkSpans(sqlite3* db, std::uint64_t n, bool rows) {
  const auto fail = [](const std::string& what) {
    std::cerr << "flowdb_gen: the spans are wrong: " << what << "; rowsStartedBetween would miss rows\n";
    std::exit(70);
  };
  const std::string width = std::to_string(ctaudit::storage::kSpanWidthMs);
  const auto cover = column(db, "SELECT (SELECT count(*) FROM spans s WHERE s.first_id != 1 AND NOT EXISTS "
                                "(SELECT 1 FROM spans p WHERE p.last_id = s.first_id - 1)) || ' ' || "
                                "(SELECT ifnull(sum(last_id - first_id + 1), 0) FROM spans) || ' ' || "
                                "(SELECT ifnull(max(last_id), 0) FROM spans) || ' ' || "
                                "(SELECT count(*) FROM spans WHERE max_start_ms - min_start_ms > " + width +
                                " OR min_start_ms > max_start_ms OR first_id > last_id)");
  const std::string want = "0 " + std::to_string(n) + " " + std::to_string(n) + " 0";
  if (cover.size() != 1 || cover.front() != want) {
    fail("'gaps rows last bad-width' is '" + (cover.empty() ? std::string("nothing") : cover.front()) + "', not '" +
         want + "'");
  }
  if (rows) {
    const auto outside = column(db, "SELECT count(*) FROM spans s JOIN flows f ON f.id BETWEEN s.first_id AND s.last_id "
                                    "WHERE f.start_ms NOT BETWEEN s.min_start_ms AND s.max_start_ms");
    if (outside != std::vector<std::string>{"0"}) {
      fail((outside.empty() ? std::string("?") : outside.front()) + " rows start outside their span");
    }
    std::cerr << "flowdb_gen: every row starts inside its span\n";
  }
}

[[noreturn]] void verifyFailed(const std::string& what, const std::filesystem::path& check_path) {
  std::cerr << "flowdb_gen: VERIFY FAILED: " << what << " (kept " << check_path.string()
            << " for comparison; the built database is not what ctauditd would write)\n";
  std::exit(70);
}

// The first `n` flows through SqliteSink, the daemon's writer, then compared with the built file:
// every CREATE statement, the header pragmas, and the rows column by column (quote() keeps each
// value's storage type, so an IPv4 INTEGER never equals a BLOB).
void verifyAgainstSink(const Options& o, sqlite3* built) {
  const std::uint64_t n = std::min(o.verify, o.flows);
  const auto check_path = o.out_dir / "sink-check.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(check_path.string() + suffix);
  }
  {
    auto log = std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
    auto sink = ctaudit::storage::SqliteSink::open(check_path, "gw-bench.example.net", log);
    if (!sink) {
      verifyFailed("SqliteSink::open: " + sink.error().detail, check_path);
    }
    FlowShape shape(o);
    std::vector<FlowRecord> batch;
    for (std::uint64_t i = 0; i < n; ++i) {
      batch.push_back(shape.next(i));
      if (batch.size() == 1000 || i + 1 == n) {
        if ((*sink)->write(batch) != ctaudit::storage::SinkStatus::Ok) {
          verifyFailed("SqliteSink refused a batch", check_path);
        }
        batch.clear();
      }
    }
  }
  const std::string attach = "ATTACH DATABASE '" + check_path.string() + "' AS sink";
  exec(built, attach);
  const auto compare = [&](const std::string& what, const std::string& main_sql, const std::string& sink_sql) {
    const auto ours = column(built, main_sql);
    const auto theirs = column(built, sink_sql);
    if (ours != theirs) {
      std::string detail = what + ": not equal (" + std::to_string(ours.size()) + " built, " +
                           std::to_string(theirs.size()) + " from the sink); first differences:";
      int shown = 0;
      for (std::size_t k = 0; k < std::max(ours.size(), theirs.size()) && shown < 3; ++k) {
        const std::string a = k < ours.size() ? ours[k] : "-";
        const std::string b = k < theirs.size() ? theirs[k] : "-";
        if (a != b) {
          detail += "\n  built: " + a + "\n  sink:  " + b;
          ++shown;
        }
      }
      verifyFailed(detail, check_path);
    }
    return ours.size();
  };
  const std::string master = "SELECT type || ' ' || name || ' ' || tbl_name || ': ' || ifnull(sql, '') FROM ";
  compare("the schema", master + "main.sqlite_master ORDER BY type, name", master + "sink.sqlite_master ORDER BY type, name");
  for (const char* pragma : {"user_version", "application_id", "auto_vacuum", "page_size", "journal_mode", "encoding"}) {
    compare(std::string("PRAGMA ") + pragma, std::string("PRAGMA main.") + pragma, std::string("PRAGMA sink.") + pragma);
  }
  std::string row_sql = "SELECT ";
  const auto columns = column(built, "SELECT name FROM pragma_table_info('flows', 'main') ORDER BY cid");
  for (std::size_t k = 0; k < columns.size(); ++k) {
    row_sql += (k == 0 ? "" : " || ',' || ") + std::string("quote(") + columns[k] + ")";
  }
  const auto rows = compare("the rows", row_sql + " FROM main.flows WHERE id <= " + std::to_string(n) + " ORDER BY id",
                            row_sql + " FROM sink.flows ORDER BY id");
  if (rows != n) {
    verifyFailed("SqliteSink wrote " + std::to_string(rows) + " rows for " + std::to_string(n) + " flows", check_path);
  }
  // The spans: the sink's for its n rows must be the built file's, except that the sink's last span
  // ends at row n where the built one goes on over the rows after it: that one is compared by its
  // first row and smallest start only.
  const std::string span_sql = "SELECT min_start_ms || ',' || max_start_ms || ',' || first_id || ',' || last_id FROM ";
  const std::string before_last = " WHERE first_id < (SELECT max(first_id) FROM sink.spans) ORDER BY first_id";
  const auto spans = compare("the spans before the last", span_sql + "main.spans" + before_last,
                             span_sql + "sink.spans" + before_last);
  const std::string last_span = "SELECT min_start_ms || ',' || first_id FROM ";
  const std::string at_n = ".spans WHERE " + std::to_string(n) + " BETWEEN first_id AND last_id";
  compare("the span of row " + std::to_string(n), last_span + "main" + at_n, last_span + "sink" + at_n);
  exec(built, "DETACH DATABASE sink");
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(check_path.string() + suffix);
  }
  std::cerr << "flowdb_gen: verified against SqliteSink: schema, header, " << n << " rows and " << spans + 1
            << " spans equal\n";
}

// --through-sink: ctaudit.db written the daemon's way, by SqliteSink from a NEW at each flow's
// start and a DESTROY at its end, in event-time order, in batches that close at 1000 events or
// when the events span more than 1 s (the daemon's batcher flushes about that often): open rows
// are inserted and then grow when their DESTROY fills in the end and the counters, so the table's
// pages split as on a gateway, and the indexes take inserts in arrival order. About 20,000 events
// a second (18 minutes for 10M flows): for page fill and bytes per flow at 1M-10M flows, not for
// the ladder's 100M.
void buildThroughSink(const Options& o) {
  auto log = std::make_shared<spdlog::logger>("sqlite", std::make_shared<spdlog::sinks::null_sink_mt>());
  const auto path = o.out_dir / "ctaudit.db";
  for (const char* suffix : {"", "-wal", "-shm"}) {
    std::filesystem::remove(path.string() + suffix);
  }
  auto sink = ctaudit::storage::SqliteSink::open(path, "gw-bench.example.net", log);
  if (!sink) {
    std::cerr << "flowdb_gen: SqliteSink::open: " << sink.error().detail << '\n';
    std::exit(70);
  }
  std::vector<FlowRecord> batch;
  const auto flush = [&] {
    if (!batch.empty() && (*sink)->write(batch) != ctaudit::storage::SinkStatus::Ok) {
      std::cerr << "flowdb_gen: SqliteSink refused a batch\n";
      std::exit(70);
    }
    batch.clear();
  };
  const auto emit = [&](const FlowRecord& r) {
    if (!batch.empty() && (batch.size() == 1000 || r.event_time - batch.front().event_time > std::chrono::seconds(1))) {
      flush();
    }
    batch.push_back(r);
  };
  // The DESTROYs still to come, earliest end first (end, flow number: a total order).
  using Pending = std::tuple<std::int64_t, std::uint64_t, FlowRecord>;
  const auto later = [](const Pending& a, const Pending& b) { return std::tie(std::get<0>(a), std::get<1>(a)) > std::tie(std::get<0>(b), std::get<1>(b)); };
  std::priority_queue<Pending, std::vector<Pending>, decltype(later)> destroys(later);
  FlowShape shape(o);
  for (std::uint64_t i = 0; i < o.flows; ++i) {
    const FlowRecord r = shape.next(i);
    const std::int64_t start_ns = ctaudit::toUnixNanos(*r.start);
    while (!destroys.empty() && std::get<0>(destroys.top()) <= start_ns) {
      emit(std::get<2>(destroys.top()));
      destroys.pop();
    }
    FlowRecord opened = r;
    opened.event = ctaudit::EventType::New;
    opened.end.reset();
    opened.counters_original.reset();
    opened.counters_reply.reset();
    opened.event_time = *r.start;
    emit(opened);
    destroys.emplace(ctaudit::toUnixNanos(*r.end), i, r);
  }
  while (!destroys.empty()) {
    emit(std::get<2>(destroys.top()));
    destroys.pop();
  }
  flush();
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  std::filesystem::create_directories(o.out_dir);
  const auto now = ctaudit::fromUnixNanos(std::int64_t{1'795'000'000} * 1'000'000'000);
  const auto t0 = std::chrono::steady_clock::now();

  if (o.through_sink) {
    buildThroughSink(o);
    sqlite3* raw = nullptr;
    const int rc = sqlite3_open_v2((o.out_dir / "ctaudit.db").c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    const SqliteDb db(raw);
    check(db.get(), rc, "open the database the sink wrote");
    exec(db.get(), "PRAGMA wal_checkpoint(TRUNCATE)");
    checkSpans(db.get(), o.flows, o.integrity_check);
    if (o.verify > 0) {
      verifyAgainstSink(o, db.get());
    }
    std::cout << "flows=" << o.flows << " dir=" << o.out_dir.string() << " through the sink, seconds="
              << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << '\n';
    return 0;
  }
  const SqliteDb db = openDb(o.out_dir / "ctaudit.db");
  if (auto applied = ctaudit::storage::applySchema(db.get(), "gw-bench.example.net", now); !applied) {
    std::cerr << "flowdb_gen: " << applied.error().detail << '\n';
    return 70;
  }
  buildPragmas(db.get());
  std::vector<IndexDef> indexes;
  if (!o.indexes_first) {
    indexes = dropIndexes(db.get());
  }
  const SqliteStmt insert = prepareStmt(db.get(), ctaudit::storage::flowInsertSql());
  // The spans (storage/spans.hpp) recorded as the rows go in, by the sink's own SpanWriter: the
  // same spans SqliteSink writes for rows inserted in this order, without a second pass over the
  // table.
  auto spans = ctaudit::storage::SpanWriter::open(db.get());
  if (!spans) {
    std::cerr << "flowdb_gen: " << spans.error().detail << '\n';
    return 70;
  }
  std::int64_t last_start_ms = std::numeric_limits<std::int64_t>::min();

  std::thread other;
  if (o.ulogd || o.json) {
    other = std::thread(writeUlogdAndJson, std::cref(o));
  }
  std::ofstream samples(o.out_dir / "samples.tsv", std::ios::trunc);
  const std::uint64_t sample_every = std::max<std::uint64_t>(1, o.flows / o.samples);
  FlowShape shape(o);
  for (std::uint64_t i = 0; i < o.flows; ++i) {
    if (i % kRowsPerTransaction == 0) {
      exec(db.get(), "BEGIN");
    }
    const FlowRecord r = shape.next(i);
    const ctaudit::storage::StoredFlow stored{r, *r.start};
    const ctaudit::storage::FlowRow row = ctaudit::storage::encodeFlow(stored);
    check(db.get(), ctaudit::storage::bindColumns(insert.get(), 1, row, ctaudit::storage::allFlowColumns()), "bind");
    check(db.get(), sqlite3_step(insert.get()), "insert");
    sqlite3_reset(insert.get());
    // The daemon inserts rows in start order (a batch sorted by start); spans and the lookups
    // that use them are measured on that order, so a generator that broke it would measure
    // something else.
    const auto start_ms = ctaudit::storage::storedStartMillis(stored);
    if (start_ms < last_start_ms) {
      std::cerr << "flowdb_gen: flow " << i << " starts before the one before it; FlowShape must generate in start order\n";
      return 70;
    }
    last_start_ms = start_ms;
    check(db.get(), spans->add(sqlite3_last_insert_rowid(db.get()), start_ms), "write a span");
    if (i % sample_every == sample_every / 2) {
      // A time inside the flow: who must find this host.
      const auto at = *r.start + (*r.end - *r.start) / 2;
      const auto& nat = *r.nat.translated_source;
      samples << nat.address.toString() << '\t' << nat.port << '\t' << ctaudit::formatRfc3339(at) << '\t'
              << ctaudit::toUnixNanos(at) / 1'000'000'000 << '\t' << r.original.src.toString() << '\n';
    }
    if (i % kRowsPerTransaction == kRowsPerTransaction - 1 || i + 1 == o.flows) {
      check(db.get(), spans->finish(), "write a span");
      exec(db.get(), "COMMIT");
      spans->commit();
    }
  }
  checkSpans(db.get(), o.flows, o.integrity_check);
  std::cerr << "flowdb_gen: " << o.flows << " rows in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << " s\n";
  createIndexes(db.get(), indexes);
  // A clean run covering the span, so that `ctaudit` finds the log complete.
  const auto end_ns = std::int64_t{1'795'000'000} * 1'000'000'000 + static_cast<std::int64_t>(o.span_hours * 3600e9) +
                      3'600'000'000'000;
  exec(db.get(), "INSERT INTO runs (started_ns, alive_ns, stopped_ns, version, observer_hostname) VALUES (" +
                     std::to_string(std::int64_t{1'795'000'000} * 1'000'000'000 - 60'000'000'000) + ", " +
                     std::to_string(end_ns) + ", " + std::to_string(end_ns) + ", 'flowdb_gen', 'gw-bench.example.net')");
  // Every row is closed, so none is open outside flows_open_*: a lookup need not search the rows
  // from meta.open_index_from on as it does on a live gateway's file (storage/schema.hpp).
  if (auto moved = ctaudit::storage::setOpenIndexFrom(db.get(), static_cast<std::int64_t>(o.flows) + 1); !moved) {
    std::cerr << "flowdb_gen: " << moved.error().detail << '\n';
    return 70;
  }
  finish(db.get());
  if (other.joinable()) {
    other.join();
  }
  if (o.verify > 0) {
    verifyAgainstSink(o, db.get());
  }
  if (o.integrity_check) {
    const auto result = column(db.get(), "PRAGMA integrity_check");
    if (result != std::vector<std::string>{"ok"}) {
      std::cerr << "flowdb_gen: integrity_check: " << (result.empty() ? "no answer" : result.front()) << '\n';
      return 70;
    }
    std::cerr << "flowdb_gen: integrity_check ok\n";
  }
  std::cout << "flows=" << o.flows << " dir=" << o.out_dir.string() << " seconds="
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() << '\n';
  return 0;
}
