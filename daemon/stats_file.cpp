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

StatsFile::StatsFile(std::filesystem::path path, std::shared_ptr<spdlog::logger> log)
    : path_(std::move(path)), log_(std::move(log)) {}

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
