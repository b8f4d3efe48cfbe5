// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <sys/types.h>

namespace ctaudit::storage {

// Gives the page cache back the pages of an append-only file that are on disk and have been for a
// while, so that a log written once and read at most once soon after (by a shipper tailing it)
// does not fill the machine's memory with pages nobody will read again.
//
// Why: every page an appending write(2) touches is a new page-cache page. At 100k events/s the
// JSON lines grow by ≈ 100 MB/s, which without this evicts the pages that queries on the SQLite
// file need, and on virtual machines whose free memory goes back to the host (a balloon with free
// page reporting) each new page also costs a fault on the host: measured at ≈ 3.5 ns per byte
// written (bench/, docs/benchmarks.md "The page cache of the JSON lines"), a third of the daemon's
// CPU. Pages released here go back to the allocator and are the next ones the writes get.
//
// synced(fd) is called after each successful fdatasync. It releases everything up to where the
// file ended at the sync before, so the last flush interval's lines stay cached for a shipper that
// is a second behind; a shipper further behind reads them from disk. Only clean pages are dropped
// (POSIX_FADV_DONTNEED), so nothing waits for the disk and nothing is lost. On file systems that
// cannot drop pages (tmpfs) the advice does nothing.
//
// One per open file; restart() when a new file takes its place. Not thread-safe.
class SyncedPageRelease {
public:
  // `fd` was just fdatasynced successfully; its offset is its end (it is opened O_APPEND).
  void synced(int fd) noexcept;
  // A new, different file is open from now on.
  void restart() noexcept { *this = SyncedPageRelease{}; }

  // Where the file ended at the last sync, and how much of it has been released.
  [[nodiscard]] off_t syncedEnd() const noexcept { return synced_end_; }
  [[nodiscard]] off_t releasedTo() const noexcept { return released_to_; }

private:
  off_t synced_end_{0};
  off_t released_to_{0};
};

}  // namespace ctaudit::storage
