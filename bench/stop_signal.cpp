// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/stop_signal.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include <sys/signalfd.h>
#include <unistd.h>

namespace ctaudit::bench {

Result<void> StopSignal::install(StopSignal& into) {
  // A shell starts background jobs with SIGINT ignored, and an ignored signal is discarded before
  // it could be queued for the signalfd: take the default disposition back (blocked, it is never
  // acted on).
  for (const int signal : {SIGINT, SIGTERM}) {
    if (std::signal(signal, SIG_DFL) == SIG_ERR) {
      return fail(Errc::Io, "cannot reset the disposition of signal " + std::to_string(signal));
    }
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (::pthread_sigmask(SIG_BLOCK, &set, &into.previous_) != 0) {
    return fail(Errc::Io, "cannot block SIGINT/SIGTERM");
  }
  into.installed_ = true;
  into.fd_.reset(::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
  if (!into.fd_.valid()) {
    const int err = errno;
    return fail(Errc::Io, std::string("signalfd failed: ") + std::strerror(err), err);
  }
  return {};
}

StopSignal::~StopSignal() {
  if (installed_) {
    (void)::pthread_sigmask(SIG_SETMASK, &previous_, nullptr);
  }
}

int StopSignal::received() noexcept {
  signalfd_siginfo info{};
  while (fd_.valid() && ::read(fd_.get(), &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
    ++received_;
  }
  return received_;
}

}  // namespace ctaudit::bench
