// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <variant>

#include "flow/flow_record.hpp"
#include "flow/result.hpp"

struct sqlite3_stmt;

// The one mapping between a FlowRecord and a row of the `flows` table (docs/schema.md). SqliteSink
// writes through it and FlowReader reads through it, so the two cannot disagree about a column.
// Internal to storage/.
namespace ctaudit::storage {

// The columns of `flows` after `id`, in table order (docs/schema.md, version 4).
enum class FlowColumn : std::uint8_t {
  StartMs,
  DurMs,
  OrigSrc,
  OrigDst,
  NatSrc,
  NatDst,
  Packed,
  ZoneMark,
  CtId,
  Icmp,
  Reply,
  Counters,
};
inline constexpr std::size_t kFlowColumnCount = 12;

// The `counters` column: both directions' packet and byte counters in one BLOB of unsigned LEB128
// varints, in the order orig packets + 1, orig bytes, reply packets + 1, reply bytes. A direction
// whose counters the event did not carry is a single 0 (its packets + 1 can never be 0), and its
// bytes are left out. A packet count of 2^64 - 1 is stored as 2^64 - 2, the one value this cannot
// hold. NULL when neither direction has counters. One column where version 3 had five (four
// counters and `reserve`): four header bytes a flow fewer, which pays for the bucket in the entries
// of flows_nat_src and flows_orig_src (kIndexBucketShift).
//
// An open row pads the BLOB with zeros to kOpenCountersBytes, room for the values its DESTROY fills
// in (dur_ms, 3-4 bytes, and the counters, 1-3 bytes each), so that closing the row does not make
// it grow: a row that grows no longer fits its page, and the page splits. A row that already has
// counters when it opens (from the start-up dump) is padded by at least kOpenRowGrowthBytes beyond
// them, for its end and their growth. 1M flows through
// SqliteSink, each inserted open and closed a batch later (bench/flowdb_gen --through-sink), table
// bytes a flow with version 3's separate reserve column: none 73.4 (pages 81% full), 8 bytes 79.4
// (75%: rows still grow a little, pages split early and stay half empty), 10 bytes 67.3 (88%, as
// appends leave them), 12 bytes 68.6 (86%). A closed row is not padded.
inline constexpr std::uint8_t kOpenCountersBytes = 10;
inline constexpr std::uint8_t kOpenRowGrowthBytes = 6;

[[nodiscard]] std::string_view columnName(FlowColumn column) noexcept;

// The `packed` column holds four small values in one integer, one record-header byte and 4 value
// bytes where four columns took four and about 6: the protocol number in bits 0-7, the TCP state
// plus one in bits 8-15 (0: none), the flags below in bits 16-20, and the conntrack status bits
// (CTA_STATUS) from bit 21. A status below 1 << 10 (every bit up to IPS_DYING) keeps the value
// within SQLite's 4-byte integers.
inline constexpr unsigned kTcpStateShift = 8;
inline constexpr unsigned kFlagsShift = 16;
inline constexpr unsigned kStatusShift = 21;

// `zone_mark` packs the conntrack zone (16 bits) above the mark (32 bits): both are 0 on most
// gateways, and one column then costs one header byte where two cost two.
inline constexpr unsigned kZoneShift = 32;

// The flags, as they sit in (packed >> kFlagsShift) & kAll.
namespace flow_flags {
inline constexpr std::int64_t kStartFromReceive = 1;  // start_source == TimeSource::Receive
inline constexpr std::int64_t kEndFromReceive = 2;    // end_source == TimeSource::Receive
inline constexpr std::int64_t kObservedAtStart = 4;   // first seen in the start-up dump
inline constexpr std::int64_t kStartUnknown = 8;      // start_ms is a stand-in, see StoredFlow
// end_source == TimeSource::Bound: the DESTROY was lost and the end is only a time the flow is known
// to have ended at or before. Never set together with kEndFromReceive. Only an end can be a bound;
// a start is always a kernel or a receive time.
inline constexpr std::int64_t kEndIsBound = 16;
inline constexpr std::int64_t kAll = 31;
// In an open row (dur_ms NULL), where no end has a source yet, the bit of kEndFromReceive says
// instead that the row is in flows_open_nat and flows_open_src, and flows_open_dnat with DNAT
// (StoredFlow::in_open_index). The write that closes the row sets the bit from the end's source
// again.
inline constexpr std::int64_t kInOpenIndex = kEndFromReceive;
}  // namespace flow_flags

// flow_flags::kInOpenIndex as it sits in `packed`, and the partial indexes' condition on an open
// row that is in them, written the way a query must spell it for SQLite to use flows_open_*.
inline constexpr std::int64_t kInOpenIndexBit = flow_flags::kInOpenIndex << kFlagsShift;
inline constexpr std::string_view kInOpenIndexSql = "(packed & 131072) != 0";
static_assert(kInOpenIndexBit == 131072, "kInOpenIndexSql spells the bit out");

// A short byte string as stored in a BLOB column: an IPv6 address (16 bytes), an IPv6 endpoint
// (address and port, 18 bytes), a packed reply tuple (12 or 36 bytes) or the counters (up to 40). Fixed capacity, so that
// encoding a row allocates nothing.
struct Blob {
  static constexpr std::size_t kCapacity = 40;  // the longest `counters`: four 10-byte varints
  std::array<std::uint8_t, kCapacity> bytes{};
  std::uint8_t size{0};
  [[nodiscard]] std::span<const std::uint8_t> view() const noexcept { return {bytes.data(), size}; }
  void append(std::span<const std::uint8_t> more) noexcept;
  void appendPort(std::uint16_t port) noexcept;  // big-endian, like the address bytes
  friend bool operator==(const Blob& a, const Blob& b) noexcept {
    return a.size == b.size && std::equal(a.bytes.begin(), a.bytes.begin() + a.size, b.bytes.begin());
  }
};

// One column's value as SQLite stores it: NULL, an INTEGER, or a BLOB.
using ColumnValue = std::variant<std::monostate, std::int64_t, Blob>;
using FlowRow = std::array<ColumnValue, kFlowColumnCount>;

// A FlowRow held compactly in memory, for SqliteSink's copy of each open row (so that an event of
// an open flow does not read its row back from the database). Per column one tag byte, then the
// value: 0 NULL; 1-8 an INTEGER in that many bytes, little-endian, sign-extended; 0x40 | n a BLOB of
// n bytes. An open IPv4 row with SNAT and DNAT takes about 66 bytes, an open IPv6 row without NAT
// 80; a row that does not fit is not held (pack() says so) and is read from the database instead.
struct PackedRow {
  static constexpr std::size_t kCapacity = 80;
  std::array<std::uint8_t, kCapacity> bytes{};  // the first `size` are set
  std::uint8_t size{0};                       // 0: nothing held
};
// `row` into `out`; false (and `out` emptied) when it needs more than PackedRow::kCapacity bytes.
[[nodiscard]] bool packRow(const FlowRow& row, PackedRow& out) noexcept;
// The row packRow() packed. Precondition: `packed` was filled by a successful packRow().
[[nodiscard]] FlowRow unpackRow(const PackedRow& packed) noexcept;

// How addresses and endpoints are stored (docs/schema.md, "Addresses"). An IPv4 value is an
// INTEGER, biased so that it stays within SQLite's 4- and 6-byte integer encodings and keeps the
// address order (a CIDR block is one integer range); an IPv6 value is a BLOB in network order.
// SQLite sorts every INTEGER before every BLOB, so the two families never mix in a range.
//  - address: IPv4 (u32 - 2^31); IPv6 the 16 bytes.
//  - endpoint (an address and its port in one value: every address column of `flows` is one, so
//    that `who`'s index key is one column and no port costs a column of its own): IPv4
//    ((u32 << 16 | port) - 2^47), whose low 16 bits are the port; IPv6 the 16 address bytes then
//    the port, big-endian (18 bytes).
inline constexpr std::int64_t kIpv4Bias = std::int64_t{1} << 31;
inline constexpr std::int64_t kEndpointBias = std::int64_t{1} << 47;
[[nodiscard]] ColumnValue addressValue(const IpAddress& address) noexcept;
[[nodiscard]] ColumnValue endpointValue(const IpAddress& address, std::uint16_t port) noexcept;

// The key of the flows_orig_src family of indexes, from the endpoint column orig_src: for IPv4 its
// address (the endpoint shifted right by 16, which is exactly the biased address), for IPv6 the
// whole endpoint, port included. A query must spell it exactly so for SQLite to use those indexes.
// Operators only, no SQL function: `orig_src < ''` holds for every INTEGER and no BLOB (SQLite
// sorts numbers before text and text before BLOBs; the column's NUMERIC affinity leaves '' text),
// and for no TEXT either, which only a person at the shell could store and which thus keeps a
// key that no address range reaches. An index expression
// that calls a function (version 5 had typeof() and substr()) can fail half-way through a
// statement, so SQLite gave every multi-row INSERT and UPDATE a statement journal, a copy of each
// page the statement changed: 10 % of the daemon's CPU at the ceiling (docs/benchmarks.md,
// "No statement journal"). An IPv6 key keeps its port because only substr() could drop it.
inline constexpr std::string_view kOrigSrcKeySql = "(CASE WHEN orig_src < '' THEN orig_src >> 16 ELSE orig_src END)";
// The keys of kOrigSrcKeySql that the sources from `first` to `last` (one family) have, whatever
// their ports: an INTEGER range for IPv4, a BLOB range for IPv6.
struct SourceKeyRange {
  ColumnValue low;
  ColumnValue high;
};
[[nodiscard]] SourceKeyRange sourceKeyRange(const IpAddress& first, const IpAddress& last) noexcept;

// flows_nat_src and flows_orig_src are keyed by (id >> kIndexBucketShift, address): a bucket of
// 2^20 consecutive rows first, then the address. A new row's entries then land among the few
// thousand leaves of the newest bucket, which a batch rewrites once, instead of one leaf per flow
// all over an index as large as the file: keyed by the address alone, SqliteSink's CPU per event
// grew with the file (2.7 ms per 1000 events on an empty file, 8.5 at 5M flows, bench sink_bench
// --report) and stays flat (3.1) keyed by bucket. A lookup asks each bucket of its rowid ranges
// (bucketsTerm in flow_query_sql.cpp). The entry costs a header byte and the bucket's 0-2 bytes.
inline constexpr unsigned kIndexBucketShift = 20;
inline constexpr std::string_view kIndexBucketSql = "(id >> 20)";

// The names of the indexes on `flows` (createIndexSql in schema.cpp says what each is for). The
// partial ones are named by the queries' INDEXED BY and checked for at open by the reader, so
// each name is spelt once, here.
namespace flow_index {
inline constexpr std::string_view kNatSrc = "flows_nat_src";
inline constexpr std::string_view kOrigSrc = "flows_orig_src";
inline constexpr std::string_view kOpenNat = "flows_open_nat";
inline constexpr std::string_view kOpenSrc = "flows_open_src";
inline constexpr std::string_view kLongNat = "flows_long_nat";
inline constexpr std::string_view kLongSrc = "flows_long_src";
inline constexpr std::string_view kDnat = "flows_dnat";
inline constexpr std::string_view kOpenDnat = "flows_open_dnat";
inline constexpr std::string_view kLongDnat = "flows_long_dnat";
// The ones a query names with INDEXED BY: without one of them the statement fails.
inline constexpr std::array kIndexedBy{kOpenNat, kOpenSrc, kLongNat, kLongSrc, kOpenDnat, kLongDnat};
}  // namespace flow_index

// Times are stored in whole milliseconds: start_ms rounded down and the end rounded up, so that
// the stored lifetime covers the real one (a `who` at any instant of the flow finds it) and is
// never more than 1 ms longer at either side. The JSON lines keep nanoseconds.
[[nodiscard]] std::int64_t startMillis(Timestamp start) noexcept;
[[nodiscard]] std::int64_t endMillis(Timestamp end) noexcept;

// A flow as one row holds it: the record as the reader returns it, plus the time the row is
// indexed under. `lifetime_start` is record.start when known; otherwise (flags bit kStartUnknown)
// the earliest time the flow is known to have existed: the time of the first event seen for it,
// which for a flow seen only at its DESTROY is its end (FlowQuery: "a flow with no start is taken
// to have started at its end").
struct StoredFlow {
  FlowRecord record;
  Timestamp lifetime_start{};
  // An open row that is in the flows_open_* indexes (flow_flags::kInOpenIndex). A new open row is
  // not: the sink adds the rows that are still open five minutes after they were written
  // (docs/schema.md, "Open rows"). Kept by every merge; meaningless once the flow has ended.
  bool in_open_index{false};
  friend bool operator==(const StoredFlow&, const StoredFlow&) = default;
};

// Sets record.event and record.event_time from the lifetime, as a stored row is read back: an
// ended flow is a Destroy at its end, an open one a New at its start.
void settleEvent(StoredFlow& flow) noexcept;

// The start_ms `flow`'s row holds (encodeFlow): its start, or the stand-in when the start is
// unknown, rounded down.
[[nodiscard]] std::int64_t storedStartMillis(const StoredFlow& flow) noexcept;

// Column values for `flow`. Space matters more than symmetry here (docs/schema.md, "Size"):
//  - `reply` is NULL when the reply tuple is what the original tuple and the translations already
//    say (reply.src = translated destination or orig.dst, reply.dst = translated source or
//    orig.src, and the same for the ports), which is every flow whose reply tuple is the plain
//    inverse up to its NAT; otherwise it packs the whole reply tuple: source and destination
//    address, then source and destination key, big-endian (12 bytes IPv4, 36 IPv6);
//  - orig_src and orig_dst are endpoints holding FlowTuple::sourceKey()/destinationKey(), so the
//    ICMP id where ports would be;
//  - `icmp` packs orig type, orig code, reply type, reply code, a byte each from the high end, and
//    is NULL when all four are zero;
//  - times in milliseconds (startMillis, endMillis): `start_ms`, and the end as `dur_ms` =
//    end - start, NULL while the flow is open;
//  - ct_id is stored biased like an IPv4 address (u32 - 2^31), 4 bytes instead of up to 6.
[[nodiscard]] FlowRow encodeFlow(const StoredFlow& flow);

// The inverse of encodeFlow. Rows are untrusted input: a value out of its range, a wrong type or a
// blob of the wrong size gives Errc::Storage naming the column.
[[nodiscard]] Result<StoredFlow> decodeFlow(const FlowRow& row);

// "ct_id, zone, …" with each name prefixed by `prefix` (e.g. "flows.").
[[nodiscard]] std::string flowColumnList(std::string_view prefix = "");

// Binds row[columns[i]] to parameter first_param + i. Blobs are bound without copying: `row` must
// outlive the statement's next step. Returns the first SQLite error code, or SQLITE_OK.
[[nodiscard]] int bindColumns(sqlite3_stmt* stmt, int first_param, const FlowRow& row,
                              std::span<const FlowColumn> columns) noexcept;

// Binds one value (NULL, INTEGER, or BLOB without copying: `value` must outlive the next step).
[[nodiscard]] int bindValue(sqlite3_stmt* stmt, int param, const ColumnValue& value) noexcept;

// Reads the kFlowColumnCount columns that start at result column `first_col` (selected with
// flowColumnList()). Errors: Errc::Storage for a value of the wrong SQLite type.
[[nodiscard]] Result<FlowRow> readRow(sqlite3_stmt* stmt, int first_col);

// Every column, in table order.
[[nodiscard]] std::span<const FlowColumn> allFlowColumns() noexcept;

// The INSERT and UPDATEs of the sink say OR FAIL: a constraint that fails stops the statement
// without undoing its earlier rows, which the sink's transaction undoes anyway (one batch, one
// transaction). With ABORT, SQLite's default, every multi-row statement kept a statement journal
// to undo itself (see kOrigSrcKeySql).
//
// INSERT of every column of `rows` rows, parameter r * kFlowColumnCount + i + 1 for column i of
// row r (bind each row with allFlowColumns()). SQLite gives the rows consecutive ids in order.
[[nodiscard]] std::string flowInsertSql(std::size_t rows = 1);
// UPDATE of `columns` (parameters 1..n in that order) of the row whose id is parameter n+1.
[[nodiscard]] std::string flowUpdateSql(std::span<const FlowColumn> columns);
// The same UPDATE of `rows` rows in one statement (UPDATE … FROM (VALUES …)): parameter
// r * (n + 1) + 1 is row r's id, and the n after it its `columns` in that order.
[[nodiscard]] std::string flowUpdateManySql(std::span<const FlowColumn> columns, std::size_t rows);
// flowColumnList() of the row whose id is parameter 1, if it is still open (dur_ms IS NULL): a point
// read by rowid. SqliteSink knows the ids of the open rows (it keeps them in memory by flow key), so
// no index is searched per event.
[[nodiscard]] std::string readOpenFlowSql();
// `id` and flowColumnList() of every open row, in id order: those in flows_open_* through
// flows_open_nat, and those from the row whose id is parameter 1 on that are not in them
// (kOpenIndexFromKey, schema.hpp).
[[nodiscard]] std::string openRowsSql();
// Puts the row whose id is parameter 1 into flows_open_* (kInOpenIndexBit), if it is still open:
// another writer may have closed it.
[[nodiscard]] std::string indexOpenRowSql();

}  // namespace ctaudit::storage
