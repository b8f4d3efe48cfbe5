// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/output_spool.hpp"

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

namespace ctaudit::query {
namespace {

std::string spoolDirectory() {
  const char* tmpdir = std::getenv("TMPDIR");  // NOLINT(concurrency-mt-unsafe): read before any thread starts
  return tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp";
}

}  // namespace

OutputSpool::OutputSpool(UniqueFd fd, std::string directory)
    : fd_(std::move(fd)), directory_(std::move(directory)), buffer_(fd_.get()), stream_(&buffer_) {}

Result<std::unique_ptr<OutputSpool>> OutputSpool::create() {
  std::string directory = spoolDirectory();
  std::string name = directory + "/ctaudit-output-XXXXXX";
  std::vector<char> writable(name.begin(), name.end());
  writable.push_back('\0');
  UniqueFd fd{::mkostemp(writable.data(), O_CLOEXEC)};
  if (!fd.valid()) {
    const int error = errno;
    return fail(Errc::Io, "cannot make a temporary file in " + directory + ": " + errnoText(error), error);
  }
  // Unlinked at once: nothing is left behind however ctaudit ends, and nobody else can open it.
  (void)::unlink(writable.data());
  return std::unique_ptr<OutputSpool>(new OutputSpool(std::move(fd), std::move(directory)));
}

Result<void> OutputSpool::copyTo(std::ostream& out) {
  stream_.flush();
  if (const int error = buffer_.error(); error != 0) {
    return fail(Errc::Io, "cannot hold the output in a temporary file in " + directory_ + ": " + errnoText(error) +
                              "; write it to a file instead (> FILE), or point TMPDIR at a disk with room",
                error);
  }
  if (::lseek(fd_.get(), 0, SEEK_SET) != 0) {
    const int error = errno;
    return fail(Errc::Io, "cannot read back the output held in " + directory_ + ": " + errnoText(error), error);
  }
  std::array<char, 64 * 1024> chunk{};
  while (out.good()) {
    const ssize_t got = ::read(fd_.get(), chunk.data(), chunk.size());
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got < 0) {
      const int error = errno;
      return fail(Errc::Io, "cannot read back the output held in " + directory_ + ": " + errnoText(error), error);
    }
    if (got == 0) {
      break;
    }
    out.write(chunk.data(), got);
  }
  return {};
}

}  // namespace ctaudit::query
