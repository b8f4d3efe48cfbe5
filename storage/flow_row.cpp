// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_row.hpp"

#include <sqlite3.h>

#include <limits>
#include <optional>

#include "storage/sqlite_handles.hpp"

namespace ctaudit::storage {
namespace {

constexpr std::array<std::string_view, kFlowColumnCount> kColumnNames{
    "ct_id",      "zone",         "protocol",   "orig_src",     "orig_dst",   "orig_sport",   "orig_dport",
    "reply_src",  "reply_dst",    "reply_sport", "reply_dport", "icmp",       "nat_src_ip",   "nat_src_port",
    "nat_dst_ip", "nat_dst_port", "status",     "mark",         "tcp_state",  "start_ns",     "end_ns",
    "flags",      "orig_packets", "orig_bytes", "reply_packets", "reply_bytes",
};

constexpr std::array<FlowColumn, kFlowColumnCount> kAllColumns = [] {
  std::array<FlowColumn, kFlowColumnCount> columns{};
  for (std::size_t i = 0; i < columns.size(); ++i) {
    columns[i] = static_cast<FlowColumn>(i);
  }
  return columns;
}();

constexpr std::size_t index(FlowColumn column) noexcept { return static_cast<std::size_t>(column); }

// Counters are unsigned 64-bit in the kernel and signed 64-bit in SQLite. Values past 2^63 (not
// reachable by a real flow) wrap to negative and back, so the round trip stays exact.
constexpr std::int64_t toStored(std::uint64_t value) noexcept { return static_cast<std::int64_t>(value); }
constexpr std::uint64_t fromStored(std::int64_t value) noexcept { return static_cast<std::uint64_t>(value); }

ColumnValue optionalAddress(const IpAddress& value, const IpAddress& implied) {
  return value == implied ? ColumnValue{} : ColumnValue{value};
}

ColumnValue optionalKey(std::uint16_t value, std::uint16_t implied) {
  return value == implied ? ColumnValue{} : ColumnValue{std::int64_t{value}};
}

void setCounters(FlowRow& row, FlowColumn packets, FlowColumn bytes, const std::optional<Counters>& counters) {
  if (counters) {
    row[index(packets)] = toStored(counters->packets);
    row[index(bytes)] = toStored(counters->bytes);
  }
}

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

  std::optional<IpAddress> optionalAddress(FlowColumn column) {
    const ColumnValue& value = row_[index(column)];
    if (std::holds_alternative<std::monostate>(value)) {
      return std::nullopt;
    }
    const auto* address = std::get_if<IpAddress>(&value);
    if (address == nullptr) {
      bad(column, "is not a 4- or 16-byte address");
      return std::nullopt;
    }
    return *address;
  }

  IpAddress address(FlowColumn column) {
    const auto value = optionalAddress(column);
    if (!value && isNull(column)) {
      bad(column, "is NULL");
    }
    return value.value_or(IpAddress{});
  }

  std::optional<Endpoint> optionalEndpoint(FlowColumn address_column, FlowColumn port_column) {
    const auto address = optionalAddress(address_column);
    const auto port = optionalInteger<std::uint16_t>(port_column);
    if (address.has_value() != port.has_value()) {
      if (error_.empty()) {
        bad(address_column, "and " + std::string(columnName(port_column)) + " must be both NULL or both set");
      }
      return std::nullopt;
    }
    if (!address) {
      return std::nullopt;
    }
    return Endpoint{*address, *port};
  }

  std::optional<Counters> counters(FlowColumn packets_column, FlowColumn bytes_column) {
    const auto packets = optionalInteger<std::int64_t>(packets_column);
    const auto bytes = optionalInteger<std::int64_t>(bytes_column);
    if (packets.has_value() != bytes.has_value()) {
      if (error_.empty()) {
        bad(packets_column, "and " + std::string(columnName(bytes_column)) + " must be both NULL or both set");
      }
      return std::nullopt;
    }
    if (!packets) {
      return std::nullopt;
    }
    return Counters{fromStored(*packets), fromStored(*bytes)};
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
  row[index(FlowColumn::CtId)] = std::int64_t{record.ct_id};
  row[index(FlowColumn::Zone)] = std::int64_t{record.zone};
  row[index(FlowColumn::Protocol)] = std::int64_t{static_cast<std::uint8_t>(orig.protocol)};
  row[index(FlowColumn::OrigSrc)] = orig.src;
  row[index(FlowColumn::OrigDst)] = orig.dst;
  row[index(FlowColumn::OrigSport)] = std::int64_t{orig.sourceKey()};
  row[index(FlowColumn::OrigDport)] = std::int64_t{orig.destinationKey()};

  row[index(FlowColumn::ReplySrc)] = optionalAddress(reply.src, nat_dst ? nat_dst->address : orig.dst);
  row[index(FlowColumn::ReplyDst)] = optionalAddress(reply.dst, nat_src ? nat_src->address : orig.src);
  row[index(FlowColumn::ReplySport)] = optionalKey(reply.sourceKey(), nat_dst ? nat_dst->port : orig.destinationKey());
  row[index(FlowColumn::ReplyDport)] = optionalKey(reply.destinationKey(), nat_src ? nat_src->port : orig.sourceKey());

  const std::uint32_t icmp = (std::uint32_t{orig.icmp_type} << 24U) | (std::uint32_t{orig.icmp_code} << 16U) |
                             (std::uint32_t{reply.icmp_type} << 8U) | std::uint32_t{reply.icmp_code};
  if (icmp != 0) {
    row[index(FlowColumn::Icmp)] = std::int64_t{icmp};
  }
  if (nat_src) {
    row[index(FlowColumn::NatSrcIp)] = nat_src->address;
    row[index(FlowColumn::NatSrcPort)] = std::int64_t{nat_src->port};
  }
  if (nat_dst) {
    row[index(FlowColumn::NatDstIp)] = nat_dst->address;
    row[index(FlowColumn::NatDstPort)] = std::int64_t{nat_dst->port};
  }

  row[index(FlowColumn::Status)] = std::int64_t{record.status};
  row[index(FlowColumn::Mark)] = std::int64_t{record.mark};
  if (record.tcp_state) {
    row[index(FlowColumn::TcpState)] = std::int64_t{*record.tcp_state};
  }
  row[index(FlowColumn::StartNs)] = toUnixNanos(record.start.value_or(flow.lifetime_start));
  if (record.end) {
    row[index(FlowColumn::EndNs)] = toUnixNanos(*record.end);
  }
  std::int64_t flags = 0;
  if (record.start_source == TimeSource::Receive) {
    flags |= flow_flags::kStartFromReceive;
  }
  if (record.end_source == TimeSource::Receive) {
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
  row[index(FlowColumn::Flags)] = flags;
  setCounters(row, FlowColumn::OrigPackets, FlowColumn::OrigBytes, record.counters_original);
  setCounters(row, FlowColumn::ReplyPackets, FlowColumn::ReplyBytes, record.counters_reply);
  return row;
}

Result<StoredFlow> decodeFlow(const FlowRow& row) {
  constexpr std::int64_t kU32Max = std::numeric_limits<std::uint32_t>::max();
  RowDecoder in(row);
  StoredFlow flow;
  FlowRecord& record = flow.record;

  record.ct_id = in.integer<std::uint32_t>(FlowColumn::CtId);
  record.zone = in.integer<std::uint16_t>(FlowColumn::Zone);
  const auto protocol = static_cast<Protocol>(in.integer<std::uint8_t>(FlowColumn::Protocol));
  record.original.protocol = protocol;
  record.reply.protocol = protocol;
  record.original.src = in.address(FlowColumn::OrigSrc);
  record.original.dst = in.address(FlowColumn::OrigDst);
  const auto orig_sport = in.integer<std::uint16_t>(FlowColumn::OrigSport);
  const auto orig_dport = in.integer<std::uint16_t>(FlowColumn::OrigDport);
  setKeys(record.original, orig_sport, orig_dport);

  record.nat.translated_source = in.optionalEndpoint(FlowColumn::NatSrcIp, FlowColumn::NatSrcPort);
  record.nat.translated_destination = in.optionalEndpoint(FlowColumn::NatDstIp, FlowColumn::NatDstPort);
  const auto& nat_src = record.nat.translated_source;
  const auto& nat_dst = record.nat.translated_destination;
  record.reply.src =
      in.optionalAddress(FlowColumn::ReplySrc).value_or(nat_dst ? nat_dst->address : record.original.dst);
  record.reply.dst =
      in.optionalAddress(FlowColumn::ReplyDst).value_or(nat_src ? nat_src->address : record.original.src);
  const auto reply_sport =
      in.optionalInteger<std::uint16_t>(FlowColumn::ReplySport).value_or(nat_dst ? nat_dst->port : orig_dport);
  const auto reply_dport =
      in.optionalInteger<std::uint16_t>(FlowColumn::ReplyDport).value_or(nat_src ? nat_src->port : orig_sport);
  setKeys(record.reply, reply_sport, reply_dport);

  const auto icmp = in.optionalInteger<std::uint32_t>(FlowColumn::Icmp, 0, kU32Max).value_or(0);
  record.original.icmp_type = static_cast<std::uint8_t>(icmp >> 24U);
  record.original.icmp_code = static_cast<std::uint8_t>(icmp >> 16U);
  record.reply.icmp_type = static_cast<std::uint8_t>(icmp >> 8U);
  record.reply.icmp_code = static_cast<std::uint8_t>(icmp);

  record.status = in.integer<std::uint32_t>(FlowColumn::Status);
  record.mark = in.integer<std::uint32_t>(FlowColumn::Mark);
  record.tcp_state = in.optionalInteger<std::uint8_t>(FlowColumn::TcpState);

  const auto flags = in.optionalInteger<std::int64_t>(FlowColumn::Flags, 0, flow_flags::kAll);
  if (!flags && in.isNull(FlowColumn::Flags)) {
    in.bad(FlowColumn::Flags, "is NULL");
  }
  const std::int64_t bits = flags.value_or(0);
  if ((bits & flow_flags::kEndFromReceive) != 0 && (bits & flow_flags::kEndIsBound) != 0) {
    in.bad(FlowColumn::Flags, "says the end is both a receive time and a bound");
  }
  flow.lifetime_start = fromUnixNanos(in.integer<std::int64_t>(FlowColumn::StartNs));
  if ((bits & flow_flags::kStartUnknown) == 0) {
    record.start = flow.lifetime_start;
  }
  record.start_source = (bits & flow_flags::kStartFromReceive) != 0 ? TimeSource::Receive : TimeSource::Kernel;
  if (const auto end = in.optionalInteger<std::int64_t>(FlowColumn::EndNs)) {
    record.end = fromUnixNanos(*end);
  }
  record.end_source = (bits & flow_flags::kEndFromReceive) != 0 ? TimeSource::Receive
                      : (bits & flow_flags::kEndIsBound) != 0   ? TimeSource::Bound
                                                                : TimeSource::Kernel;
  record.observed_at_start = (bits & flow_flags::kObservedAtStart) != 0;
  record.counters_original = in.counters(FlowColumn::OrigPackets, FlowColumn::OrigBytes);
  record.counters_reply = in.counters(FlowColumn::ReplyPackets, FlowColumn::ReplyBytes);

  if (!in.error().empty()) {
    return fail(Errc::Storage, in.error());
  }
  settleEvent(flow);
  return flow;
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

std::string flowInsertSql() {
  std::string placeholders;
  for (std::size_t i = 1; i <= kFlowColumnCount; ++i) {
    placeholders += (i == 1 ? "?" : ", ?") + std::to_string(i);
  }
  return "INSERT INTO flows (" + flowColumnList() + ") VALUES (" + placeholders + ")";
}

std::string flowUpdateSql(std::span<const FlowColumn> columns) {
  std::string sql = "UPDATE flows SET ";
  int param = 1;
  for (const FlowColumn column : columns) {
    sql += (param == 1 ? "" : ", ") + std::string(columnName(column)) + " = ?" + std::to_string(param);
    ++param;
  }
  return sql + " WHERE id = ?" + std::to_string(param);
}

std::string findOpenFlowSql() {
  // `icmp >> 16` is the original direction's ICMP type and code, part of the original tuple.
  return "SELECT id, " + flowColumnList() +
         " FROM flows WHERE ct_id = ?1 AND end_ns IS NULL AND zone = ?2 AND protocol = ?3 AND orig_src = ?4"
         " AND orig_dst = ?5 AND orig_sport = ?6 AND orig_dport = ?7 AND (ifnull(icmp, 0) >> 16) = ?8"
         " ORDER BY id DESC LIMIT 1";
}

int bindColumns(sqlite3_stmt* stmt, int first_param, const FlowRow& row, std::span<const FlowColumn> columns) noexcept {
  int param = first_param;
  for (const FlowColumn column : columns) {
    const ColumnValue& value = row[index(column)];
    int rc = SQLITE_OK;
    if (const auto* integer = std::get_if<std::int64_t>(&value)) {
      rc = sqlite3_bind_int64(stmt, param, *integer);
    } else if (const auto* address = std::get_if<IpAddress>(&value)) {
      const auto bytes = address->bytes();
      rc = sqlite3_bind_blob(stmt, param, bytes.data(), static_cast<int>(bytes.size()), kSqliteStatic);
    } else {
      rc = sqlite3_bind_null(stmt, param);
    }
    if (rc != SQLITE_OK) {
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
        const auto address = IpAddress::fromBytes(std::span<const std::uint8_t>(data, size));
        if (!address) {
          return fail(Errc::Storage, "flows." + std::string(kColumnNames.at(i)) + " holds a " + std::to_string(size) +
                                         "-byte blob; addresses are 4 or 16 bytes");
        }
        row[i] = *address;
        break;
      }
      default:
        return fail(Errc::Storage, "flows." + std::string(kColumnNames.at(i)) + " holds text or a real number");
    }
  }
  return row;
}

}  // namespace ctaudit::storage
