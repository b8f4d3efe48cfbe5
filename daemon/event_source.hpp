// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>

#include "flow/flow_record.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"

namespace ctaudit::daemon {

// What the source has seen since it was opened.
struct SourceStats {
  std::uint64_t datagrams{0};     // recv'd from the event socket
  std::uint64_t messages{0};      // ctnetlink messages in them (events and dump rows)
  std::uint64_t decoded{0};       // turned into records
  std::uint64_t malformed{0};     // events refused by the decoder, or truncated datagrams
  std::uint64_t dump_refused{0};  // entries of table dumps the decoder refused
  std::uint64_t from_user_space{0};  // datagrams to the event groups not sent by the kernel: ignored
  std::uint64_t overruns{0};      // ENOBUFS: the kernel dropped events for this socket
  std::uint64_t dump_entries{0};  // records that came from table dumps
};

// The kernel end of the pipeline as the EventReader sees it: a pollable event socket, read one
// batch at a time, and table dumps. ConntrackSource is the real one; tests script a fake. Used from
// one thread (the reader's).
class EventSource {
public:
  using Deliver = std::function<void(FlowRecord&&)>;

  enum class ReadStatus : std::uint8_t {
    Data,     // datagrams were read (possibly none decoded); read again
    Empty,    // nothing queued (EAGAIN)
    Overrun,  // ENOBUFS: the kernel dropped events for this socket since the last read
  };

  EventSource() = default;
  EventSource(const EventSource&) = delete;
  EventSource& operator=(const EventSource&) = delete;
  EventSource(EventSource&&) = delete;
  EventSource& operator=(EventSource&&) = delete;
  virtual ~EventSource() = default;

  // The event socket, for poll(2).
  [[nodiscard]] virtual int fd() const noexcept = 0;
  // One non-blocking read of as many datagrams as one call takes; every record decoded from them
  // goes to `deliver`. `woke`: when the reader learnt that the socket held data, if it then waited
  // on purpose before reading (read pacing); what is read arrived no earlier than about then
  // (DecodeContext). Errors: any socket error other than EAGAIN, EINTR and ENOBUFS.
  [[nodiscard]] virtual Result<ReadStatus> readBatch(const Clock& clock, std::optional<Timestamp> woke,
                                                     const Deliver& deliver) = 0;
  // What a table dump read: the entries delivered, and those the decoder refused (each a flow the
  // dump did not show).
  struct DumpCount {
    std::size_t entries{0};
    std::uint64_t refused{0};
  };
  // Dumps the table (over a socket of its own) and passes every entry as an EventType::Dump
  // record.
  [[nodiscard]] virtual Result<DumpCount> dumpTable(const Clock& clock, const Deliver& deliver) = 0;
  // How many events the kernel could not queue for the event socket since it was opened.
  [[nodiscard]] virtual std::uint64_t kernelDrops() noexcept = 0;
  [[nodiscard]] virtual const SourceStats& stats() const noexcept = 0;
};

}  // namespace ctaudit::daemon
