// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <csignal>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::bench {

// SIGINT and SIGTERM as a count the run loop polls, through a signalfd: no handler, no global
// flag. Blocks both signals in the calling thread for its lifetime (restores the mask after).
// Create it before any other thread exists; one thread.
class StopSignal {
public:
  // Errors: Errc::Io when the signalfd cannot be made.
  [[nodiscard]] static Result<void> install(StopSignal& into);

  StopSignal() = default;
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  StopSignal(StopSignal&&) = delete;
  StopSignal& operator=(StopSignal&&) = delete;
  ~StopSignal();

  // How many stop signals have arrived so far (reads the signalfd without blocking).
  [[nodiscard]] int received() noexcept;

private:
  UniqueFd fd_;
  sigset_t previous_{};
  bool installed_{false};
  int received_{0};
};

}  // namespace ctaudit::bench
