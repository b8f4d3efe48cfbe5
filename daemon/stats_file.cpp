// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/stats_file.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <fcntl.h>
#include <unistd.h>

#include "flow/unique_c.hpp"
#include "storage/file_io.hpp"

namespace ctaudit::daemon {
namespace {

Unexpected ioFailure(const std::string& what, const std::filesystem::path& path, int err) {
  return fail(Errc::Io, what + " " + path.string() + ": " + std::strerror(err), err);
}

}  // namespace

Result<void> replaceFile(const std::filesystem::path& path, std::string_view text) {
  std::filesystem::path temporary = path;
  temporary += ".tmp";
  {
    UniqueFd fd{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)};
    if (!fd.valid()) {
      return ioFailure("cannot create", temporary, errno);
    }
    if (const int err = storage::writeFull(fd.get(), text); err != 0) {
      ::unlink(temporary.c_str());
      return ioFailure("cannot write", temporary, err);
    }
  }
  if (::rename(temporary.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(temporary.c_str());
    return ioFailure("cannot rename the new stats file to", path, err);
  }
  return {};
}

std::filesystem::path StatsFile::lockPath(const std::filesystem::path& stats_file) {
  std::filesystem::path lock = stats_file;
  lock += ".lock";
  return lock;
}

Result<std::unique_ptr<StatsFile>> StatsFile::open(std::filesystem::path path, std::shared_ptr<spdlog::logger> log) {
  const std::filesystem::path lock_path = lockPath(path);
  // Opened as root before the switch to the service account, in a directory that account may
  // write: no link followed (a planted one would have root create its target), and a FIFO put
  // there neither blocks the start nor is taken for the lock.
  UniqueFd lock{::open(lock_path.c_str(), O_RDONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, 0640)};
  if (!lock.valid()) {
    log->warn("cannot open {} ({}): the stats file is written without a lock against a second daemon",
              lock_path.string(), std::strerror(errno));
  } else if (!storage::isRegularFile(lock.get())) {
    log->warn("{} is not a regular file: the stats file is written without a lock against a second daemon",
              lock_path.string());
    lock = UniqueFd{};
  } else if (const int error = storage::lockExclusively(lock.get()); error == EWOULDBLOCK) {
    return fail(Errc::Io, "stats file " + path.string() +
                              " is written by another process (another ctauditd, whose database is in the same "
                              "directory?): give this one its own --stats-file, or --stats-file none",
                EWOULDBLOCK);
  } else if (error != 0) {
    log->warn("cannot lock {} ({}): the stats file is written without a lock against a second daemon",
              lock_path.string(), std::strerror(error));
  }
  return std::unique_ptr<StatsFile>(new StatsFile(std::move(path), std::move(log), std::move(lock)));
}

StatsFile::StatsFile(std::filesystem::path path, std::shared_ptr<spdlog::logger> log, UniqueFd lock)
    : path_(std::move(path)), log_(std::move(log)), lock_(std::move(lock)) {}

void StatsFile::write(std::string_view text) {
  const auto replaced = replaceFile(path_, text);
  if (!replaced && !failing_) {
    log_->warn("cannot write the stats file (retrying quietly): {}", replaced.error().detail);
    failing_ = true;
  } else if (replaced && failing_) {
    log_->info("writing the stats file {} again", path_.string());
    failing_ = false;
  }
}

}  // namespace ctaudit::daemon
