// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/csv_printer.hpp"

#include <array>
#include <cstdint>
#include <optional>

#include "flow/protocol.hpp"
#include "flow/time.hpp"

namespace ctaudit::query {
namespace {

constexpr std::string_view kLineEnd = "\r\n";

std::string optionalText(const std::optional<std::uint16_t>& value) {
  return value ? std::to_string(*value) : std::string{};
}

std::string timeText(const std::optional<Timestamp>& time) { return time ? formatRfc3339(*time) : std::string{}; }

std::string sourceText(const std::optional<Timestamp>& time, TimeSource source) {
  if (!time) {
    return {};
  }
  switch (source) {
    case TimeSource::Kernel: return "kernel";
    case TimeSource::Receive: return "receive";
    case TimeSource::Bound: return "bound";
  }
  return "unknown";
}

// The source port, or the ICMP id that plays its role; nullopt for protocols with neither.
std::optional<std::uint16_t> sourcePort(const FlowTuple& tuple) {
  if (hasPorts(tuple.protocol) || isIcmp(tuple.protocol)) {
    return tuple.sourceKey();
  }
  return std::nullopt;
}

std::optional<std::uint16_t> destinationPort(const FlowTuple& tuple) {
  return hasPorts(tuple.protocol) ? std::optional(tuple.dst_port) : std::nullopt;
}

// A translated endpoint as two fields, address and port (the port only where the protocol has one).
std::array<std::string, 2> natFields(const std::optional<Endpoint>& endpoint, Protocol protocol) {
  if (!endpoint) {
    return {};
  }
  const bool has_port = hasPorts(protocol) || isIcmp(protocol);
  return {endpoint->address.toString(), has_port ? std::to_string(endpoint->port) : std::string{}};
}

std::array<std::string, 2> counterFields(const std::optional<Counters>& counters) {
  if (!counters) {
    return {};
  }
  return {std::to_string(counters->packets), std::to_string(counters->bytes)};
}

void writeRow(std::ostream& out, const FlowRecord& flow, std::optional<std::string_view> extra = std::nullopt) {
  const auto nat_src = natFields(flow.nat.translated_source, flow.original.protocol);
  const auto nat_dst = natFields(flow.nat.translated_destination, flow.original.protocol);
  const auto out_counters = counterFields(flow.counters_original);
  const auto in_counters = counterFields(flow.counters_reply);
  const std::array<std::string, 21> fields{
      timeText(flow.start),
      timeText(flow.end),
      protocolName(flow.original.protocol),
      flow.original.src.toString(),
      optionalText(sourcePort(flow.original)),
      flow.original.dst.toString(),
      optionalText(destinationPort(flow.original)),
      nat_src[0],
      nat_src[1],
      nat_dst[0],
      nat_dst[1],
      std::to_string(flow.ct_id),
      std::to_string(flow.zone),
      std::to_string(flow.mark),
      out_counters[0],
      out_counters[1],
      in_counters[0],
      in_counters[1],
      sourceText(flow.start, flow.start_source),
      sourceText(flow.end, flow.end_source),
      flow.observed_at_start ? "true" : "false",
  };
  std::string_view separator;
  for (const std::string& field : fields) {
    out << separator << csvField(field);
    separator = ",";
  }
  if (extra) {
    out << separator << csvField(*extra);
  }
  out << kLineEnd;
}

}  // namespace

std::string csvField(std::string_view text) {
  if (text.find_first_of(",\"\r\n") == std::string_view::npos) {
    return std::string(text);
  }
  std::string quoted = "\"";
  for (const char c : text) {
    if (c == '"') {
      quoted += '"';
    }
    quoted += c;
  }
  quoted += '"';
  return quoted;
}

void printCsvHeader(std::ostream& out) { out << kCsvHeader << kLineEnd; }

void printCsvRows(std::ostream& out, std::span<const FlowRecord> flows) {
  for (const FlowRecord& flow : flows) {
    writeRow(out, flow);
  }
}

void printWhoCsv(std::ostream& out, std::span<const FlowRecord> flows, std::span<const std::string_view> matches) {
  out << kCsvHeader << ",match" << kLineEnd;
  for (std::size_t i = 0; i < flows.size(); ++i) {
    writeRow(out, flows[i], matches[i]);
  }
}

void printCsv(std::ostream& out, std::span<const FlowRecord> flows) {
  printCsvHeader(out);
  printCsvRows(out, flows);
}

}  // namespace ctaudit::query
