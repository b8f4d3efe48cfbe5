// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target for decodeConntrack(): whatever the bytes, the decoder returns a record or an
// Errc::Decode error; it never crashes, reads outside the input or hits undefined behaviour
// (the target is built with ASan and UBSan), and a record it returns is self-consistent and comes
// back whole through the queue's packed form (record_codec.hpp).
//
// Most random inputs disagree with their own nlmsg_len and stop at the header check, so each
// input is also decoded with nlmsg_len rewritten to the input size, which sends the mutations
// into the attribute walk. Both buffers are exactly sized heap copies, so ASan sees any read past
// the end.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "daemon/conntrack_decoder.hpp"
#include "daemon/record_codec.hpp"

namespace {

using ctaudit::EventType;
using ctaudit::FlowRecord;
using ctaudit::daemon::DecodeContext;
using ctaudit::daemon::MessageOrigin;

constexpr ctaudit::Timestamp kReceive = ctaudit::fromUnixNanos(1'795'617'349'000'000'000);

void check(bool condition) {
  if (!condition) {
    std::abort();
  }
}

void checkRecord(const FlowRecord& record, MessageOrigin origin) {
  check(record.original.src.family() == record.original.dst.family());
  check(record.reply.src.family() == record.original.src.family());
  check(record.reply.dst.family() == record.original.src.family());
  if (ctaudit::isIcmp(record.original.protocol)) {
    check(record.original.src_port == 0 && record.original.dst_port == 0);
  }
  check(record.end.has_value() == (record.event == EventType::Destroy));
  check(record.observed_at_start == (record.event == EventType::Dump));
  if (record.event == EventType::Dump) {
    check(origin == MessageOrigin::Dump);
  }
  // A NEW always has a start (the kernel's, or when it arrived); a dump row without CTA_TIMESTAMP
  // began at a time nothing tells, so its start stays unset (conntrack_decoder.hpp).
  if (record.event == EventType::New) {
    check(record.start.has_value());
  }
  if (record.start) {
    check(record.start_source != ctaudit::TimeSource::Bound);
  }
  std::vector<std::byte> packed;
  check(ctaudit::daemon::packRecord(record, packed) == packed.size());
  const std::byte* at = packed.data();
  check(ctaudit::daemon::unpackRecord(at) == record);
  check(at == packed.data() + packed.size());
}

void decodeBoth(const std::vector<std::byte>& message) {
  for (const MessageOrigin origin : {MessageOrigin::Event, MessageOrigin::Dump}) {
    const auto result = ctaudit::daemon::decodeConntrack(message, DecodeContext{kReceive, origin});
    if (result) {
      checkRecord(result.value(), origin);
    } else {
      check(result.error().code == ctaudit::Errc::Decode);
      check(!result.error().detail.empty());
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  std::vector<std::byte> message(size);
  if (size > 0) {
    std::memcpy(message.data(), data, size);
  }
  decodeBoth(message);
  if (size >= sizeof(std::uint32_t)) {
    const auto nlmsg_len = static_cast<std::uint32_t>(size);
    std::memcpy(message.data(), &nlmsg_len, sizeof(nlmsg_len));
    decodeBoth(message);
  }
  return 0;
}
