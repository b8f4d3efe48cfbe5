// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <ostream>
#include <span>
#include <string>
#include <string_view>

#include "flow/flow_record.hpp"

namespace ctaudit::query {

// The CSV header line, without its line break. docs/query.md describes every column.
inline constexpr std::string_view kCsvHeader =
    "start,end,protocol,src_ip,src_port,dst_ip,dst_port,nat_src_ip,nat_src_port,nat_dst_ip,nat_dst_port,"
    "ct_id,zone,mark,packets_out,bytes_out,packets_in,bytes_in,time_source_start,time_source_end,"
    "observed_at_start";

// One RFC 4180 field: `text` as is, or in double quotes with inner quotes doubled when it holds a
// comma, a double quote, CR or LF.
[[nodiscard]] std::string csvField(std::string_view text);

// Writes the header and one row per flow, in the order given, every line ending in CRLF as
// RFC 4180 section 2 asks. Times are RFC 3339 UTC with nanoseconds; a field with no value (no end:
// the flow is open; no counters; ports of a protocol without ports) is empty. For ICMP, src_port
// and nat_src_port hold the ICMP id and dst_port is empty. The header is written even when `flows`
// is empty, so that a script always gets the column names.
void printCsv(std::ostream& out, std::span<const FlowRecord> flows);
// The same with a last column `match`, one value per flow: `ctaudit who`'s output.
void printWhoCsv(std::ostream& out, std::span<const FlowRecord> flows, std::span<const std::string_view> matches);

// printCsv() in two parts, for rows printed as they are read: the header line, then rows.
void printCsvHeader(std::ostream& out);
void printCsvRows(std::ostream& out, std::span<const FlowRecord> flows);

}  // namespace ctaudit::query
