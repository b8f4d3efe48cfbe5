// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <vector>

#include "flow/flow_record.hpp"

// A compact, lossless byte form of a FlowRecord for the queue between the reader thread and the
// pipeline thread (PipelineBatch). A FlowRecord is a 272-byte value, most of it room that an IPv4
// flow does not use (16-byte addresses, optional counters and times); packed, an IPv4 NEW takes
// about 60 bytes and a DESTROY about 75, so the same --queue-max holds four times the records and
// a burst at the kernel's ceiling lasts four times longer before the queue drops any.
//
// The form never leaves the process: host byte order, no version. Integers that are usually small
// (zone, mark, status, counters, times relative to the event time) are LEB128 varints; the NAT
// endpoints cost a flag when they are the reply tuple's, as deriveNat() makes them.
namespace ctaudit::daemon {

// The most bytes packRecord() appends for one record (an IPv6 record with every field and NAT
// endpoints of its own).
inline constexpr std::size_t kMaxPackedRecordBytes = 240;

// Appends the packed form of `record` to `out`; returns how many bytes it appended.
std::size_t packRecord(const FlowRecord& record, std::vector<std::byte>& out);

// Reads one record that packRecord() wrote at `at`; advances `at` past it. Precondition: `at`
// points at such a record (the form is trusted: it was written by this process).
[[nodiscard]] FlowRecord unpackRecord(const std::byte*& at) noexcept;

// The size of the packed record at `at`, without unpacking it.
[[nodiscard]] std::size_t packedRecordSize(const std::byte* at) noexcept;

}  // namespace ctaudit::daemon
