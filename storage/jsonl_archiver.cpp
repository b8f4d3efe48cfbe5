// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/jsonl_archiver.hpp"

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <spdlog/logger.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <zstd.h>

#include "flow/unique_c.hpp"
#include "storage/file_io.hpp"

namespace ctaudit::storage {
namespace {

using ZstdCctx = UniqueC<ZSTD_CCtx, ZSTD_freeCCtx>;

constexpr std::size_t kChunk = 256 * 1024;
// Compression is background work: leave the CPU to the pipeline thread first (setpriority(2) on a
// thread id changes that thread only on Linux).
constexpr int kNice = 10;
// How long the thread sleeps when no grace is running out, so that a file closed by someone else
// (an older run) is still looked after.
constexpr auto kIdlePass = std::chrono::minutes{1};

Unexpected ioError(const std::string& what, int error) {
  return fail(Errc::Io, what + ": " + errnoText(error), error);
}

// read(2) once, retrying EINTR: the count, 0 at the end, -1 with errno.
ssize_t readSome(int fd, char* data, std::size_t size) noexcept {
  ssize_t n = 0;
  do {
    n = ::read(fd, data, size);
  } while (n < 0 && errno == EINTR);
  return n;
}

// The deflate stream of one compression; deflateEnd at scope exit.
class Deflater {
public:
  Deflater() noexcept {
    // 15 window bits + 16: a gzip header and trailer instead of zlib's.
    ok_ = deflateInit2(&stream_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  Deflater(const Deflater&) = delete;
  Deflater& operator=(const Deflater&) = delete;
  Deflater(Deflater&&) = delete;
  Deflater& operator=(Deflater&&) = delete;
  ~Deflater() {
    if (ok_) {
      deflateEnd(&stream_);
    }
  }
  [[nodiscard]] bool ok() const noexcept { return ok_; }
  z_stream& stream() noexcept { return stream_; }

private:
  z_stream stream_{};
  bool ok_{false};
};

// Streams `in` to `out` compressed; 0 or an errno (EIO for a codec error, ECANCELED on stop).
int compressStream(int in, int out, Compression compression, const std::atomic<bool>& stop) {
  std::vector<char> input(kChunk);
  std::vector<char> output(kChunk + kChunk / 8);
  if (compression == Compression::Gzip) {
    Deflater deflater;
    if (!deflater.ok()) {
      return ENOMEM;
    }
    z_stream& zs = deflater.stream();
    for (bool at_end = false; !at_end;) {
      if (stop.load(std::memory_order_relaxed)) {
        return ECANCELED;
      }
      const ssize_t n = readSome(in, input.data(), input.size());
      if (n < 0) {
        return errno;
      }
      at_end = n == 0;
      zs.next_in = reinterpret_cast<Bytef*>(input.data());  // NOLINT: zlib's byte type
      zs.avail_in = static_cast<uInt>(n);
      do {
        zs.next_out = reinterpret_cast<Bytef*>(output.data());  // NOLINT: zlib's byte type
        zs.avail_out = static_cast<uInt>(output.size());
        const int rc = deflate(&zs, at_end ? Z_FINISH : Z_NO_FLUSH);
        if (rc == Z_STREAM_ERROR) {
          return EIO;
        }
        if (const int error = writeFull(out, std::string_view(output.data(), output.size() - zs.avail_out)); error != 0) {
          return error;
        }
      } while (zs.avail_out == 0);
    }
    return 0;
  }
  const ZstdCctx cctx{ZSTD_createCCtx()};
  if (!cctx || ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_compressionLevel, 3)) != 0U ||
      ZSTD_isError(ZSTD_CCtx_setParameter(cctx.get(), ZSTD_c_checksumFlag, 1)) != 0U) {
    return ENOMEM;
  }
  for (bool at_end = false; !at_end;) {
    if (stop.load(std::memory_order_relaxed)) {
      return ECANCELED;
    }
    const ssize_t n = readSome(in, input.data(), input.size());
    if (n < 0) {
      return errno;
    }
    at_end = n == 0;
    ZSTD_inBuffer source{input.data(), static_cast<std::size_t>(n), 0};
    const ZSTD_EndDirective mode = at_end ? ZSTD_e_end : ZSTD_e_continue;
    for (bool done = false; !done;) {
      ZSTD_outBuffer sink{output.data(), output.size(), 0};
      const std::size_t remaining = ZSTD_compressStream2(cctx.get(), &sink, &source, mode);
      if (ZSTD_isError(remaining) != 0U) {
        return EIO;
      }
      if (const int error = writeFull(out, std::string_view(output.data(), sink.pos)); error != 0) {
        return error;
      }
      done = at_end ? remaining == 0 : source.pos == source.size;
    }
  }
  return 0;
}

int fsyncRetry(int fd) noexcept {
  while (::fsync(fd) != 0) {
    if (errno != EINTR) {
      return errno;
    }
  }
  return 0;
}

// fsync of a directory, so that a rename or unlink in it survives a crash.
int syncDirectory(const std::filesystem::path& dir) noexcept {
  const UniqueFd fd{::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
  if (!fd.valid()) {
    return errno;
  }
  return fsyncRetry(fd.get());
}

// When the file was closed, as far as the grace goes: the later of the end in its name and its
// inode's change time (set by the rename that closed it).
Timestamp closedAt(const ClosedFile& file) {
  struct stat st {};
  if (::stat(file.path.c_str(), &st) != 0) {
    return file.end;
  }
  const Timestamp changed{std::chrono::seconds{st.st_ctim.tv_sec} + std::chrono::nanoseconds{st.st_ctim.tv_nsec}};
  return std::max(file.end, changed);
}

}  // namespace

Result<void> compressClosedFile(const std::filesystem::path& plain, Compression compression,
                                const std::atomic<bool>& stop) {
  if (compression == Compression::None) {
    return {};
  }
  const std::filesystem::path target = plain.string() + std::string(compressionSuffix(compression));
  const std::filesystem::path temporary = target.string() + ".tmp";
  const UniqueFd in{::open(plain.c_str(), O_RDONLY | O_CLOEXEC)};
  if (!in.valid()) {
    return ioError("cannot open " + plain.string() + " to compress it", errno);
  }
  int error = 0;
  {
    const UniqueFd out{::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, kLogFileMode)};
    if (!out.valid()) {
      return ioError("cannot create " + temporary.string(), errno);
    }
    error = compressStream(in.get(), out.get(), compression, stop);
    if (error == 0) {
      error = fsyncRetry(out.get());
    }
  }
  if (error == 0 && ::rename(temporary.c_str(), target.c_str()) != 0) {
    error = errno;
  }
  if (error != 0) {
    ::unlink(temporary.c_str());
    if (error == ECANCELED) {
      return fail(Errc::Io, "stopped", error);
    }
    return ioError("cannot compress " + plain.string() + " to " + target.string(), error);
  }
  // The compressed file must be durable under its name before the plain one may go.
  if (const int sync_error = syncDirectory(plain.parent_path()); sync_error != 0) {
    return ioError("cannot sync the directory of " + target.string() + "; kept " + plain.string(), sync_error);
  }
  if (::unlink(plain.c_str()) != 0) {
    return ioError("compressed " + plain.string() + " but cannot remove it", errno);
  }
  (void)syncDirectory(plain.parent_path());  // at worst the next start removes the plain twin again
  return {};
}

JsonlArchiver::JsonlArchiver(std::filesystem::path active, const RotationSettings& settings, const Clock& clock,
                             std::shared_ptr<spdlog::logger> log)
    : active_(std::move(active)), settings_(settings), clock_(clock), log_(std::move(log)) {}

JsonlArchiver::~JsonlArchiver() {
  if (!thread_.joinable()) {
    return;
  }
  {
    const std::lock_guard lock(mutex_);
    stopping_.store(true);
  }
  wakeup_.notify_all();
  thread_.join();
}

void JsonlArchiver::start() { thread_ = std::thread([this] { loop(); }); }

void JsonlArchiver::wake() noexcept {
  {
    const std::lock_guard lock(mutex_);
    woken_ = true;
  }
  wakeup_.notify_all();
}

void JsonlArchiver::loop() {
  (void)::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kNice);
  std::unique_lock lock(mutex_);
  while (!stopping_.load()) {
    woken_ = false;
    lock.unlock();
    // Everything it calls reports problems as values; an allocation failure ends the process as
    // everywhere else in the daemon.
    const PassResult pass = runOnce(clock_.now());
    lock.lock();
    auto wait = std::chrono::duration_cast<std::chrono::nanoseconds>(kIdlePass);
    if (pass.next_due) {
      wait = std::clamp(*pass.next_due - clock_.now(), std::chrono::nanoseconds{std::chrono::milliseconds{50}}, wait);
    }
    wakeup_.wait_for(lock, wait, [this] { return woken_ || stopping_.load(); });
  }
}

JsonlArchiver::PassResult JsonlArchiver::runOnce(Timestamp now) {
  PassResult result;
  const std::filesystem::path dir = active_.parent_path().empty() ? "." : active_.parent_path();
  // Every closed name, grouped by its plain base name; std::map keeps them oldest first.
  std::map<std::string, std::vector<ClosedFile>> closed;
  std::error_code ec;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    if (auto file = parseClosedFileName(active_, it->path().filename().string())) {
      closed[file->base].push_back(std::move(*file));
    }
  }
  if (ec) {
    log_->warn("cannot list {} to look after closed JSON-lines files: {}", dir.string(), ec.message());
    return result;
  }
  const auto remove = [&](const std::filesystem::path& path, std::string_view why) {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      const int error = errno;
      log_->warn("cannot remove {} ({}): {}", path.string(), why, errnoText(error));
      return false;
    }
    return true;
  };
  const auto due = [&](Timestamp at) {
    if (at > now) {
      result.next_due = result.next_due ? std::min(*result.next_due, at) : at;
      return false;
    }
    return true;
  };

  // Repair: unfinished compressions go; a plain file whose compressed twin exists goes.
  for (auto& [base, files] : closed) {
    const bool has_compressed = std::any_of(files.begin(), files.end(), [](const ClosedFile& f) {
      return f.compression != Compression::None && !f.temporary;
    });
    std::erase_if(files, [&](const ClosedFile& f) {
      if (f.temporary || (has_compressed && f.compression == Compression::None)) {
        if (remove(f.path, f.temporary ? "an unfinished compression" : "its compressed copy is complete")) {
          log_->info("removed {}: {}", f.path.string(),
                     f.temporary ? "an unfinished compression, redone from the plain file"
                                 : "its compressed copy was completed before a restart");
          ++result.repaired;
          return true;
        }
      }
      return false;
    });
  }
  std::erase_if(closed, [](const auto& entry) { return entry.second.empty(); });

  // Compression of plain files whose grace is over.
  if (settings_.compression != Compression::None) {
    for (auto& [base, files] : closed) {
      if (stopping_.load()) {
        return result;
      }
      if (files.size() != 1 || files.front().compression != Compression::None ||
          !due(closedAt(files.front()) + settings_.grace)) {
        continue;
      }
      const auto compressed = compressClosedFile(files.front().path, settings_.compression, stopping_);
      if (!compressed) {
        if (compressed.error().sys_errno != ECANCELED) {
          log_->warn("{}; it stays uncompressed until the next try", compressed.error().detail);
        }
        continue;
      }
      log_->debug("compressed {} ({})", files.front().path.string(), compressionName(settings_.compression));
      files.front().path += std::string(compressionSuffix(settings_.compression));
      files.front().compression = settings_.compression;
      ++result.compressed;
    }
  }

  // Keep: the newest `keep` closed files stay; older ones go once their grace is over.
  if (settings_.keep && closed.size() > *settings_.keep) {
    std::size_t excess = closed.size() - *settings_.keep;
    for (auto& [base, files] : closed) {
      if (excess == 0) {
        break;
      }
      --excess;
      if (!due(closedAt(files.front()) + settings_.grace)) {
        continue;
      }
      bool all = true;
      for (const ClosedFile& file : files) {
        all = remove(file.path, "beyond jsonl-keep") && all;
      }
      if (all) {
        log_->info("deleted {} (more than jsonl-keep={} closed files)", base, *settings_.keep);
        ++result.deleted;
      }
    }
  }
  return result;
}

}  // namespace ctaudit::storage
