// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/synced_page_release.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace ctaudit::storage {

void SyncedPageRelease::synced(int fd) noexcept {
  const off_t end = ::lseek(fd, 0, SEEK_CUR);
  if (end < 0) {
    return;  // not seekable: nothing cached to release
  }
  if (end < synced_end_) {
    // The file was cut back past the last sync (ftruncate by someone else): start again from here.
    restart();
  }
  if (synced_end_ > released_to_) {
    // Advice only: a failure leaves pages cached, which costs memory, not data.
    (void)::posix_fadvise(fd, released_to_, synced_end_ - released_to_, POSIX_FADV_DONTNEED);
    released_to_ = synced_end_;
  }
  synced_end_ = end;
}

}  // namespace ctaudit::storage
