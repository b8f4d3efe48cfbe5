// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <string>
#include <string_view>
#include <utility>

#include <fcntl.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/file_io.hpp"
#include "storage/jsonl_file.hpp"

namespace ctaudit::storage {
namespace {

// EAGAIN only comes from a non-blocking standard output whose reader is slow: worth another try.
// Everything else (ENOSPC, EDQUOT, EFBIG, EIO, EPIPE, ...) fails the same way again, and is never
// a record's fault (formatting a line cannot fail): Failed, never Rejected.
SinkStatus statusFor(int error) noexcept {
  return error == EAGAIN || error == EWOULDBLOCK ? SinkStatus::Retry : SinkStatus::Failed;
}

}  // namespace

Result<std::unique_ptr<JsonLinesSink>> JsonLinesSink::open(const std::filesystem::path& path_or_dash,
                                                           JsonContext context, bool include_updates,
                                                           std::shared_ptr<spdlog::logger> log,
                                                           const RotationSettings& rotation, const Clock* clock) {
  if (log == nullptr) {
    return fail(Errc::Config, "the JSON lines sink needs a logger");
  }
  if (path_or_dash == "-") {
    // A descriptor of its own, so that the sink owns it like any other and closing it leaves fd 1
    // to the rest of the process.
    const int fd = standardOutputForSink();
    if (fd < 0) {
      const int error = errno;
      return fail(Errc::Io, "cannot write JSON lines to standard output: " + errnoText(error), error);
    }
    return std::make_unique<JsonLinesSink>(Private{}, UniqueFd{fd}, path_or_dash, true, std::move(context),
                                           include_updates, std::move(log), RotationSettings{}, clock);
  }
  Result<UniqueFd> fd = openForAppend(path_or_dash);
  if (!fd) {
    return Unexpected{fd.error()};
  }
  if (holdsSqliteDatabase(fd->get())) {
    return fail(Errc::Config, path_or_dash.string() +
                                  " is a SQLite database, not a JSON-lines file: appending would damage it; give "
                                  "--jsonl a path of its own");
  }
  if (auto locked = lockAgainstOtherWriters(fd->get(), path_or_dash); !locked) {
    return Unexpected{locked.error()};
  }
  auto sink = std::make_unique<JsonLinesSink>(Private{}, std::move(fd).value(), path_or_dash, false,
                                              std::move(context), include_updates, std::move(log), rotation, clock);
  sink->moveTornLastLine();
  sink->openDirect();
  const Timestamp now = sink->clock_->now();
  sink->file_start_ = sink->fileStart(now);
  const RotationPolicy& policy = rotation.policy;
  struct stat st {};
  if (policy.period && sink->is_regular_ && ::fstat(sink->fd_.get(), &st) == 0 && st.st_size > 0 &&
      periodStart(sink->file_start_, *policy.period) < periodStart(now, *policy.period)) {
    // Left by an earlier run in an earlier period: close it now, ending at its last write.
    const Timestamp last_write{std::chrono::seconds{st.st_mtim.tv_sec} + std::chrono::nanoseconds{st.st_mtim.tv_nsec}};
    (void)sink->closeActiveFile(closedEnd(policy, RotateReason::Size, sink->file_start_, last_write), now);
  }
  if (policy.enabled() && sink->is_regular_) {
    sink->log_->info("rotating {}: {} (UTC); closed files {}, {} kept, after a grace of {}s", path_or_dash.string(),
                     formatRotationPolicy(policy),
                     rotation.compression == Compression::None ? std::string{"not compressed"}
                                                               : std::string{compressionName(rotation.compression)},
                     rotation.keep ? std::to_string(*rotation.keep) : std::string{"all"}, rotation.grace.count());
  }
  if (sink->is_regular_ && (policy.enabled() || rotation.keep || rotation.compression != Compression::None)) {
    sink->archiver_ = std::make_unique<JsonlArchiver>(path_or_dash, rotation, *sink->clock_, sink->log_);
    sink->archiver_->start();
  }
  return sink;
}

JsonLinesSink::JsonLinesSink(Private /*unused*/, UniqueFd fd, std::filesystem::path path, bool is_stdout,
                             JsonContext context, bool include_updates, std::shared_ptr<spdlog::logger> log,
                             const RotationSettings& rotation, const Clock* clock) noexcept
    : fd_(std::move(fd)),
      path_(std::move(path)),
      name_(is_stdout ? std::string{"standard output"} : path_.string()),
      is_stdout_(is_stdout),
      is_regular_(isRegularFile(fd_.get())),
      context_(std::move(context)),
      include_updates_(include_updates),
      log_(std::move(log)),
      clock_(clock != nullptr ? clock : &system_clock_),
      rotation_(rotation) {}

// Formatting appends to buffer_, which keeps its capacity from batch to batch, so after the first
// batches nothing is allocated here. Should the buffer have to grow and memory be out, like every
// allocation on the daemon's hot path, that ends the process (std::terminate through noexcept)
// rather than being handled.
//
// The lines go out kChunkBytes at a time rather than the batch at once: a batch at 20k events/s
// is ~18 MB of text, which written whole went through the caches twice (formatted, then copied
// for the direct write) and cost 6-7% of the daemon's CPU (bench/cpu_ab.sh at 20k and 100k
// events/s); a chunk stays in the core's cache between the two. A batch still goes to one file:
// the rotation check is made once, before its first chunk (rotateIfDue). A write that fails part
// way keeps the whole lines it wrote, earlier chunks' included, and says how many records they
// are (acceptedOfFailedBatch), so that the retry writes only the rest (handleWriteFailure).
SinkStatus JsonLinesSink::doWrite(std::span<const FlowRecord> batch) noexcept {
  accepted_of_failed_ = 0;
  if (reader_gone_) {
    return SinkStatus::Failed;
  }
  if (!reopenIfMoved()) {
    return deletedFileFailure();
  }
  if (!torn_tail_.empty()) {
    if (const SinkStatus status = finishTornLine(); status != SinkStatus::Ok) {
      return status;
    }
  }

  const auto total_lines = static_cast<std::size_t>(
      std::count_if(batch.begin(), batch.end(), [this](const FlowRecord& record) { return becomesLine(record); }));
  if (total_lines == 0) {
    return SinkStatus::Ok;
  }
  buffer_.clear();
  Written earlier;  // what the chunks before buffer_ wrote
  std::size_t lines = 0;  // in buffer_
  // The batch's event-time window for unsynced_records_, taken while each record is in the cache
  // for its line: a second pass over a large batch would read it all from memory again.
  Timestamp earliest = Timestamp::max();
  Timestamp latest = Timestamp::min();
  for (const FlowRecord& record : batch) {
    if (!becomesLine(record)) {
      continue;
    }
    earliest = std::min(earliest, record.event_time);
    latest = std::max(latest, record.event_time);
    const std::size_t line_start = buffer_.size();
    appendJsonLine(buffer_, record, context_);  // into the kept capacity: no allocation per record
    buffer_ += '\n';
    longest_line_ = std::max(longest_line_, buffer_.size() - line_start);
    ++lines;
    if (buffer_.size() >= kChunkBytes && earlier.lines + lines < total_lines) {
      if (earlier.lines == 0) {
        rotateIfDue(buffer_.size() + (total_lines - lines) * longest_line_);
      }
      if (const SinkStatus status = writeBuffer(lines, earlier); status != SinkStatus::Ok) {
        keepAcceptedLines(batch, earliest, latest);
        return status;
      }
      earlier.bytes += buffer_.size();
      earlier.lines += lines;
      buffer_.clear();
      lines = 0;
    }
  }
  if (earlier.lines == 0) {
    rotateIfDue(buffer_.size());
  }
  const SinkStatus status = writeBuffer(lines, earlier);
  if (status == SinkStatus::Ok) {
    noteLinesWritten({total_lines, earliest, latest});
  } else {
    keepAcceptedLines(batch, earliest, latest);
  }
  return status;
}

void JsonLinesSink::keepAcceptedLines(std::span<const FlowRecord> batch, Timestamp earliest, Timestamp latest) noexcept {
  // Up to and including the record of the last line kept; records that make no line (UPDATEs)
  // before it go with it.
  std::size_t lines = 0;
  std::size_t accepted = 0;
  while (accepted < batch.size() && lines < lines_kept_) {
    lines += becomesLine(batch[accepted]) ? 1U : 0U;
    ++accepted;
  }
  accepted_of_failed_ = accepted;
  noteLinesWritten({lines_kept_, earliest, latest});
  if (!torn_tail_.empty() && accepted > 0) {
    // This write cut the line (doWrite writes nothing while an older cut line waits): the line of
    // the last record taken.
    const Timestamp cut_at = batch[accepted - 1].event_time;
    cut_record_ = {1, cut_at, cut_at};
  }
}

void JsonLinesSink::noteSyncFailed() noexcept { moveToSyncLoss(unsynced_records_); }

void JsonLinesSink::moveToSyncLoss(SyncLoss& records) noexcept {
  if (records.records > 0) {
    if (!sync_loss_) {
      sync_loss_.emplace();
    }
    sync_loss_->add(records);  // a loss not taken yet widens
    // unsynced_records_ and unchecked_ count a cut line's record from when it was cut: lost with
    // them, it is not given up again at the stop (abandonUnfinished).
    cut_record_ = {};
  }
  records = {};
}

void JsonLinesSink::noteLinesWritten(const SyncLoss& lines) noexcept {
  unsynced_records_.add(lines);
  unchecked_.add(lines);
}

std::optional<SyncLoss> JsonLinesSink::takeSyncLoss() noexcept { return std::exchange(sync_loss_, std::nullopt); }

SinkStatus JsonLinesSink::writeGap(const GapRecord& gap) noexcept {
  if (gap.end < gap.start) {
    log_->warn("a {} gap from {} to {} ends before it starts; not written to {}", gapReasonName(gap.reason),
               formatRfc3339(gap.start), formatRfc3339(gap.end), name_);
    return SinkStatus::Rejected;
  }
  if (reader_gone_) {
    return SinkStatus::Failed;
  }
  if (!reopenIfMoved()) {
    return deletedFileFailure();
  }
  if (!torn_tail_.empty()) {
    if (const SinkStatus status = finishTornLine(); status != SinkStatus::Ok) {
      return status;
    }
  }
  buffer_.clear();
  appendJsonLine(buffer_, gap, context_);
  buffer_ += '\n';
  rotateIfDue(buffer_.size());
  const SinkStatus status = writeBuffer(1, {});
  // A gap line cut part way is taken: the rest of it goes first when the output works again.
  // Reporting it not taken had it written again whole after that rest.
  return status != SinkStatus::Ok && lines_kept_ == 1 ? SinkStatus::Ok : status;
}

SinkStatus JsonLinesSink::writeBuffer(std::size_t lines, Written earlier) noexcept {
  const WriteOutcome outcome = writeAll(buffer_);
  if (outcome.written > 0) {
    unsynced_ = true;
  }
  if (outcome.error != 0) {
    return handleWriteFailure(outcome, lines, earlier);
  }
  noteSuccess();
  return SinkStatus::Ok;
}

JsonLinesSink::WriteOutcome JsonLinesSink::writeAll(std::string_view bytes) noexcept {
  const WriteOutcome outcome =
      direct_      ? direct_->append(fd_.get(), bytes)
      : is_regular_ ? appendBuffered(fd_.get(), bytes)
                    : appendWholeLines(fd_.get(), bytes, kRoomWait);  // a pipe: never part of a line
  written_end_ += static_cast<off_t>(outcome.written);
  return outcome;
}

void JsonLinesSink::openDirect() noexcept {
  direct_.reset();
  if (!is_stdout_ && is_regular_) {
    direct_ = DirectAppend::open(path_, fd_.get());
    if (!direct_) {
      log_->debug("{} cannot be written with O_DIRECT here; writing through the page cache", path_.string());
    }
  }
}

SinkStatus JsonLinesSink::handleWriteFailure(const WriteOutcome& outcome, std::size_t lines, Written earlier) noexcept {
  const std::size_t batch_lines = earlier.lines + lines;
  const std::string_view written(buffer_.data(), outcome.written);
  lines_kept_ = earlier.lines + static_cast<std::size_t>(std::count(written.begin(), written.end(), '\n'));
  if (earlier.bytes + outcome.written == 0) {
    noteFailure("writing " + std::to_string(batch_lines) + " JSON lines to " + name_ +
                " failed: " + errnoText(outcome.error));
    return failedWith(outcome.error);
  }
  // A line the failure cut is finished, not cut off: its rest is kept and written before anything
  // else once the output works again, so whatever reads the file sees only whole lines. Cutting it
  // off would shrink the file, which a shipper takes for a truncation and reads again from the
  // start (Filebeat does), and a pipe cannot be cut at all. The line counts as written.
  if (!written.empty() && written.back() != '\n') {
    const std::size_t line_end = buffer_.find('\n', outcome.written);
    torn_tail_.assign(buffer_, outcome.written, line_end + 1 - outcome.written);
    ++lines_kept_;
    // "failed after 1215 of the batch's 1215 lines" said an exploratory run's log of a cut last line.
    const std::size_t others = batch_lines - lines_kept_;
    noteFailure("writing JSON lines to " + name_ + " failed in line " + std::to_string(lines_kept_) +
                " of the batch's " + std::to_string(batch_lines) + ": " + errnoText(outcome.error) +
                "; the lines before it stay, and the rest of that line goes first when it works again" +
                (others > 0 ? ", then the other " + std::to_string(others) : std::string{}));
    return failedWith(outcome.error);
  }
  noteFailure("writing JSON lines to " + name_ + " failed after " + std::to_string(lines_kept_) + " of the batch's " +
              std::to_string(batch_lines) + " lines: " + errnoText(outcome.error) +
              "; the lines written stay, the other lines are retried");
  return failedWith(outcome.error);
}

SinkStatus JsonLinesSink::failedWith(int error) noexcept {
  // Standard output's reader has exited (a pipe's, a socket's peer): no one can ever open it again,
  // unlike a FIFO at a path, which a new reader can.
  if ((error == EPIPE || error == ECONNRESET) && is_stdout_ && !reader_gone_) {
    reader_gone_ = true;
    log_->error("the reader of standard output has gone ({}): no JSON line can be written to it again; the "
                "database goes on, and records the lost lines as gaps",
                errnoText(error));
  }
  return statusFor(error);
}

SinkStatus JsonLinesSink::finishTornLine() noexcept {
  const WriteOutcome outcome = writeAll(torn_tail_);
  torn_tail_.erase(0, outcome.written);
  if (torn_tail_.empty()) {
    cut_record_ = {};
  }
  if (outcome.written > 0) {
    unsynced_ = true;
  }
  if (outcome.error != 0) {
    noteFailure("finishing a cut JSON line on " + name_ + " failed: " + errnoText(outcome.error));
    return failedWith(outcome.error);
  }
  return SinkStatus::Ok;
}

SinkStatus JsonLinesSink::flush() noexcept {
  // A cut line whose rest finds no room yet does not keep the whole lines before it from the disk:
  // they are synced all the same, and the flush fails for the cut line.
  const SinkStatus finished = torn_tail_.empty() ? SinkStatus::Ok : finishTornLine();
  // Pipes, terminals and character devices cannot be synced (fdatasync gives EINVAL). After a
  // failed sync one is tried at every flush, written to or not, so that the failure ends (and is
  // said to end) when syncing works again, not at the next line.
  if ((!unsynced_ && !sync_failing_) || !is_regular_) {
    rotateIfDue(0);
    return finished;
  }
  const int error = syncData(fd_.get());
  // After a failed fdatasync Linux may have dropped the dirty pages and will not report the error
  // again, so the next attempt starts clean whatever happened here.
  unsynced_ = false;
  if (error != 0 && error != EINVAL) {
    noteSyncFailed();
    noteFailure("fdatasync of " + path_.string() + " failed: " + errnoText(error) +
                "; lines written since the last flush may be lost (recorded as a gap)");
    sync_failing_ = true;
    return SinkStatus::Failed;
  }
  sync_failing_ = false;
  if (finished == SinkStatus::Ok) {
    noteSuccess();
  }
  noteSynced();
  rotateIfDue(0);
  return finished;
}

bool JsonLinesSink::abandonUnfinished() noexcept {
  if (torn_tail_.empty()) {
    return false;
  }
  const bool records_lost = cut_record_.records > 0;
  const std::string where = is_regular_ && !is_stdout_
                                ? "its start stays at the end of the file until the next start moves it to " +
                                      path_.string() + ".torn"
                                : "the output ends in its start";
  log_->error("{}: the line a failed write cut could not be finished before the stop; {}{}", name_,
              records_lost ? "its record is recorded as a gap, and " : "", where);
  moveToSyncLoss(cut_record_);
  torn_tail_.clear();
  return records_lost;
}

void JsonLinesSink::reopen() noexcept {
  (void)flush();  // a failure is logged there; it also finishes a cut line if it can
  if (is_stdout_) {
    return;
  }
  struct stat open_file {};
  const bool deleted = ::fstat(fd_.get(), &open_file) == 0 && open_file.st_nlink == 0;
  if (!torn_tail_.empty() && !deleted) {
    // The rest of a cut line belongs in this file, after its start: reopening now would leave half
    // a line here (or, reopening the same file, cut it off, shrinking the file under a shipper).
    // Its record counts as written; the next write or flush finishes it, and the reopen follows.
    log_->info("not reopening {} yet: the rest of a line cut by a failed write is still to be written to it",
               path_.string());
    next_moved_check_ = clock_->now();  // reopenIfMoved() tries again at the next batch
    return;
  }
  Result<UniqueFd> fd = openForAppend(path_);
  if (!fd) {
    // reopenIfMoved() only looks again at a regular file: a FIFO whose reader is gone waits for
    // the next SIGHUP.
    const std::string when = is_regular_ ? "in " + std::to_string(kMovedRetryInterval.count()) + " s or at the next SIGHUP"
                                         : "at the next SIGHUP";
    log_->error("{}; {}, and trying again {}", fd.error().detail,
                deleted ? "the file that was open was deleted, so the lines wait in the daemon"
                        : "still writing to the file that was open before",
                when);
    next_moved_check_ = clock_->now() + kMovedRetryInterval;  // reopenIfMoved() tries again then
    return;
  }
  if (deleted) {
    // What was written to it since it was last seen at the path went with it (a SIGHUP after an
    // rm, or logrotate's rotate 0): a gap, as when reopenIfMoved() finds it deleted. A cut line's
    // start went with it too; its rest would only be a broken line in the new file.
    moveToSyncLoss(unchecked_);
    torn_tail_.clear();
    cut_record_ = {};
  }
  unchecked_ = {};  // the moved file keeps its lines
  struct stat before {};
  struct stat after {};
  const bool same_file = ::fstat(fd_.get(), &before) == 0 && ::fstat(fd->get(), &after) == 0 &&
                         FileId::of(before) == FileId::of(after);
  fd_ = std::move(fd).value();  // closing the old descriptor drops its lock, which a reopen of the same file takes again
  written_end_ = 0;  // what writeAll() adds until reopenIfMoved() reads the size
  is_regular_ = isRegularFile(fd_.get());
  unsynced_ = false;
  log_->info("reopened {}", path_.string());
  lockReopened();
  // Normally a new, empty file; but one another program left ending in half a line is repaired.
  moveTornLastLine();
  if (!same_file) {
    file_start_ = fileStart(clock_->now());
  }
  openDirect();
}

std::optional<JsonLinesSink::OpenFile> JsonLinesSink::openFile() const noexcept {
  OpenFile file{};
  if (::fstat(fd_.get(), &file.status) != 0) {
    return std::nullopt;
  }
  struct stat at_path {};
  file.at_path = ::stat(path_.c_str(), &at_path) == 0 && FileId::of(at_path) == FileId::of(file.status);
  return file;
}

void JsonLinesSink::lockReopened() noexcept {
  // The lines are written either way: refusing them would lose records to keep another writer out.
  if (auto locked = lockAgainstOtherWriters(fd_.get(), path_); !locked) {
    log_->warn("{}; writing to it anyway", locked.error().detail);
  }
}

void JsonLinesSink::noteTruncatedUnderUs(off_t size) noexcept {
  // copytruncate (docs/operations.md says not to): logrotate copies the file, then cuts it to
  // nothing; what was written between the two is in neither. Those lines are among the ones
  // written since the last look (unchecked_), which become a gap, as for a deleted file.
  log_->error("{} was cut from {} to {} bytes by another process (logrotate's copytruncate?): lines written between "
              "its copy and the cut are lost ({} since the last look, recorded as a gap); use the built-in "
              "rotation, or logrotate's rename with SIGHUP (docs/operations.md)",
              path_.string(), written_end_, size, unchecked_.records);
  moveToSyncLoss(unchecked_);
  written_end_ = size;
}

bool JsonLinesSink::reopenIfMoved() noexcept {
  if (is_stdout_ || !is_regular_) {
    return true;
  }
  auto file = openFile();
  if (!file || file->at_path) {
    if (file && file->status.st_size < written_end_) {
      noteTruncatedUnderUs(file->status.st_size);
    }
    if (file) {
      written_end_ = file->status.st_size;  // from here writeAll() counts what it adds
    }
    unchecked_ = {};  // the file at the path holds them
    return true;  // (a descriptor that cannot be read: the write that follows reports it)
  }
  if (clock_->now() >= next_moved_check_) {  // after a reopen that failed, once a minute
    const FileId id = FileId::of(file->status);
    const bool reported = moved_reported_ == id;
    moved_reported_ = id;
    if (reported) {
      // Said when it was found; reopen() says again why the path cannot be opened.
    } else if (file->status.st_nlink == 0) {
      // Its lines since it was last seen at the path went nowhere a shipper that looks by name will
      // find: a sink_failure gap, through takeSyncLoss() at the next flush (an exploratory run lost
      // 2,048 lines so with no gap and no metric). What was in it before, whoever deleted it meant.
      log_->error("{} was deleted while ctauditd wrote it: the lines written to it are gone with it ({} since it was "
                  "last seen, recorded as a gap); writing to a new {}",
                  path_.string(), unchecked_.records, path_.string());
      moveToSyncLoss(unchecked_);
    } else {
      // logrotate's rename is usually seen here, before its SIGHUP arrives: not a warning.
      log_->info("{} was moved or replaced (rotated): the lines up to now are in the moved file; writing to a new {}",
                 path_.string(), path_.string());
    }
    reopen();
    file = openFile();
    if (!file || file->at_path) {
      return true;
    }
  }
  // Still a file that is not at the path. A moved one keeps its lines (a shipper follows it by
  // inode); lines written to a deleted one would be lost without a trace.
  return file->status.st_nlink != 0;
}

Timestamp JsonLinesSink::fileStart(Timestamp now) const noexcept {
  struct statx sx {};
  if (::statx(fd_.get(), "", AT_EMPTY_PATH, STATX_SIZE | STATX_BTIME | STATX_MTIME, &sx) != 0 || sx.stx_size == 0) {
    return now;
  }
  const auto at = [](const struct statx_timestamp& t) {
    return Timestamp{std::chrono::seconds{t.tv_sec} + std::chrono::nanoseconds{t.tv_nsec}};
  };
  return (sx.stx_mask & STATX_BTIME) != 0U ? at(sx.stx_btime) : at(sx.stx_mtime);
}

void JsonLinesSink::rotateIfDue(std::uint64_t incoming) noexcept {
  if (!rotation_.policy.enabled() || is_stdout_ || !is_regular_ || !torn_tail_.empty()) {
    return;
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) {
    return;
  }
  const Timestamp now = clock_->now();
  const auto size = static_cast<std::uint64_t>(st.st_size);
  if (size == 0) {
    file_start_ = now;  // an empty file begins with its first line
    return;
  }
  const RotateReason reason = rotationDue(rotation_.policy, file_start_, size, incoming, now);
  if (reason != RotateReason::None) {
    (void)closeActiveFile(closedEnd(rotation_.policy, reason, file_start_, now), now);
  }
}

bool JsonLinesSink::closeActiveFile(Timestamp end, Timestamp now) noexcept {
  // The pipeline thread waits for all of this: the log says how long, so that a slow disk shows.
  const auto began = std::chrono::steady_clock::now();
  // Durable before it gets the name that tells readers it is complete.
  if (unsynced_) {
    if (const int error = syncData(fd_.get()); error == 0) {
      unsynced_ = false;
      noteSynced();
    } else if (error != EINVAL) {
      noteSyncFailed();  // the file is closed anyway: what it did not sync is reported as a gap
    }
  }
  const std::filesystem::path closed = closedFilePath(path_, file_start_, end);
  const auto refuse = [&](const std::string& why) {
    // A size rotation asks again before every batch: say it once until a rotation works again.
    if (!rotation_refused_) {
      log_->warn("not rotating {}: {}; still writing to it", path_.string(), why);
      rotation_refused_ = true;
    }
    return false;
  };
  // The file at the path must be the one written: after it was moved or deleted (reopenIfMoved
  // handles that at the next batch) the path may hold someone else's file, or a directory.
  if (const auto file = openFile(); !file || !file->at_path) {
    return refuse("the file at the path is not the one being written (moved or deleted)");
  }
  struct stat existing {};
  if (::lstat(closed.c_str(), &existing) == 0) {
    // Names have second resolution: a second size rotation within the same second waits for the
    // next second. Expected with small sizes at high rates, so not a warning.
    log_->debug("not rotating {} yet: {} exists (at most one rotation a second)", path_.string(),
                closed.filename().string());
    return false;
  }
  if (::rename(path_.c_str(), closed.c_str()) != 0) {
    return refuse("cannot rename it to " + closed.string() + ": " + errnoText(errno));
  }
  Result<UniqueFd> fd = openForAppend(path_);
  if (!fd) {
    // Give the file its name back, so that the lines still to come are not written to a file
    // whose name says it is closed.
    const bool restored = ::rename(closed.c_str(), path_.c_str()) == 0;
    return refuse(fd.error().detail + (restored ? "" : "; and it could not be renamed back from " + closed.string()));
  }
  fd_ = std::move(fd).value();
  written_end_ = 0;
  is_regular_ = isRegularFile(fd_.get());
  unsynced_ = false;
  lockReopened();
  openDirect();
  file_start_ = now;
  ++rotations_;
  rotation_refused_ = false;
  if (const UniqueFd dir{::open(path_.parent_path().empty() ? "." : path_.parent_path().c_str(),
                                O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
      dir.valid()) {
    (void)::fsync(dir.get());  // the rename and the new file survive a crash; best effort
  }
  log_->info("rotated {} to {} in {:.1f} ms", path_.string(), closed.filename().string(),
             std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - began).count());
  if (archiver_) {
    archiver_->wake();
  }
  return true;
}

void JsonLinesSink::moveTornLastLine() noexcept {
  if (is_stdout_ || !is_regular_) {
    return;
  }
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0 || st.st_size == 0) {
    return;
  }
  const auto problem = [&](std::string_view what, int error) {
    log_->warn("{} does not end with a complete line, and {}: {}", path_.string(), what, errnoText(error));
  };
  // fd_ is write-only; the repair reads through a descriptor of its own.
  const UniqueFd in{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in.valid()) {
    problem("it cannot be read to check", errno);
    return;
  }
  std::string chunk;
  char last = '\n';
  if (preadFull(in.get(), &last, 1, st.st_size - 1) != 1) {
    problem("its last byte cannot be read", errno);
    return;
  }
  if (last == '\n') {
    return;
  }
  const off_t keep = endOfLastLine(in.get(), st.st_size, chunk);
  if (keep < 0) {
    problem("it cannot be read to find its last complete line", errno);
    return;
  }
  const auto torn_bytes = static_cast<std::uint64_t>(st.st_size - keep);
  const std::filesystem::path torn_path = path_.string() + ".torn";

  // Save first, cut second: a crash in between leaves the bytes in both files, never in neither.
  int error = 0;
  {
    const UniqueFd torn{::open(torn_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kLogFileMode)};
    if (!torn.valid()) {
      error = errno;
    } else {
      const std::string note = "# " + formatRfc3339(SystemClock{}.now()) + " ctauditd cut these " +
                               std::to_string(torn_bytes) + " bytes, an unfinished last line, off the end of " +
                               path_.string() + ":\n";
      error = writeFull(torn.get(), note);
      for (off_t offset = keep; error == 0 && offset < st.st_size;) {
        const auto length = static_cast<std::size_t>(std::min<off_t>(st.st_size - offset, kRepairChunk));
        chunk.resize(length);
        const ssize_t n = preadFull(in.get(), chunk.data(), length, offset);
        if (n <= 0) {
          error = n < 0 ? errno : EIO;
          break;
        }
        error = writeFull(torn.get(), std::string_view(chunk.data(), static_cast<std::size_t>(n)));
        offset += static_cast<off_t>(n);
      }
      if (error == 0) {
        error = writeFull(torn.get(), "\n");
      }
      if (error == 0 && ::fdatasync(torn.get()) != 0) {
        error = errno;
      }
    }
  }
  if (error != 0) {
    // The bytes stay where they are; ending them with a newline at least keeps the next line whole.
    problem("its unfinished last line could not be saved to " + torn_path.string() +
                (writeFull(fd_.get(), "\n") == 0 ? "; it was ended with a newline instead" : ""),
            error);
    return;
  }
  while (::ftruncate(fd_.get(), keep) != 0) {
    if (errno != EINTR) {
      problem("the unfinished last line, saved to " + torn_path.string() + ", could not be cut off", errno);
      return;
    }
  }
  (void)::fdatasync(fd_.get());  // best effort: were the cut undone by a crash, the next start redoes it
  log_->warn("{} ended in an unfinished line (ctauditd was killed mid-write?): moved its {} bytes to {}",
             path_.string(), torn_bytes, torn_path.string());
}

void JsonLinesSink::noteSuccess() noexcept {
  if (failures_in_episode_ > 0 && !sync_failing_) {
    log_->info("writing JSON lines to {} works again after {} failed attempts", name_, failures_in_episode_);
    failures_in_episode_ = 0;
  }
}

SinkStatus JsonLinesSink::deletedFileFailure() noexcept {
  noteFailure("not writing to " + path_.string() + ", which was deleted, while it cannot be created again: the "
              "lines wait (as for a full disk) and a new file is tried once a minute, or at SIGHUP");
  return SinkStatus::Failed;
}

void JsonLinesSink::noteFailure(const std::string& message) noexcept {
  if (failures_in_episode_++ == 0) {
    log_->error("{}", message);
  } else {
    log_->debug("{}", message);
  }
}

}  // namespace ctaudit::storage
