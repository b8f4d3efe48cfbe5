// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <csignal>
#include <optional>

#include "flow/result.hpp"
#include "flow/unique_c.hpp"

namespace ctaudit::daemon {

// SIGTERM, SIGINT, SIGHUP and SIGUSR1 delivered as readable events on a file descriptor
// (signalfd(2)), so the main loop polls them with the netlink socket and no handler runs at an
// arbitrary point. SIGHUP and SIGUSR1 both mean Reopen. Blocks the four signals for the calling
// thread on construction and restores the previous mask
// on destruction. Create it before any other thread starts; one per process.
class SignalEvents {
public:
  enum class Kind { Stop, Reopen };
  struct Signal {
    Kind kind;
    const char* name;  // "SIGHUP", for the log
  };

  [[nodiscard]] static Result<std::unique_ptr<SignalEvents>> open();
  SignalEvents(const SignalEvents&) = delete;
  SignalEvents& operator=(const SignalEvents&) = delete;
  SignalEvents(SignalEvents&&) = delete;
  SignalEvents& operator=(SignalEvents&&) = delete;
  ~SignalEvents();

  [[nodiscard]] int fd() const noexcept { return fd_.get(); }
  // The next pending signal, or nullopt when none is pending.
  [[nodiscard]] std::optional<Signal> next() noexcept;

private:
  SignalEvents(UniqueFd fd, sigset_t previous) noexcept : fd_(std::move(fd)), previous_(previous) {}
  UniqueFd fd_;
  sigset_t previous_;
};

}  // namespace ctaudit::daemon
