// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/json_mapping.hpp"

#include <algorithm>
#include <array>
#include <cassert>
#include <cstring>
#include <span>
#include <charconv>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "flow/ct_status.hpp"
#include "flow/utf8.hpp"
#include "storage/community_id.hpp"

namespace ctaudit::storage {
namespace {

// U+FFFD REPLACEMENT CHARACTER in UTF-8.
constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// True when `c` cannot be copied into a JSON string as it is: a quote, a backslash, a control
// character, or a byte of a multi-byte UTF-8 sequence (which must be checked).
constexpr bool needsCare(unsigned char c) noexcept { return c < 0x20U || c == '"' || c == '\\' || c >= 0x80U; }

// Writes `c` (ASCII) escaped as nlohmann's serialiser escapes it; returns the end.
char* writeEscapedAscii(char* p, unsigned char c) noexcept {
  const auto two = [&p](char escaped) {
    *p++ = '\\';
    *p++ = escaped;
    return p;
  };
  switch (c) {
    case '"': return two('"');
    case '\\': return two('\\');
    case '\b': return two('b');
    case '\f': return two('f');
    case '\n': return two('n');
    case '\r': return two('r');
    case '\t': return two('t');
    default: break;
  }
  if (c < 0x20U) {
    constexpr std::string_view kHex = "0123456789abcdef";
    for (const char out : {'\\', 'u', '0', '0', kHex[c >> 4U], kHex[c & 0xFU]}) {
      *p++ = out;
    }
    return p;
  }
  *p++ = static_cast<char>(c);
  return p;
}

// The most bytes writeJsonString() writes for `text`: quotes, and at most six bytes for one input
// byte (a control character as \u00XX; an ill-formed byte becomes three, U+FFFD).
constexpr std::size_t maxJsonStringSize(std::string_view text) noexcept { return 2 + 6 * text.size(); }

// Writes `text` as a JSON string at `p` (appendJsonString's contract), which must have room for
// maxJsonStringSize(text) bytes; returns the end. Runs of bytes that need nothing are copied whole.
char* writeJsonString(char* p, std::string_view text) noexcept {
  *p++ = '"';
  const auto* const bytes = reinterpret_cast<const unsigned char*>(text.data());  // NOLINT: bytes of chars
  const std::size_t size = text.size();
  std::size_t plain_from = 0;  // bytes [plain_from, i) are copied as they are
  const auto copyPlain = [&](std::size_t to) {
    std::memcpy(p, text.data() + plain_from, to - plain_from);
    p += to - plain_from;
  };
  std::size_t i = 0;
  while (i < size) {
    const unsigned char c = bytes[i];
    if (!needsCare(c)) {
      ++i;
      continue;
    }
    if (c < 0x80U) {
      copyPlain(i);
      p = writeEscapedAscii(p, c);
      plain_from = ++i;
      continue;
    }
    const Utf8Lead lead = utf8Lead(c);
    std::size_t next = i + 1;
    std::size_t have = 0;
    for (; have < lead.needed && next < size; ++have, ++next) {
      const unsigned char byte = bytes[next];
      const unsigned char low = have == 0 ? lead.low : 0x80U;
      const unsigned char high = have == 0 ? lead.high : 0xBFU;
      if (byte < low || byte > high) {
        break;
      }
    }
    if (lead.needed > 0 && have == lead.needed) {
      i = next;  // a well-formed sequence: stays in the plain run
      continue;
    }
    // Ill-formed: the lead and the continuation bytes that fitted become one U+FFFD; the byte that
    // did not fit (if any) is looked at again as the start of what follows.
    copyPlain(i);
    std::memcpy(p, kReplacement.data(), kReplacement.size());
    p += kReplacement.size();
    i = lead.needed == 0 ? i + 1 : next;
    plain_from = i;
  }
  copyPlain(size);
  *p++ = '"';
  return p;
}

// Appends JSON text to a caller's buffer, member by member, in the order they are written: the
// order docs/json.md lists and the golden files hold. Keys are literals of this file, plain ASCII
// that needs no escaping; values that come from outside go through appendJsonString. Tracks only
// whether a comma is due at each nesting level.
class JsonWriter {
public:
  // Writes into `room`, which must hold the whole line (maxLineSize()). Each member is written
  // through a plain pointer, without the capacity check and call of every std::string append.
  explicit JsonWriter(std::span<char> room) noexcept : begin_(room.data()), p_(room.data()), end_(p_ + room.size()) {}

  // The bytes written so far.
  [[nodiscard]] std::size_t size() const noexcept {
    assert(p_ <= end_);  // maxLineSize() bounds every line; json_mapping_test checks the worst case
    return static_cast<std::size_t>(p_ - begin_);
  }

  void beginObject() {
    value();
    put('{');
    push();
  }
  void beginObject(std::string_view key) {
    this->key(key);
    put('{');
    push();
  }
  void endObject() {
    put('}');
    --depth_;
  }
  void beginArray(std::string_view key) {
    this->key(key);
    put('[');
    push();
  }
  void endArray() {
    put(']');
    --depth_;
  }

  // A string value known to need no escaping: fixed names, addresses, times, base64.
  void ascii(std::string_view key, std::string_view text) {
    this->key(key);
    quoted(text);
  }
  // An array element of the same kind.
  void ascii(std::string_view text) {
    value();
    quoted(text);
  }
  // A string from outside (host names, labels): escaped. maxLineSize() counts it.
  void string(std::string_view key, std::string_view text) {
    this->key(key);
    p_ = writeJsonString(p_, text);
  }
  template <std::integral Integer>
  void number(std::string_view key, Integer number) {
    this->key(key);
    p_ = std::to_chars(p_, end_, number).ptr;
  }
  void boolean(std::string_view key, bool value) {
    this->key(key);
    put(value ? std::string_view{"true"} : std::string_view{"false"});
  }
  void time(std::string_view key, Timestamp t) {
    this->key(key);
    put('"');
    p_ = formatRfc3339(t, std::span<char, kRfc3339Size>(p_, kRfc3339Size));
    put('"');
  }
  void address(std::string_view key, const IpAddress& address) {
    this->key(key);
    put('"');
    p_ = address.format(std::span<char, IpAddress::kMaxTextSize>(p_, IpAddress::kMaxTextSize));
    put('"');
  }

private:
  // Objects nest four deep at most (root, conntrack, original/time_source, ...).
  static constexpr std::size_t kMaxDepth = 8;

  void put(char c) noexcept { *p_++ = c; }
  void put(std::string_view text) noexcept {
    std::memcpy(p_, text.data(), text.size());
    p_ += text.size();
  }
  void push() noexcept { has_member_.at(++depth_) = false; }
  // Before any value: the comma that separates it from the one before, at this level.
  void value() {
    if (has_member_.at(depth_)) {
      put(',');
    }
    has_member_.at(depth_) = true;
  }
  void key(std::string_view key) {
    value();
    put('"');
    put(key);
    put('"');
    put(':');
  }
  void quoted(std::string_view text) {
    put('"');
    put(text);
    put('"');
  }

  char* begin_;
  char* p_;
  char* end_;
  std::array<bool, kMaxDepth> has_member_{};
  std::size_t depth_{0};
};

// The longest line a record or gap can give, without its outside strings: every key and
// punctuation of the mapping, eight IPv6 addresses of 45 characters, four times, twenty-digit
// counters and all 32 status names come to about 1,900 bytes (json_mapping_test measures the worst
// case); 4 KiB leaves room for fields added later. The outside strings are added at their worst.
constexpr std::size_t kMaxLineWithoutStrings = 4096;
std::size_t maxLineSize(std::string_view hostname, std::string_view label = {}) noexcept {
  return kMaxLineWithoutStrings + maxJsonStringSize(hostname) + maxJsonStringSize(label);
}

// Runs `write` on a JsonWriter with room for `max_size` bytes and appends what it wrote to `out`.
// The room is a stack buffer, not zeroed (zero-filling 4 KiB in std::string::resize cost more
// than formatting the line, callgrind), then copied once; only a line with outside strings too
// long for it is written into `out` resized for the worst case instead.
template <class Write>
void appendBounded(std::string& out, std::size_t max_size, const Write& write) {
  constexpr std::size_t kStackRoom = 8192;
  if (max_size <= kStackRoom) {
    std::array<char, kStackRoom> room;  // NOLINT(cppcoreguidelines-pro-type-member-init): written before read
    JsonWriter json(std::span<char>(room.data(), max_size));
    write(json);
    out.append(room.data(), json.size());
    return;
  }
  const std::size_t start = out.size();
  out.resize(start + max_size);
  JsonWriter json(std::span<char>(out.data() + start, max_size));
  write(json);
  out.resize(start + json.size());
}

// end - start in nanoseconds, for end >= start, at most INT64_MAX: ECS types event.duration as a
// long, and Elasticsearch rejects a document whose long is out of range, which would drop exactly
// the gap line of a window clipped at a far-off --from. Computed unsigned, since two int64 times
// (a bogus kernel time) can lie further apart than INT64_MAX and signed overflow is undefined.
std::uint64_t durationNs(Timestamp start, Timestamp end) noexcept {
  const std::uint64_t span = static_cast<std::uint64_t>(toUnixNanos(end)) - static_cast<std::uint64_t>(toUnixNanos(start));
  return std::min<std::uint64_t>(span, std::numeric_limits<std::int64_t>::max());
}

std::string_view actionName(EventType event) noexcept {
  switch (event) {
    case EventType::New: return "new";
    case EventType::Update: return "update";
    case EventType::Destroy: return "destroy";
    case EventType::Dump: return "dump";
  }
  return "unknown";
}

// ECS event.type: a dump row is the first sight of a flow for this run, so it starts like a NEW.
void eventTypes(JsonWriter& json, EventType event) {
  json.beginArray("type");
  json.ascii("connection");
  switch (event) {
    case EventType::New:
    case EventType::Dump: json.ascii("start"); break;
    case EventType::Update: json.ascii("info"); break;
    case EventType::Destroy: json.ascii("end"); break;
  }
  json.endArray();
}

std::string_view timeSourceName(TimeSource source) noexcept {
  switch (source) {
    case TimeSource::Kernel: return "kernel";
    case TimeSource::Receive: return "receive";
    case TimeSource::Bound: return "bound";
  }
  return "unknown";
}

// A NAT endpoint: for ICMP the "port" is the echo id, which is what the kernel rewrites, and what a
// CGN log must name to identify a subscriber (RFC 6888).
void natJson(JsonWriter& json, const Endpoint& endpoint, Protocol protocol) {
  json.beginObject("nat");
  json.address("ip", endpoint.address);
  if (hasPorts(protocol) || isIcmp(protocol)) {
    json.number("port", endpoint.port);
  }
  json.endObject();
}

// One conntrack tuple as conntrack(8) prints it: protocol number, addresses, then ports or the
// ICMP type/code/id.
void tupleJson(JsonWriter& json, std::string_view key, const FlowTuple& tuple) {
  json.beginObject(key);
  json.number("protocol", static_cast<unsigned>(tuple.protocol));
  json.address("src", tuple.src);
  json.address("dst", tuple.dst);
  if (isIcmp(tuple.protocol)) {
    json.number("type", static_cast<unsigned>(tuple.icmp_type));
    json.number("code", static_cast<unsigned>(tuple.icmp_code));
    json.number("id", tuple.icmp_id);
  } else if (hasPorts(tuple.protocol)) {
    json.number("sport", tuple.src_port);
    json.number("dport", tuple.dst_port);
  }
  json.endObject();
}

void eventJson(JsonWriter& json, const FlowRecord& record) {
  json.beginObject("event");
  json.ascii("kind", "event");
  json.beginArray("category");
  json.ascii("network");
  json.endArray();
  eventTypes(json, record.event);
  json.ascii("action", actionName(record.event));
  if (record.start) {
    json.time("start", *record.start);
  }
  if (record.end) {
    json.time("end", *record.end);
  }
  // Kernel start and stop come from one clock, so end >= start; a receive-time start against a
  // kernel end could in theory be later by the socket delay. A negative duration would only mislead
  // a dashboard, so it is left out then; start and end still show both times. So is the duration
  // from a start that is only a bound (the query tool's first-seen time for an unknown start):
  // it would be less than the flow's, where a bound end's is more.
  if (record.start && record.end && *record.end >= *record.start && record.start_source != TimeSource::Bound) {
    json.number("duration", durationNs(*record.start, *record.end));
  }
  json.endObject();
}

void networkJson(JsonWriter& json, const FlowRecord& record) {
  json.beginObject("network");
  json.ascii("type", record.family() == Family::Ipv4 ? "ipv4" : "ipv6");
  json.ascii("transport", protocolName(record.original.protocol));
  // ECS types iana_number as a keyword, so it is a string.
  std::array<char, 4> number{};
  const auto iana = std::to_chars(number.data(), number.data() + number.size(),
                                  static_cast<unsigned>(record.original.protocol));
  json.ascii("iana_number", {number.data(), iana.ptr});
  if (std::array<char, kCommunityIdSize> id{}; communityId(record.original, id)) {  // written only if known
    json.ascii("community_id", {id.data(), id.size()});
  }
  json.endObject();
}

// source.* or destination.*: one side of the original tuple, the counters of the direction it
// sends (original for the source, reply for the destination) and its translation, if any.
void endpointJson(JsonWriter& json, std::string_view key, const IpAddress& address, std::uint16_t port,
                  Protocol protocol, const std::optional<Counters>& counters, const std::optional<Endpoint>& nat) {
  json.beginObject(key);
  json.address("ip", address);
  // ICMP has no ports (its id is in conntrack.original/reply and, where NAT rewrites it, in
  // nat.port); neither have GRE and the protocols conntrack tracks generically.
  if (hasPorts(protocol)) {
    json.number("port", port);
  }
  if (counters) {
    json.number("bytes", counters->bytes);
    json.number("packets", counters->packets);
  }
  if (nat) {
    natJson(json, *nat, protocol);
  }
  json.endObject();
}

void timeSourceJson(JsonWriter& json, const FlowRecord& record) {
  json.beginObject("time_source");
  if (record.start) {
    json.ascii("start", timeSourceName(record.start_source));
  }
  if (record.end) {
    json.ascii("end", timeSourceName(record.end_source));
  }
  json.ascii("event", timeSourceName(record.event_time_source));
  json.endObject();
}

void conntrackJson(JsonWriter& json, const FlowRecord& record) {
  json.beginObject("conntrack");
  json.number("id", record.ct_id);
  json.number("zone", record.zone);
  json.number("mark", record.mark);
  json.beginArray("status");
  for (unsigned bit = 0; bit < 32; ++bit) {
    if ((record.status & (1U << bit)) != 0) {
      json.ascii(statusBitName(bit));
    }
  }
  json.endArray();
  if (record.tcp_state) {
    json.ascii("tcp_state", tcpStateName(*record.tcp_state));
  }
  tupleJson(json, "original", record.original);
  tupleJson(json, "reply", record.reply);
  timeSourceJson(json, record);
  if (record.observed_at_start) {
    json.boolean("observed_at_start", true);
  }
  json.endObject();
}

void observerJson(JsonWriter& json, const JsonContext& context) {
  json.beginObject("observer");
  json.string("hostname", context.observer_hostname);
  json.endObject();
}

// ECS: "ecs.version is a required field and must exist in all events"; an integration reads it to
// know which field definitions a document follows.
void ecsJson(JsonWriter& json) {
  json.beginObject("ecs");
  json.ascii("version", kEcsVersion);
  json.endObject();
}

}  // namespace

void appendJsonString(std::string& out, std::string_view text) {
  const std::size_t size = out.size();
  out.resize(size + maxJsonStringSize(text));
  char* end = writeJsonString(out.data() + size, text);
  out.resize(static_cast<std::size_t>(end - out.data()));
}

void appendJsonLine(std::string& out, const FlowRecord& record, const JsonContext& context) {
  appendBounded(out, maxLineSize(context.observer_hostname), [&](JsonWriter& json) {
    json.beginObject();
    json.time("@timestamp", record.event_time);
    eventJson(json, record);
    networkJson(json, record);
    endpointJson(json, "source", record.original.src, record.original.src_port, record.original.protocol,
                 record.counters_original, record.nat.translated_source);
    endpointJson(json, "destination", record.original.dst, record.original.dst_port, record.original.protocol,
                 record.counters_reply, record.nat.translated_destination);
    observerJson(json, context);
    ecsJson(json);
    conntrackJson(json, record);
    json.endObject();
  });
}

void appendJsonLine(std::string& out, const GapRecord& gap, const JsonContext& context) {
  appendBounded(out, maxLineSize(context.observer_hostname, gap.sink), [&](JsonWriter& json) {
    json.beginObject();
    json.time("@timestamp", gap.end);
    // ECS: pipeline_error is the kind for "event data may be missing"; with the network category
    // its allowed types include "info" ("error" is reserved for events that describe an error of
    // the thing observed, not of the pipeline).
    json.beginObject("event");
    json.ascii("kind", "pipeline_error");
    json.beginArray("category");
    json.ascii("network");
    json.endArray();
    json.beginArray("type");
    json.ascii("info");
    json.endArray();
    json.ascii("action", "gap");
    json.ascii("reason", gapReasonName(gap.reason));
    json.time("start", gap.start);
    json.time("end", gap.end);
    if (gap.end >= gap.start) {
      json.number("duration", durationNs(gap.start, gap.end));
    }
    json.endObject();
    observerJson(json, context);
    ecsJson(json);
    // The counts are always written, so that every gap line has one shape; lost_records 0 means
    // "not known" (a kernel overrun or a daemon that was down), as in GapRecord.
    json.beginObject("ctaudit");
    json.beginObject("gap");
    json.ascii("reason", gapReasonName(gap.reason));
    json.number("lost_records", gap.lost_records);
    json.number("overruns", gap.overruns);
    if (!gap.sink.empty()) {
      json.string("sink", gap.sink);
    }
    json.endObject();
    json.endObject();
    json.endObject();
  });
}

std::string toJsonLine(const FlowRecord& record, const JsonContext& context) {
  std::string line;
  line.reserve(1024);
  appendJsonLine(line, record, context);
  return line;
}

std::string toJsonLine(const GapRecord& gap, const JsonContext& context) {
  std::string line;
  line.reserve(512);
  appendJsonLine(line, gap, context);
  return line;
}

}  // namespace ctaudit::storage
