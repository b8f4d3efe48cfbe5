// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include <spdlog/fwd.h>

#include "flow/result.hpp"
#include "flow/time.hpp"
#include "storage/jsonl_rotation.hpp"

namespace ctaudit::storage {

// Compresses `plain` (a closed JSON-lines file) into `plain + suffix` so that no reader ever sees
// a partial compressed file and no line exists in neither file: it writes `<plain><suffix>.tmp`,
// fsyncs it, renames it to `<plain><suffix>`, fsyncs the directory, and only then unlinks the plain
// file (and fsyncs the directory again). gzip is zlib's deflate at level 6 in a gzip wrapper
// (what gzip(1) writes by default); zstd is level 3 with a content checksum. Polls `stop` between
// chunks: when it is set, the temporary is removed and Errc::Io with detail "stopped" returned.
// Errors: Errc::Io naming the file and the errno text; the plain file is untouched then.
[[nodiscard]] Result<void> compressClosedFile(const std::filesystem::path& plain, Compression compression,
                                              const std::atomic<bool>& stop);

// Looks after the files that the built-in rotation closed, beside the active JSON-lines file: it
// compresses them and deletes the oldest beyond `keep`, in a thread of its own so that neither
// ever stalls the pipeline thread. Owned by the JsonLinesSink of that file.
//
// All its state is the directory: each pass lists it, parses the closed names
// (parseClosedFileName) and acts, so a pass after a crash is the recovery: an unfinished
// compression (a `.tmp`) is removed and done again, and a plain file whose compressed twin exists
// (a crash between the rename and the unlink) is removed, since the twin was complete and synced
// before it got its name. It touches only closed files, never the active one; the sink only
// renames the active file to a closed name, so the two threads share no file.
//
// The readers' rule (docs/operations.md): a closed file is compressed or deleted only once `grace`
// has passed since it was closed (the later of the end in its name and its inode's change time,
// which the rename set), so that a shipper that was reading it when it was rotated, or that was
// stopped then, can still read it to the end under its plain name.
//
// Thread-safety: start(), wake() and the destructor are called from the owner's thread; runOnce()
// runs on the archiver's thread once started (tests call it directly and never start()). The
// mutex_ guards stop_ and woken_ only.
class JsonlArchiver {
public:
  // What one pass did.
  struct PassResult {
    std::size_t compressed{0};
    std::size_t deleted{0};   // closed files removed beyond `keep`
    std::size_t repaired{0};  // leftover temporaries and plain twins removed
    // When the next pass has something to do (a file's grace ends), if any.
    std::optional<Timestamp> next_due;
  };

  // `active`: the JSON-lines path; `clock` and `log` (the "jsonl" logger) must outlive the archiver.
  JsonlArchiver(std::filesystem::path active, const RotationSettings& settings, const Clock& clock,
                std::shared_ptr<spdlog::logger> log);
  JsonlArchiver(const JsonlArchiver&) = delete;
  JsonlArchiver& operator=(const JsonlArchiver&) = delete;
  JsonlArchiver(JsonlArchiver&&) = delete;
  JsonlArchiver& operator=(JsonlArchiver&&) = delete;
  // Stops the thread: an unfinished compression is abandoned (its temporary removed) and redone by
  // the next start.
  ~JsonlArchiver();

  // Starts the thread; its first pass runs at once (the recovery after a crash).
  void start();
  // A file was just closed: pass again (its grace has not passed yet, but the keep count may).
  void wake() noexcept;

  // One pass at `now`: repairs, then compresses every plain closed file past its grace, then
  // deletes the oldest closed files beyond `keep` that are past their grace. Problems are logged
  // (once per file and kind) and never fatal.
  PassResult runOnce(Timestamp now);

private:
  void loop();

  std::filesystem::path active_;
  RotationSettings settings_;
  const Clock& clock_;
  std::shared_ptr<spdlog::logger> log_;
  std::atomic<bool> stopping_{false};  // also read by compressClosedFile between chunks

  std::mutex mutex_;
  std::condition_variable wakeup_;
  bool woken_{false};  // guarded by mutex_
  std::thread thread_;
};

}  // namespace ctaudit::storage
