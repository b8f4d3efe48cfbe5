// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/flow_builders.hpp"

#include <array>
#include <cstdlib>
#include <iostream>
#include <string>

#include "flow/ct_status.hpp"
#include "flow/nat.hpp"
#include "flow/protocol.hpp"

namespace ctaudit::testing {
namespace {

// TCP_CONNTRACK_* values (include/uapi/linux/netfilter/nf_conntrack_tcp.h).
constexpr std::uint8_t kSynSent = 1;
constexpr std::uint8_t kEstablished = 3;
constexpr std::uint8_t kTimeWait = 7;

void setSourceKey(FlowTuple& tuple, std::uint16_t value) {
  if (isIcmp(tuple.protocol)) {
    tuple.icmp_id = value;
  } else {
    tuple.src_port = value;
  }
}

void setDestinationKey(FlowTuple& tuple, std::uint16_t value) {
  if (isIcmp(tuple.protocol)) {
    tuple.icmp_id = value;
  } else {
    tuple.dst_port = value;
  }
}

}  // namespace

IpAddress ip(std::string_view text) {
  const auto address = IpAddress::parse(text);
  if (!address) {
    std::cerr << "flow_builders: bad address literal '" << text << "'\n";
    std::abort();
  }
  return *address;
}

FlowTuple portTuple(Protocol protocol, std::string_view src, std::uint16_t src_port, std::string_view dst,
                    std::uint16_t dst_port) {
  FlowTuple tuple;
  tuple.protocol = protocol;
  tuple.src = ip(src);
  tuple.dst = ip(dst);
  tuple.src_port = src_port;
  tuple.dst_port = dst_port;
  return tuple;
}

FlowTuple icmpTuple(Protocol protocol, std::string_view src, std::string_view dst, std::uint8_t type,
                    std::uint8_t code, std::uint16_t id) {
  FlowTuple tuple;
  tuple.protocol = protocol;
  tuple.src = ip(src);
  tuple.dst = ip(dst);
  tuple.icmp_type = type;
  tuple.icmp_code = code;
  tuple.icmp_id = id;
  return tuple;
}

FlowTuple replyOf(const FlowTuple& original) {
  FlowTuple reply = original;
  reply.src = original.dst;
  reply.dst = original.src;
  reply.src_port = original.dst_port;
  reply.dst_port = original.src_port;
  if (original.protocol == Protocol::Icmp && original.icmp_type == 8) {
    reply.icmp_type = 0;
  } else if (original.protocol == Protocol::Icmpv6 && original.icmp_type == 128) {
    reply.icmp_type = 129;
  }
  return reply;
}

FlowTuple withSnat(FlowTuple reply, std::string_view address, std::uint16_t port) {
  reply.dst = ip(address);
  setDestinationKey(reply, port);
  return reply;
}

FlowTuple withDnat(FlowTuple reply, std::string_view address, std::uint16_t port) {
  reply.src = ip(address);
  setSourceKey(reply, port);
  return reply;
}

FlowRecord flowEvent(EventType event, std::uint32_t ct_id, const FlowTuple& original, const FlowTuple& reply,
                     Timestamp time) {
  FlowRecord record;
  record.event = event;
  record.ct_id = ct_id;
  record.original = original;
  record.reply = reply;

  // Which side was translated, judged from the tuples as the kernel would have set the bits. Not
  // deriveNat(0, …): for ICMP the id is both tuples' only key, so a translated id would count as
  // a DNAT too; the kernel rewrites it with SNAT (nf_nat_icmp_manip_pkt).
  std::uint32_t status = ct_status::kConfirmed | ct_status::kSeenReply | ct_status::kAssured;
  const bool icmp = isIcmp(original.protocol);
  if (reply.dst != original.src || reply.destinationKey() != original.sourceKey()) {
    status |= ct_status::kSrcNat | ct_status::kSrcNatDone;
  }
  if (reply.src != original.dst || (!icmp && reply.src_port != original.dst_port)) {
    status |= ct_status::kDstNat | ct_status::kDstNatDone;
  }
  record.status = status;
  record.nat = deriveNat(status, original, reply);

  if (original.protocol == Protocol::Tcp) {
    switch (event) {
      case EventType::New:
        record.tcp_state = kSynSent;
        break;
      case EventType::Update:
      case EventType::Dump:
        record.tcp_state = kEstablished;
        break;
      case EventType::Destroy:
        record.tcp_state = kTimeWait;
        break;
    }
  }
  record.event_time = time;
  record.event_time_source = TimeSource::Receive;
  record.start_source = TimeSource::Receive;
  record.end_source = TimeSource::Receive;
  if (event == EventType::New || event == EventType::Dump) {
    record.start = time;
  }
  if (event == EventType::Destroy) {
    record.end = time;
  }
  if (event == EventType::Destroy || event == EventType::Dump) {
    record.counters_original = Counters{10, 1000};
    record.counters_reply = Counters{8, 4000};
  }
  record.observed_at_start = event == EventType::Dump;
  return record;
}

}  // namespace ctaudit::testing

namespace ctaudit {
namespace {

void printTuple(const FlowTuple& tuple, std::ostream& out) {
  out << protocolName(tuple.protocol) << ' ' << tuple.src.toString() << ' ' << tuple.dst.toString();
  if (isIcmp(tuple.protocol)) {
    out << " type=" << unsigned{tuple.icmp_type} << " code=" << unsigned{tuple.icmp_code}
        << " id=" << tuple.icmp_id;
  } else {
    out << " sport=" << tuple.src_port << " dport=" << tuple.dst_port;
  }
}

void printTime(const std::optional<Timestamp>& time, TimeSource source, std::ostream& out) {
  if (!time) {
    out << "-";
    return;
  }
  out << formatRfc3339(*time) << (source == TimeSource::Kernel ? "(kernel)" : "(receive)");
}

void printCounters(const std::optional<Counters>& counters, std::ostream& out) {
  if (!counters) {
    out << "-";
    return;
  }
  out << counters->packets << "p/" << counters->bytes << "B";
}

}  // namespace

void PrintTo(const FlowRecord& record, std::ostream* out) {
  static constexpr std::array<const char*, 4> kEvents{"New", "Update", "Destroy", "Dump"};
  *out << "{" << kEvents.at(static_cast<std::size_t>(record.event)) << " id=" << record.ct_id
       << " zone=" << record.zone << " mark=" << record.mark << " status=0x" << std::hex << record.status << std::dec
       << " tcp_state=";
  if (record.tcp_state) {
    *out << unsigned{*record.tcp_state};
  } else {
    *out << "-";
  }
  *out << " orig=[";
  printTuple(record.original, *out);
  *out << "] reply=[";
  printTuple(record.reply, *out);
  *out << "] snat=" << (record.nat.translated_source ? record.nat.translated_source->toString() : "-")
       << " dnat=" << (record.nat.translated_destination ? record.nat.translated_destination->toString() : "-")
       << " start=";
  printTime(record.start, record.start_source, *out);
  *out << " end=";
  printTime(record.end, record.end_source, *out);
  *out << " event_time=";
  printTime(record.event_time, record.event_time_source, *out);
  *out << " counters=";
  printCounters(record.counters_original, *out);
  *out << ",";
  printCounters(record.counters_reply, *out);
  *out << " observed_at_start=" << record.observed_at_start << "}";
}

}  // namespace ctaudit
