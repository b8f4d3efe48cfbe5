// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_row.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>

#include "flow/varint.hpp"
#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

constexpr std::array<std::string_view, kFlowColumnCount> kColumnNames{
    "start_ms", "dur_ms", "orig_src", "orig_dst", "nat_src", "nat_dst",
    "packed",   "zone_mark", "ct_id", "icmp",     "reply",   "counters",
};

constexpr std::int64_t kNanosPerMilli = 1'000'000;

constexpr std::array<FlowColumn, kFlowColumnCount> kAllColumns = [] {
  std::array<FlowColumn, kFlowColumnCount> columns{};
  for (std::size_t i = 0; i < columns.size(); ++i) {
    columns[i] = static_cast<FlowColumn>(i);
  }
  return columns;
}();

constexpr std::size_t index(FlowColumn column) noexcept { return static_cast<std::size_t>(column); }


std::uint32_t ipv4HostOrder(const IpAddress& address) noexcept {
  const auto b = address.bytes();
  return (std::uint32_t{b[0]} << 24U) | (std::uint32_t{b[1]} << 16U) | (std::uint32_t{b[2]} << 8U) | b[3];
}

// The reply tuple's source and destination keys as the original tuple and the translations imply
// them. Ports swap sides and take the translated values. ICMP has one id for both directions:
// the reply carries the translated id (SNAT or DNAT rewrite the same field), else the original.
struct ImpliedKeys {
  std::uint16_t source;
  std::uint16_t destination;
};
ImpliedKeys impliedReplyKeys(const FlowTuple& orig, const NatMapping& nat) noexcept {
  if (isIcmp(orig.protocol)) {
    const std::uint16_t id = nat.translated_source        ? nat.translated_source->port
                             : nat.translated_destination ? nat.translated_destination->port
                                                          : orig.icmp_id;
    return {id, id};
  }
  return {nat.translated_destination ? nat.translated_destination->port : orig.dst_port,
          nat.translated_source ? nat.translated_source->port : orig.src_port};
}

// The reply tuple as the `reply` column packs it, or NULL when the original tuple and the
// translations imply it (encodeFlow).
ColumnValue replyValue(const FlowTuple& reply, const IpAddress& implied_src, const IpAddress& implied_dst,
                       std::uint16_t implied_sport, std::uint16_t implied_dport) noexcept {
  if (reply.src == implied_src && reply.dst == implied_dst && reply.sourceKey() == implied_sport &&
      reply.destinationKey() == implied_dport) {
    return {};
  }
  Blob blob;
  blob.append(reply.src.bytes());
  blob.append(reply.dst.bytes());
  blob.appendPort(reply.sourceKey());
  blob.appendPort(reply.destinationKey());
  return blob;
}

void appendVarint(Blob& blob, std::uint64_t value) noexcept {
  writeVarint(value, [&blob](std::uint8_t b) { blob.append(std::span<const std::uint8_t>(&b, 1)); });
}

void appendDirection(Blob& blob, const std::optional<Counters>& counters) noexcept {
  if (!counters) {
    appendVarint(blob, 0);
    return;
  }
  appendVarint(blob, counters->packets + (counters->packets == UINT64_MAX ? 0 : 1));
  appendVarint(blob, counters->bytes);
}

// The `counters` column (flow_row.hpp): NULL for a closed row without counters, else the varints,
// padded with zeros to kOpenCountersBytes while the row is open.
ColumnValue countersValue(const FlowRecord& record) noexcept {
  const bool open = !record.end;
  if (!open && !record.counters_original && !record.counters_reply) {
    return {};
  }
  Blob blob;
  appendDirection(blob, record.counters_original);
  appendDirection(blob, record.counters_reply);
  if (open) {
    // A row from the start-up dump holds its counters already; its end and their growth still
    // need room beyond them.
    const std::size_t padded = std::max<std::size_t>(kOpenCountersBytes, blob.size + kOpenRowGrowthBytes);
    blob.size = static_cast<std::uint8_t>(std::min(padded, Blob::kCapacity));  // the bytes past the varints are zero
  }
  return blob;
}

// Reads the varints of a `counters` BLOB.
class CountersReader {
public:
  explicit CountersReader(std::span<const std::uint8_t> bytes) : bytes_(bytes) {}

  // One direction; false for a truncated or overlong varint.
  bool direction(std::optional<Counters>& out) {
    std::uint64_t packets_plus_one = 0;
    if (!varint(packets_plus_one)) {
      return false;
    }
    if (packets_plus_one == 0) {
      out.reset();
      return true;
    }
    std::uint64_t bytes = 0;
    if (!varint(bytes)) {
      return false;
    }
    // A count of 2^64 - 1 packets was stored as 2^64 - 1 (appendDirection) and reads as 2^64 - 2.
    out = Counters{packets_plus_one - 1, bytes};
    return true;
  }
  // True when only the zeros of an open row's padding are left.
  [[nodiscard]] bool onlyPaddingLeft() const noexcept {
    return std::all_of(bytes_.begin() + static_cast<std::ptrdiff_t>(at_), bytes_.end(),
                       [](std::uint8_t b) { return b == 0; });
  }
  [[nodiscard]] bool atEnd() const noexcept { return at_ == bytes_.size(); }

private:
  bool varint(std::uint64_t& out) {
    constexpr unsigned kPayloadBits = 7;
    constexpr unsigned kMaxShift = 63;
    out = 0;
    for (unsigned shift = 0; at_ < bytes_.size() && shift <= kMaxShift; shift += kPayloadBits) {
      const std::uint8_t byte = bytes_[at_++];
      if (shift == kMaxShift && byte > 1) {
        return false;  // more than 64 bits
      }
      out |= std::uint64_t{byte & 0x7FU} << shift;
      if ((byte & 0x80U) == 0) {
        return shift == 0 || byte != 0;  // a longer form than the value needs: no writer makes it
      }
    }
    return false;
  }

  std::span<const std::uint8_t> bytes_;
  std::size_t at_{0};
};

// Reads row values for decodeFlow, remembering the first problem so that the caller checks once.
class RowDecoder {
public:
  explicit RowDecoder(const FlowRow& row) : row_(row) {}

  [[nodiscard]] bool isNull(FlowColumn column) const {
    return std::holds_alternative<std::monostate>(row_[index(column)]);
  }

  // An integer in [min, max]; nullopt for NULL. Anything else is recorded as the error.
  template <class T>
  std::optional<T> optionalInteger(FlowColumn column, std::int64_t min = std::numeric_limits<T>::min(),
                                   std::int64_t max = static_cast<std::int64_t>(std::numeric_limits<T>::max())) {
    const ColumnValue& value = row_[index(column)];
    if (std::holds_alternative<std::monostate>(value)) {
      return std::nullopt;
    }
    const auto* integer = std::get_if<std::int64_t>(&value);
    if (integer == nullptr) {
      bad(column, "is not an integer");
      return std::nullopt;
    }
    if (*integer < min || *integer > max) {
      bad(column, "is out of range (" + std::to_string(*integer) + ")");
      return std::nullopt;
    }
    return static_cast<T>(*integer);
  }

  template <class T>
  T integer(FlowColumn column) {
    const auto value = optionalInteger<T>(column);
    if (!value && isNull(column)) {
      bad(column, "is NULL");
    }
    return value.value_or(T{});
  }

  // An endpoint column: an IPv4 INTEGER (address << 16 | port, biased), or an 18-byte IPv6 BLOB.
  std::optional<Endpoint> optionalEndpoint(FlowColumn column) {
    const ColumnValue& value = row_[index(column)];
    if (std::holds_alternative<std::monostate>(value)) {
      return std::nullopt;
    }
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
      if (*integer < -kEndpointBias || *integer >= kEndpointBias) {
        bad(column, "is out of range for an IPv4 endpoint (" + std::to_string(*integer) + ")");
        return std::nullopt;
      }
      const auto raw = static_cast<std::uint64_t>(*integer + kEndpointBias);
      return Endpoint{IpAddress::v4(static_cast<std::uint32_t>(raw >> 16U)), static_cast<std::uint16_t>(raw & 0xFFFFU)};
    }
    const auto& blob = std::get<Blob>(value);
    if (blob.size != 18) {
      bad(column, "is a " + std::to_string(blob.size) + "-byte blob; an IPv6 endpoint is 18 bytes");
      return std::nullopt;
    }
    const auto bytes = blob.view();
    const auto address = IpAddress::fromBytes(bytes.first(16));
    return Endpoint{address.value_or(IpAddress{}),
                    static_cast<std::uint16_t>((unsigned{bytes[16]} << 8U) | unsigned{bytes[17]})};
  }

  Endpoint endpoint(FlowColumn column) {
    const auto value = optionalEndpoint(column);
    if (!value && isNull(column)) {
      bad(column, "is NULL");
    }
    return value.value_or(Endpoint{});
  }

  // The packed reply tuple, or nullopt for NULL. The family must be the original tuple's.
  struct PackedReply {
    IpAddress src;
    IpAddress dst;
    std::uint16_t source_key;
    std::uint16_t destination_key;
  };
  std::optional<PackedReply> reply(Family family) {
    const ColumnValue& value = row_[index(FlowColumn::Reply)];
    if (std::holds_alternative<std::monostate>(value)) {
      return std::nullopt;
    }
    const auto* blob = std::get_if<Blob>(&value);
    const std::size_t address_size = family == Family::Ipv4 ? 4 : 16;
    if (blob == nullptr || blob->size != 2 * address_size + 4) {
      bad(FlowColumn::Reply, "is not a packed reply tuple of the original tuple's family");
      return std::nullopt;
    }
    const auto bytes = blob->view();
    const auto key = [&](std::size_t at) {
      return static_cast<std::uint16_t>((unsigned{bytes[at]} << 8U) | unsigned{bytes[at + 1]});
    };
    return PackedReply{IpAddress::fromBytes(bytes.first(address_size)).value_or(IpAddress{}),
                       IpAddress::fromBytes(bytes.subspan(address_size, address_size)).value_or(IpAddress{}),
                       key(2 * address_size), key(2 * address_size + 2)};
  }

  // `open`: the row has no end, and so pads its counters (countersValue).
  void counters(FlowRecord& record, bool open) {
    const ColumnValue& value = row_[index(FlowColumn::Counters)];
    if (std::holds_alternative<std::monostate>(value)) {
      if (open) {
        bad(FlowColumn::Counters, "is NULL in an open row");
      }
      return;
    }
    const auto* blob = std::get_if<Blob>(&value);
    if (blob == nullptr) {
      bad(FlowColumn::Counters, "is not a BLOB");
      return;
    }
    CountersReader in(blob->view());
    if (!in.direction(record.counters_original) || !in.direction(record.counters_reply) ||
        !(open ? in.onlyPaddingLeft() : in.atEnd())) {
      bad(FlowColumn::Counters, open ? "is not two directions of varint counters and zeros"
                                     : "is not two directions of varint counters");
    } else if (!open && !record.counters_original && !record.counters_reply) {
      bad(FlowColumn::Counters, "holds no counters in a closed row (NULL says that)");
    }
    if (!error().empty()) {
      record.counters_original.reset();
      record.counters_reply.reset();
    }
  }

  void bad(FlowColumn column, const std::string& why) {
    if (error_.empty()) {
      error_ = "flows." + std::string(columnName(column)) + " " + why;
    }
  }
  [[nodiscard]] const std::string& error() const noexcept { return error_; }

private:
  const FlowRow& row_;
  std::string error_;
};

// Rebuilds a tuple's ports or ICMP id from the stored source/destination keys.
void setKeys(FlowTuple& tuple, std::uint16_t source_key, std::uint16_t destination_key) {
  if (isIcmp(tuple.protocol)) {
    tuple.icmp_id = source_key;
  } else {
    tuple.src_port = source_key;
    tuple.dst_port = destination_key;
  }
}

}  // namespace

std::string_view columnName(FlowColumn column) noexcept { return kColumnNames.at(index(column)); }

std::span<const FlowColumn> allFlowColumns() noexcept { return kAllColumns; }

void Blob::append(std::span<const std::uint8_t> more) noexcept {
  const std::size_t n = std::min(more.size(), kCapacity - size);
  std::copy_n(more.begin(), n, bytes.begin() + size);
  size = static_cast<std::uint8_t>(size + n);
}

void Blob::appendPort(std::uint16_t port) noexcept {
  const std::array<std::uint8_t, 2> be{static_cast<std::uint8_t>(port >> 8U), static_cast<std::uint8_t>(port)};
  append(be);
}

ColumnValue addressValue(const IpAddress& address) noexcept {
  if (address.isV4()) {
    return std::int64_t{ipv4HostOrder(address)} - kIpv4Bias;
  }
  Blob blob;
  blob.append(address.bytes());
  return blob;
}

ColumnValue endpointValue(const IpAddress& address, std::uint16_t port) noexcept {
  if (address.isV4()) {
    return static_cast<std::int64_t>((std::uint64_t{ipv4HostOrder(address)} << 16U) | port) - kEndpointBias;
  }
  Blob blob;
  blob.append(address.bytes());
  blob.appendPort(port);
  return blob;
}

SourceKeyRange sourceKeyRange(const IpAddress& first, const IpAddress& last) noexcept {
  if (first.isV4()) {
    return {addressValue(first), addressValue(last)};
  }
  return {endpointValue(first, 0), endpointValue(last, 0xFFFF)};
}

std::int64_t startMillis(Timestamp start) noexcept {
  const std::int64_t ns = toUnixNanos(start);
  return ns / kNanosPerMilli - (ns % kNanosPerMilli < 0 ? 1 : 0);  // rounded down, also before 1970
}

std::int64_t endMillis(Timestamp end) noexcept {
  const std::int64_t ns = toUnixNanos(end);
  return ns / kNanosPerMilli + (ns % kNanosPerMilli > 0 ? 1 : 0);  // rounded up
}

std::int64_t storedStartMillis(const StoredFlow& flow) noexcept {
  return startMillis(flow.record.start.value_or(flow.lifetime_start));
}

void settleEvent(StoredFlow& flow) noexcept {
  FlowRecord& record = flow.record;
  if (record.end) {
    record.event = EventType::Destroy;
    record.event_time = *record.end;
    record.event_time_source = record.end_source;
  } else {
    record.event = EventType::New;
    record.event_time = record.start.value_or(flow.lifetime_start);
    record.event_time_source = record.start_source;
  }
}

FlowRow encodeFlow(const StoredFlow& flow) {
  const FlowRecord& record = flow.record;
  const FlowTuple& orig = record.original;
  const FlowTuple& reply = record.reply;
  const auto& nat_src = record.nat.translated_source;
  const auto& nat_dst = record.nat.translated_destination;

  FlowRow row{};
  const std::int64_t start_ms = storedStartMillis(flow);
  row[index(FlowColumn::StartMs)] = start_ms;
  if (record.end) {
    row[index(FlowColumn::DurMs)] = std::max(endMillis(*record.end) - start_ms, std::int64_t{0});
  }
  row[index(FlowColumn::OrigSrc)] = endpointValue(orig.src, orig.sourceKey());
  row[index(FlowColumn::OrigDst)] = endpointValue(orig.dst, orig.destinationKey());
  if (nat_src) {
    row[index(FlowColumn::NatSrc)] = endpointValue(nat_src->address, nat_src->port);
  }
  if (nat_dst) {
    row[index(FlowColumn::NatDst)] = endpointValue(nat_dst->address, nat_dst->port);
  }
  std::int64_t flags = 0;
  if (record.start_source == TimeSource::Receive) {
    flags |= flow_flags::kStartFromReceive;
  }
  if (!record.end) {
    // No end, so no source of it to record: the bit says whether the row is in flows_open_*.
    flags |= flow.in_open_index ? flow_flags::kInOpenIndex : 0;
  } else if (record.end_source == TimeSource::Receive) {
    flags |= flow_flags::kEndFromReceive;
  } else if (record.end_source == TimeSource::Bound) {
    flags |= flow_flags::kEndIsBound;
  }
  if (record.observed_at_start) {
    flags |= flow_flags::kObservedAtStart;
  }
  if (!record.start) {
    flags |= flow_flags::kStartUnknown;
  }
  const std::int64_t tcp_state = record.tcp_state ? std::int64_t{*record.tcp_state} + 1 : 0;
  row[index(FlowColumn::Packed)] = std::int64_t{static_cast<std::uint8_t>(orig.protocol)} |
                                   (tcp_state << kTcpStateShift) | (flags << kFlagsShift) |
                                   (std::int64_t{record.status} << kStatusShift);
  row[index(FlowColumn::ZoneMark)] = (std::int64_t{record.zone} << kZoneShift) | std::int64_t{record.mark};
  row[index(FlowColumn::CtId)] = std::int64_t{record.ct_id} - kIpv4Bias;

  const std::uint32_t icmp = (std::uint32_t{orig.icmp_type} << 24U) | (std::uint32_t{orig.icmp_code} << 16U) |
                             (std::uint32_t{reply.icmp_type} << 8U) | std::uint32_t{reply.icmp_code};
  if (icmp != 0) {
    row[index(FlowColumn::Icmp)] = std::int64_t{icmp};
  }
  const ImpliedKeys keys = impliedReplyKeys(orig, record.nat);
  row[index(FlowColumn::Reply)] = replyValue(reply, nat_dst ? nat_dst->address : orig.dst,
                                             nat_src ? nat_src->address : orig.src, keys.source, keys.destination);
  row[index(FlowColumn::Counters)] = countersValue(record);
  return row;
}

Result<StoredFlow> decodeFlow(const FlowRow& row) {
  constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
  RowDecoder in(row);
  StoredFlow flow;
  FlowRecord& record = flow.record;

  const auto ct_id = in.integer<std::int64_t>(FlowColumn::CtId);
  if (ct_id < -kIpv4Bias || ct_id >= kIpv4Bias) {
    in.bad(FlowColumn::CtId, "is out of range (" + std::to_string(ct_id) + ")");
  }
  record.ct_id = static_cast<std::uint32_t>(ct_id + kIpv4Bias);
  const auto zone_mark = in.integer<std::int64_t>(FlowColumn::ZoneMark);
  if (zone_mark < 0 || (zone_mark >> kZoneShift) > std::numeric_limits<std::uint16_t>::max()) {
    in.bad(FlowColumn::ZoneMark, "is out of range (" + std::to_string(zone_mark) + ")");
  }
  record.zone = static_cast<std::uint16_t>(zone_mark >> kZoneShift);
  record.mark = static_cast<std::uint32_t>(zone_mark & 0xFFFF'FFFF);
  const auto packed_value = in.integer<std::int64_t>(FlowColumn::Packed);
  const std::int64_t bits = (packed_value >> kFlagsShift) & flow_flags::kAll;
  const std::int64_t tcp_state = (packed_value >> kTcpStateShift) & 0xFF;
  if (packed_value < 0 || (packed_value >> kStatusShift) > std::int64_t{std::numeric_limits<std::uint32_t>::max()}) {
    in.bad(FlowColumn::Packed, "is out of range (" + std::to_string(packed_value) + ")");
  }
  record.status = static_cast<std::uint32_t>(packed_value >> kStatusShift);
  const auto protocol = static_cast<Protocol>(packed_value & 0xFF);
  record.original.protocol = protocol;
  record.reply.protocol = protocol;
  const auto orig_src = in.endpoint(FlowColumn::OrigSrc);
  const auto orig_dst = in.endpoint(FlowColumn::OrigDst);
  record.original.src = orig_src.address;
  record.original.dst = orig_dst.address;
  if (record.original.src.family() != record.original.dst.family()) {
    in.bad(FlowColumn::OrigDst, "is of another address family than orig_src");
  }
  setKeys(record.original, orig_src.port, orig_dst.port);

  record.nat.translated_source = in.optionalEndpoint(FlowColumn::NatSrc);
  record.nat.translated_destination = in.optionalEndpoint(FlowColumn::NatDst);
  const auto& nat_src = record.nat.translated_source;
  const auto& nat_dst = record.nat.translated_destination;
  if (const auto packed = in.reply(record.original.src.family())) {
    record.reply.src = packed->src;
    record.reply.dst = packed->dst;
    setKeys(record.reply, packed->source_key, packed->destination_key);
  } else {
    record.reply.src = nat_dst ? nat_dst->address : record.original.dst;
    record.reply.dst = nat_src ? nat_src->address : record.original.src;
    const ImpliedKeys keys = impliedReplyKeys(record.original, record.nat);
    setKeys(record.reply, keys.source, keys.destination);
  }

  const auto icmp = in.optionalInteger<std::uint32_t>(FlowColumn::Icmp, 0, kU32Max).value_or(0);
  record.original.icmp_type = static_cast<std::uint8_t>(icmp >> 24U);
  record.original.icmp_code = static_cast<std::uint8_t>(icmp >> 16U);
  record.reply.icmp_type = static_cast<std::uint8_t>(icmp >> 8U);
  record.reply.icmp_code = static_cast<std::uint8_t>(icmp);

  if (tcp_state != 0) {
    record.tcp_state = static_cast<std::uint8_t>(tcp_state - 1);
  }

  if ((bits & flow_flags::kEndFromReceive) != 0 && (bits & flow_flags::kEndIsBound) != 0) {
    in.bad(FlowColumn::Packed, "says the end is both a receive time and a bound");
  }
  // Milliseconds within what Timestamp holds in nanoseconds (int64: years 1678 to 2262).
  constexpr std::int64_t kMaxMs = std::numeric_limits<std::int64_t>::max() / kNanosPerMilli;
  const auto start_ms = in.optionalInteger<std::int64_t>(FlowColumn::StartMs, -kMaxMs, kMaxMs).value_or(0);
  if (in.isNull(FlowColumn::StartMs)) {
    in.bad(FlowColumn::StartMs, "is NULL");
  }
  flow.lifetime_start = fromUnixNanos(start_ms * kNanosPerMilli);
  if ((bits & flow_flags::kStartUnknown) == 0) {
    record.start = flow.lifetime_start;
  }
  record.start_source = (bits & flow_flags::kStartFromReceive) != 0 ? TimeSource::Receive : TimeSource::Kernel;
  if (const auto duration = in.optionalInteger<std::int64_t>(FlowColumn::DurMs, 0, kMaxMs)) {
    const std::int64_t end_ms = start_ms + *duration;
    if (end_ms > kMaxMs) {
      in.bad(FlowColumn::DurMs, "puts the end out of range");
    }
    record.end = fromUnixNanos(std::min(end_ms, kMaxMs) * kNanosPerMilli);
  }
  if (!record.end) {
    flow.in_open_index = (bits & flow_flags::kInOpenIndex) != 0;
    if ((bits & flow_flags::kEndIsBound) != 0) {
      in.bad(FlowColumn::Packed, "says an open row's end is a bound");
    }
    // What an event without an end carries (FlowRecord's default), so that an open record reads
    // back as it was written.
    record.end_source = TimeSource::Receive;
  } else {
    record.end_source = (bits & flow_flags::kEndFromReceive) != 0 ? TimeSource::Receive
                        : (bits & flow_flags::kEndIsBound) != 0   ? TimeSource::Bound
                                                                  : TimeSource::Kernel;
  }
  record.observed_at_start = (bits & flow_flags::kObservedAtStart) != 0;
  in.counters(record, !record.end);

  if (!in.error().empty()) {
    return fail(Errc::Storage, in.error());
  }
  settleEvent(flow);
  return flow;
}

namespace {
constexpr std::uint8_t kPackedBlob = 0x40;

// Bytes that hold `value` as a sign-extended little-endian integer: 1 to 8. The significant bits
// of v ^ (v >> 63) plus a sign bit, rounded up to whole bytes.
std::uint8_t integerWidth(std::int64_t value) noexcept {
  const auto magnitude = static_cast<std::uint64_t>(value ^ (value >> 63));
  const auto significant = static_cast<unsigned>(64 - __builtin_clzll(magnitude | 1U));
  return static_cast<std::uint8_t>((significant + 8U) / 8U);
}
}  // namespace

bool packRow(const FlowRow& row, PackedRow& out) noexcept {
  std::uint8_t* const begin = out.bytes.data();
  std::uint8_t* at = begin;
  std::uint8_t* const end = begin + PackedRow::kCapacity;
  for (const ColumnValue& value : row) {
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
      const std::uint8_t width = integerWidth(*integer);
      if (end - at < 1 + width) {
        out.size = 0;
        return false;
      }
      *at++ = width;
      auto bits = static_cast<std::uint64_t>(*integer);
      for (std::uint8_t i = 0; i < width; ++i, bits >>= 8U) {
        *at++ = static_cast<std::uint8_t>(bits);
      }
    } else if (const auto* blob = std::get_if<Blob>(&value)) {
      if (end - at < 1 + blob->size) {
        out.size = 0;
        return false;
      }
      *at++ = static_cast<std::uint8_t>(kPackedBlob | blob->size);
      at = std::copy_n(blob->bytes.data(), blob->size, at);
    } else {
      if (at == end) {
        out.size = 0;
        return false;
      }
      *at++ = 0;
    }
  }
  out.size = static_cast<std::uint8_t>(at - begin);
  return true;
}

FlowRow unpackRow(const PackedRow& packed) noexcept {
  FlowRow row;  // every element is assigned below
  const std::uint8_t* at = packed.bytes.data();
  for (ColumnValue& value : row) {
    const std::uint8_t tag = *at++;
    if ((tag & kPackedBlob) != 0) {
      Blob& blob = value.emplace<Blob>();
      blob.size = static_cast<std::uint8_t>(tag & ~kPackedBlob);
      std::copy_n(at, blob.size, blob.bytes.data());
      at += blob.size;
    } else if (tag != 0) {
      std::uint64_t bits = 0;
      for (unsigned i = 0; i < tag; ++i) {
        bits |= std::uint64_t{at[i]} << (8U * i);
      }
      at += tag;
      const unsigned unused = 64U - 8U * tag;  // sign-extend from the top byte held
      value = unused == 0 ? static_cast<std::int64_t>(bits) : static_cast<std::int64_t>(bits << unused) >> unused;
    } else {
      value = std::monostate{};
    }
  }
  return row;
}

std::string flowColumnList(std::string_view prefix) {
  std::string list;
  for (const std::string_view name : kColumnNames) {
    if (!list.empty()) {
      list += ", ";
    }
    list += prefix;
    list += name;
  }
  return list;
}

std::string flowInsertSql(std::size_t rows) {
  std::string values;
  std::size_t param = 1;
  for (std::size_t row = 0; row < rows; ++row) {
    values += row == 0 ? "(" : ", (";
    for (std::size_t i = 0; i < kFlowColumnCount; ++i) {
      values += (i == 0 ? "?" : ", ?") + std::to_string(param++);
    }
    values += ")";
  }
  return "INSERT OR FAIL INTO flows (" + flowColumnList() + ") VALUES " + values;
}

std::string flowUpdateSql(std::span<const FlowColumn> columns) {
  std::string sql = "UPDATE OR FAIL flows SET ";
  int param = 1;
  for (const FlowColumn column : columns) {
    sql += (param == 1 ? "" : ", ") + std::string(columnName(column)) + " = ?" + std::to_string(param);
    ++param;
  }
  return sql + " WHERE id = ?" + std::to_string(param);
}

std::string flowUpdateManySql(std::span<const FlowColumn> columns, std::size_t rows) {
  std::string sql = "UPDATE OR FAIL flows SET ";
  for (std::size_t i = 0; i < columns.size(); ++i) {
    sql += (i == 0 ? "" : ", ") + std::string(columnName(columns[i])) + " = v.column" + std::to_string(i + 2);
  }
  sql += " FROM (VALUES ";
  std::size_t param = 1;
  for (std::size_t row = 0; row < rows; ++row) {
    sql += row == 0 ? "(" : ", (";
    for (std::size_t i = 0; i <= columns.size(); ++i) {
      sql += (i == 0 ? "?" : ", ?") + std::to_string(param++);
    }
    sql += ")";
  }
  return sql + ") AS v WHERE flows.id = v.column1";
}

std::string openRowsSql() {
  const std::string select = "SELECT id, " + flowColumnList() + " FROM flows";
  const std::string in_index(kInOpenIndexSql);
  return select + " INDEXED BY " + std::string(flow_index::kOpenNat) + " WHERE dur_ms IS NULL AND " + in_index +
         "\nUNION ALL\n" + select + " WHERE id >= ?1 AND dur_ms IS NULL AND NOT " + in_index + "\nORDER BY id";
}

std::string indexOpenRowSql() {
  return "UPDATE flows SET packed = packed | " + std::to_string(kInOpenIndexBit) + " WHERE id = ?1 AND dur_ms IS NULL";
}

std::string readOpenFlowSql() { return "SELECT " + flowColumnList() + " FROM flows WHERE id = ?1 AND dur_ms IS NULL"; }

int bindValue(sqlite3_stmt* stmt, int param, const ColumnValue& value) noexcept {
  if (const auto* integer = std::get_if<std::int64_t>(&value)) {
    return sqlite3_bind_int64(stmt, param, *integer);
  }
  if (const auto* blob = std::get_if<Blob>(&value)) {
    return sqlite3_bind_blob(stmt, param, blob->bytes.data(), blob->size, kSqliteStatic);
  }
  return sqlite3_bind_null(stmt, param);
}

int bindColumns(sqlite3_stmt* stmt, int first_param, const FlowRow& row, std::span<const FlowColumn> columns) noexcept {
  int param = first_param;
  for (const FlowColumn column : columns) {
    if (const int rc = bindValue(stmt, param, row[index(column)]); rc != SQLITE_OK) {
      return rc;
    }
    ++param;
  }
  return SQLITE_OK;
}

Result<FlowRow> readRow(sqlite3_stmt* stmt, int first_col) {
  FlowRow row{};
  for (std::size_t i = 0; i < kFlowColumnCount; ++i) {
    const int col = first_col + static_cast<int>(i);
    switch (sqlite3_column_type(stmt, col)) {
      case SQLITE_NULL:
        break;
      case SQLITE_INTEGER:
        row[i] = static_cast<std::int64_t>(sqlite3_column_int64(stmt, col));
        break;
      case SQLITE_BLOB: {
        const auto* data = static_cast<const std::uint8_t*>(sqlite3_column_blob(stmt, col));
        const auto size = static_cast<std::size_t>(sqlite3_column_bytes(stmt, col));
        if (size > Blob::kCapacity) {
          return fail(Errc::Storage, "flows." + std::string(kColumnNames.at(i)) + " holds a " + std::to_string(size) +
                                         "-byte blob; no column holds more than " +
                                         std::to_string(Blob::kCapacity));
        }
        Blob blob;
        blob.append(std::span<const std::uint8_t>(data, size));
        row[i] = blob;
        break;
      }
      default:
        return fail(Errc::Storage, "flows." + std::string(kColumnNames.at(i)) + " holds text or a real number");
    }
  }
  return row;
}

}  // namespace ctaudit::storage
