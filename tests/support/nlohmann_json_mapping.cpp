// SPDX-License-Identifier: GPL-2.0-or-later
#include "tests/support/nlohmann_json_mapping.hpp"

#include <cstddef>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "flow/ct_status.hpp"
#include "storage/community_id.hpp"

namespace ctaudit::testing {
namespace {

using storage::communityId;
using storage::JsonContext;

// ordered_json keeps keys in insertion order, so the output is byte-stable for golden files and
// diffable by eye: the order below is the order docs/json.md lists.
using Json = nlohmann::ordered_json;

// Builds one JSON object by appending members in the order written. ordered_json's operator[]
// searches the existing keys and grows its vector one element at a time; reserving and appending
// (the keys here are fixed and distinct) cut the whole mapping from ~14 to ~8 us per record on the
// development machine.
class Object {
public:
  explicit Object(std::size_t members) { this->members().reserve(members); }

  template <class Value>
  Object& add(std::string_view key, Value&& value) {
    members().emplace_back(key, Json(std::forward<Value>(value)));
    return *this;
  }
  [[nodiscard]] Json take() && { return std::move(json_); }

private:
  Json::object_t& members() { return json_.get_ref<Json::object_t&>(); }
  Json json_ = Json::object();
};

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
Json eventTypes(EventType event) {
  switch (event) {
    case EventType::New:
    case EventType::Dump: return Json::array({"connection", "start"});
    case EventType::Update: return Json::array({"connection", "info"});
    case EventType::Destroy: return Json::array({"connection", "end"});
  }
  return Json::array({"connection"});
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
Json natJson(const Endpoint& endpoint, Protocol protocol) {
  Object nat(2);
  nat.add("ip", endpoint.address.toString());
  if (hasPorts(protocol) || isIcmp(protocol)) {
    nat.add("port", endpoint.port);
  }
  return std::move(nat).take();
}

// One conntrack tuple as conntrack(8) prints it: protocol number, addresses, then ports or the
// ICMP type/code/id.
Json tupleJson(const FlowTuple& tuple) {
  Object out(6);
  out.add("protocol", static_cast<unsigned>(tuple.protocol));
  out.add("src", tuple.src.toString());
  out.add("dst", tuple.dst.toString());
  if (isIcmp(tuple.protocol)) {
    out.add("type", static_cast<unsigned>(tuple.icmp_type));
    out.add("code", static_cast<unsigned>(tuple.icmp_code));
    out.add("id", tuple.icmp_id);
  } else if (hasPorts(tuple.protocol)) {
    out.add("sport", tuple.src_port);
    out.add("dport", tuple.dst_port);
  }
  return std::move(out).take();
}

Json eventJson(const FlowRecord& record) {
  Object event(7);
  event.add("kind", "event");
  event.add("category", Json::array({"network"}));
  event.add("type", eventTypes(record.event));
  event.add("action", actionName(record.event));
  if (record.start) {
    event.add("start", formatRfc3339(*record.start));
  }
  if (record.end) {
    event.add("end", formatRfc3339(*record.end));
  }
  // Kernel start and stop come from one clock, so end >= start; a receive-time start against a
  // kernel end could in theory be later by the socket delay. A negative duration would only mislead
  // a dashboard, so it is left out then; start and end still show both times. A start that is
  // only a bound gives no duration either.
  if (record.start && record.end && *record.end >= *record.start && record.start_source != TimeSource::Bound) {
    event.add("duration", (*record.end - *record.start).count());
  }
  return std::move(event).take();
}

Json networkJson(const FlowRecord& record) {
  Object network(4);
  network.add("type", record.family() == Family::Ipv4 ? "ipv4" : "ipv6");
  network.add("transport", protocolName(record.original.protocol));
  // ECS types iana_number as a keyword, so it is a string.
  network.add("iana_number", std::to_string(static_cast<unsigned>(record.original.protocol)));
  if (std::string id = communityId(record.original); !id.empty()) {
    network.add("community_id", std::move(id));
  }
  return std::move(network).take();
}

// source.* or destination.*: one side of the original tuple, the counters of the direction it
// sends (original for the source, reply for the destination) and its translation, if any.
Json endpointJson(const IpAddress& address, std::uint16_t port, Protocol protocol,
                  const std::optional<Counters>& counters, const std::optional<Endpoint>& nat) {
  Object side(5);
  side.add("ip", address.toString());
  // ICMP has no ports (its id is in conntrack.original/reply and, where NAT rewrites it, in
  // nat.port); neither have GRE and the protocols conntrack tracks generically.
  if (hasPorts(protocol)) {
    side.add("port", port);
  }
  if (counters) {
    side.add("bytes", counters->bytes);
    side.add("packets", counters->packets);
  }
  if (nat) {
    side.add("nat", natJson(*nat, protocol));
  }
  return std::move(side).take();
}

Json timeSourceJson(const FlowRecord& record) {
  Object time_source(3);
  if (record.start) {
    time_source.add("start", timeSourceName(record.start_source));
  }
  if (record.end) {
    time_source.add("end", timeSourceName(record.end_source));
  }
  time_source.add("event", timeSourceName(record.event_time_source));
  return std::move(time_source).take();
}

Json conntrackJson(const FlowRecord& record) {
  const std::vector<std::string_view> names = statusNames(record.status);
  Json status = Json::array();
  status.get_ref<Json::array_t&>().reserve(names.size());
  for (const std::string_view name : names) {
    status.push_back(name);
  }

  Object ct(10);
  ct.add("id", record.ct_id);
  ct.add("zone", record.zone);
  ct.add("mark", record.mark);
  ct.add("status", std::move(status));
  if (record.tcp_state) {
    ct.add("tcp_state", tcpStateName(*record.tcp_state));
  }
  ct.add("original", tupleJson(record.original));
  ct.add("reply", tupleJson(record.reply));
  ct.add("time_source", timeSourceJson(record));
  if (record.observed_at_start) {
    ct.add("observed_at_start", true);
  }
  return std::move(ct).take();
}

// dump() throws type_error 316 on invalid UTF-8 (error_handler_t::strict). Every string the
// mappings build is ASCII: inet_ntop text, RFC 3339 times, base64, and fixed names. The observer
// host name (and a gap's sink name) are the strings from outside, and the kernel does not hold host
// names to UTF-8; `replace` turns a stray byte there into U+FFFD instead of throwing, so a mapping
// never throws except std::bad_alloc. No indentation: one line, no trailing newline.
std::string serialise(const Json& json) { return json.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json observerJson(const JsonContext& context) {
  Object observer(1);
  observer.add("hostname", context.observer_hostname);
  return std::move(observer).take();
}

Json ecsJson() {
  Object ecs(1);
  ecs.add("version", std::string(storage::kEcsVersion));
  return std::move(ecs).take();
}

}  // namespace

std::string nlohmannJsonLine(const FlowRecord& record, const JsonContext& context) {
  Object root(8);
  root.add("@timestamp", formatRfc3339(record.event_time));
  root.add("event", eventJson(record));
  root.add("network", networkJson(record));
  root.add("source", endpointJson(record.original.src, record.original.src_port, record.original.protocol,
                                  record.counters_original, record.nat.translated_source));
  root.add("destination", endpointJson(record.original.dst, record.original.dst_port, record.original.protocol,
                                       record.counters_reply, record.nat.translated_destination));
  root.add("observer", observerJson(context));
  root.add("ecs", ecsJson());
  root.add("conntrack", conntrackJson(record));
  return serialise(std::move(root).take());
}

std::string nlohmannJsonLine(const GapRecord& gap, const JsonContext& context) {
  // ECS: pipeline_error is the kind for "event data may be missing"; with the network category its
  // allowed types include "info" ("error" is reserved for events that describe an error of the
  // thing observed, not of the pipeline).
  Object event(9);
  event.add("kind", "pipeline_error");
  event.add("category", Json::array({"network"}));
  event.add("type", Json::array({"info"}));
  event.add("action", "gap");
  event.add("reason", gapReasonName(gap.reason));
  event.add("start", formatRfc3339(gap.start));
  event.add("end", formatRfc3339(gap.end));
  if (gap.end >= gap.start) {
    event.add("duration", (gap.end - gap.start).count());
  }

  // The counts are always written, so that every gap line has one shape; lost_records 0 means "not
  // known" (a kernel overrun or a daemon that was down), as in GapRecord.
  Object details(4);
  details.add("reason", gapReasonName(gap.reason));
  details.add("lost_records", gap.lost_records);
  details.add("overruns", gap.overruns);
  if (!gap.sink.empty()) {
    details.add("sink", gap.sink);
  }
  Object ctaudit(1);
  ctaudit.add("gap", std::move(details).take());

  Object root(5);
  root.add("@timestamp", formatRfc3339(gap.end));
  root.add("event", std::move(event).take());
  root.add("observer", observerJson(context));
  root.add("ecs", ecsJson());
  root.add("ctaudit", std::move(ctaudit).take());
  return serialise(std::move(root).take());
}

}  // namespace ctaudit::testing
