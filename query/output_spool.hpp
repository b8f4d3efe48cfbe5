// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <memory>
#include <ostream>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"
#include "query/fd_output.hpp"

namespace ctaudit::query {

// Output held in an unlinked temporary file while the database is read, then copied to where it
// goes. `ctaudit flows` writes its lines as it reads them; into a pipe or a terminal whose reader
// pauses (`| less` left open, a stalled ssh, Ctrl-S) each write would wait, and with it the read
// snapshot, which keeps the daemon from checkpointing its WAL past it: flows.db-wal would grow for
// as long as the reader sleeps. Through the spool the snapshot lasts only as long as the reading,
// and memory stays small. The file is made in $TMPDIR, or /tmp.
class OutputSpool {
public:
  // Errors: no temporary file could be made (Errc::Io, naming the directory).
  [[nodiscard]] static Result<std::unique_ptr<OutputSpool>> create();

  OutputSpool(const OutputSpool&) = delete;
  OutputSpool& operator=(const OutputSpool&) = delete;
  OutputSpool(OutputSpool&&) = delete;
  OutputSpool& operator=(OutputSpool&&) = delete;
  ~OutputSpool() = default;

  // Where the output goes meanwhile. It goes bad when the temporary file cannot take more (its
  // disk is full): stop writing then; copyTo() says why.
  [[nodiscard]] std::ostream& stream() noexcept { return stream_; }

  // Copies what stream() took to `out`, in order. Errors: the temporary file failed to take the
  // output or to give it back (Errc::Io, with the system's reason and what to do).
  [[nodiscard]] Result<void> copyTo(std::ostream& out);

private:
  explicit OutputSpool(UniqueFd fd, std::string directory);

  UniqueFd fd_;
  std::string directory_;
  FdOutputBuffer buffer_;
  std::ostream stream_;
};

}  // namespace ctaudit::query
