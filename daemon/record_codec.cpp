// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/record_codec.hpp"

#include <array>
#include <cassert>
#include <cstdint>
#include <cstring>
#include <span>

#include "flow/varint.hpp"

namespace ctaudit::daemon {
namespace {

// flags[0]
constexpr unsigned kEventMask = 0x03U;
constexpr unsigned kHasTcpState = 1U << 2U;
constexpr unsigned kHasCountersOriginal = 1U << 3U;
constexpr unsigned kHasCountersReply = 1U << 4U;
constexpr unsigned kHasStart = 1U << 5U;
constexpr unsigned kHasEnd = 1U << 6U;
constexpr unsigned kObservedAtStart = 1U << 7U;
// flags[1]: three 2-bit time sources, then how each NAT endpoint is stored
constexpr unsigned kStartSourceShift = 0;
constexpr unsigned kEndSourceShift = 2;
constexpr unsigned kEventTimeSourceShift = 4;
constexpr unsigned kSourceMask = 0x03U;
constexpr unsigned kSourceNatShift = 6;
constexpr unsigned kDestinationNatShift = 4;  // in flags[2]
// A NAT endpoint: absent, the reply tuple's (what deriveNat() makes), or stored after the record.
enum class NatForm : std::uint8_t { None = 0, FromReply = 1, Stored = 2 };
constexpr unsigned kNatFormMask = 0x03U;
// flags[2]: which addresses are IPv6, one bit each in this order
constexpr unsigned kOrigSrcV6 = 1U << 0U;
constexpr unsigned kOrigDstV6 = 1U << 1U;
constexpr unsigned kReplySrcV6 = 1U << 2U;
constexpr unsigned kReplyDstV6 = 1U << 3U;
constexpr unsigned kSourceNatV6 = 1U << 6U;
constexpr unsigned kDestinationNatV6 = 1U << 7U;

// The largest record packRecord() writes: size and flags 4, ct_id 4, zone, mark and status as
// varints 3 + 5 + 5, the event time 8, two IPv6 tuples 2 × 41, the TCP state 1, four counters as
// varints 4 × 10, two relative times 2 × 10, two stored IPv6 NAT endpoints 2 × 18.
constexpr std::size_t kWorstCaseBytes = 4 + 4 + 3 + 5 + 5 + 8 + 2 * 41 + 1 + 4 * 10 + 2 * 10 + 2 * 18;
static_assert(kWorstCaseBytes <= kMaxPackedRecordBytes && kMaxPackedRecordBytes <= 255,
              "the size must fit its one byte");
static_assert(static_cast<unsigned>(EventType::Dump) <= kEventMask);
static_assert(static_cast<unsigned>(TimeSource::Bound) <= kSourceMask);
static_assert(static_cast<unsigned>(NatForm::Stored) <= kNatFormMask);

class Writer {
public:
  explicit Writer(std::vector<std::byte>& out) : out_(out) {}

  template <class T>
  void fixed(T value) {
    const auto at = out_.size();
    out_.resize(at + sizeof value);
    std::memcpy(out_.data() + at, &value, sizeof value);
  }
  void byte(unsigned value) { out_.push_back(static_cast<std::byte>(value)); }
  void varint(std::uint64_t value) {
    writeVarint(value, [this](std::uint8_t b) { byte(b); });
  }
  // Zigzag: small negative numbers stay short.
  void signedVarint(std::int64_t value) {
    varint((static_cast<std::uint64_t>(value) << 1U) ^ static_cast<std::uint64_t>(value >> 63));
  }
  void address(const IpAddress& address) {
    const auto bytes = address.bytes();
    const auto at = out_.size();
    out_.resize(at + bytes.size());
    std::memcpy(out_.data() + at, bytes.data(), bytes.size());
  }
  void tuple(const FlowTuple& t) {
    byte(static_cast<unsigned>(t.protocol));
    address(t.src);
    address(t.dst);
    fixed(t.src_port);
    fixed(t.dst_port);
    byte(t.icmp_type);
    byte(t.icmp_code);
    fixed(t.icmp_id);
  }

private:
  std::vector<std::byte>& out_;
};

class Reader {
public:
  explicit Reader(const std::byte* at) noexcept : at_(at) {}

  template <class T>
  T fixed() noexcept {
    T value;
    std::memcpy(&value, at_, sizeof value);
    at_ += sizeof value;
    return value;
  }
  unsigned byte() noexcept { return std::to_integer<unsigned>(*at_++); }
  std::uint64_t varint() noexcept {
    std::uint64_t value = 0;
    for (unsigned shift = 0;; shift += 7) {
      const unsigned b = byte();
      value |= static_cast<std::uint64_t>(b & 0x7FU) << shift;
      if ((b & 0x80U) == 0) {
        return value;
      }
    }
  }
  std::int64_t signedVarint() noexcept {
    const std::uint64_t z = varint();
    return static_cast<std::int64_t>((z >> 1U) ^ (~(z & 1U) + 1U));
  }
  IpAddress address(bool v6) noexcept {
    if (v6) {
      std::array<std::uint8_t, 16> bytes{};
      std::memcpy(bytes.data(), at_, bytes.size());
      at_ += bytes.size();
      return IpAddress::v6(bytes);
    }
    std::array<std::uint8_t, 4> bytes{};
    std::memcpy(bytes.data(), at_, bytes.size());
    at_ += bytes.size();
    return IpAddress::v4(std::span<const std::uint8_t, 4>(bytes));
  }
  FlowTuple tuple(bool src_v6, bool dst_v6) noexcept {
    FlowTuple t;
    t.protocol = static_cast<Protocol>(byte());
    t.src = address(src_v6);
    t.dst = address(dst_v6);
    t.src_port = fixed<std::uint16_t>();
    t.dst_port = fixed<std::uint16_t>();
    t.icmp_type = static_cast<std::uint8_t>(byte());
    t.icmp_code = static_cast<std::uint8_t>(byte());
    t.icmp_id = fixed<std::uint16_t>();
    return t;
  }
  [[nodiscard]] const std::byte* position() const noexcept { return at_; }

private:
  const std::byte* at_;
};

// Differences of times in modular arithmetic: any two Timestamps round-trip, however far apart
// (a kernel time is whatever the message said), without signed overflow.
std::int64_t nanosSince(Timestamp time, std::int64_t base_ns) noexcept {
  return static_cast<std::int64_t>(static_cast<std::uint64_t>(toUnixNanos(time)) - static_cast<std::uint64_t>(base_ns));
}
Timestamp addNanos(std::int64_t base_ns, std::int64_t delta) noexcept {
  return fromUnixNanos(static_cast<std::int64_t>(static_cast<std::uint64_t>(base_ns) + static_cast<std::uint64_t>(delta)));
}

unsigned v6Bit(const IpAddress& address, unsigned bit) noexcept { return address.isV4() ? 0U : bit; }

NatForm natForm(const std::optional<Endpoint>& endpoint, const Endpoint& from_reply) noexcept {
  if (!endpoint) {
    return NatForm::None;
  }
  return endpoint->address == from_reply.address && endpoint->port == from_reply.port ? NatForm::FromReply
                                                                                       : NatForm::Stored;
}

// What deriveNat() takes from the reply tuple for each side.
Endpoint sourceFromReply(const FlowTuple& reply) noexcept { return {reply.dst, reply.destinationKey()}; }
Endpoint destinationFromReply(const FlowTuple& reply) noexcept { return {reply.src, reply.sourceKey()}; }

std::optional<Endpoint> readNat(Reader& in, NatForm form, bool v6, const Endpoint& from_reply) noexcept {
  switch (form) {
    case NatForm::None:
      return std::nullopt;
    case NatForm::FromReply:
      return from_reply;
    case NatForm::Stored: {
      Endpoint e;
      e.address = in.address(v6);
      e.port = in.fixed<std::uint16_t>();
      return e;
    }
  }
  return std::nullopt;
}

}  // namespace

std::size_t packRecord(const FlowRecord& r, std::vector<std::byte>& out) {
  // Every enum fits its bit field (static_asserts above); a FlowRecord holding another value is a
  // bug upstream, and the masks below keep this record's bytes readable even then.
  assert(static_cast<unsigned>(r.event) <= kEventMask);
  assert(static_cast<unsigned>(r.start_source) <= kSourceMask && static_cast<unsigned>(r.end_source) <= kSourceMask &&
         static_cast<unsigned>(r.event_time_source) <= kSourceMask);
  const std::size_t begin = out.size();  // the vector grows geometrically: no reserve per record
  Writer w(out);
  const NatForm source_nat = natForm(r.nat.translated_source, sourceFromReply(r.reply));
  const NatForm destination_nat = natForm(r.nat.translated_destination, destinationFromReply(r.reply));

  w.byte(0);  // the size, filled in below
  w.byte((static_cast<unsigned>(r.event) & kEventMask) | (r.tcp_state ? kHasTcpState : 0U) |
         (r.counters_original ? kHasCountersOriginal : 0U) | (r.counters_reply ? kHasCountersReply : 0U) |
         (r.start ? kHasStart : 0U) | (r.end ? kHasEnd : 0U) | (r.observed_at_start ? kObservedAtStart : 0U));
  w.byte(((static_cast<unsigned>(r.start_source) & kSourceMask) << kStartSourceShift) |
         ((static_cast<unsigned>(r.end_source) & kSourceMask) << kEndSourceShift) |
         ((static_cast<unsigned>(r.event_time_source) & kSourceMask) << kEventTimeSourceShift) |
         (static_cast<unsigned>(source_nat) << kSourceNatShift));
  w.byte(v6Bit(r.original.src, kOrigSrcV6) | v6Bit(r.original.dst, kOrigDstV6) | v6Bit(r.reply.src, kReplySrcV6) |
         v6Bit(r.reply.dst, kReplyDstV6) | (static_cast<unsigned>(destination_nat) << kDestinationNatShift) |
         (source_nat == NatForm::Stored ? v6Bit(r.nat.translated_source->address, kSourceNatV6) : 0U) |
         (destination_nat == NatForm::Stored ? v6Bit(r.nat.translated_destination->address, kDestinationNatV6)
                                             : 0U));
  w.fixed(r.ct_id);
  w.varint(r.zone);
  w.varint(r.mark);
  w.varint(r.status);
  const std::int64_t event_ns = toUnixNanos(r.event_time);
  w.fixed(event_ns);
  w.tuple(r.original);
  w.tuple(r.reply);
  if (r.tcp_state) {
    w.byte(*r.tcp_state);
  }
  for (const auto* counters : {&r.counters_original, &r.counters_reply}) {
    if (*counters) {
      w.varint((*counters)->packets);
      w.varint((*counters)->bytes);
    }
  }
  // Relative to the event time: a NEW's start is its event time, a DESTROY's end is near it.
  if (r.start) {
    w.signedVarint(nanosSince(*r.start, event_ns));
  }
  if (r.end) {
    w.signedVarint(nanosSince(*r.end, event_ns));
  }
  for (const auto& [form, endpoint] :
       {std::pair{source_nat, &r.nat.translated_source}, std::pair{destination_nat, &r.nat.translated_destination}}) {
    if (form == NatForm::Stored) {
      w.address((*endpoint)->address);
      w.fixed((*endpoint)->port);
    }
  }
  const std::size_t size = out.size() - begin;
  assert(size <= kMaxPackedRecordBytes);
  out[begin] = static_cast<std::byte>(size);
  return size;
}

std::size_t packedRecordSize(const std::byte* at) noexcept { return std::to_integer<std::size_t>(*at); }

FlowRecord unpackRecord(const std::byte*& at) noexcept {
  Reader in(at);
  const std::size_t size = in.byte();
  const unsigned f0 = in.byte();
  const unsigned f1 = in.byte();
  const unsigned f2 = in.byte();
  FlowRecord r;
  r.event = static_cast<EventType>(f0 & kEventMask);
  r.observed_at_start = (f0 & kObservedAtStart) != 0;
  r.start_source = static_cast<TimeSource>((f1 >> kStartSourceShift) & kSourceMask);
  r.end_source = static_cast<TimeSource>((f1 >> kEndSourceShift) & kSourceMask);
  r.event_time_source = static_cast<TimeSource>((f1 >> kEventTimeSourceShift) & kSourceMask);
  r.ct_id = in.fixed<std::uint32_t>();
  r.zone = static_cast<std::uint16_t>(in.varint());
  r.mark = static_cast<std::uint32_t>(in.varint());
  r.status = static_cast<std::uint32_t>(in.varint());
  const auto event_ns = in.fixed<std::int64_t>();
  r.event_time = fromUnixNanos(event_ns);
  r.original = in.tuple((f2 & kOrigSrcV6) != 0, (f2 & kOrigDstV6) != 0);
  r.reply = in.tuple((f2 & kReplySrcV6) != 0, (f2 & kReplyDstV6) != 0);
  if ((f0 & kHasTcpState) != 0) {
    r.tcp_state = static_cast<std::uint8_t>(in.byte());
  }
  for (auto [flag, counters] : {std::pair{kHasCountersOriginal, &r.counters_original},
                                std::pair{kHasCountersReply, &r.counters_reply}}) {
    if ((f0 & flag) != 0) {
      Counters c;
      c.packets = in.varint();
      c.bytes = in.varint();
      *counters = c;
    }
  }
  if ((f0 & kHasStart) != 0) {
    r.start = addNanos(event_ns, in.signedVarint());
  }
  if ((f0 & kHasEnd) != 0) {
    r.end = addNanos(event_ns, in.signedVarint());
  }
  r.nat.translated_source = readNat(in, static_cast<NatForm>((f1 >> kSourceNatShift) & kNatFormMask),
                                    (f2 & kSourceNatV6) != 0, sourceFromReply(r.reply));
  r.nat.translated_destination = readNat(in, static_cast<NatForm>((f2 >> kDestinationNatShift) & kNatFormMask),
                                         (f2 & kDestinationNatV6) != 0, destinationFromReply(r.reply));
  assert(in.position() == at + size);
  at += size;
  return r;
}

}  // namespace ctaudit::daemon
