// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/conntrack_decoder.hpp"

#include <endian.h>
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

// How this file reads a message: after the netlink header and nfgenmsg, each attribute level (the
// top level, then each nest) is walked in place by AttributeWalk, which hands over one attribute
// at a time (type without flag bits, payload as a span) and stops at the first one whose header or
// nla_len does not fit; whatever is left after the last whole attribute is reported as a truncated
// attribute. One reader function per level takes each attribute, checks the payload size of the
// ones it knows (exactly the size of the value), copies the values out with memcpy and skips
// unknown types; for a nest it walks the nest with the next level's reader, a direct call the
// compiler can inline. Problems are recorded as a Failure of fixed size (names are static strings)
// and turned into text only once, at the end; nothing allocates unless decoding fails.
//
// Why not libmnl's walk (mnl_attr_parse with a callback): every attribute then costs a call
// through a function pointer and a void* plus a PLT call per accessor (mnl_attr_get_type,
// _get_payload, _validate2, _ok, _next), which made the walk most of the decoder's cost
// (docs/benchmarks.md, "Decoding without libmnl's walk"). The checks here are libmnl's: an
// attribute is whole when mnl_attr_ok would accept it, and a size check is mnl_attr_validate2's
// (a payload neither shorter nor longer than the value).

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
  Internal,        // a nest deeper than Path holds (cannot happen: the nesting is fixed in this file)
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
  CountersScratch counters_original;
  CountersScratch counters_reply;
  bool seen_counters_original{false};
  bool seen_counters_reply{false};

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

// Records `failure` at the current path; returns false so that callers can `return recordFailure(...)`.
bool recordFailure(Decoder& decoder, Failure failure) noexcept {
  failure.path = decoder.path;
  decoder.failure = failure;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Walking one level.

constexpr std::size_t kAttributeHeaderSize = sizeof(nlattr);  // NLA_HDRLEN: 4, already aligned

// One attribute as the walk hands it over: its type without the flag bits (NLA_F_NESTED,
// NLA_F_NET_BYTEORDER; the kernel sets NLA_F_NESTED on ctnetlink's nests and the types are the
// same either way), and its payload: nla_len minus the header, without the padding after it.
struct Attribute {
  std::uint16_t type{0};
  std::span<const std::byte> payload;
};

// The attributes of one level (the message after nfgenmsg, or one nest's payload), in order.
// next() hands over each attribute whose header and nla_len fit in the bytes left, the test
// libmnl's mnl_attr_ok makes, and stops at the first that does not, as libmnl's walk does;
// rest() then holds what was not handed over, which the caller reports as truncated. The next
// attribute starts NLA_ALIGN(nla_len) after one; the last one of a nest may end unaligned, its
// padding outside the nest, so the position is capped at the end of the level. Headers are
// copied out with memcpy (one load) rather than read through a cast of the byte pointer.
class AttributeWalk {
public:
  explicit AttributeWalk(std::span<const std::byte> level) noexcept : level_(level) {}

  // Sets `out` to the next whole attribute; false at the end of the level or at an attribute
  // whose header or claimed length does not fit.
  bool next(Attribute& out) noexcept {
    const std::size_t left = level_.size() - offset_;
    if (left < kAttributeHeaderSize) {
      return false;
    }
    nlattr header{};
    std::memcpy(&header, level_.data() + offset_, sizeof(header));
    if (header.nla_len < kAttributeHeaderSize || header.nla_len > left) {
      return false;
    }
    out.type = static_cast<std::uint16_t>(header.nla_type & NLA_TYPE_MASK);
    out.payload = level_.subspan(offset_ + kAttributeHeaderSize, header.nla_len - kAttributeHeaderSize);
    offset_ = std::min(offset_ + alignUp(header.nla_len), level_.size());
    return true;
  }

  // Where the walk stands inside the level, and the bytes from there to the end.
  [[nodiscard]] std::size_t offset() const noexcept { return offset_; }
  [[nodiscard]] std::span<const std::byte> rest() const noexcept { return level_.subspan(offset_); }

private:
  std::span<const std::byte> level_;
  std::size_t offset_{0};
};

// After a walk: anything between the last whole attribute and the end of the level is an
// attribute whose header or claimed length does not fit.
bool checkWalkedToEnd(Decoder& decoder, Level level, const AttributeWalk& walk) noexcept {
  const std::span<const std::byte> rest = walk.rest();
  if (rest.empty()) {
    return true;
  }
  Failure failure = failureAt(Problem::Truncated, level, 0);
  failure.got = rest.size();
  failure.offset = walk.offset();
  if (rest.size() >= sizeof(nlattr)) {
    nlattr header{};
    std::memcpy(&header, rest.data(), sizeof(header));
    failure.type = static_cast<std::uint16_t>(header.nla_type & NLA_TYPE_MASK);
    failure.type_known = true;
    failure.expected = header.nla_len;
  }
  return recordFailure(decoder, failure);
}

// Reads every attribute of one level with `read` (a callable bool(const Attribute&) that records
// a Failure and returns false to stop), then refuses leftover bytes. `read` is a lambda whose
// type the template sees, so the per-level readers below are called directly and can be inlined:
// the point of walking here rather than through libmnl's callbacks (a function pointer and a void*
// per attribute, and a PLT call per accessor).
template <class Read>
bool walkLevel(Decoder& decoder, Level level, std::span<const std::byte> bytes, Read read) noexcept {
  AttributeWalk walk{bytes};
  Attribute attr;
  while (walk.next(attr)) {
    if (!read(attr)) {
      return false;
    }
  }
  return checkWalkedToEnd(decoder, level, walk);
}

// Walks the attributes nested in `nest` (an attribute of level `outer`) with `read`; failures
// inside carry the nest's name in their path.
template <class Read>
bool walkNested(Decoder& decoder, Level outer, const Attribute& nest, Level inner, Read read) noexcept {
  if (decoder.path.depth == decoder.path.names.size()) {  // not reached: the nesting is fixed
    return recordFailure(decoder, failureAt(Problem::Internal, outer, nest.type));
  }
  decoder.path.names[decoder.path.depth] = attributeName(outer, nest.type);
  ++decoder.path.depth;
  const bool walked = walkLevel(decoder, inner, nest.payload, read);
  --decoder.path.depth;
  return walked;
}

// ---------------------------------------------------------------------------------------------
// Reading values.

// Checks that `attr` has exactly `size` payload bytes, as mnl_attr_validate2 did (it refused a
// longer payload as well as a shorter one); records a BadSize failure otherwise.
bool expectSize(Decoder& decoder, Level level, const Attribute& attr, std::size_t size) noexcept {
  if (attr.payload.size() == size) {
    return true;
  }
  Failure failure = failureAt(Problem::BadSize, level, attr.type);
  failure.got = attr.payload.size();
  failure.expected = size;
  return recordFailure(decoder, failure);
}

// Reads a u8/be16/be32/be64 attribute of exactly sizeof(T) bytes into `out`.
template <class T>
bool readUnsigned(Decoder& decoder, Level level, const Attribute& attr, T& out) noexcept {
  if (!expectSize(decoder, level, attr, sizeof(T))) {
    return false;
  }
  T raw{};
  std::memcpy(&raw, attr.payload.data(), sizeof(raw));
  if constexpr (sizeof(T) == 1) {
    out = raw;
  } else if constexpr (sizeof(T) == 2) {
    out = be16toh(raw);
  } else if constexpr (sizeof(T) == 4) {
    out = be32toh(raw);
  } else {
    static_assert(sizeof(T) == 8);
    out = be64toh(raw);
  }
  return true;
}

template <class T>
bool readUnsigned(Decoder& decoder, Level level, const Attribute& attr, std::optional<T>& out) noexcept {
  T value{};
  if (!readUnsigned(decoder, level, attr, value)) {
    return false;
  }
  out = value;
  return true;
}

// Reads a be64 nanosecond timestamp; values past INT64_MAX (year 2262) are refused.
bool readNanos(Decoder& decoder, Level level, const Attribute& attr, std::optional<std::uint64_t>& out) noexcept {
  std::uint64_t value = 0;
  if (!readUnsigned(decoder, level, attr, value)) {
    return false;
  }
  if (value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
    Failure failure = failureAt(Problem::OutOfRange, level, attr.type);
    failure.got = static_cast<std::size_t>(value);
    return recordFailure(decoder, failure);
  }
  out = value;
  return true;
}

// Reads a 4- or 16-byte address attribute.
template <std::size_t N>
bool readAddress(Decoder& decoder, const Attribute& attr, std::optional<IpAddress>& out) noexcept {
  if (!expectSize(decoder, Level::Ip, attr, N)) {
    return false;
  }
  std::array<std::uint8_t, N> bytes{};
  std::memcpy(bytes.data(), attr.payload.data(), N);
  if constexpr (N == 4) {
    out = IpAddress::v4(std::span<const std::uint8_t, 4>(bytes));
  } else {
    out = IpAddress::v6(std::span<const std::uint8_t, 16>(bytes));
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Readers, one per level: each takes one attribute of its level and returns false after
// recording a Failure. Unknown types are skipped.

bool readIp(Decoder& decoder, TupleScratch& tuple, const Attribute& attr) noexcept {
  const std::uint16_t type = attr.type;
  const bool v4 = type == CTA_IP_V4_SRC || type == CTA_IP_V4_DST;
  const bool v6 = type == CTA_IP_V6_SRC || type == CTA_IP_V6_DST;
  if (!v4 && !v6) {
    return true;
  }
  if (v4 != (decoder.family == Family::Ipv4)) {
    return recordFailure(decoder, failureAt(Problem::FamilyMismatch, Level::Ip, type));
  }
  std::optional<IpAddress>& slot = (type == CTA_IP_V4_SRC || type == CTA_IP_V6_SRC) ? tuple.src : tuple.dst;
  return v4 ? readAddress<4>(decoder, attr, slot) : readAddress<16>(decoder, attr, slot);
}

bool readProto(Decoder& decoder, TupleScratch& tuple, const Attribute& attr) noexcept {
  constexpr Level kLevel = Level::Proto;
  switch (attr.type) {
    case CTA_PROTO_NUM: return readUnsigned(decoder, kLevel, attr, tuple.protocol);
    case CTA_PROTO_SRC_PORT: return readUnsigned(decoder, kLevel, attr, tuple.src_port);
    case CTA_PROTO_DST_PORT: return readUnsigned(decoder, kLevel, attr, tuple.dst_port);
    case CTA_PROTO_ICMP_ID: return readUnsigned(decoder, kLevel, attr, tuple.icmp_id);
    case CTA_PROTO_ICMP_TYPE: return readUnsigned(decoder, kLevel, attr, tuple.icmp_type);
    case CTA_PROTO_ICMP_CODE: return readUnsigned(decoder, kLevel, attr, tuple.icmp_code);
    case CTA_PROTO_ICMPV6_ID: return readUnsigned(decoder, kLevel, attr, tuple.icmpv6_id);
    case CTA_PROTO_ICMPV6_TYPE: return readUnsigned(decoder, kLevel, attr, tuple.icmpv6_type);
    case CTA_PROTO_ICMPV6_CODE: return readUnsigned(decoder, kLevel, attr, tuple.icmpv6_code);
    default: return true;
  }
}

bool readTuple(Decoder& decoder, TupleScratch& tuple, const Attribute& attr) noexcept {
  switch (attr.type) {
    case CTA_TUPLE_IP:
      tuple.seen_ip = true;
      return walkNested(decoder, Level::Tuple, attr, Level::Ip,
                        [&](const Attribute& inner) { return readIp(decoder, tuple, inner); });
    case CTA_TUPLE_PROTO:
      tuple.seen_proto = true;
      return walkNested(decoder, Level::Tuple, attr, Level::Proto,
                        [&](const Attribute& inner) { return readProto(decoder, tuple, inner); });
    case CTA_TUPLE_ZONE: return readUnsigned(decoder, Level::Tuple, attr, tuple.zone);
    default: return true;
  }
}

bool readProtoinfoTcp(Decoder& decoder, const Attribute& attr) noexcept {
  if (attr.type == CTA_PROTOINFO_TCP_STATE) {
    return readUnsigned(decoder, Level::ProtoinfoTcp, attr, decoder.tcp_state);
  }
  return true;
}

bool readProtoinfo(Decoder& decoder, const Attribute& attr) noexcept {
  if (attr.type == CTA_PROTOINFO_TCP) {
    return walkNested(decoder, Level::Protoinfo, attr, Level::ProtoinfoTcp,
                      [&](const Attribute& inner) { return readProtoinfoTcp(decoder, inner); });
  }
  return true;
}

bool readCounters(Decoder& decoder, CountersScratch& counters, const Attribute& attr) noexcept {
  constexpr Level kLevel = Level::Counters;
  switch (attr.type) {
    case CTA_COUNTERS_PACKETS: return readUnsigned(decoder, kLevel, attr, counters.packets);
    case CTA_COUNTERS_BYTES: return readUnsigned(decoder, kLevel, attr, counters.bytes);
    case CTA_COUNTERS32_PACKETS: return readUnsigned(decoder, kLevel, attr, counters.packets32);
    case CTA_COUNTERS32_BYTES: return readUnsigned(decoder, kLevel, attr, counters.bytes32);
    default: return true;
  }
}

bool readTimestamp(Decoder& decoder, const Attribute& attr) noexcept {
  switch (attr.type) {
    case CTA_TIMESTAMP_START: return readNanos(decoder, Level::Timestamp, attr, decoder.start_ns);
    case CTA_TIMESTAMP_STOP: return readNanos(decoder, Level::Timestamp, attr, decoder.stop_ns);
    default: return true;
  }
}

bool readTopLevel(Decoder& decoder, const Attribute& attr) noexcept {
  constexpr Level kLevel = Level::Top;
  switch (attr.type) {
    case CTA_TUPLE_ORIG:
    case CTA_TUPLE_REPLY: {
      TupleScratch& tuple = attr.type == CTA_TUPLE_ORIG ? decoder.original : decoder.reply;
      tuple = TupleScratch{};
      tuple.seen = true;
      return walkNested(decoder, kLevel, attr, Level::Tuple,
                        [&](const Attribute& inner) { return readTuple(decoder, tuple, inner); });
    }
    case CTA_STATUS:
      // nla_put_be64(..., CTA_TIMESTAMP_PAD) before CTA_TIMESTAMP_EVENT emits a zero-length
      // attribute of type 3 at the top level where the architecture needs 64-bit alignment
      // (nla_align_64bit without CONFIG_HAVE_EFFICIENT_UNALIGNED_ACCESS). That is padding, not
      // a status.
      if (attr.payload.empty()) {
        return true;
      }
      return readUnsigned(decoder, kLevel, attr, decoder.status);
    case CTA_MARK: return readUnsigned(decoder, kLevel, attr, decoder.mark);
    case CTA_ID: return readUnsigned(decoder, kLevel, attr, decoder.id);
    case CTA_ZONE: return readUnsigned(decoder, kLevel, attr, decoder.zone);
    case CTA_PROTOINFO:
      return walkNested(decoder, kLevel, attr, Level::Protoinfo,
                        [&](const Attribute& inner) { return readProtoinfo(decoder, inner); });
    case CTA_COUNTERS_ORIG:
    case CTA_COUNTERS_REPLY: {
      const bool original = attr.type == CTA_COUNTERS_ORIG;
      CountersScratch& counters = original ? decoder.counters_original : decoder.counters_reply;
      counters = CountersScratch{};
      (original ? decoder.seen_counters_original : decoder.seen_counters_reply) = true;
      return walkNested(decoder, kLevel, attr, Level::Counters,
                        [&](const Attribute& inner) { return readCounters(decoder, counters, inner); });
    }
    case CTA_TIMESTAMP:
      return walkNested(decoder, kLevel, attr, Level::Timestamp,
                        [&](const Attribute& inner) { return readTimestamp(decoder, inner); });
    case kCtaTimestampEvent: return readNanos(decoder, kLevel, attr, decoder.event_ns);
    default: return true;
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

  // The message was checked above: aligned, nlmsg_len == size and a multiple of 4, so the
  // attributes start 4-byte aligned right after nfgenmsg (4 bytes, already aligned) and run to the
  // end of the span.
  const std::span<const std::byte> attributes = message.subspan(kNlmsgHeaderSize + kNfgenmsgSize);
  if (!walkLevel(decoder, Level::Top, attributes,
                 [&](const Attribute& attr) { return readTopLevel(decoder, attr); })) {
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
    const bool begins = record.event == EventType::New || record.event == EventType::Update;
    record.event_time = begins && context.woke ? std::min(*context.woke, context.receive_time) : context.receive_time;
    record.event_time_source = TimeSource::Receive;
  }
  if (decoder.start_ns && *decoder.start_ns != 0) {
    record.start = fromNanos(*decoder.start_ns);
    record.start_source = TimeSource::Kernel;
  } else if (record.event == EventType::New) {
    record.start = record.event_time;
    record.start_source = record.event_time_source;
  }
  // A dump row without CTA_TIMESTAMP (the entry began before nf_conntrack_timestamp was on) began
  // at some time before the dump that nothing tells: its start stays unknown, and the sinks index
  // it from the dump (flow_merge.cpp) instead of passing the dump's time off as its start.
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
