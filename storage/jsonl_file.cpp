// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_file.hpp"

#include <algorithm>
#include <cerrno>
#include <string_view>
#include <system_error>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/file_io.hpp"
#include "storage/schema.hpp"

namespace ctaudit::storage {

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
  // O_NONBLOCK: opening a FIFO that no one reads would otherwise block the start for good, before
  // the daemon says anything. A FIFO (or a device) stays non-blocking, so that a reader that stops
  // holds the pipeline thread for at most kRoomWait a write, not the database, the stats file and
  // the shutdown with it (writeAll); a regular file is written blocking, as ever.
  UniqueFd fd{::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK, kLogFileMode)};
  if (!fd.valid()) {
    const int error = errno;
    std::string why;
    struct stat st {};
    if (error == ENXIO && ::stat(path.c_str(), &st) == 0) {
      why = S_ISFIFO(st.st_mode) ? " (a FIFO that no process reads: start its reader first)"
            : S_ISSOCK(st.st_mode)
                ? " (a socket: ctauditd writes to files and FIFOs; for the journal's standard output use --jsonl -)"
                : "";
    }
    return fail(Errc::Io, "cannot open JSON lines file " + path.string() + " for appending: " + errnoText(error) + why,
                error);
  }
  if (isRegularFile(fd.get()) && ::fcntl(fd.get(), F_SETFL, O_APPEND) != 0) {
    const int error = errno;
    return fail(Errc::Io, "cannot set up JSON lines file " + path.string() + ": " + errnoText(error), error);
  }
  return fd;
}

// A descriptor of the sink's own for standard output. A pipe or a terminal gets an open file
// description of its own (through /proc/self/fd/1), made non-blocking as a FIFO path is: O_NONBLOCK
// on fd 1's description would also reach whoever shares it (the shell that started the daemon,
// and fd 2 where systemd made stderr a copy of stdout). O_NOCTTY: a daemon that leads its session
// must not take the terminal as its controlling one. Anything else (a regular file, journald's
// socket, which cannot be opened again, no /proc) is a plain duplicate, written blocking as before.
int standardOutputForSink() noexcept {
  struct stat st {};
  if (::fstat(STDOUT_FILENO, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode))) {
    const int own = ::open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (own >= 0) {
      return own;
    }
  }
  return ::fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
}

// An exclusive flock(2) on the regular file open at `fd`, held as long as the descriptor: a
// second ctauditd given the same --jsonl (one started by hand beside the service, with its own
// --db) would write every record twice into the SIEM's feed and rotate the file under the first.
// Fails only when another open file holds the lock; where flock is not supported the file is
// written unlocked, as before. FIFOs and devices are not locked: /dev/null takes every writer.
Result<void> lockAgainstOtherWriters(int fd, const std::filesystem::path& path) {
  if (!isRegularFile(fd)) {
    return {};
  }
  if (lockExclusively(fd) == EWOULDBLOCK) {
    return fail(Errc::Io, "JSON lines file " + path.string() +
                              " is being written by another process (another ctauditd?): stop it first, or give this "
                              "one another --jsonl; two daemons on one file would write every record twice",
                EWOULDBLOCK);
  }
  return {};
}

// Whether the file open for writing at `fd` is a SQLite database, read through /proc/self/fd so
// that it is the file opened, whatever name led to it (a link, a bind mount): appending to a
// database, and cutting its "unfinished line" off, would damage it. False when it cannot be read
// (no /proc): the configuration check has looked at the path already.
bool holdsSqliteDatabase(int fd) { return beginsWithSqliteHeader("/proc/self/fd/" + std::to_string(fd)); }

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

}  // namespace ctaudit::storage
