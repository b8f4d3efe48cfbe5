// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/time.hpp"

namespace ctaudit::storage {

enum class SinkStatus : std::uint8_t {
  Ok,        // every record of the batch was accepted
  Retry,     // the rest of the batch was not accepted, for a passing reason (SQLITE_BUSY, EAGAIN):
             // same records later. "The rest": all of it but FlowSink::acceptedOfFailedBatch()
  Failed,    // the rest was not accepted: the sink cannot write now (full disk, I/O error,
             // read-only file system) and every batch fails until that is fixed; no record is to
             // blame
  Rejected,  // nothing was accepted: a record of the batch is refused for its own content (a
             // constraint, a value the store cannot hold); the others would be accepted without it
};

// Records a sink had accepted that a failed sync (fdatasync) may have lost: how many, and the
// window of their event times.
struct SyncLoss {
  std::uint64_t records{0};
  Timestamp earliest{};
  Timestamp latest{};

  // Takes `other`'s records in: the count adds up, the window widens (an empty side adds nothing).
  void add(const SyncLoss& other) noexcept {
    if (other.records == 0) {
      return;
    }
    earliest = records == 0 ? other.earliest : std::min(earliest, other.earliest);
    latest = records == 0 ? other.latest : std::max(latest, other.latest);
    records += other.records;
  }
};

// Counters kept by FlowSink::write for every sink alike.
struct SinkStats {
  std::uint64_t batches_ok{0};
  std::uint64_t records_written{0};
  std::uint64_t batches_retried{0};
  std::uint64_t batches_failed{0};

  // One write(): its status, and the records the sink took (all of an Ok batch; of another, what
  // acceptedOfFailedBatch() says).
  void add(SinkStatus status, std::size_t records) noexcept;
};

// Where flow records go: the SQLite database, the JSON-lines file, a test fake. A sink is owned by
// the daemon's composition root and used from one thread; it is not thread-safe.
//
// Every record passed in is one event (NEW, UPDATE, DESTROY or a dump row). What a sink makes of it
// is its own business: SQLite keeps one row per flow and completes it at DESTROY; JSON lines
// appends one line per event.
class FlowSink {
public:
  FlowSink() = default;
  FlowSink(const FlowSink&) = delete;
  FlowSink& operator=(const FlowSink&) = delete;
  FlowSink(FlowSink&&) = delete;
  FlowSink& operator=(FlowSink&&) = delete;
  virtual ~FlowSink() = default;

  // Takes a batch; never throws; keeps no pointers into `batch` after returning.
  [[nodiscard]] SinkStatus write(std::span<const FlowRecord> batch) noexcept {
    const SinkStatus status = doWrite(batch);
    // A batch that failed part way counts the records the sink took all the same.
    stats_.add(status, status == SinkStatus::Ok ? batch.size() : acceptedOfFailedBatch());
    return status;
  }
  // Records a window in which records were lost, in the sink's own form (a `gaps` row, a
  // pipeline_error line). Gaps are rare, so each is written on its own. Same status contract as
  // write(). Precondition: gap.start <= gap.end; a sink answers Failed otherwise. Not counted in
  // stats(), which count flow records.
  [[nodiscard]] virtual SinkStatus writeGap(const GapRecord& gap) noexcept = 0;
  // Makes every accepted record durable (fsync / WAL commit). Called at least once per flush
  // interval and at shutdown.
  virtual SinkStatus flush() noexcept = 0;
  // Reopens output files after logrotate moved them (SIGHUP). Default: nothing to reopen.
  virtual void reopen() noexcept {}
  // Records the sink accepted that may not be kept, once; the caller records them as a gap: after
  // a flush() (or a rotation) whose sync failed, those since the last good sync; after the file
  // was found deleted, those written to it since it was last seen. Asked after every flush.
  // Default: none (a sink whose commit is its sync, like SQLite's, never accepts what it has not
  // synced).
  [[nodiscard]] virtual std::optional<SyncLoss> takeSyncLoss() noexcept { return std::nullopt; }
  // After a write() that answered Retry or Failed: how many records at the front of that batch
  // the sink took all the same (a sink that appends line by line, on a disk that filled part
  // way). The caller passes only the rest next time, so that nothing is written twice. Default:
  // none (SQLite commits a batch whole or not at all).
  [[nodiscard]] virtual std::size_t acceptedOfFailedBatch() const noexcept { return 0; }
  // True once the sink can never write again, whatever anyone does: standard output whose reader
  // has exited (EPIPE). The caller then gives its records up at once, as a gap, instead of holding
  // them for retries that cannot succeed. Default: never.
  [[nodiscard]] virtual bool gone() const noexcept { return false; }
  // At the stop, after the last flush: what the sink took but could not finish (the JSON line a
  // full disk cut, whose rest never found room) becomes a loss for takeSyncLoss(), so that the
  // other sinks record it as a gap. True when a record was given up so. Default: nothing is ever
  // left unfinished.
  [[nodiscard]] virtual bool abandonUnfinished() noexcept { return false; }
  [[nodiscard]] const SinkStats& stats() const noexcept { return stats_; }

private:
  virtual SinkStatus doWrite(std::span<const FlowRecord> batch) noexcept = 0;
  SinkStats stats_{};
};

}  // namespace ctaudit::storage
