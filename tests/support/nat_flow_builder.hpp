// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "flow/ct_status.hpp"
#include "flow/flow_record.hpp"
#include "flow/nat.hpp"
#include "flow/time.hpp"

namespace ctaudit::testing {

// Builds the FlowRecord a stored, finished SNAT flow reads back as: by default TCP
// 100.64.0.2:33000 -> 198.51.100.1:443 seen outside as 203.0.113.7:40001, ct id 1, kernel times
// 2026-11-25T10:00:00Z .. 10:01:00Z, no counters. The NAT mapping is derived from the tuples with
// deriveNat, as the decoder does.
class NatFlowBuilder {
public:
  NatFlowBuilder& protocol(Protocol value) {
    protocol_ = value;
    return *this;
  }
  NatFlowBuilder& inside(std::string_view address, std::uint16_t port) {
    inside_ = {*IpAddress::parse(address), port};
    return *this;
  }
  NatFlowBuilder& translated(std::string_view address, std::uint16_t port) {
    translated_ = Endpoint{*IpAddress::parse(address), port};
    return *this;
  }
  NatFlowBuilder& noSnat() {
    translated_.reset();
    return *this;
  }
  NatFlowBuilder& destination(std::string_view address, std::uint16_t port) {
    destination_ = {*IpAddress::parse(address), port};
    return *this;
  }
  NatFlowBuilder& dnatTo(std::string_view address, std::uint16_t port) {
    dnat_to_ = Endpoint{*IpAddress::parse(address), port};
    return *this;
  }
  NatFlowBuilder& ctId(std::uint32_t id) {
    record_.ct_id = id;
    return *this;
  }
  NatFlowBuilder& zone(std::uint16_t value) {
    record_.zone = value;
    return *this;
  }
  NatFlowBuilder& mark(std::uint32_t value) {
    record_.mark = value;
    return *this;
  }
  NatFlowBuilder& start(std::string_view rfc3339, TimeSource source = TimeSource::Kernel) {
    record_.start = *parseTime(rfc3339);
    record_.start_source = source;
    return *this;
  }
  NatFlowBuilder& noStart() {
    record_.start.reset();
    return *this;
  }
  NatFlowBuilder& end(std::string_view rfc3339, TimeSource source = TimeSource::Kernel) {
    record_.end = *parseTime(rfc3339);
    record_.end_source = source;
    record_.event = EventType::Destroy;
    return *this;
  }
  // Not ended yet: the database returns it as its NEW event.
  NatFlowBuilder& open() {
    record_.end.reset();
    record_.event = EventType::New;
    return *this;
  }
  NatFlowBuilder& counters(Counters out, Counters in) {
    record_.counters_original = out;
    record_.counters_reply = in;
    return *this;
  }
  NatFlowBuilder& observedAtStart() {
    record_.observed_at_start = true;
    return *this;
  }

  [[nodiscard]] FlowRecord build() const {
    FlowRecord record = record_;
    const bool icmp = isIcmp(protocol_);
    record.original = tuple(inside_, destination_);
    const Endpoint reply_src = dnat_to_.value_or(destination_);
    const Endpoint reply_dst = translated_.value_or(inside_);
    record.reply = tuple(reply_src, reply_dst);
    if (icmp) {
      record.reply.icmp_type = 0;  // echo reply
      record.reply.icmp_id = reply_dst.port;
    }
    record.status = ct_status::kConfirmed | ct_status::kSeenReply | ct_status::kAssured |
                    (translated_ ? ct_status::kSrcNat : 0U) | (dnat_to_ ? ct_status::kDstNat : 0U);
    record.nat = deriveNat(record.status, record.original, record.reply);
    return record;
  }

private:
  // For ICMP the source "port" is the id and the destination has none.
  [[nodiscard]] FlowTuple tuple(const Endpoint& src, const Endpoint& dst) const {
    FlowTuple t;
    t.src = src.address;
    t.dst = dst.address;
    t.protocol = protocol_;
    if (isIcmp(protocol_)) {
      t.icmp_type = 8;  // echo request
      t.icmp_id = src.port;
    } else {
      t.src_port = src.port;
      t.dst_port = dst.port;
    }
    return t;
  }

  static FlowRecord defaults() {
    FlowRecord record;
    record.event = EventType::Destroy;
    record.ct_id = 1;
    record.start = *parseTime("2026-11-25T10:00:00Z");
    record.start_source = TimeSource::Kernel;
    record.end = *parseTime("2026-11-25T10:01:00Z");
    record.end_source = TimeSource::Kernel;
    return record;
  }

  Protocol protocol_{Protocol::Tcp};
  Endpoint inside_{*IpAddress::parse("100.64.0.2"), 33000};
  std::optional<Endpoint> translated_{Endpoint{*IpAddress::parse("203.0.113.7"), 40001}};
  Endpoint destination_{*IpAddress::parse("198.51.100.1"), 443};
  std::optional<Endpoint> dnat_to_;
  FlowRecord record_{defaults()};
};

}  // namespace ctaudit::testing
