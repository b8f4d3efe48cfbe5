// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include <sys/stat.h>
#include <sys/types.h>

#include <spdlog/fwd.h>

#include "flow/flow_record.hpp"
#include "flow/gap_record.hpp"
#include "flow/result.hpp"
#include "flow/unique_c.hpp"
#include "flow/time.hpp"
#include "storage/direct_append.hpp"
#include "storage/json_mapping.hpp"
#include "storage/jsonl_archiver.hpp"
#include "storage/jsonl_rotation.hpp"
#include "storage/sink.hpp"

namespace ctaudit::storage {

// Appends one ECS JSON line per flow event (toJsonLine), and one pipeline_error line per gap in
// the log (writeGap), to a file or to standard output, for a SIEM shipper (Filebeat, Splunk UF,
// Vector) to tail. Owned by the daemon's composition root and
// used from its pipeline thread only; not thread-safe.
//
// Each write() formats the batch into one buffer and hands it to the kernel. To a regular file
// that goes through DirectAppend (whole blocks with O_DIRECT, past the page cache; the last
// partial block with write(2)); to a pipe or terminal, or a file system without O_DIRECT, with as
// few write(2) calls as it takes. Between calls only the file's last partial block is kept (by
// DirectAppend) and, after a failure, the rest of a line cut in half (see below).
// flush() fdatasyncs. reopen() (SIGHUP after logrotate moved the file) starts a new file at the
// same path.
//
// The file is opened O_APPEND, so a line is never written over, and it never shrinks: a shipper
// takes a file that shrank for one truncated and reads it again from the start. When a write
// fails part way (full disk, EIO, file size limit) the whole lines written stay, the rest of a
// line cut in half is written first on the next call, so readers see only whole lines, and
// acceptedOfFailedBatch() tells the caller which records not to pass again: no line is written
// twice, in a file or a pipe alike. Writing to a pipe whose reader is gone raises SIGPIPE: the
// daemon ignores that signal so that EPIPE comes back here.
//
// Built-in rotation (RotationSettings, jsonl_rotation.hpp): before each write and at each flush
// the sink asks rotationDue(); when the file is due it is fdatasynced, renamed to its closed name
// (closedFilePath: the UTC start and end) and a new file opened at the path, all between two
// batches, so a line is never split or written twice. The pipeline thread waits only for that
// fdatasync, the rename, the open and a directory fsync (about what one flush costs); closed files
// are compressed and pruned by a JsonlArchiver thread the sink owns.
class JsonLinesSink final : public FlowSink {
  // Passkey: only members can make one, so the constructor below is public for make_unique only.
  struct Private {
    explicit Private() = default;
  };

public:
  // Opens `path_or_dash` for appending, creating it with mode 0640 (less the umask) and any missing
  // parent directories; "-" means standard output (the sink writes to a duplicate of fd 1, so
  // destroying the sink leaves stdout open). An existing regular file that ends in an unfinished
  // line (a crash mid-write) has that line moved to `<path>.torn` first (moveTornLastLine). UPDATE
  // events are written only with `include_updates` (they are ~5 per TCP flow and say little an
  // audit needs). `log` (the "jsonl" logger) must not be null.
  // Errors: Errc::Io with the errno and a detail naming the path, when a parent directory cannot be
  // created or the file cannot be opened for writing.
  //
  // `rotation` (ignored for "-"): when its policy is enabled, a file left from an earlier run whose
  // start lies in an earlier period is closed at once; the archiver thread starts when compression
  // or a keep count is set, or rotation is on. `clock` (the system clock when null) must outlive
  // the sink and be safe to read from the archiver's thread; rotation periods and closed names are
  // in its time.
  [[nodiscard]] static Result<std::unique_ptr<JsonLinesSink>> open(const std::filesystem::path& path_or_dash,
                                                                   JsonContext context, bool include_updates,
                                                                   std::shared_ptr<spdlog::logger> log,
                                                                   const RotationSettings& rotation = {},
                                                                   const Clock* clock = nullptr);

  // Use open().
  JsonLinesSink(Private, UniqueFd fd, std::filesystem::path path, bool is_stdout, JsonContext context,
                bool include_updates, std::shared_ptr<spdlog::logger> log, const RotationSettings& rotation,
                const Clock* clock) noexcept;

  JsonLinesSink(const JsonLinesSink&) = delete;
  JsonLinesSink& operator=(const JsonLinesSink&) = delete;
  JsonLinesSink(JsonLinesSink&&) = delete;
  JsonLinesSink& operator=(JsonLinesSink&&) = delete;
  ~JsonLinesSink() override = default;

  // How many files the built-in rotation closed since open().
  [[nodiscard]] std::uint64_t rotations() const noexcept { return rotations_; }

  // Writes the rest of a cut line if one is pending, then fdatasyncs a regular file (pipes and
  // terminals cannot be synced; their EINVAL is not an error). Failed when either step fails: on
  // an fdatasync error the kernel may already have dropped the dirty pages, so lines accepted since
  // the last successful flush may be lost; the error is logged with its errno.
  SinkStatus flush() noexcept override;

  // Also closes the file when the rotation policy says its period is over.
  // Flushes, then opens the path again, so that after logrotate renamed the file new lines go to a
  // new file at the path while every line written before is in the renamed one. If the path cannot
  // be opened the sink logs the error and keeps writing to the old file, which a shipper still
  // follows; unless that file was deleted: then writes fail until a new one can be opened (tried
  // again a minute later), so that the lines wait in the daemon instead of going nowhere.
  // For "-" it only flushes. The file opened is repaired like one opened by open().
  void reopen() noexcept override;
  // The lines written since the last good fdatasync, when one failed since (flush, rotation).
  [[nodiscard]] std::optional<SyncLoss> takeSyncLoss() noexcept override;

  // Appends the gap's pipeline_error line (toJsonLine(GapRecord)), whatever include_updates says.
  // Same contract and failure handling as write(); a gap that ends before it starts is refused
  // (Failed, logged) without writing.
  [[nodiscard]] SinkStatus writeGap(const GapRecord& gap) noexcept override;

  // After a write that failed part way: the records whose lines are in the output (a cut line
  // among them: its rest is written first when the output works again).
  [[nodiscard]] std::size_t acceptedOfFailedBatch() const noexcept override { return accepted_of_failed_; }

  // At the stop: a cut line whose rest could not be written even by the last flush is given up.
  // Its record becomes a loss for takeSyncLoss(), and its start stays at the end of the file until
  // the next open moves it to <path>.torn (moveTornLastLine).
  [[nodiscard]] bool abandonUnfinished() noexcept override;
  // Standard output whose reader has exited: nothing can be written to it again.
  [[nodiscard]] bool gone() const noexcept override { return reader_gone_; }

private:
  SinkStatus doWrite(std::span<const FlowRecord> batch) noexcept override;
  // What the chunks of a batch written before the one in buffer_ put into the output.
  struct Written {
    std::size_t bytes{0};
    std::size_t lines{0};
  };
  // Lines are written once this many bytes of them are formatted (doWrite): DirectAppend's
  // staging size, so that each chunk is one direct write.
  static constexpr std::size_t kChunkBytes = DirectAppend::kStaging;
  // Writes buffer_ (holding `lines` lines, after `earlier` of the same batch) and handles a
  // failure; the common end of doWrite and writeGap.
  [[nodiscard]] SinkStatus writeBuffer(std::size_t lines, Written earlier) noexcept;
  // After a crash or kill -9 mid-write the file may end in part of a line. A shipper would read it
  // glued to the next line we append, making one line that is neither. So when the open file is a
  // regular file (not "-") that does not end with '\n', its unfinished last line is moved out:
  // appended to `<path>.torn` after a "# <time> ctauditd cut these N bytes ..." note line and
  // followed by a newline, fdatasynced there, then cut off the file with ftruncate, and one
  // warning names the byte count and where they went. If they cannot be saved, nothing is cut:
  // a newline ends the partial line instead. Reads through a descriptor of its own (fd_ is
  // write-only); problems are logged, never fatal.
  void moveTornLastLine() noexcept;
  // When the file open at fd_ was begun: now when it is empty, else its birth time (statx) or,
  // where the file system keeps none, its last modification.
  [[nodiscard]] Timestamp fileStart(Timestamp now) const noexcept;
  // Closes the active file if rotationDue() says so, `incoming` bytes being about to be written.
  void rotateIfDue(std::uint64_t incoming) noexcept;
  // Reopens the path (reopen()) when the file open is no longer the one at the path: deleted (its
  // lines since are gone with it), or moved or replaced (logrotate without its SIGHUP). Without
  // this the sink would write to the lost file until the next SIGHUP or rotation. After a reopen
  // that failed, the next try waits kMovedRetryInterval. False while the file open is a deleted
  // one: nothing may be written to it then (deletedFileFailure). One fstat and one stat a batch.
  [[nodiscard]] bool reopenIfMoved() noexcept;
  // Takes the lock against a second daemon on the file just opened by a reopen or a rotation;
  // warns, and writes anyway, when another process holds it.
  void lockReopened() noexcept;
  // Failed, logged once per episode, for a write refused because the file open was deleted.
  [[nodiscard]] SinkStatus deletedFileFailure() noexcept;
  // A file's identity, as fstat and stat give it.
  struct FileId {
    dev_t dev{0};
    ino_t ino{0};
    static FileId of(const struct stat& status) noexcept { return {status.st_dev, status.st_ino}; }
    friend bool operator==(const FileId&, const FileId&) = default;
  };
  // The file open at fd_ (its fstat), and whether the path still names it; nullopt when fd_ cannot
  // be read. What reopenIfMoved() and a rotation check before touching the path.
  struct OpenFile {
    struct stat status;
    bool at_path;
  };
  [[nodiscard]] std::optional<OpenFile> openFile() const noexcept;
  // Renames the active file to its closed name ending at `end` and opens a new one at the path.
  // False (logged) when the closed name exists or the rename or open fails; the sink then goes on
  // writing to the file it had, under its old name.
  bool closeActiveFile(Timestamp end, Timestamp now) noexcept;

  using WriteOutcome = AppendOutcome;
  // Appends `bytes` to the output: through direct_ when it is set, else with write(2).
  [[nodiscard]] WriteOutcome writeAll(std::string_view bytes) noexcept;
  // Sets direct_ for the file now open at fd_, when it is a regular file the file system lets us
  // write with O_DIRECT.
  void openDirect() noexcept;
  // Writes the rest of a line cut by an earlier failure. Ok when nothing is pending any more.
  [[nodiscard]] SinkStatus finishTornLine() noexcept;
  // The status of a write that failed with `error`; notes EPIPE or ECONNRESET on standard output
  // (gone()).
  [[nodiscard]] SinkStatus failedWith(int error) noexcept;
  // Deals with a write of `buffer_` (holding `lines` lines, after `earlier` of the same batch)
  // that stopped after outcome.written bytes: the whole lines stay, for a shipper may have read
  // them already (cutting them off made it read them twice, and they were retried and counted as
  // lost besides), and the rest of a cut line is kept to be written first.
  // Sets lines_kept_: the lines of the batch the output holds, or will once a cut line is done.
  [[nodiscard]] SinkStatus handleWriteFailure(const WriteOutcome& outcome, std::size_t lines, Written earlier) noexcept;
  // After doWrite's write failed: accepted_of_failed_ from lines_kept_, and those lines into
  // unsynced_records_ (their window taken as [earliest, latest] of what was formatted).
  void keepAcceptedLines(std::span<const FlowRecord> batch, Timestamp earliest, Timestamp latest) noexcept;
  [[nodiscard]] bool becomesLine(const FlowRecord& record) const noexcept {
    return record.event != EventType::Update || include_updates_;
  }
  void noteSuccess() noexcept;
  // Logs `message` as an error the first time in a failure episode; later ones at debug level.
  void noteFailure(const std::string& message) noexcept;

  UniqueFd fd_;
  std::filesystem::path path_;
  std::string name_;  // for messages: the path, or "standard output"
  bool is_stdout_;
  bool is_regular_;  // fstat S_ISREG of fd_: can be fdatasynced, rotated, written with O_DIRECT
  JsonContext context_;
  bool include_updates_;
  std::shared_ptr<spdlog::logger> log_;

  std::string buffer_;     // the chunk of the batch being written; its capacity is reused
  // The longest line written so far, newline included: a batch of several chunks is counted at
  // this per line by the rotation check made before its first chunk is formatted whole.
  std::size_t longest_line_{0};
  std::string torn_tail_;  // the unwritten end of a line cut by a failed write, newline included
  SyncLoss cut_record_{};  // the record of that line (none for a gap line)
  bool reader_gone_{false};  // gone()
  std::size_t lines_kept_{0};          // handleWriteFailure's count
  std::size_t accepted_of_failed_{0};  // acceptedOfFailedBatch()
  bool unsynced_{false};   // bytes written since the last successful fdatasync
  // The records of the batches written since the last successful fdatasync (gap lines are not
  // records), and what a failed one left for takeSyncLoss().
  SyncLoss unsynced_records_{};
  // The records written since reopenIfMoved() last found the file at its path: lost with it if it
  // turns out deleted (into sync_loss_, a gap).
  SyncLoss unchecked_{};
  // The least the file's size must be: its size at the last look (reopenIfMoved) plus what
  // writeAll() wrote since, without an fstat per batch. Smaller at the next look means another
  // process cut it (noteTruncatedUnderUs). A new file starts at 0.
  off_t written_end_{0};
  void noteTruncatedUnderUs(off_t size) noexcept;
  // Moves `records` (unsynced_records_ after a failed sync, unchecked_ when the file went) into
  // sync_loss_, for takeSyncLoss(); empties it.
  void moveToSyncLoss(SyncLoss& records) noexcept;
  // Lines the output took: they wait for a sync (unsynced_records_) and for a look at the path
  // (unchecked_).
  void noteLinesWritten(const SyncLoss& lines) noexcept;
  std::optional<SyncLoss> sync_loss_;
  // An fdatasync of the file open failed (result != 0, errno not EINVAL): moves the unsynced
  // records into sync_loss_.
  void noteSyncFailed() noexcept;
  void noteSynced() noexcept { unsynced_records_ = {}; }
  std::unique_ptr<DirectAppend> direct_;  // whole blocks past the page cache; null: write(2) only
  std::uint64_t failures_in_episode_{0};
  // The last fdatasync failed: a write that works does not end the failure episode, a sync does.
  bool sync_failing_{false};

  SystemClock system_clock_;
  const Clock* clock_;  // system_clock_ unless given
  RotationSettings rotation_;
  Timestamp file_start_{};  // when the active file was begun (fileStart)
  // How long one write waits for room in a full pipe (FIFO, standard output) whose reader does not
  // read: an exploratory run's FIFO reader, stopped, froze the whole pipeline thread (no database
  // commit, no stats, no SIGTERM) for as long as it stood. Then the batch is Retry, kept in its
  // lane and tried once a flush interval; the database goes on. A reader that is only slow is
  // waited for (appendBuffered).
  static constexpr std::chrono::milliseconds kRoomWait{250};
  // After a reopen that failed, reopenIfMoved() tries again this long later.
  static constexpr std::chrono::seconds kMovedRetryInterval{60};
  Timestamp next_moved_check_{};
  // The file reopenIfMoved() last said was moved or deleted: said once.
  std::optional<FileId> moved_reported_;
  std::uint64_t rotations_{0};
  bool rotation_refused_{false};  // a refused rotation was logged; cleared by the next success
  // Declared last: destroyed (its thread joined) first, while the clock and logger still exist.
  std::unique_ptr<JsonlArchiver> archiver_;
};

}  // namespace ctaudit::storage
