// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/schema.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sqlite3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <system_error>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ctaudit_version.hpp"
#include "flow/unique_c.hpp"
#include "flow/ct_status.hpp"
#include "flow/protocol.hpp"
#include "storage/flow_row.hpp"
#include "storage/spans.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

// One row per conntrack entry; docs/schema.md describes each column and what it costs. INTEGER
// PRIMARY KEY (the rowid) rather than WITHOUT ROWID: the natural key (ct_id, zone, tuple) is only
// unique among live entries, rows are appended in insertion order, and every index then carries a
// 1-4 byte rowid instead of a copy of a wide key. Columns typed ANY hold an IPv4 value as an
// INTEGER and an IPv6 value as a BLOB (flow_row.hpp); a STRICT table would refuse that mix, and a
// BLOB-typed column would turn the integers into text. `counters` holds both directions' counters
// as varints, and in an open row the space for what its DESTROY fills in (flow_row.hpp,
// kOpenCountersBytes).
constexpr std::string_view kCreateFlows = R"(CREATE TABLE flows (
  id                INTEGER PRIMARY KEY,
  start_ms          INTEGER NOT NULL,
  dur_ms            INTEGER,
  orig_src          ANY NOT NULL,
  orig_dst          ANY NOT NULL,
  nat_src           ANY,
  nat_dst           ANY,
  packed            INTEGER NOT NULL,
  zone_mark         INTEGER NOT NULL,
  ct_id             INTEGER NOT NULL,
  icmp              INTEGER,
  reply             BLOB,
  counters          BLOB
))";

}  // namespace

// The indexes hold no times for the common flow (docs/schema.md, "Indexes"): an entry is its key
// and the rowid, and `spans` maps rowids to start times, so that a lookup at a time reads the
// entries of the rows that started within kLongFlowMs of it and no others. Flows that are open or
// lasted longer than that are also in small partial indexes that carry their times.
//  - flows_nat_src: `ctaudit who ADDR:PORT --at T`, the reason the product exists. Partial, so
//    flows without SNAT cost nothing in it.
//  - flows_orig_src: `ctaudit flows --src CIDR`, a subscriber's flows, on the address part of the
//    orig_src endpoint (kOrigSrcKeySql; the whole endpoint for IPv6).
//    Both are keyed by the row's bucket first (kIndexBucketSql, flow_row.hpp), so that a batch
//    inserts into the newest bucket's leaves and not into one leaf per flow across the index.
//  - flows_open_nat, flows_open_src: the open rows by the same keys, once they have been open for
//    five minutes (flow_flags::kInOpenIndex, SqliteSink): a flow that ends sooner, most of them, never
//    costs an entry here, whose inserts and deletes land all over the index. Rows from
//    meta.open_index_from on may be open without being in them; a lookup searches those rows like
//    the recent ones (flow_query_sql.cpp).
//  - flows_long_nat, flows_long_src: the flows that lasted longer than kLongFlowMs, with their times
//    in the entry, so that a lookup checks their lifetimes without reading rows.
//  - flows_dnat, flows_open_dnat, flows_long_dnat: the same three shapes for the public side of a
//    port forward, the original destination of a flow with DNAT, for `ctaudit who` when the
//    address and port of a report were a port forward's (schema version 7). Partial on
//    `nat_dst IS NOT NULL`: a flow without DNAT, nearly every flow of a CGNAT, costs nothing in
//    them.
std::array<std::string, 9> createIndexSql() {
  const std::string src(kOrigSrcKeySql);
  const std::string bucket(kIndexBucketSql);
  const std::string long_flow = "dur_ms > " + std::to_string(kLongFlowMs);
  const std::string in_open_index(kInOpenIndexSql);
  const auto create = [](std::string_view name) { return "CREATE INDEX " + std::string(name) + " ON flows ("; };
  return {
      create(flow_index::kNatSrc) + bucket + ", nat_src) WHERE nat_src IS NOT NULL",
      create(flow_index::kOrigSrc) + bucket + ", " + src + ")",
      create(flow_index::kOpenNat) + "nat_src) WHERE dur_ms IS NULL AND " + in_open_index,
      create(flow_index::kOpenSrc) + src + ") WHERE dur_ms IS NULL AND " + in_open_index,
      create(flow_index::kLongNat) + "nat_src, start_ms, dur_ms) WHERE nat_src IS NOT NULL AND " + long_flow,
      create(flow_index::kLongSrc) + src + ", start_ms, dur_ms) WHERE " + long_flow,
      create(flow_index::kDnat) + bucket + ", orig_dst) WHERE nat_dst IS NOT NULL",
      create(flow_index::kOpenDnat) + "orig_dst) WHERE nat_dst IS NOT NULL AND dur_ms IS NULL AND " + in_open_index,
      create(flow_index::kLongDnat) + "orig_dst, start_ms, dur_ms) WHERE nat_dst IS NOT NULL AND " + long_flow,
  };
}

namespace {

// Which rowids hold which start times (spans.hpp): one row per run of rows inserted together whose
// starts lie within kSpanWidthMs of each other, plus one row for each row whose start was changed
// after it was inserted. The covering index answers "which rows started between A and B".
constexpr std::string_view kCreateSpans = R"(CREATE TABLE spans (
  min_start_ms INTEGER NOT NULL,
  max_start_ms INTEGER NOT NULL,
  first_id     INTEGER NOT NULL,
  last_id      INTEGER NOT NULL
))";
constexpr std::string_view kCreateSpansIndex =
    "CREATE INDEX spans_start ON spans (min_start_ms, max_start_ms, first_id, last_id)";

// The log's record of itself (docs/schema.md, "Gaps and runs"). IF NOT EXISTS because a version-1
// file written before these tables existed gets them when the writer opens it (ensureLogTables).
//  - gaps: windows in which records are known to be missing, one row per GapRecord. `reason` is
//    gapReasonName() as text, readable at the sqlite3 shell; rows are few (a healthy gateway has
//    none), so the text costs nothing that matters.
//  - runs: one row per daemon run, so that the time no daemon was running is on the record too.
//    alive_ns is the run's last heartbeat; stopped_ns is set only by a clean stop.
constexpr std::string_view kCreateGaps = R"(CREATE TABLE IF NOT EXISTS gaps (
  id           INTEGER PRIMARY KEY,
  reason       TEXT NOT NULL,
  start_ns     INTEGER NOT NULL,
  end_ns       INTEGER NOT NULL,
  lost_records INTEGER NOT NULL,
  overruns     INTEGER NOT NULL,
  sink         TEXT
))";

// Time-overlap lookups (`start_ns <= to AND end_ns >= from`): the range is on start_ns and end_ns
// is checked from the index entry without reading the row.
constexpr std::string_view kCreateGapsIndex = "CREATE INDEX IF NOT EXISTS gaps_time ON gaps (start_ns, end_ns)";

constexpr std::string_view kCreateRuns = R"(CREATE TABLE IF NOT EXISTS runs (
  id                INTEGER PRIMARY KEY,
  started_ns        INTEGER NOT NULL,
  alive_ns          INTEGER NOT NULL,
  stopped_ns        INTEGER,
  version           TEXT NOT NULL,
  observer_hostname TEXT NOT NULL
))";

constexpr std::string_view kCreateMeta = R"(CREATE TABLE meta (
  key   TEXT PRIMARY KEY NOT NULL,
  value TEXT NOT NULL
))";

constexpr std::array kNamedProtocols{Protocol::Icmp, Protocol::Tcp,    Protocol::Udp,  Protocol::Dccp,
                                     Protocol::Gre,  Protocol::Icmpv6, Protocol::Sctp, Protocol::UdpLite};

// The numeric value of the nibble at 1-based position `pos` of the upper-case hex text `hex_sql`.
std::string nibbleSql(std::string_view hex_sql, int pos) {
  return "(instr('0123456789ABCDEF', substr(" + std::string(hex_sql) + ", " + std::to_string(pos) + ", 1)) - 1)";
}

std::string ipv4TextSql(std::string_view hex_sql) {
  std::string text;
  for (int octet = 0; octet < 4; ++octet) {
    if (octet > 0) {
      text += " || '.' || ";
    }
    text += "(" + nibbleSql(hex_sql, 2 * octet + 1) + " * 16 + " + nibbleSql(hex_sql, 2 * octet + 2) + ")";
  }
  return text;
}

std::string ipv6TextSql(std::string_view hex_sql) {
  std::string text;
  for (int group = 0; group < 8; ++group) {
    if (group > 0) {
      text += " || ':' || ";
    }
    text += "coalesce(nullif(ltrim(lower(substr(" + std::string(hex_sql) + ", " + std::to_string(4 * group + 1) +
            ", 4)), '0'), ''), '0')";
  }
  return text;
}

// Dotted quad of the host-order 32-bit integer expression `u32_sql`.
std::string u32TextSql(std::string_view u32_sql) {
  const std::string u(u32_sql);
  return "((" + u + " >> 24) & 255) || '.' || ((" + u + " >> 16) & 255) || '.' || ((" + u + " >> 8) & 255) || '.' || (" +
         u + " & 255)";
}

// An address BLOB of 4 or 16 bytes (network order) as text; NULL for other sizes.
std::string blobAddressTextSql(std::string_view blob_sql) {
  const std::string hex = "hex(" + std::string(blob_sql) + ")";
  return "CASE length(" + std::string(blob_sql) + ") WHEN 4 THEN " + ipv4TextSql(hex) + " WHEN 16 THEN " +
         ipv6TextSql(hex) + " END";
}

// The big-endian 16-bit number in the 2-byte BLOB expression `blob_sql`.
std::string blobPortSql(std::string_view blob_sql) {
  const std::string hex = "hex(" + std::string(blob_sql) + ")";
  return "(" + nibbleSql(hex, 1) + " * 4096 + " + nibbleSql(hex, 2) + " * 256 + " + nibbleSql(hex, 3) + " * 16 + " +
         nibbleSql(hex, 4) + ")";
}

// The port of an endpoint column (flow_row.hpp, endpointValue).
std::string endpointPortSql(std::string_view column) {
  const std::string c(column);
  return "CASE typeof(" + c + ") WHEN 'integer' THEN " + c + " & 65535 WHEN 'blob' THEN " +
         blobPortSql("substr(" + c + ", 17, 2)") + " END";
}

// Pieces of the packed reply tuple (flow_row.hpp): two addresses of L bytes, then two ports.
std::string replyAddressTextSql(bool source) {
  const std::string l = "(length(reply) / 2 - 2)";
  return blobAddressTextSql(source ? "substr(reply, 1, " + l + ")" : "substr(reply, " + l + " + 1, " + l + ")");
}

std::string replyPortSql(bool source) {
  const std::string at = source ? "(length(reply) - 3)" : "(length(reply) - 1)";
  return blobPortSql("substr(reply, " + at + ", 2)");
}

// RFC 3339 text of a time column in nanoseconds (gaps, runs) or milliseconds (flows).
std::string timeTextSql(std::string_view column, std::string_view per_second) {
  return "strftime('%Y-%m-%dT%H:%M:%fZ', " + std::string(column) + " / " + std::string(per_second) +
         ", 'unixepoch')";
}
std::string nanosTextSql(std::string_view column) { return timeTextSql(column, "1e9"); }
std::string millisTextSql(std::string_view column) { return timeTextSql(column, "1e3"); }

std::string protocolNameSql() {
  std::string sql = "CASE protocol";
  for (const Protocol protocol : kNamedProtocols) {
    sql += " WHEN " + std::to_string(static_cast<unsigned>(protocol)) + " THEN '" + protocolName(protocol) + "'";
  }
  return sql + " ELSE CAST(protocol AS TEXT) END";
}

std::string tcpStateNameSql() {
  std::string sql = "CASE tcp_state";
  // enum tcp_conntrack: TCP_CONNTRACK_NONE (0) .. TCP_CONNTRACK_SYN_SENT2 (9).
  for (std::uint8_t state = 0; state <= 9; ++state) {
    sql += " WHEN " + std::to_string(state) + " THEN '" + std::string(tcpStateName(state)) + "'";
  }
  return sql + " END";
}

// flows with text addresses and times, for people at the sqlite3 shell. The reply tuple is shown
// whole: when `reply` is NULL it is what the original tuple and the translations imply
// (flow_row.hpp), and the view fills it in. Every address is rendered once, in the inner SELECT,
// and the outer one only picks among them: SQLite parses the whole schema, views included, each
// time a process opens the file, so the size of this SQL is paid by every `ctaudit` run.
std::string createViewSql() {
  std::string inner = "SELECT *,\n  ";
  // The packed columns taken apart by the shifts encodeFlow packs them with (flow_row.hpp).
  const auto shift = [](unsigned bits) { return std::to_string(bits); };
  inner += "packed & 255 AS protocol, nullif((packed >> " + shift(kTcpStateShift) + ") & 255, 0) - 1 AS tcp_state,\n  ";
  inner += "(packed >> " + shift(kFlagsShift) + ") & " + std::to_string(flow_flags::kAll) + " AS flags, packed >> " +
           shift(kStatusShift) + " AS status, zone_mark >> " + shift(kZoneShift) + " AS zone,\n  ";
  inner += "zone_mark & 4294967295 AS mark,\n  ";
  inner += endpointAddressTextSql("orig_src") + " AS t_orig_src, " + endpointPortSql("orig_src") + " AS t_orig_sport,\n  ";
  inner += endpointAddressTextSql("orig_dst") + " AS t_orig_dst, " + endpointPortSql("orig_dst") + " AS t_orig_dport,\n  ";
  inner += endpointAddressTextSql("nat_src") + " AS t_nat_src, " + endpointPortSql("nat_src") + " AS t_nat_src_port,\n  ";
  inner += endpointAddressTextSql("nat_dst") + " AS t_nat_dst, " + endpointPortSql("nat_dst") + " AS t_nat_dst_port,\n  ";
  inner += replyAddressTextSql(true) + " AS t_reply_src, " + replyPortSql(true) + " AS t_reply_sport,\n  ";
  inner += replyAddressTextSql(false) + " AS t_reply_dst, " + replyPortSql(false) + " AS t_reply_dport\nFROM flows";

  std::string sql = "CREATE VIEW flows_text AS SELECT\n  id, ct_id + " + std::to_string(kIpv4Bias) + " AS ct_id, zone, protocol, ";
  sql += protocolNameSql() + " AS proto,\n  ";
  sql += "t_orig_src AS orig_src, t_orig_sport AS orig_sport, t_orig_dst AS orig_dst, t_orig_dport AS orig_dport,\n  ";
  sql += "CASE WHEN reply IS NOT NULL THEN t_reply_src ELSE coalesce(t_nat_dst, t_orig_dst) END AS reply_src,\n  ";
  sql += "CASE WHEN reply IS NOT NULL THEN t_reply_sport ELSE coalesce(t_nat_dst_port, t_orig_dport) END AS reply_sport,\n  ";
  sql += "CASE WHEN reply IS NOT NULL THEN t_reply_dst ELSE coalesce(t_nat_src, t_orig_src) END AS reply_dst,\n  ";
  sql += "CASE WHEN reply IS NOT NULL THEN t_reply_dport ELSE coalesce(t_nat_src_port, t_orig_sport) END AS reply_dport,\n  ";
  sql += "t_nat_src AS nat_src, t_nat_src_port AS nat_src_port, t_nat_dst AS nat_dst, t_nat_dst_port AS nat_dst_port,\n  ";
  sql += "(icmp >> 24) & 255 AS icmp_type, (icmp >> 16) & 255 AS icmp_code,\n  ";
  sql += "(icmp >> 8) & 255 AS reply_icmp_type, icmp & 255 AS reply_icmp_code,\n  ";
  sql += "status, mark, tcp_state, " + tcpStateNameSql() + " AS tcp_state_name,\n  ";
  sql += millisTextSql("start_ms") + " AS start_time,\n  ";
  sql += millisTextSql("(start_ms + dur_ms)") + " AS end_time,\n  ";
  sql += "dur_ms / 1e3 AS duration_s,\n  ";
  sql += "CASE WHEN flags & 8 THEN 'unknown' WHEN flags & 1 THEN 'receive' ELSE 'kernel' END AS start_source,\n  ";
  sql += "CASE WHEN dur_ms IS NULL THEN NULL WHEN flags & 16 THEN 'bound' WHEN flags & 2 THEN 'receive' "
         "ELSE 'kernel' END AS end_source,\n  ";
  sql += "(flags & 4) != 0 AS observed_at_start, flags,\n  ";
  sql += "start_ms, start_ms + dur_ms AS end_ms\nFROM (" + inner + ")";
  return sql;
}

// gaps and runs with text times, for people at the sqlite3 shell.
std::string createGapsViewSql() {
  return "CREATE VIEW IF NOT EXISTS gaps_text AS SELECT\n  id, reason, " + nanosTextSql("start_ns") +
         " AS start_time, " + nanosTextSql("end_ns") +
         " AS end_time,\n  (end_ns - start_ns) / 1e9 AS duration_s, lost_records, overruns, sink, start_ns, end_ns\n"
         "FROM gaps";
}

std::string createRunsViewSql() {
  return "CREATE VIEW IF NOT EXISTS runs_text AS SELECT\n  id, " + nanosTextSql("started_ns") + " AS started, " +
         nanosTextSql("alive_ns") + " AS alive, " + nanosTextSql("stopped_ns") +
         " AS stopped,\n  stopped_ns IS NOT NULL AS clean_stop, version, observer_hostname, started_ns, alive_ns, "
         "stopped_ns\nFROM runs";
}

// Creates what a version-1 file may lack because it was written before gaps and runs were recorded
// (the schema was not released then, so the version was kept). Every statement is IF NOT EXISTS.
Result<void> ensureLogTables(sqlite3* db) {
  for (const std::string& statement : {std::string(kCreateGaps), std::string(kCreateGapsIndex), std::string(kCreateRuns),
                                       createGapsViewSql(), createRunsViewSql()}) {
    if (auto done = execute(db, statement); !done) {
      return done;
    }
  }
  return {};
}

Result<void> createSchema(sqlite3* db, std::string_view observer_hostname, Timestamp now) {
  for (const std::string_view statement : {kCreateMeta, kCreateFlows, kCreateSpans, kCreateSpansIndex}) {
    if (auto done = execute(db, std::string(statement)); !done) {
      return done;
    }
  }
  for (const std::string& statement : createIndexSql()) {
    if (auto done = execute(db, statement); !done) {
      return done;
    }
  }
  if (auto done = execute(db, createViewSql()); !done) {
    return done;
  }
  if (auto done = ensureLogTables(db); !done) {
    return done;
  }
  auto insert = prepare(db, "INSERT INTO meta (key, value) VALUES (?1, ?2)");
  if (!insert) {
    return Unexpected{insert.error()};
  }
  const std::string created_at = formatRfc3339(now);
  const std::string created_by = std::string("ctaudit ") + kVersion;
  const std::array<std::pair<std::string_view, std::string_view>, 4> rows{{
      {"observer_hostname", observer_hostname},
      {"created_at", created_at},
      {"created_by", created_by},
      {kOpenIndexFromKey, "1"},
  }};
  for (const auto& [key, value] : rows) {
    const StatementReset reset(*insert);
    sqlite3_bind_text(insert->get(), 1, key.data(), static_cast<int>(key.size()), kSqliteStatic);
    sqlite3_bind_text(insert->get(), 2, value.data(), static_cast<int>(value.size()), kSqliteStatic);
    if (sqlite3_step(insert->get()) != SQLITE_DONE) {
      return sqliteFailure(db, "cannot write the meta table");
    }
  }
  // Both pragmas are written in the same transaction as the tables, so a crash leaves either an
  // empty file or a complete version-1 database.
  if (auto done = execute(db, "PRAGMA application_id = " + std::to_string(kApplicationId)); !done) {
    return done;
  }
  return execute(db, "PRAGMA user_version = " + std::to_string(kSchemaVersion));
}

Result<std::string> metaValue(sqlite3* db, std::string_view key) {
  auto select = prepare(db, "SELECT value FROM meta WHERE key = ?1");
  if (!select) {
    return Unexpected{select.error()};
  }
  sqlite3_bind_text(select->get(), 1, key.data(), static_cast<int>(key.size()), kSqliteStatic);
  const int rc = sqlite3_step(select->get());
  if (rc == SQLITE_ROW) {
    const auto* text = sqlite3_column_text(select->get(), 0);
    return text == nullptr ? std::string{} : std::string(reinterpret_cast<const char*>(text));  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): SQLite returns UTF-8 as unsigned char
  }
  if (rc == SQLITE_DONE) {
    return fail(Errc::Storage, "the meta table has no '" + std::string(key) + "' row");
  }
  return sqliteFailure(db, "cannot read the meta table");
}

Result<std::int64_t> pragmaValue(sqlite3* db, const char* name) {
  return queryInteger(db, std::string("PRAGMA ") + name);
}

// Whether applySchema upgrades a file of `version` in place.
constexpr bool upgradable(std::int64_t version) noexcept {
  return version >= kOldestUpgradableVersion && version < kSchemaVersion;
}

// A ctauditd starting on a new path creates the file, then its header and tables, in steps: an
// exploratory run looping `ctaudit flows` over a daemon's start saw "not a ctaudit database" once
// in 400 runs, a verdict that could make an analyst set the file aside.
constexpr std::string_view kNoSchemaYet =
    ", with no ctaudit schema yet: a ctauditd starting on it may be creating it (try again in a moment); "
    "otherwise it is not a ctaudit flow database (ctauditd creates one at its --db path when it starts)";

// Checks the header of an existing database against what this build understands.
Result<std::int64_t> checkVersion(std::int64_t version, std::int64_t application_id) {
  if (application_id != kApplicationId || version < 1) {
    return fail(Errc::Storage, "not a ctaudit database (application_id " + std::to_string(application_id) +
                                   ", user_version " + std::to_string(version) + ")");
  }
  if (version > kSchemaVersion) {
    return fail(Errc::Storage, "written by a newer ctaudit (schema version " + std::to_string(version) +
                                   "; this build knows up to " + std::to_string(kSchemaVersion) +
                                   "): use a newer ctaudit, or point at another file");
  }
  if (upgradable(version)) {
    return fail(Errc::Storage, "written by an older ctaudit (schema version " + std::to_string(version) +
                                   "; this build reads version " + std::to_string(kSchemaVersion) +
                                   "): ctauditd upgrades it when it next opens the file (docs/schema.md, "
                                   "\"Versions and migrations\")");
  }
  if (version < kSchemaVersion) {
    // Version 1 stored addresses as BLOBs and the end as end_ns; version 2 nanosecond times, ports
    // in columns of their own and times in its indexes; version 3 four counter columns and
    // flows_nat_src and flows_orig_src without buckets. Turning a large file into the current
    // version rewrites every row and index, which a daemon must not do behind the operator's back
    // at start, and no converter exists yet (docs/schema.md, "Versions and migrations").
    return fail(Errc::Storage, "written by an older ctaudit (schema version " + std::to_string(version) +
                                   "; this build reads and writes version " + std::to_string(kSchemaVersion) +
                                   "): move the file aside so that ctauditd starts a new database, and query the "
                                   "old one with the ctaudit that wrote it (docs/schema.md, \"Versions and "
                                   "migrations\")");
  }
  return version;
}

}  // namespace

Result<DatabaseInfo> readDatabaseInfo(sqlite3* db, std::int64_t version) {
  auto hostname = metaValue(db, "observer_hostname");
  if (!hostname) {
    return Unexpected{hostname.error()};
  }
  auto created_at = metaValue(db, "created_at");
  if (!created_at) {
    return Unexpected{created_at.error()};
  }
  return DatabaseInfo{version, std::move(*hostname), std::move(*created_at)};
}

std::string endpointAddressTextSql(std::string_view column) {
  const std::string c(column);
  return "CASE typeof(" + c + ") WHEN 'integer' THEN " + u32TextSql("((" + c + " + " + std::to_string(kEndpointBias) + ") >> 16)") +
         " WHEN 'blob' THEN " + ipv6TextSql("hex(substr(" + c + ", 1, 16))") + " END";
}

namespace {

// Drops and creates again each of the indexes on `flows` whose CREATE text differs from this
// build's (createIndexSql), and creates those the file lacks: SQLite keeps the text as written, so an index whose key or condition
// changed between versions is rebuilt and every other one left alone. SQLite builds an index by
// reading the whole table, sorting only for the ones that hold every row: with 10M flows in the
// page cache, about 0.5 s for a partial index and 11 s for flows_orig_src (docs/schema.md,
// "Versions and migrations"). The sort spills to SQLite's temporary directory (/var/tmp).
Result<void> rebuildChangedIndexes(sqlite3* db) {
  auto current = prepare(db, "SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?1");
  if (!current) {
    return Unexpected{current.error()};
  }
  for (const std::string& create : createIndexSql()) {
    // "CREATE INDEX name ON …": the name is the third word.
    const std::size_t name_at = std::string_view("CREATE INDEX ").size();
    const std::string name = create.substr(name_at, create.find(' ', name_at) - name_at);
    sqlite3_bind_text(current->get(), 1, name.data(), static_cast<int>(name.size()), kSqliteStatic);
    const int rc = sqlite3_step(current->get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      return sqliteFailure(db, "cannot read the definition of index " + name);
    }
    const auto* text = rc == SQLITE_ROW ? sqlite3_column_text(current->get(), 0) : nullptr;
    const bool exists = text != nullptr;
    const bool same = exists && create == reinterpret_cast<const char*>(text);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): SQLite returns UTF-8 as unsigned char
    sqlite3_reset(current->get());  // a statement still reading sqlite_master would lock DROP INDEX out
    if (same) {
      continue;
    }
    if (exists) {
      if (auto done = execute(db, "DROP INDEX " + name); !done) {
        return done;
      }
    }
    if (auto done = execute(db, create); !done) {
      return done;
    }
  }
  return {};
}

// Upgrades a file of version `from` (kOldestUpgradableVersion or later) in the caller's
// transaction. Nothing in `flows` is rewritten but the open rows' `packed` of a version-4 file.
//  - Version 4 kept every open row in flows_open_*, whose condition was `dur_ms IS NULL` alone.
//    Its open rows all go into the later indexes (flow_flags::kInOpenIndex), so that no row is
//    open outside them and open_index_from starts after the last row.
//  - Versions 4 and 5 keyed the flows_orig_src family by an expression that called typeof() and
//    substr() (kOrigSrcKeySql says why that cost a statement journal); those three indexes are
//    built again.
//  - Versions 4 to 6 had no flows_dnat family; it is built (a read of the whole table, which holds
//    few DNAT rows on most gateways).
Result<void> upgradeFrom(sqlite3* db, std::int64_t from) {
  std::vector<std::string> steps;
  if (from == 4) {
    steps.push_back("UPDATE flows INDEXED BY " + std::string(flow_index::kOpenNat) + " SET packed = packed | " +
                    std::to_string(kInOpenIndexBit) + " WHERE dur_ms IS NULL");
    steps.push_back("INSERT INTO meta (key, value) SELECT '" + std::string(kOpenIndexFromKey) +
                    "', coalesce(max(id), 0) + 1 FROM flows");
  }
  // The code and errno stay: a disk that fills up during an index build is an I/O error.
  const auto failed = [from](const Error& error) {
    return fail(error.code, "cannot upgrade the schema from version " + std::to_string(from) + ": " + error.detail,
                error.sys_errno);
  };
  for (const std::string& step : steps) {
    if (auto done = execute(db, step); !done) {
      return failed(done.error());
    }
  }
  if (auto done = rebuildChangedIndexes(db); !done) {
    return failed(done.error());
  }
  return execute(db, "PRAGMA user_version = " + std::to_string(kSchemaVersion));
}

}  // namespace

// The first read of a file that SQLite cannot use as a database (it opens lazily, so this is
// where that shows): what it is, and what to do about it.
Error explainUnusableFile(sqlite3* db, Error error) {
  switch (sqlite3_extended_errcode(db) & 0xFF) {
    case SQLITE_CORRUPT:
      error.code = Errc::Storage;
      error.detail = "the file is damaged (SQLite: " + std::string(sqlite3_errmsg(db)) +
                     "): move it aside with its -wal and -shm, keeping them, and start ctauditd again, which "
                     "begins a new database; the JSON-lines files may hold its flows too (docs/operations.md, "
                     "\"A damaged database\")";
      break;
    case SQLITE_NOTADB:
      error.code = Errc::Storage;
      error.detail = "the file is not a SQLite database (SQLite: " + std::string(sqlite3_errmsg(db)) +
                     "): check the database path (--db, or db in the configuration file); ctauditd does not "
                     "overwrite a file that it did not create";
      break;
    default:
      break;
  }
  return error;
}

Result<DatabaseInfo> applySchema(sqlite3* db, std::string_view observer_hostname, Timestamp now,
                                 const std::function<void(std::int64_t from)>& on_upgrade) {
  // An empty file may only be turned into a ctaudit database once; auto_vacuum can only be chosen
  // before the first table exists. INCREMENTAL lets a later retention job give deleted pages back
  // to the file system (PRAGMA incremental_vacuum) without rewriting the whole file.
  auto tables = queryInteger(db, "SELECT count(*) FROM sqlite_master");
  if (!tables) {
    return Unexpected{explainUnusableFile(db, tables.error())};
  }
  if (*tables == 0) {
    if (auto done = execute(db, "PRAGMA auto_vacuum = INCREMENTAL"); !done) {
      return Unexpected{done.error()};
    }
  }

  Transaction tx(db);
  if (!tx.begun()) {
    return sqliteFailure(db, "cannot lock the database to check its schema");
  }
  // Read inside the transaction: another process may have created the schema meanwhile.
  auto version = pragmaValue(db, "user_version");
  auto application_id = pragmaValue(db, "application_id");
  tables = queryInteger(db, "SELECT count(*) FROM sqlite_master");
  if (!version || !application_id || !tables) {
    return Unexpected{!version ? version.error() : !application_id ? application_id.error() : tables.error()};
  }
  if (*version == 0 && *application_id == 0) {
    if (*tables != 0) {
      return fail(Errc::Storage, "the file holds another application's tables and no ctaudit schema");
    }
    if (auto created = createSchema(db, observer_hostname, now); !created) {
      return Unexpected{created.error()};
    }
    if (tx.commit() != SQLITE_OK) {
      return sqliteFailure(db, "cannot commit the new schema");
    }
    return DatabaseInfo{kSchemaVersion, std::string(observer_hostname), formatRfc3339(now)};
  }
  if (*application_id == kApplicationId && upgradable(*version)) {
    if (on_upgrade) {
      on_upgrade(*version);
    }
    if (auto upgraded = upgradeFrom(db, *version); !upgraded) {
      return Unexpected{upgraded.error()};
    }
    *version = kSchemaVersion;
  }
  auto checked = checkVersion(*version, *application_id);
  if (!checked) {
    return Unexpected{checked.error()};
  }
  auto info = readDatabaseInfo(db, *checked);
  if (!info) {
    return info;
  }
  if (auto done = ensureLogTables(db); !done) {
    return Unexpected{done.error()};
  }
  if (info->observer_hostname != observer_hostname) {
    auto update = prepare(db, "UPDATE meta SET value = ?1 WHERE key = 'observer_hostname'");
    if (!update) {
      return Unexpected{update.error()};
    }
    sqlite3_bind_text(update->get(), 1, observer_hostname.data(), static_cast<int>(observer_hostname.size()),
                      kSqliteStatic);
    if (sqlite3_step(update->get()) != SQLITE_DONE) {
      return sqliteFailure(db, "cannot update the observer host name");
    }
  }
  if (tx.commit() != SQLITE_OK) {
    return sqliteFailure(db, "cannot commit the schema check");
  }
  return info;
}

Result<std::int64_t> openIndexFrom(sqlite3* db) {
  auto text = metaValue(db, kOpenIndexFromKey);
  if (!text) {
    return Unexpected{text.error()};
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(text->data(), text->data() + text->size(), value);
  if (ec != std::errc{} || end != text->data() + text->size() || value < 1) {
    return fail(Errc::Storage, "the meta table's '" + std::string(kOpenIndexFromKey) + "' is not a row id: '" +
                                   *text + "'");
  }
  return value;
}

Result<std::int64_t> lastFlowId(sqlite3* db) { return queryInteger(db, "SELECT coalesce(max(id), 0) FROM flows"); }

Result<void> setOpenIndexFrom(sqlite3* db, std::int64_t first_id) {
  auto update = prepare(db, "UPDATE meta SET value = ?1 WHERE key = ?2");
  if (!update) {
    return Unexpected{update.error()};
  }
  const std::string value = std::to_string(first_id);
  sqlite3_bind_text(update->get(), 1, value.data(), static_cast<int>(value.size()), kSqliteStatic);
  sqlite3_bind_text(update->get(), 2, kOpenIndexFromKey.data(), static_cast<int>(kOpenIndexFromKey.size()),
                    kSqliteStatic);
  if (sqlite3_step(update->get()) != SQLITE_DONE) {
    return sqliteFailure(db, "cannot write the meta table's '" + std::string(kOpenIndexFromKey) + "'");
  }
  if (sqlite3_changes(db) != 1) {
    return fail(Errc::Storage, "the meta table has no '" + std::string(kOpenIndexFromKey) + "' row");
  }
  return {};
}

namespace {

// A 32-bit big-endian signed integer of the SQLite header (user_version, application_id).
std::int64_t headerInteger(std::span<const unsigned char> header, std::size_t at) noexcept {
  const std::uint32_t value = (std::uint32_t{header[at]} << 24U) | (std::uint32_t{header[at + 1]} << 16U) |
                              (std::uint32_t{header[at + 2]} << 8U) | std::uint32_t{header[at + 3]};
  return static_cast<std::int32_t>(value);
}

}  // namespace

Result<std::int64_t> checkSchemaVersion(sqlite3* db) {
  auto version = pragmaValue(db, "user_version");
  if (!version) {
    return Unexpected{version.error()};
  }
  auto application_id = pragmaValue(db, "application_id");
  if (!application_id) {
    return Unexpected{application_id.error()};
  }
  if (*version == 0 && *application_id == 0) {
    // Read through a -wal, which the header check left to SQLite: a database being created.
    if (auto tables = queryInteger(db, "SELECT count(*) FROM sqlite_master"); tables && *tables == 0) {
      return fail(Errc::Storage, "an SQLite file without tables" + std::string(kNoSchemaYet));
    }
  }
  return checkVersion(*version, *application_id);
}

Result<DatabaseInfo> checkSchema(sqlite3* db) {
  auto version = checkSchemaVersion(db);
  if (!version) {
    return Unexpected{version.error()};
  }
  return readDatabaseInfo(db, *version);
}

namespace {

// The first 16 bytes of every SQLite database file.
constexpr std::string_view kSqliteMagic{"SQLite format 3\0", 16};

// A descriptor for reading the regular file at `path`, or an invalid one. O_NONBLOCK: opening a
// FIFO for reading would wait for a writer.
UniqueFd openRegularForReading(const std::filesystem::path& path) {
  UniqueFd fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)};
  struct stat status {};
  if (fd.valid() && (::fstat(fd.get(), &status) != 0 || !S_ISREG(status.st_mode))) {
    return UniqueFd{};
  }
  return fd;
}

// What the first bytes of a file say, read without SQLite.
struct FileHeader {
  enum class Kind : std::uint8_t { Unreadable, Empty, NotSqlite, Sqlite } kind{Kind::Unreadable};
  std::int64_t user_version{0};
  std::int64_t application_id{0};
  bool has_schema{false};      // sqlite_master holds anything (tables, indexes, views)
  bool wal_has_frames{false};  // then page 1 in the WAL may be newer than these
};

// The database header (100 bytes) and the b-tree page header of page 1, sqlite_master's root, that
// follows it (https://sqlite.org/fileformat2.html).
FileHeader readFileHeader(const std::filesystem::path& path) {
  std::array<unsigned char, 108> bytes{};
  std::size_t got = 0;
  {
    const UniqueFd fd = openRegularForReading(path);
    if (!fd.valid()) {
      return {};  // the open that follows says why
    }
    while (got < bytes.size()) {
      const ssize_t n = ::read(fd.get(), bytes.data() + got, bytes.size() - got);
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0) {
        return {};  // an I/O error
      }
      if (n == 0) {
        break;
      }
      got += static_cast<std::size_t>(n);
    }
  }
  FileHeader header;
  if (got == 0) {
    header.kind = FileHeader::Kind::Empty;
    return header;
  }
  if (got < bytes.size() ||
      std::string_view(reinterpret_cast<const char*>(bytes.data()), kSqliteMagic.size()) != kSqliteMagic) {  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast): bytes as chars
    header.kind = FileHeader::Kind::NotSqlite;
    return header;
  }
  header.kind = FileHeader::Kind::Sqlite;
  header.user_version = headerInteger(bytes, 60);
  header.application_id = headerInteger(bytes, 68);
  // An empty sqlite_master is a leaf table page (0x0D) with no cells. (The schema cookie at 40
  // counts changes, not tables: a table created and dropped again leaves it at 2.)
  constexpr unsigned char kLeafTablePage = 0x0D;
  const unsigned cells = (unsigned{bytes[103]} << 8U) | unsigned{bytes[104]};
  header.has_schema = bytes[100] != kLeafTablePage || cells != 0;
  // SQLite keeps the -wal beside the file a symbolic link names, not beside the link.
  std::error_code ec;
  std::filesystem::path wal = std::filesystem::canonical(path, ec);
  if (ec) {
    wal = path;
  }
  wal += "-wal";
  const auto wal_size = std::filesystem::file_size(wal, ec);
  header.wal_has_frames = !ec && wal_size > 0;
  return header;
}

constexpr std::string_view kNotSqlite = "not a SQLite database, so not a ctaudit flow database";

}  // namespace

bool beginsWithSqliteHeader(const std::filesystem::path& path) {
  const UniqueFd fd = openRegularForReading(path);
  std::array<char, kSqliteMagic.size()> head{};
  return fd.valid() && ::pread(fd.get(), head.data(), head.size(), 0) == static_cast<ssize_t>(head.size()) &&
         std::string_view(head.data(), head.size()) == kSqliteMagic;
}

Result<void> checkFileHeader(const std::filesystem::path& path) {
  const FileHeader header = readFileHeader(path);
  switch (header.kind) {
    case FileHeader::Kind::Unreadable: return {};  // openReadOnly says why, in the terms the operator needs
    case FileHeader::Kind::Empty: return fail(Errc::Storage, "the file is empty" + std::string(kNoSchemaYet));
    case FileHeader::Kind::NotSqlite: return fail(Errc::Storage, std::string(kNotSqlite));
    case FileHeader::Kind::Sqlite: break;
  }
  // With a -wal that holds frames, page 1 there may be newer than the file's: a database ctauditd
  // has upgraded keeps its new user_version in the WAL until a checkpoint.
  if (header.wal_has_frames) {
    return {};
  }
  if (header.application_id == 0 && header.user_version == 0 && !header.has_schema) {
    return fail(Errc::Storage, "an SQLite file without tables" + std::string(kNoSchemaYet));
  }
  if (auto checked = checkVersion(header.user_version, header.application_id); !checked) {
    return Unexpected{checked.error()};
  }
  return {};
}

Result<std::optional<std::string>> checkFileHeaderForWriting(const std::filesystem::path& path) {
  const FileHeader header = readFileHeader(path);
  switch (header.kind) {
    case FileHeader::Kind::Unreadable:
    case FileHeader::Kind::Empty: return std::optional<std::string>{};  // a new database, or found out at start
    case FileHeader::Kind::NotSqlite: return fail(Errc::Storage, std::string(kNotSqlite));
    case FileHeader::Kind::Sqlite: break;
  }
  if (header.wal_has_frames) {
    return std::optional<std::string>{};
  }
  if (header.application_id == 0 && header.user_version == 0) {
    if (header.has_schema) {
      return fail(Errc::Storage, "the file holds another application's tables and no ctaudit schema");
    }
    return std::optional<std::string>{};  // an SQLite file without tables: ctauditd creates its schema in it
  }
  if (header.application_id == kApplicationId && upgradable(header.user_version)) {
    return std::optional<std::string>{"schema version " + std::to_string(header.user_version) +
                                      ": ctauditd upgrades it to version " + std::to_string(kSchemaVersion) +
                                      " when it starts (docs/schema.md, \"Versions and migrations\")"};
  }
  if (auto checked = checkVersion(header.user_version, header.application_id); !checked) {
    return Unexpected{checked.error()};
  }
  return std::optional<std::string>{};
}

}  // namespace ctaudit::storage
