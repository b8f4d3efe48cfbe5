// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/signals.hpp"

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <pthread.h>
#include <sys/signalfd.h>
#include <unistd.h>

namespace ctaudit::daemon {

Result<std::unique_ptr<SignalEvents>> SignalEvents::open() {
  sigset_t wanted;
  sigemptyset(&wanted);
  sigaddset(&wanted, SIGTERM);
  sigaddset(&wanted, SIGINT);
  sigaddset(&wanted, SIGHUP);
  // What nginx and others reopen their logs on, and what some logrotate recipes send: before, it
  // killed the daemon without writing what was pending (an exploratory run).
  sigaddset(&wanted, SIGUSR1);
  sigset_t previous;
  if (const int err = ::pthread_sigmask(SIG_BLOCK, &wanted, &previous); err != 0) {
    return fail(Errc::Io, std::string("cannot block signals: ") + std::strerror(err), err);
  }
  UniqueFd fd{::signalfd(-1, &wanted, SFD_NONBLOCK | SFD_CLOEXEC)};
  if (!fd.valid()) {
    const int err = errno;
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    return fail(Errc::Io, std::string("cannot create a signalfd: ") + std::strerror(err), err);
  }
  return std::unique_ptr<SignalEvents>(new SignalEvents(std::move(fd), previous));
}

SignalEvents::~SignalEvents() { ::pthread_sigmask(SIG_SETMASK, &previous_, nullptr); }

std::optional<SignalEvents::Signal> SignalEvents::next() noexcept {
  signalfd_siginfo info{};
  for (;;) {
    const ssize_t n = ::read(fd_.get(), &info, sizeof info);
    if (n == static_cast<ssize_t>(sizeof info)) {
      switch (info.ssi_signo) {
        case SIGHUP:
          return Signal{Kind::Reopen, "SIGHUP"};
        case SIGUSR1:
          return Signal{Kind::Reopen, "SIGUSR1"};
        case SIGINT:
          return Signal{Kind::Stop, "SIGINT"};
        default:
          return Signal{Kind::Stop, "SIGTERM"};
      }
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    return std::nullopt;
  }
}

}  // namespace ctaudit::daemon
