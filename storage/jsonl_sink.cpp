// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_sink.hpp"

#include <algorithm>
#include <cerrno>
#include <string>
#include <system_error>
#include <utility>

#include <fcntl.h>
#include <spdlog/logger.h>
#include <sys/stat.h>
#include <unistd.h>

namespace ctaudit::storage {
namespace {

// strerror() text without strerror's shared buffer.
std::string errnoText(int error) { return std::system_category().message(error); }

constexpr mode_t kFileMode = 0640;

bool isRegularFile(int fd) noexcept {
  struct stat st {};
  return ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

// Creates the missing parents of `path`, then opens it for appending.
Result<UniqueFd> openForAppend(const std::filesystem::path& path) {
  if (const std::filesystem::path parent = path.parent_path(); !parent.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(parent, ec);
    if (ec) {
      return fail(Errc::Io, "cannot create directory " + parent.string() + " for JSON lines file " + path.string() +
                                ": " + ec.message(),
                  ec.value());
    }
  }
  const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kFileMode);
  if (fd < 0) {
    const int error = errno;
    return fail(Errc::Io, "cannot open JSON lines file " + path.string() + " for appending: " + errnoText(error),
                error);
  }
  return UniqueFd{fd};
}

// How much of the file the torn-line repair reads at a time.
constexpr std::size_t kRepairChunk = 64 * 1024;

// pread(2) until `size` bytes or end of file; the count read, or -1 with errno set.
ssize_t preadFull(int fd, char* data, std::size_t size, off_t offset) noexcept {
  std::size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pread(fd, data + done, size - done, offset + static_cast<off_t>(done));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return -1;
    }
    if (n == 0) {
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  return static_cast<ssize_t>(done);
}

// write(2) all of `bytes`; 0, or the errno that stopped it.
int writeFull(int fd, std::string_view bytes) noexcept {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return errno;
    }
    if (n == 0) {
      return EIO;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// The offset just past the last '\n' of the `size` bytes that `fd` holds (0 when there is none),
// or -1 with errno set. Reads backwards a chunk at a time: the torn part is normally one line.
off_t endOfLastLine(int fd, off_t size, std::string& buffer) noexcept {
  off_t end = size;
  while (end > 0) {
    const off_t begin = std::max<off_t>(0, end - static_cast<off_t>(kRepairChunk));
    const auto length = static_cast<std::size_t>(end - begin);
    buffer.resize(length);
    const ssize_t n = preadFull(fd, buffer.data(), length, begin);
    if (n < 0) {
      return -1;
    }
    const auto found = std::string_view(buffer.data(), static_cast<std::size_t>(n)).rfind('\n');
    if (found != std::string_view::npos) {
      return begin + static_cast<off_t>(found) + 1;
    }
    end = begin;
  }
  return 0;
}

// EAGAIN only comes from a non-blocking standard output whose reader is slow: worth another try.
// Everything else (ENOSPC, EDQUOT, EFBIG, EIO, EPIPE, ...) fails the same way again.
SinkStatus statusFor(int error) noexcept {
  return error == EAGAIN || error == EWOULDBLOCK ? SinkStatus::Retry : SinkStatus::Failed;
}

}  // namespace

Result<std::unique_ptr<JsonLinesSink>> JsonLinesSink::open(const std::filesystem::path& path_or_dash,
                                                           JsonContext context, bool include_updates,
                                                           std::shared_ptr<spdlog::logger> log) {
  if (log == nullptr) {
    return fail(Errc::Config, "the JSON lines sink needs a logger");
  }
  if (path_or_dash == "-") {
    // A duplicate, so that the sink owns its descriptor like any other and closing it leaves fd 1
    // to the rest of the process.
    const int fd = ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
    if (fd < 0) {
      const int error = errno;
      return fail(Errc::Io, "cannot write JSON lines to standard output: " + errnoText(error), error);
    }
    return std::make_unique<JsonLinesSink>(Private{}, UniqueFd{fd}, path_or_dash, true, std::move(context),
                                           include_updates, std::move(log));
  }
  Result<UniqueFd> fd = openForAppend(path_or_dash);
  if (!fd) {
    return Unexpected{fd.error()};
  }
  auto sink = std::make_unique<JsonLinesSink>(Private{}, std::move(fd).value(), path_or_dash, false,
                                              std::move(context), include_updates, std::move(log));
  sink->moveTornLastLine();
  return sink;
}

JsonLinesSink::JsonLinesSink(Private /*unused*/, UniqueFd fd, std::filesystem::path path, bool is_stdout,
                             JsonContext context, bool include_updates, std::shared_ptr<spdlog::logger> log) noexcept
    : fd_(std::move(fd)),
      path_(std::move(path)),
      name_(is_stdout ? std::string{"standard output"} : path_.string()),
      is_stdout_(is_stdout),
      is_regular_(isRegularFile(fd_.get())),
      context_(std::move(context)),
      include_updates_(include_updates),
      log_(std::move(log)) {}

// Formatting appends to buffer_, which keeps its capacity from batch to batch, so after the first
// batches nothing is allocated here. Should the buffer have to grow and memory be out, like every
// allocation on the daemon's hot path, that ends the process (std::terminate through noexcept)
// rather than being handled.
SinkStatus JsonLinesSink::doWrite(std::span<const FlowRecord> batch) noexcept {
  if (!torn_tail_.empty()) {
    if (const SinkStatus status = finishTornLine(); status != SinkStatus::Ok) {
      return status;
    }
  }

  buffer_.clear();
  std::size_t lines = 0;
  for (const FlowRecord& record : batch) {
    if (record.event == EventType::Update && !include_updates_) {
      continue;
    }
    appendJsonLine(buffer_, record, context_);  // into the kept capacity: no allocation per record
    buffer_ += '\n';
    ++lines;
  }
  if (buffer_.empty()) {
    return SinkStatus::Ok;
  }
  return writeBuffer(lines);
}

SinkStatus JsonLinesSink::writeGap(const GapRecord& gap) noexcept {
  if (gap.end < gap.start) {
    log_->warn("a {} gap from {} to {} ends before it starts; not written to {}", gapReasonName(gap.reason),
               formatRfc3339(gap.start), formatRfc3339(gap.end), name_);
    return SinkStatus::Failed;
  }
  if (!torn_tail_.empty()) {
    if (const SinkStatus status = finishTornLine(); status != SinkStatus::Ok) {
      return status;
    }
  }
  buffer_.clear();
  appendJsonLine(buffer_, gap, context_);
  buffer_ += '\n';
  return writeBuffer(1);
}

SinkStatus JsonLinesSink::writeBuffer(std::size_t lines) noexcept {
  const WriteOutcome outcome = writeAll(buffer_);
  if (outcome.written > 0) {
    unsynced_ = true;
  }
  if (outcome.error != 0) {
    return handleWriteFailure(outcome, lines);
  }
  noteSuccess();
  return SinkStatus::Ok;
}

JsonLinesSink::WriteOutcome JsonLinesSink::writeAll(std::string_view bytes) const noexcept {
  WriteOutcome outcome;
  while (outcome.written < bytes.size()) {
    const ssize_t n = ::write(fd_.get(), bytes.data() + outcome.written, bytes.size() - outcome.written);
    if (n < 0) {
      const int error = errno;
      if (error == EINTR) {
        continue;
      }
      outcome.error = error;
      return outcome;
    }
    if (n == 0) {  // write(2) never returns 0 for a non-empty buffer on files or pipes; do not spin
      outcome.error = EIO;
      return outcome;
    }
    outcome.written += static_cast<std::size_t>(n);
  }
  return outcome;
}

SinkStatus JsonLinesSink::handleWriteFailure(const WriteOutcome& outcome, std::size_t lines) noexcept {
  const std::size_t total = buffer_.size();
  if (outcome.written == 0) {
    noteFailure("writing " + std::to_string(lines) + " JSON lines to " + name_ + " failed: " + errnoText(outcome.error));
    return statusFor(outcome.error);
  }

  if (cutBack(outcome.written)) {
    noteFailure("writing " + std::to_string(lines) + " JSON lines to " + name_ + " failed after " +
                std::to_string(outcome.written) + " of " + std::to_string(total) +
                " bytes: " + errnoText(outcome.error) + "; the partial batch was cut off again");
    return statusFor(outcome.error);
  }

  // Cannot cut back: the whole lines stay, and the rest of a cut line is kept to be written first,
  // so that whatever reads the stream sees only whole lines once the output works again.
  const auto whole_lines =
      static_cast<std::size_t>(std::count(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(outcome.written), '\n'));
  if (buffer_[outcome.written - 1] != '\n') {
    const std::size_t line_end = buffer_.find('\n', outcome.written);
    torn_tail_.assign(buffer_, outcome.written, line_end + 1 - outcome.written);
  }
  noteFailure("writing " + std::to_string(lines) + " JSON lines to " + name_ + " failed after " +
              std::to_string(whole_lines) + " whole lines" + (torn_tail_.empty() ? "" : " and part of the next") +
              ": " + errnoText(outcome.error) + "; lines already written will appear again if the batch is retried");
  return statusFor(outcome.error);
}

bool JsonLinesSink::cutBack(std::size_t bytes) const noexcept {
  if (is_stdout_ || !is_regular_) {
    return false;
  }
  // With O_APPEND and one writer our bytes are the file's last ones. A size smaller than what we
  // wrote means someone else changed the file (copytruncate): leave it alone then.
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0 || st.st_size < static_cast<off_t>(bytes)) {
    return false;
  }
  const off_t keep = st.st_size - static_cast<off_t>(bytes);
  while (::ftruncate(fd_.get(), keep) != 0) {
    if (errno != EINTR) {
      const int error = errno;
      log_->error("cannot cut the partial batch off {}: {}", path_.string(), errnoText(error));
      return false;
    }
  }
  return true;
}

SinkStatus JsonLinesSink::finishTornLine() noexcept {
  const WriteOutcome outcome = writeAll(torn_tail_);
  torn_tail_.erase(0, outcome.written);
  if (outcome.written > 0) {
    unsynced_ = true;
  }
  if (outcome.error != 0) {
    noteFailure("finishing a cut JSON line on " + name_ + " failed: " + errnoText(outcome.error));
    return statusFor(outcome.error);
  }
  return SinkStatus::Ok;
}

SinkStatus JsonLinesSink::flush() noexcept {
  if (!torn_tail_.empty()) {
    if (const SinkStatus status = finishTornLine(); status != SinkStatus::Ok) {
      return status;
    }
  }
  // Pipes, terminals and character devices cannot be synced (fdatasync gives EINVAL).
  if (!unsynced_ || !is_regular_) {
    return SinkStatus::Ok;
  }
  int result = 0;
  do {
    result = ::fdatasync(fd_.get());
  } while (result != 0 && errno == EINTR);
  const int error = result == 0 ? 0 : errno;
  // After a failed fdatasync Linux may have dropped the dirty pages and will not report the error
  // again, so the next attempt starts clean whatever happened here.
  unsynced_ = false;
  if (error != 0 && error != EINVAL) {
    noteFailure("fdatasync of " + path_.string() + " failed: " + errnoText(error) +
                "; lines written since the last flush may be lost");
    return SinkStatus::Failed;
  }
  return SinkStatus::Ok;
}

void JsonLinesSink::reopen() noexcept {
  (void)flush();  // a failure is logged there
  if (is_stdout_) {
    return;
  }
  Result<UniqueFd> fd = openForAppend(path_);
  if (!fd) {
    log_->error("{}; still writing to the file that was open before", fd.error().detail);
    return;
  }
  if (!torn_tail_.empty()) {
    // Its start is in the old file; writing the rest at the top of the new one would only add a
    // broken line there. The batch it belonged to was reported Failed and is retried.
    log_->warn("dropping the unfinished end of a cut JSON line in the previous {}", path_.string());
    torn_tail_.clear();
  }
  fd_ = std::move(fd).value();
  is_regular_ = isRegularFile(fd_.get());
  unsynced_ = false;
  log_->info("reopened {}", path_.string());
  // Normally a new, empty file; but a SIGHUP without a rotation reopens the same one, which may end
  // in the half line dropped above.
  moveTornLastLine();
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
    const UniqueFd torn{::open(torn_path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, kFileMode)};
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
  if (failures_in_episode_ > 0) {
    log_->info("writing JSON lines to {} works again after {} failed attempts", name_, failures_in_episode_);
    failures_in_episode_ = 0;
  }
}

void JsonLinesSink::noteFailure(const std::string& message) noexcept {
  if (failures_in_episode_++ == 0) {
    log_->error("{}", message);
  } else {
    log_->debug("{}", message);
  }
}

}  // namespace ctaudit::storage
