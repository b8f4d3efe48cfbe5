// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/ct_message_builder.hpp"

#include <endian.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <utility>

#include "daemon/conntrack_decoder.hpp"
#include "flow/ct_status.hpp"

namespace ctaudit::testing {
namespace {

constexpr std::uint16_t messageType(std::uint8_t kind) noexcept {
  return static_cast<std::uint16_t>((NFNL_SUBSYS_CTNETLINK << 8U) | kind);
}

IpAddress address(std::string_view text) {
  const auto parsed = IpAddress::parse(text);
  if (!parsed) {
    throw std::invalid_argument("not an IP address: " + std::string(text));
  }
  return *parsed;
}

FlowTuple portTuple(Protocol protocol, std::string_view src, std::uint16_t src_port, std::string_view dst,
                    std::uint16_t dst_port) {
  FlowTuple tuple;
  tuple.src = address(src);
  tuple.dst = address(dst);
  tuple.protocol = protocol;
  tuple.src_port = src_port;
  tuple.dst_port = dst_port;
  return tuple;
}

// The kernel's request -> reply type maps (nf_conntrack_proto_icmp.c / _icmpv6.c invmap).
std::uint8_t invertIcmpType(Protocol protocol, std::uint8_t type) noexcept {
  if (protocol == Protocol::Icmp) {
    switch (type) {
      case 8: return 0;    // echo -> echo reply
      case 13: return 14;  // timestamp
      case 15: return 16;  // information
      case 17: return 18;  // address mask
      default: return type;
    }
  }
  switch (type) {
    case 128: return 129;  // echo request -> echo reply
    case 139: return 140;  // node information query -> response
    default: return type;
  }
}

}  // namespace

FlowTuple tcpTuple(std::string_view src, std::uint16_t src_port, std::string_view dst, std::uint16_t dst_port) {
  return portTuple(Protocol::Tcp, src, src_port, dst, dst_port);
}

FlowTuple udpTuple(std::string_view src, std::uint16_t src_port, std::string_view dst, std::uint16_t dst_port) {
  return portTuple(Protocol::Udp, src, src_port, dst, dst_port);
}

FlowTuple icmpTuple(std::string_view src, std::string_view dst, std::uint8_t type, std::uint8_t code,
                    std::uint16_t id) {
  FlowTuple tuple;
  tuple.src = address(src);
  tuple.dst = address(dst);
  tuple.protocol = tuple.src.isV4() ? Protocol::Icmp : Protocol::Icmpv6;
  tuple.icmp_type = type;
  tuple.icmp_code = code;
  tuple.icmp_id = id;
  return tuple;
}

FlowTuple greTuple(std::string_view src, std::string_view dst, std::uint16_t src_key, std::uint16_t dst_key) {
  return portTuple(Protocol::Gre, src, src_key, dst, dst_key);
}

FlowTuple protocolTuple(std::string_view src, std::string_view dst, Protocol protocol) {
  return portTuple(protocol, src, 0, dst, 0);
}

FlowTuple invertTuple(const FlowTuple& original) {
  FlowTuple reply = original;
  std::swap(reply.src, reply.dst);
  std::swap(reply.src_port, reply.dst_port);
  if (isIcmp(original.protocol)) {
    reply.icmp_type = invertIcmpType(original.protocol, original.icmp_type);
  }
  return reply;
}

// Writes attributes with libmnl into an aligned buffer while tracking the path of nests, so that
// the builder's omit/payloadSize/attributeLength/extraAttribute requests apply where they name.
class CtMessageBuilder::Writer {
public:
  Writer(const CtMessageBuilder& spec, std::size_t capacity)
      : spec_(spec),
        storage_((capacity + sizeof(std::uint32_t) - 1) / sizeof(std::uint32_t)),
        nlh_(mnl_nlmsg_put_header(storage_.data())) {}

  nlmsghdr& header() noexcept { return *nlh_; }

  void putExtraHeader(const nfgenmsg& generic) {
    void* extra = mnl_nlmsg_put_extra_header(nlh_, sizeof(generic));
    std::memcpy(extra, &generic, sizeof(generic));
  }

  void put(std::uint16_t type, std::span<const std::byte> value) {
    const CtAttrPath path = pathTo(type);
    if (omitted(path)) {
      return;
    }
    noteOffset(path);
    if (const auto* size = sizeOverride(path)) {
      putFiller(type, *size);
      return;
    }
    putRaw(type, value);
  }

  // Writes an attribute as given, past every override.
  void putRaw(std::uint16_t type, std::span<const std::byte> value) {
    static constexpr std::byte kNothing{};
    mnl_attr_put(nlh_, type, value.size(), value.empty() ? &kNothing : value.data());
  }

  void putU8(std::uint16_t type, std::uint8_t value) { put(type, std::as_bytes(std::span{&value, 1})); }
  void putBe16(std::uint16_t type, std::uint16_t value) {
    const std::uint16_t be = htobe16(value);
    put(type, std::as_bytes(std::span{&be, 1}));
  }
  void putBe32(std::uint16_t type, std::uint32_t value) {
    const std::uint32_t be = htobe32(value);
    put(type, std::as_bytes(std::span{&be, 1}));
  }
  void putBe64(std::uint16_t type, std::uint64_t value) {
    const std::uint64_t be = htobe64(value);
    put(type, std::as_bytes(std::span{&be, 1}));
  }

  // Opens a nest; false when it was omitted or replaced by a filler (then no end() call).
  bool begin(std::uint16_t type) {
    const CtAttrPath path = pathTo(type);
    if (omitted(path)) {
      return false;
    }
    noteOffset(path);
    if (const auto* size = sizeOverride(path)) {
      putFiller(type, *size);
      return false;
    }
    open_.push_back(mnl_attr_nest_start(nlh_, type));
    path_.push_back(type);
    return true;
  }

  void end() {
    putExtras();
    mnl_attr_nest_end(nlh_, open_.back());
    open_.pop_back();
    path_.pop_back();
  }

  // Appends the extra attributes requested for the current nest (or the top level).
  void putExtras() {
    for (const Extra& extra : spec_.extras_) {
      if (extra.parent == path_) {
        putRaw(extra.type, extra.payload);
      }
    }
  }

  std::vector<std::byte> finish() {
    for (const auto& [offset, nla_len] : patches_) {
      std::memcpy(reinterpret_cast<std::byte*>(storage_.data()) + offset, &nla_len, sizeof(nla_len));
    }
    const auto* begin = reinterpret_cast<const std::byte*>(storage_.data());
    return {begin, begin + nlh_->nlmsg_len};
  }

private:
  [[nodiscard]] CtAttrPath pathTo(std::uint16_t type) const {
    CtAttrPath path = path_;
    path.push_back(type);
    return path;
  }

  [[nodiscard]] bool omitted(const CtAttrPath& path) const {
    return std::find(spec_.omitted_.begin(), spec_.omitted_.end(), path) != spec_.omitted_.end();
  }

  [[nodiscard]] const std::size_t* sizeOverride(const CtAttrPath& path) const {
    for (const SizeOverride& size : spec_.sizes_) {
      if (size.path == path) {
        return &size.bytes;
      }
    }
    return nullptr;
  }

  // Remembers where the attribute about to be written starts if its nla_len is to be corrupted.
  void noteOffset(const CtAttrPath& path) {
    for (const LengthOverride& length : spec_.lengths_) {
      if (length.path == path) {
        patches_.emplace_back(nlh_->nlmsg_len + offsetof(nlattr, nla_len), length.nla_len);
      }
    }
  }

  void putFiller(std::uint16_t type, std::size_t bytes) {
    const std::vector<std::byte> filler(bytes, std::byte{0xA5});
    putRaw(type, filler);
  }

  const CtMessageBuilder& spec_;
  std::vector<std::uint32_t> storage_;  // uint32_t keeps the netlink buffer 4-byte aligned
  nlmsghdr* nlh_;
  CtAttrPath path_;
  std::vector<nlattr*> open_;
  std::vector<std::pair<std::size_t, std::uint16_t>> patches_;
};

CtMessageBuilder::CtMessageBuilder()
    : nlmsg_type_(messageType(IPCTNL_MSG_CT_NEW)),
      nlmsg_flags_(NLM_F_CREATE | NLM_F_EXCL),
      original_(tcpTuple("100.64.0.2", 33000, "198.51.100.1", 80)),
      status_(ct_status::kConfirmed) {}

CtMessageBuilder& CtMessageBuilder::newEvent() {
  nlmsg_type_ = messageType(IPCTNL_MSG_CT_NEW);
  nlmsg_flags_ = NLM_F_CREATE | NLM_F_EXCL;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::updateEvent() {
  nlmsg_type_ = messageType(IPCTNL_MSG_CT_NEW);
  nlmsg_flags_ = 0;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::destroyEvent() {
  nlmsg_type_ = messageType(IPCTNL_MSG_CT_DELETE);
  nlmsg_flags_ = 0;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::dumpRow() {
  nlmsg_type_ = messageType(IPCTNL_MSG_CT_NEW);
  nlmsg_flags_ = NLM_F_MULTI;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::nlmsgType(std::uint16_t type) {
  nlmsg_type_ = type;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::nlmsgFlags(std::uint16_t flags) {
  nlmsg_flags_ = flags;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::family(std::uint8_t nfgen_family) {
  family_ = nfgen_family;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::original(const FlowTuple& tuple) {
  original_ = tuple;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::reply(const FlowTuple& tuple) {
  reply_ = tuple;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::snat(const Endpoint& translated) {
  snat_ = translated;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::dnat(const Endpoint& real_destination) {
  dnat_ = real_destination;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::status(std::uint32_t status) {
  status_ = status;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::mark(std::uint32_t mark) {
  mark_ = mark;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::id(std::uint32_t id) {
  id_ = id;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::zone(std::uint16_t zone) {
  zone_ = zone;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::originalTupleZone(std::uint16_t zone) {
  original_zone_ = zone;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::replyTupleZone(std::uint16_t zone) {
  reply_zone_ = zone;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::tcpState(std::uint8_t state) {
  tcp_state_ = state;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::countersOriginal(std::uint64_t packets, std::uint64_t bytes) {
  counters_original_ = CountersSpec{packets, bytes, false};
  return *this;
}

CtMessageBuilder& CtMessageBuilder::countersReply(std::uint64_t packets, std::uint64_t bytes) {
  counters_reply_ = CountersSpec{packets, bytes, false};
  return *this;
}

CtMessageBuilder& CtMessageBuilder::counters32Original(std::uint32_t packets, std::uint32_t bytes) {
  counters_original_ = CountersSpec{packets, bytes, true};
  return *this;
}

CtMessageBuilder& CtMessageBuilder::counters32Reply(std::uint32_t packets, std::uint32_t bytes) {
  counters_reply_ = CountersSpec{packets, bytes, true};
  return *this;
}

CtMessageBuilder& CtMessageBuilder::timestampStart(Timestamp start) {
  start_ = start;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::timestampStop(Timestamp stop) {
  stop_ = stop;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::eventTimestamp(Timestamp time) {
  event_time_ = time;
  return *this;
}

CtMessageBuilder& CtMessageBuilder::eventTimestampPadding() {
  event_time_padding_ = true;
  return *this;
}

FlowTuple CtMessageBuilder::replyTuple() const {
  if (reply_) {
    return *reply_;
  }
  FlowTuple reply = invertTuple(original_);
  const bool icmp = isIcmp(original_.protocol);
  if (snat_) {
    reply.dst = snat_->address;
    (icmp ? reply.icmp_id : reply.dst_port) = snat_->port;
  }
  if (dnat_) {
    reply.src = dnat_->address;
    (icmp ? reply.icmp_id : reply.src_port) = dnat_->port;
  }
  return reply;
}

CtMessageBuilder& CtMessageBuilder::omit(CtAttrPath path) {
  omitted_.push_back(std::move(path));
  return *this;
}

CtMessageBuilder& CtMessageBuilder::payloadSize(CtAttrPath path, std::size_t bytes) {
  sizes_.push_back(SizeOverride{std::move(path), bytes});
  return *this;
}

CtMessageBuilder& CtMessageBuilder::attributeLength(CtAttrPath path, std::uint16_t nla_len) {
  lengths_.push_back(LengthOverride{std::move(path), nla_len});
  return *this;
}

CtMessageBuilder& CtMessageBuilder::extraAttribute(CtAttrPath parent, std::uint16_t type,
                                                   std::vector<std::byte> payload) {
  extras_.push_back(Extra{std::move(parent), type, std::move(payload)});
  return *this;
}

CtMessageBuilder& CtMessageBuilder::truncateTo(std::size_t bytes) {
  truncate_to_ = bytes;
  return *this;
}

namespace {

void writeTuple(auto& writer, std::uint16_t type, const FlowTuple& tuple, std::optional<std::uint16_t> zone) {
  if (!writer.begin(type)) {
    return;
  }
  if (writer.begin(CTA_TUPLE_IP)) {
    const bool v4 = tuple.src.isV4();
    writer.put(v4 ? CTA_IP_V4_SRC : CTA_IP_V6_SRC, std::as_bytes(tuple.src.bytes()));
    writer.put(v4 ? CTA_IP_V4_DST : CTA_IP_V6_DST, std::as_bytes(tuple.dst.bytes()));
    writer.end();
  }
  if (writer.begin(CTA_TUPLE_PROTO)) {
    writer.putU8(CTA_PROTO_NUM, static_cast<std::uint8_t>(tuple.protocol));
    if (tuple.protocol == Protocol::Icmp) {
      writer.putBe16(CTA_PROTO_ICMP_ID, tuple.icmp_id);
      writer.putU8(CTA_PROTO_ICMP_TYPE, tuple.icmp_type);
      writer.putU8(CTA_PROTO_ICMP_CODE, tuple.icmp_code);
    } else if (tuple.protocol == Protocol::Icmpv6) {
      writer.putBe16(CTA_PROTO_ICMPV6_ID, tuple.icmp_id);
      writer.putU8(CTA_PROTO_ICMPV6_TYPE, tuple.icmp_type);
      writer.putU8(CTA_PROTO_ICMPV6_CODE, tuple.icmp_code);
    } else if (hasPorts(tuple.protocol) || tuple.protocol == Protocol::Gre) {
      writer.putBe16(CTA_PROTO_SRC_PORT, tuple.src_port);
      writer.putBe16(CTA_PROTO_DST_PORT, tuple.dst_port);
    }
    writer.end();
  }
  if (zone) {
    writer.putBe16(CTA_TUPLE_ZONE, *zone);
  }
  writer.end();
}

}  // namespace

std::vector<std::byte> CtMessageBuilder::build() const {
  std::size_t capacity = 4096;
  for (const Extra& extra : extras_) {
    capacity += extra.payload.size() + 8;
  }
  for (const SizeOverride& size : sizes_) {
    capacity += size.bytes + 8;
  }
  Writer writer(*this, capacity);
  writer.header().nlmsg_type = nlmsg_type_;
  writer.header().nlmsg_flags = nlmsg_flags_;
  nfgenmsg generic{};
  generic.nfgen_family = family_.value_or(original_.src.isV4() ? AF_INET : AF_INET6);
  generic.version = NFNETLINK_V0;
  writer.putExtraHeader(generic);

  // The order of ctnetlink_conntrack_event(): tuples, zone, id, status, timeout, counters and
  // timestamps (DESTROY), protoinfo, mark, event timestamp.
  writeTuple(writer, CTA_TUPLE_ORIG, original_, original_zone_);
  writeTuple(writer, CTA_TUPLE_REPLY, replyTuple(), reply_zone_);
  if (zone_) {
    writer.putBe16(CTA_ZONE, *zone_);
  }
  writer.putBe32(CTA_ID, id_);
  std::uint32_t status = status_;
  if (snat_) {
    status |= ct_status::kSrcNat | ct_status::kSrcNatDone;
  }
  if (dnat_) {
    status |= ct_status::kDstNat | ct_status::kDstNatDone;
  }
  writer.putBe32(CTA_STATUS, status);
  writer.putBe32(CTA_TIMEOUT, 120);
  const auto writeCounters = [&writer](std::uint16_t type, const std::optional<CountersSpec>& counters) {
    if (!counters || !writer.begin(type)) {
      return;
    }
    if (counters->legacy32) {
      writer.putBe32(CTA_COUNTERS32_PACKETS, static_cast<std::uint32_t>(counters->packets));
      writer.putBe32(CTA_COUNTERS32_BYTES, static_cast<std::uint32_t>(counters->bytes));
    } else {
      writer.putBe64(CTA_COUNTERS_PACKETS, counters->packets);
      writer.putBe64(CTA_COUNTERS_BYTES, counters->bytes);
    }
    writer.end();
  };
  writeCounters(CTA_COUNTERS_ORIG, counters_original_);
  writeCounters(CTA_COUNTERS_REPLY, counters_reply_);
  if ((start_ || stop_) && writer.begin(CTA_TIMESTAMP)) {
    if (start_) {
      writer.putBe64(CTA_TIMESTAMP_START, static_cast<std::uint64_t>(toUnixNanos(*start_)));
    }
    if (stop_) {
      writer.putBe64(CTA_TIMESTAMP_STOP, static_cast<std::uint64_t>(toUnixNanos(*stop_)));
    }
    writer.end();
  }
  if (tcp_state_ && writer.begin(CTA_PROTOINFO)) {
    if (writer.begin(CTA_PROTOINFO_TCP)) {
      writer.putU8(CTA_PROTOINFO_TCP_STATE, *tcp_state_);
      writer.end();
    }
    writer.end();
  }
  writer.putBe32(CTA_MARK, mark_);
  writer.putExtras();
  if (event_time_) {
    if (event_time_padding_) {
      writer.putRaw(CTA_TIMESTAMP_PAD, {});
    }
    writer.putBe64(daemon::kCtaTimestampEvent, static_cast<std::uint64_t>(toUnixNanos(*event_time_)));
  }

  std::vector<std::byte> message = writer.finish();
  if (truncate_to_ && *truncate_to_ < message.size()) {
    message.resize(*truncate_to_);
  }
  return message;
}

}  // namespace ctaudit::testing
