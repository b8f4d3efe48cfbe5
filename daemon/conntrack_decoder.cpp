// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/conntrack_decoder.hpp"

#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/netlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

// How this file reads a message: libmnl walks each attribute level (mnl_attr_parse,
// mnl_attr_parse_nested) and calls one handler per level through a noexcept trampoline. Each
// handler validates the size of the attributes it reads (mnl_attr_validate/validate2) and copies
// the values out with memcpy; unknown types are skipped. libmnl stops walking silently at an
// attribute whose header does not fit, so every walk records where its last whole attribute ended
// and anything left over is reported as a truncated attribute. Problems are recorded as a Failure
// of fixed size (names are static strings) and turned into text only once, at the end.

namespace ctaudit::daemon {
namespace {

static_assert(CTA_STATUS_MASK + 1 == kCtaTimestampEvent,
              "CTA_TIMESTAMP_EVENT follows CTA_STATUS_MASK in enum ctattr_type");

constexpr std::size_t kNlmsgHeaderSize = sizeof(nlmsghdr);
constexpr std::size_t kNfgenmsgSize = sizeof(nfgenmsg);
constexpr std::size_t kAlignTo = 4;  // NLMSG_ALIGNTO and NLA_ALIGNTO

constexpr std::size_t alignUp(std::size_t length) noexcept { return (length + kAlignTo - 1) / kAlignTo * kAlignTo; }

// ---------------------------------------------------------------------------------------------
// Attribute names, for error details.

enum class Level : std::uint8_t { Top, Tuple, Ip, Proto, Protoinfo, ProtoinfoTcp, Counters, Timestamp };

constexpr std::array<std::string_view, 28> kTopNames{
    "CTA_UNSPEC",       "CTA_TUPLE_ORIG",     "CTA_TUPLE_REPLY",       "CTA_STATUS",
    "CTA_PROTOINFO",    "CTA_HELP",           "CTA_NAT_SRC",           "CTA_TIMEOUT",
    "CTA_MARK",         "CTA_COUNTERS_ORIG",  "CTA_COUNTERS_REPLY",    "CTA_USE",
    "CTA_ID",           "CTA_NAT_DST",        "CTA_TUPLE_MASTER",      "CTA_SEQ_ADJ_ORIG",
    "CTA_SEQ_ADJ_REPLY", "CTA_SECMARK",       "CTA_ZONE",              "CTA_SECCTX",
    "CTA_TIMESTAMP",    "CTA_MARK_MASK",      "CTA_LABELS",            "CTA_LABELS_MASK",
    "CTA_SYNPROXY",     "CTA_FILTER",         "CTA_STATUS_MASK",       "CTA_TIMESTAMP_EVENT",
};
constexpr std::array<std::string_view, 4> kTupleNames{"CTA_TUPLE_UNSPEC", "CTA_TUPLE_IP", "CTA_TUPLE_PROTO",
                                                      "CTA_TUPLE_ZONE"};
constexpr std::array<std::string_view, 5> kIpNames{"CTA_IP_UNSPEC", "CTA_IP_V4_SRC", "CTA_IP_V4_DST",
                                                   "CTA_IP_V6_SRC", "CTA_IP_V6_DST"};
constexpr std::array<std::string_view, 10> kProtoNames{
    "CTA_PROTO_UNSPEC",    "CTA_PROTO_NUM",       "CTA_PROTO_SRC_PORT",   "CTA_PROTO_DST_PORT",
    "CTA_PROTO_ICMP_ID",   "CTA_PROTO_ICMP_TYPE", "CTA_PROTO_ICMP_CODE",  "CTA_PROTO_ICMPV6_ID",
    "CTA_PROTO_ICMPV6_TYPE", "CTA_PROTO_ICMPV6_CODE",
};
constexpr std::array<std::string_view, 4> kProtoinfoNames{"CTA_PROTOINFO_UNSPEC", "CTA_PROTOINFO_TCP",
                                                          "CTA_PROTOINFO_DCCP", "CTA_PROTOINFO_SCTP"};
constexpr std::array<std::string_view, 6> kProtoinfoTcpNames{
    "CTA_PROTOINFO_TCP_UNSPEC",         "CTA_PROTOINFO_TCP_STATE",
    "CTA_PROTOINFO_TCP_WSCALE_ORIGINAL", "CTA_PROTOINFO_TCP_WSCALE_REPLY",
    "CTA_PROTOINFO_TCP_FLAGS_ORIGINAL",  "CTA_PROTOINFO_TCP_FLAGS_REPLY",
};
constexpr std::array<std::string_view, 6> kCountersNames{"CTA_COUNTERS_UNSPEC",    "CTA_COUNTERS_PACKETS",
                                                         "CTA_COUNTERS_BYTES",     "CTA_COUNTERS32_PACKETS",
                                                         "CTA_COUNTERS32_BYTES",   "CTA_COUNTERS_PAD"};
constexpr std::array<std::string_view, 4> kTimestampNames{"CTA_TIMESTAMP_UNSPEC", "CTA_TIMESTAMP_START",
                                                          "CTA_TIMESTAMP_STOP", "CTA_TIMESTAMP_PAD"};

template <std::size_t N>
constexpr std::string_view lookup(const std::array<std::string_view, N>& names, std::uint16_t type) noexcept {
  return type < N ? names[type] : std::string_view{};
}

// The name of attribute `type` at `level`, or empty when this build does not know it.
constexpr std::string_view attributeName(Level level, std::uint16_t type) noexcept {
  switch (level) {
    case Level::Top: return lookup(kTopNames, type);
    case Level::Tuple: return lookup(kTupleNames, type);
    case Level::Ip: return lookup(kIpNames, type);
    case Level::Proto: return lookup(kProtoNames, type);
    case Level::Protoinfo: return lookup(kProtoinfoNames, type);
    case Level::ProtoinfoTcp: return lookup(kProtoinfoTcpNames, type);
    case Level::Counters: return lookup(kCountersNames, type);
    case Level::Timestamp: return lookup(kTimestampNames, type);
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// Failures: fixed-size records, formatted once at the end.

// The nests enclosing the attribute being read, outermost first. Three levels deep at most
// (CTA_TUPLE_ORIG/CTA_TUPLE_IP/CTA_IP_V4_SRC), so a small array suffices.
struct Path {
  std::array<std::string_view, 4> names{};
  std::size_t depth{0};
};

enum class Problem : std::uint8_t {
  None,
  BadSize,         // a known attribute with the wrong payload size
  Truncated,       // bytes after the last whole attribute of a level
  Missing,         // a required attribute is absent
  FamilyMismatch,  // an address of the other family than nfgenmsg says
  OutOfRange,      // a timestamp that does not fit the signed 64-bit nanosecond clock
  Internal,        // an exception reached a libmnl callback (cannot happen: handlers are noexcept)
};

struct Failure {
  Problem problem{Problem::None};
  Path path;                  // enclosing nests
  Level level{Level::Top};    // level of the attribute concerned
  std::uint16_t type{0};      // its type (BadSize, FamilyMismatch, OutOfRange, Missing, Truncated)
  bool type_known{false};     // Truncated: whether a header was readable
  std::size_t got{0};         // payload size (BadSize); bytes left (Truncated)
  std::size_t expected{0};    // payload size wanted (BadSize); nla_len claimed (Truncated)
  std::size_t offset{0};      // Truncated: offset of the leftover inside the level
};

void appendAttribute(std::string& out, Level level, std::uint16_t type) {
  const std::string_view name = attributeName(level, type);
  if (name.empty()) {
    out += "attribute type ";
    out += std::to_string(type);
  } else {
    out += name;
  }
}

std::string describe(const Failure& failure) {
  std::string out;
  for (std::size_t i = 0; i < failure.path.depth; ++i) {
    out += failure.path.names[i];
    out += '/';
  }
  switch (failure.problem) {
    case Problem::None:
    case Problem::Internal:
      out += "internal error while decoding";
      break;
    case Problem::BadSize:
      appendAttribute(out, failure.level, failure.type);
      out += ": payload is " + std::to_string(failure.got) + " bytes, expected " + std::to_string(failure.expected);
      break;
    case Problem::Truncated:
      if (out.empty()) {
        out = "message";
      } else {
        out.pop_back();
      }
      out += ": truncated or malformed attribute at payload offset " + std::to_string(failure.offset) + " (";
      if (failure.type_known) {
        appendAttribute(out, failure.level, failure.type);
        out += " claims nla_len " + std::to_string(failure.expected) + ", ";
      }
      out += std::to_string(failure.got) + " bytes left)";
      break;
    case Problem::Missing:
      if (out.empty()) {
        out = "message";
      } else {
        out.pop_back();
      }
      out += ": missing ";
      appendAttribute(out, failure.level, failure.type);
      break;
    case Problem::FamilyMismatch:
      appendAttribute(out, failure.level, failure.type);
      out += ": address of the other family than the message's nfgenmsg";
      break;
    case Problem::OutOfRange:
      appendAttribute(out, failure.level, failure.type);
      out += ": " + std::to_string(failure.got) + " ns is beyond the representable time range";
      break;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding state.

// One CTA_TUPLE_* nest as read so far.
struct TupleScratch {
  bool seen{false};
  std::optional<IpAddress> src;
  std::optional<IpAddress> dst;
  std::optional<std::uint8_t> protocol;
  bool seen_ip{false};
  bool seen_proto{false};
  std::uint16_t src_port{0};
  std::uint16_t dst_port{0};
  std::uint16_t icmp_id{0};
  std::uint8_t icmp_type{0};
  std::uint8_t icmp_code{0};
  std::uint16_t icmpv6_id{0};
  std::uint8_t icmpv6_type{0};
  std::uint8_t icmpv6_code{0};
  std::optional<std::uint16_t> zone;
};

// One CTA_COUNTERS_* nest.
struct CountersScratch {
  std::optional<std::uint64_t> packets;
  std::optional<std::uint64_t> bytes;
  std::optional<std::uint32_t> packets32;
  std::optional<std::uint32_t> bytes32;
};

struct Decoder {
  Family family{Family::Ipv4};
  Path path;
  Failure failure;

  TupleScratch original;
  TupleScratch reply;
  TupleScratch* tuple{nullptr};  // the tuple being read
  CountersScratch counters_original;
  CountersScratch counters_reply;
  bool seen_counters_original{false};
  bool seen_counters_reply{false};
  CountersScratch* counters{nullptr};  // the counters being read

  std::uint32_t status{0};
  std::uint32_t mark{0};
  std::uint32_t id{0};
  std::optional<std::uint16_t> zone;
  std::optional<std::uint8_t> tcp_state;
  std::optional<std::uint64_t> start_ns;
  std::optional<std::uint64_t> stop_ns;
  std::optional<std::uint64_t> event_ns;
};

Failure failureAt(Problem problem, Level level, std::uint16_t type) noexcept {
  Failure failure;
  failure.problem = problem;
  failure.level = level;
  failure.type = type;
  return failure;
}

int recordFailure(Decoder& decoder, Failure failure) noexcept {
  failure.path = decoder.path;
  decoder.failure = failure;
  return MNL_CB_ERROR;
}

std::uint16_t payloadLength(const nlattr* attr) noexcept { return mnl_attr_get_payload_len(attr); }

const std::byte* payload(const nlattr* attr) noexcept {
  return static_cast<const std::byte*>(mnl_attr_get_payload(attr));
}

// Checks that `attr` has exactly `size` payload bytes (mnl_attr_validate2 also refuses a longer
// payload); records a BadSize failure otherwise.
bool expectSize(Decoder& decoder, Level level, const nlattr* attr, std::size_t size) noexcept {
  if (mnl_attr_validate2(attr, MNL_TYPE_BINARY, size) >= 0) {
    return true;
  }
  Failure failure = failureAt(Problem::BadSize, level, mnl_attr_get_type(attr));
  failure.got = payloadLength(attr);
  failure.expected = size;
  recordFailure(decoder, failure);
  return false;
}

template <class T>
T readRaw(const nlattr* attr) noexcept {
  T value{};
  std::memcpy(&value, payload(attr), sizeof(value));
  return value;
}

// The integer readers expect the size to have been checked.
std::uint8_t readU8(const nlattr* attr) noexcept { return readRaw<std::uint8_t>(attr); }
std::uint16_t readBe16(const nlattr* attr) noexcept { return be16toh(readRaw<std::uint16_t>(attr)); }
std::uint32_t readBe32(const nlattr* attr) noexcept { return be32toh(readRaw<std::uint32_t>(attr)); }
std::uint64_t readBe64(const nlattr* attr) noexcept { return be64toh(readRaw<std::uint64_t>(attr)); }

// Reads a u8/be16/be32/be64 attribute of exactly sizeof(T) bytes into `out`.
template <class T>
bool readUnsigned(Decoder& decoder, Level level, const nlattr* attr, T& out) noexcept {
  if (!expectSize(decoder, level, attr, sizeof(T))) {
    return false;
  }
  if constexpr (sizeof(T) == 1) {
    out = readU8(attr);
  } else if constexpr (sizeof(T) == 2) {
    out = readBe16(attr);
  } else if constexpr (sizeof(T) == 4) {
    out = readBe32(attr);
  } else {
    static_assert(sizeof(T) == 8);
    out = readBe64(attr);
  }
  return true;
}

template <class T>
bool readUnsigned(Decoder& decoder, Level level, const nlattr* attr, std::optional<T>& out) noexcept {
  T value{};
  if (!readUnsigned(decoder, level, attr, value)) {
    return false;
  }
  out = value;
  return true;
}

// Reads a be64 nanosecond timestamp; values past INT64_MAX (year 2262) are refused.
bool readNanos(Decoder& decoder, Level level, const nlattr* attr, std::optional<std::uint64_t>& out) noexcept {
  std::uint64_t value = 0;
  if (!readUnsigned(decoder, level, attr, value)) {
    return false;
  }
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    Failure failure = failureAt(Problem::OutOfRange, level, mnl_attr_get_type(attr));
    failure.got = static_cast<std::size_t>(value);
    recordFailure(decoder, failure);
    return false;
  }
  out = value;
  return true;
}

constexpr int ok(bool success) noexcept { return success ? MNL_CB_OK : MNL_CB_ERROR; }

// ---------------------------------------------------------------------------------------------
// Walking one level.

using Handler = int (*)(const nlattr*, Decoder&) noexcept;

struct Frame {
  Level level;
  Handler handler;
  Decoder* decoder;
  const std::byte* begin;      // the level's first attribute
  const std::byte* end;        // one past the level's last byte
  const std::byte* walked_to;  // end (aligned, capped at `end`) of the last attribute handed over
};

// The C callback libmnl calls for each attribute: no exception may cross it.
int trampoline(const nlattr* attr, void* data) noexcept {
  auto* frame = static_cast<Frame*>(data);
  try {
    const auto* start = reinterpret_cast<const std::byte*>(attr);
    const auto room = static_cast<std::size_t>(frame->end - start);
    frame->walked_to = start + std::min(alignUp(attr->nla_len), room);
    return frame->handler(attr, *frame->decoder);
  } catch (...) {
    frame->decoder->failure = failureAt(Problem::Internal, frame->level, 0);
    return MNL_CB_ERROR;
  }
}

// After a walk: anything between the last whole attribute and the end of the level is an
// attribute whose header or claimed length does not fit.
int checkWalkedToEnd(const Frame& frame) noexcept {
  if (frame.walked_to == frame.end) {
    return MNL_CB_OK;
  }
  const auto left = static_cast<std::size_t>(frame.end - frame.walked_to);
  Failure failure = failureAt(Problem::Truncated, frame.level, 0);
  failure.got = left;
  failure.offset = static_cast<std::size_t>(frame.walked_to - frame.begin);
  if (left >= sizeof(nlattr)) {
    nlattr header{};
    std::memcpy(&header, frame.walked_to, sizeof(header));
    failure.type = static_cast<std::uint16_t>(header.nla_type & NLA_TYPE_MASK);
    failure.type_known = true;
    failure.expected = header.nla_len;
  }
  return recordFailure(*frame.decoder, failure);
}

// Walks the attributes nested in `nest` (an attribute of `outer` level) with `handler`.
int walkNested(Decoder& decoder, Level outer, const nlattr* nest, Level inner, Handler handler) noexcept {
  const std::uint16_t type = mnl_attr_get_type(nest);
  if (decoder.path.depth == decoder.path.names.size()) {  // not reached: the nesting is fixed
    return recordFailure(decoder, failureAt(Problem::Internal, outer, type));
  }
  decoder.path.names[decoder.path.depth] = attributeName(outer, type);
  ++decoder.path.depth;
  const std::byte* begin = payload(nest);
  const std::byte* end = begin + payloadLength(nest);
  Frame frame{inner, handler, &decoder, begin, end, begin};
  int result = mnl_attr_parse_nested(nest, trampoline, &frame);
  if (result >= MNL_CB_OK) {
    result = checkWalkedToEnd(frame);
  }
  --decoder.path.depth;
  return result;
}

// ---------------------------------------------------------------------------------------------
// Handlers, one per level.

int onIp(const nlattr* attr, Decoder& decoder) noexcept {
  TupleScratch& tuple = *decoder.tuple;
  const std::uint16_t type = mnl_attr_get_type(attr);
  const bool v4 = type == CTA_IP_V4_SRC || type == CTA_IP_V4_DST;
  const bool v6 = type == CTA_IP_V6_SRC || type == CTA_IP_V6_DST;
  if (!v4 && !v6) {
    return MNL_CB_OK;
  }
  if (v4 != (decoder.family == Family::Ipv4)) {
    return recordFailure(decoder, failureAt(Problem::FamilyMismatch, Level::Ip, type));
  }
  IpAddress address;
  if (v4) {
    std::array<std::uint8_t, 4> bytes{};
    if (!expectSize(decoder, Level::Ip, attr, bytes.size())) {
      return MNL_CB_ERROR;
    }
    std::memcpy(bytes.data(), payload(attr), bytes.size());
    address = IpAddress::v4(std::span<const std::uint8_t, 4>(bytes));
  } else {
    std::array<std::uint8_t, 16> bytes{};
    if (!expectSize(decoder, Level::Ip, attr, bytes.size())) {
      return MNL_CB_ERROR;
    }
    std::memcpy(bytes.data(), payload(attr), bytes.size());
    address = IpAddress::v6(std::span<const std::uint8_t, 16>(bytes));
  }
  if (type == CTA_IP_V4_SRC || type == CTA_IP_V6_SRC) {
    tuple.src = address;
  } else {
    tuple.dst = address;
  }
  return MNL_CB_OK;
}

int onProto(const nlattr* attr, Decoder& decoder) noexcept {
  TupleScratch& tuple = *decoder.tuple;
  constexpr Level kLevel = Level::Proto;
  switch (mnl_attr_get_type(attr)) {
    case CTA_PROTO_NUM: return ok(readUnsigned(decoder, kLevel, attr, tuple.protocol));
    case CTA_PROTO_SRC_PORT: return ok(readUnsigned(decoder, kLevel, attr, tuple.src_port));
    case CTA_PROTO_DST_PORT: return ok(readUnsigned(decoder, kLevel, attr, tuple.dst_port));
    case CTA_PROTO_ICMP_ID: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmp_id));
    case CTA_PROTO_ICMP_TYPE: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmp_type));
    case CTA_PROTO_ICMP_CODE: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmp_code));
    case CTA_PROTO_ICMPV6_ID: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmpv6_id));
    case CTA_PROTO_ICMPV6_TYPE: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmpv6_type));
    case CTA_PROTO_ICMPV6_CODE: return ok(readUnsigned(decoder, kLevel, attr, tuple.icmpv6_code));
    default: return MNL_CB_OK;
  }
}

int onTuple(const nlattr* attr, Decoder& decoder) noexcept {
  TupleScratch& tuple = *decoder.tuple;
  switch (mnl_attr_get_type(attr)) {
    case CTA_TUPLE_IP:
      tuple.seen_ip = true;
      return walkNested(decoder, Level::Tuple, attr, Level::Ip, onIp);
    case CTA_TUPLE_PROTO:
      tuple.seen_proto = true;
      return walkNested(decoder, Level::Tuple, attr, Level::Proto, onProto);
    case CTA_TUPLE_ZONE: return ok(readUnsigned(decoder, Level::Tuple, attr, tuple.zone));
    default: return MNL_CB_OK;
  }
}

int onProtoinfoTcp(const nlattr* attr, Decoder& decoder) noexcept {
  if (mnl_attr_get_type(attr) == CTA_PROTOINFO_TCP_STATE) {
    return ok(readUnsigned(decoder, Level::ProtoinfoTcp, attr, decoder.tcp_state));
  }
  return MNL_CB_OK;
}

int onProtoinfo(const nlattr* attr, Decoder& decoder) noexcept {
  if (mnl_attr_get_type(attr) == CTA_PROTOINFO_TCP) {
    return walkNested(decoder, Level::Protoinfo, attr, Level::ProtoinfoTcp, onProtoinfoTcp);
  }
  return MNL_CB_OK;
}

int onCounters(const nlattr* attr, Decoder& decoder) noexcept {
  CountersScratch& counters = *decoder.counters;
  constexpr Level kLevel = Level::Counters;
  switch (mnl_attr_get_type(attr)) {
    case CTA_COUNTERS_PACKETS: return ok(readUnsigned(decoder, kLevel, attr, counters.packets));
    case CTA_COUNTERS_BYTES: return ok(readUnsigned(decoder, kLevel, attr, counters.bytes));
    case CTA_COUNTERS32_PACKETS: return ok(readUnsigned(decoder, kLevel, attr, counters.packets32));
    case CTA_COUNTERS32_BYTES: return ok(readUnsigned(decoder, kLevel, attr, counters.bytes32));
    default: return MNL_CB_OK;
  }
}

int onTimestamp(const nlattr* attr, Decoder& decoder) noexcept {
  switch (mnl_attr_get_type(attr)) {
    case CTA_TIMESTAMP_START: return ok(readNanos(decoder, Level::Timestamp, attr, decoder.start_ns));
    case CTA_TIMESTAMP_STOP: return ok(readNanos(decoder, Level::Timestamp, attr, decoder.stop_ns));
    default: return MNL_CB_OK;
  }
}

int onTopLevel(const nlattr* attr, Decoder& decoder) noexcept {
  constexpr Level kLevel = Level::Top;
  const std::uint16_t type = mnl_attr_get_type(attr);
  switch (type) {
    case CTA_TUPLE_ORIG:
    case CTA_TUPLE_REPLY: {
      TupleScratch& tuple = type == CTA_TUPLE_ORIG ? decoder.original : decoder.reply;
      tuple = TupleScratch{};
      tuple.seen = true;
      decoder.tuple = &tuple;
      return walkNested(decoder, kLevel, attr, Level::Tuple, onTuple);
    }
    case CTA_STATUS:
      // nla_put_be64(..., CTA_TIMESTAMP_PAD) before CTA_TIMESTAMP_EVENT emits a zero-length
      // attribute of type 3 at the top level where the architecture needs 64-bit alignment
      // (nla_align_64bit without CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS). That is padding, not
      // a status.
      if (payloadLength(attr) == 0) {
        return MNL_CB_OK;
      }
      return ok(readUnsigned(decoder, kLevel, attr, decoder.status));
    case CTA_MARK: return ok(readUnsigned(decoder, kLevel, attr, decoder.mark));
    case CTA_ID: return ok(readUnsigned(decoder, kLevel, attr, decoder.id));
    case CTA_ZONE: return ok(readUnsigned(decoder, kLevel, attr, decoder.zone));
    case CTA_PROTOINFO: return walkNested(decoder, kLevel, attr, Level::Protoinfo, onProtoinfo);
    case CTA_COUNTERS_ORIG:
    case CTA_COUNTERS_REPLY: {
      const bool original = type == CTA_COUNTERS_ORIG;
      CountersScratch& counters = original ? decoder.counters_original : decoder.counters_reply;
      counters = CountersScratch{};
      (original ? decoder.seen_counters_original : decoder.seen_counters_reply) = true;
      decoder.counters = &counters;
      return walkNested(decoder, kLevel, attr, Level::Counters, onCounters);
    }
    case CTA_TIMESTAMP: return walkNested(decoder, kLevel, attr, Level::Timestamp, onTimestamp);
    case kCtaTimestampEvent: return ok(readNanos(decoder, kLevel, attr, decoder.event_ns));
    default: return MNL_CB_OK;
  }
}

// ---------------------------------------------------------------------------------------------
// Turning the scratch state into a record.

Unexpected decodeError(std::string detail) { return fail(Errc::Decode, std::move(detail)); }

// Checks a tuple's required parts; fills `out`. `which` is CTA_TUPLE_ORIG or CTA_TUPLE_REPLY.
bool finishTuple(Decoder& decoder, const TupleScratch& scratch, std::uint16_t which, FlowTuple& out) noexcept {
  const auto missing = [&](Level level, std::uint16_t type, std::string_view enclosing) {
    decoder.path = Path{};
    if (!enclosing.empty()) {
      decoder.path.names[0] = attributeName(Level::Top, which);
      decoder.path.names[1] = enclosing;
      decoder.path.depth = 2;
    } else if (level != Level::Top) {
      decoder.path.names[0] = attributeName(Level::Top, which);
      decoder.path.depth = 1;
    }
    recordFailure(decoder, failureAt(Problem::Missing, level, type));
    return false;
  };
  const bool v4 = decoder.family == Family::Ipv4;
  if (!scratch.seen) {
    return missing(Level::Top, which, {});
  }
  if (!scratch.seen_ip) {
    return missing(Level::Tuple, CTA_TUPLE_IP, {});
  }
  if (!scratch.src) {
    return missing(Level::Ip, v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, "CTA_TUPLE_IP");
  }
  if (!scratch.dst) {
    return missing(Level::Ip, v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, "CTA_TUPLE_IP");
  }
  if (!scratch.seen_proto) {
    return missing(Level::Tuple, CTA_TUPLE_PROTO, {});
  }
  if (!scratch.protocol) {
    return missing(Level::Proto, CTA_PROTO_NUM, "CTA_TUPLE_PROTO");
  }
  out = FlowTuple{};
  out.src = *scratch.src;
  out.dst = *scratch.dst;
  out.protocol = static_cast<Protocol>(*scratch.protocol);
  if (out.protocol == Protocol::Icmp) {
    out.icmp_type = scratch.icmp_type;
    out.icmp_code = scratch.icmp_code;
    out.icmp_id = scratch.icmp_id;
  } else if (out.protocol == Protocol::Icmpv6) {
    out.icmp_type = scratch.icmpv6_type;
    out.icmp_code = scratch.icmpv6_code;
    out.icmp_id = scratch.icmpv6_id;
  } else {
    // TCP, UDP, UDP-Lite, SCTP, DCCP ports; for GRE the kernel puts the keys (PPTP call ids,
    // 0 for plain GRE) in the same attributes (nf_conntrack_proto_gre.c uses
    // nf_ct_port_tuple_to_nlattr) and they are kept here. Other protocols send none: 0.
    out.src_port = scratch.src_port;
    out.dst_port = scratch.dst_port;
  }
  return true;
}

std::optional<Counters> finishCounters(bool seen, const CountersScratch& scratch) noexcept {
  const bool has_packets = scratch.packets || scratch.packets32;
  const bool has_bytes = scratch.bytes || scratch.bytes32;
  if (!seen || (!has_packets && !has_bytes)) {
    return std::nullopt;
  }
  Counters counters;
  counters.packets = scratch.packets ? *scratch.packets : scratch.packets32.value_or(0);
  counters.bytes = scratch.bytes ? *scratch.bytes : scratch.bytes32.value_or(0);
  return counters;
}

Timestamp fromNanos(std::uint64_t ns) noexcept { return fromUnixNanos(static_cast<std::int64_t>(ns)); }

std::string hex16(std::uint16_t value) {
  constexpr std::string_view kDigits = "0123456789abcdef";
  const std::uint32_t wide = value;
  std::string out = "0x0000";
  for (std::size_t i = 0; i < 4; ++i) {
    out[5 - i] = kDigits[(wide >> (4U * i)) & 0xFU];
  }
  return out;
}

Result<FlowRecord> decode(std::span<const std::byte> message, const DecodeContext& context) {
  if (reinterpret_cast<std::uintptr_t>(message.data()) % kAlignTo != 0) {
    return decodeError("message buffer is not 4-byte aligned");
  }
  if (message.size() < kNlmsgHeaderSize) {
    return decodeError("truncated netlink header: " + std::to_string(message.size()) + " of " +
                       std::to_string(kNlmsgHeaderSize) + " bytes");
  }
  nlmsghdr header{};
  std::memcpy(&header, message.data(), sizeof(header));
  if (header.nlmsg_len < kNlmsgHeaderSize) {
    return decodeError("nlmsg_len " + std::to_string(header.nlmsg_len) + " is shorter than the netlink header");
  }
  if (header.nlmsg_len > message.size()) {
    return decodeError("truncated message: nlmsg_len " + std::to_string(header.nlmsg_len) + " but " +
                       std::to_string(message.size()) + " bytes");
  }
  if (header.nlmsg_len < message.size()) {
    return decodeError(std::to_string(message.size() - header.nlmsg_len) +
                       " bytes after the message (nlmsg_len " + std::to_string(header.nlmsg_len) +
                       "): pass exactly one message");
  }
  if (header.nlmsg_len % kAlignTo != 0) {
    return decodeError("nlmsg_len " + std::to_string(header.nlmsg_len) + " is not a multiple of 4");
  }
  const auto subsystem = static_cast<std::uint16_t>(header.nlmsg_type >> 8U);
  const auto kind = static_cast<std::uint16_t>(header.nlmsg_type & 0xFFU);
  if (subsystem != NFNL_SUBSYS_CTNETLINK || (kind != IPCTNL_MSG_CT_NEW && kind != IPCTNL_MSG_CT_DELETE)) {
    return decodeError("not a conntrack NEW or DELETE message: nlmsg_type " + hex16(header.nlmsg_type));
  }
  if (header.nlmsg_len < kNlmsgHeaderSize + kNfgenmsgSize) {
    return decodeError("truncated nfgenmsg: nlmsg_len " + std::to_string(header.nlmsg_len));
  }
  nfgenmsg generic{};
  std::memcpy(&generic, message.data() + kNlmsgHeaderSize, sizeof(generic));

  Decoder decoder;
  switch (generic.nfgen_family) {
    case AF_INET: decoder.family = Family::Ipv4; break;
    case AF_INET6: decoder.family = Family::Ipv6; break;
    default: return decodeError("unknown family " + std::to_string(generic.nfgen_family) + " in nfgenmsg");
  }

  // The message was checked above: aligned, nlmsg_len == size and a multiple of 4, so libmnl's
  // walk (up to nlh + MNL_ALIGN(nlmsg_len)) stays inside the span.
  const auto* nlh = reinterpret_cast<const nlmsghdr*>(message.data());
  const std::byte* attrs_begin = message.data() + kNlmsgHeaderSize + kNfgenmsgSize;
  const std::byte* attrs_end = message.data() + message.size();
  Frame frame{Level::Top, onTopLevel, &decoder, attrs_begin, attrs_end, attrs_begin};
  int result = mnl_attr_parse(nlh, kNfgenmsgSize, trampoline, &frame);
  if (result >= MNL_CB_OK) {
    result = checkWalkedToEnd(frame);
  }
  if (result < MNL_CB_OK) {
    return decodeError(describe(decoder.failure));
  }

  FlowRecord record;
  if (!finishTuple(decoder, decoder.original, CTA_TUPLE_ORIG, record.original) ||
      !finishTuple(decoder, decoder.reply, CTA_TUPLE_REPLY, record.reply)) {
    return decodeError(describe(decoder.failure));
  }

  if (kind == IPCTNL_MSG_CT_DELETE) {
    record.event = EventType::Destroy;
  } else if (context.origin == MessageOrigin::Dump) {
    record.event = EventType::Dump;
    record.observed_at_start = true;
  } else if ((header.nlmsg_flags & NLM_F_CREATE) != 0) {
    record.event = EventType::New;
  } else {
    record.event = EventType::Update;
  }

  record.ct_id = decoder.id;
  record.status = decoder.status;
  record.mark = decoder.mark;
  // CTA_ZONE carries a zone that applies to both directions; a directional zone (conntrack
  // --orig-zone / --reply-zone) only appears as CTA_TUPLE_ZONE inside its tuple.
  if (decoder.zone) {
    record.zone = *decoder.zone;
  } else if (decoder.original.zone) {
    record.zone = *decoder.original.zone;
  } else {
    record.zone = decoder.reply.zone.value_or(0);
  }
  record.tcp_state = decoder.tcp_state;
  record.counters_original = finishCounters(decoder.seen_counters_original, decoder.counters_original);
  record.counters_reply = finishCounters(decoder.seen_counters_reply, decoder.counters_reply);
  record.nat = deriveNat(record.status, record.original, record.reply);

  if (decoder.event_ns && *decoder.event_ns != 0) {
    record.event_time = fromNanos(*decoder.event_ns);
    record.event_time_source = TimeSource::Kernel;
  } else {
    record.event_time = context.receive_time;
    record.event_time_source = TimeSource::Receive;
  }
  if (decoder.start_ns && *decoder.start_ns != 0) {
    record.start = fromNanos(*decoder.start_ns);
    record.start_source = TimeSource::Kernel;
  } else if (record.event == EventType::New) {
    record.start = record.event_time;
    record.start_source = record.event_time_source;
  } else if (record.event == EventType::Dump) {
    record.start = context.receive_time;
    record.start_source = TimeSource::Receive;
  }
  if (record.event == EventType::Destroy) {
    if (decoder.stop_ns && *decoder.stop_ns != 0) {
      record.end = fromNanos(*decoder.stop_ns);
      record.end_source = TimeSource::Kernel;
    } else {
      record.end = record.event_time;
      record.end_source = record.event_time_source;
    }
  }
  return record;
}

}  // namespace

Result<FlowRecord> decodeConntrack(std::span<const std::byte> message, const DecodeContext& context) noexcept {
  try {
    return decode(message, context);
  } catch (...) {
    // Only the error text allocates; if that fails, an empty detail still reports the failure.
    return Unexpected{Error{Errc::Decode, 0, std::string{}}};
  }
}

}  // namespace ctaudit::daemon
