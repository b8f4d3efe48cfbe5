// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/sysctl.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fcntl.h>
#include <unistd.h>

#include "flow/unique_c.hpp"

namespace ctaudit::daemon {
namespace {

// What the log loses while `name` has `value` instead of the wanted one. nf_conntrack_events
// has two ways to be off: 2 ("auto", the kernel default) attaches the event extension only to
// conntracks created while a listener exists; 0 sends no events at all.
std::string cost(const RequiredSysctl& sysctl, const std::string& value) {
  if (sysctl.name == "nf_conntrack_events" && value == "0") {
    return "the kernel sends no conntrack events at all: flows are seen only by the table dumps at start and at "
           "a resync, and most short flows are never logged";
  }
  return sysctl.purpose;
}

// Why the daemon left it as it is.
std::string reason(const SysctlOutcome& outcome, bool apply) {
  if (!apply) {
    return "ctauditd leaves it alone (--no-sysctl)";
  }
  const std::string error = std::strerror(outcome.write_errno);
  switch (outcome.write_errno) {
    case EROFS:
      return "ctauditd cannot set it: /proc/sys is read-only here (" + error +
             "; systemd's ProtectKernelTunables=, or a container)";
    case EACCES:
    case EPERM:
      return "ctauditd may not set it (" + error + "): writing it needs CAP_NET_ADMIN in this network namespace";
    default:
      return "ctauditd could not set it (" + error + ")";
  }
}

}  // namespace

std::vector<RequiredSysctl> requiredSysctls() {
  return {
      {"nf_conntrack_acct", "1", "flows will have no packet or byte counters (bytes and packets stay empty)"},
      {"nf_conntrack_timestamp", "1",
       "flows will have no kernel start and stop times: start and end become the times ctauditd received the "
       "events, later than the packets by the event queue's delay"},
      {"nf_conntrack_events", "1",
       "flows created while no listener is subscribed (while ctauditd restarts) never report their end: they stay "
       "open until a table dump no longer finds them, and their end is only bounded"},
  };
}

Result<SysctlOutcome> ensureSysctl(const std::filesystem::path& proc_root, const RequiredSysctl& sysctl,
                                   bool apply) {
  const auto path = proc_root / "sys/net/netfilter" / sysctl.name;
  std::ifstream in(path);
  std::string before;
  if (!in || !(in >> before)) {
    const int err = errno;
    return fail(Errc::Io,
                "cannot read " + path.string() + ": " + std::strerror(err) +
                    " (is the nf_conntrack module loaded? `modprobe nf_conntrack`)",
                err);
  }
  SysctlOutcome outcome{sysctl.name, before, false, 0};
  if (before == sysctl.wanted || !apply) {
    return outcome;
  }
  // open(2) and write(2) directly: their errno tells a read-only /proc/sys (EROFS) from a missing
  // capability (EACCES), and the message says which.
  const UniqueFd fd{::open(path.c_str(), O_WRONLY | O_TRUNC | O_CLOEXEC)};
  const std::string text = sysctl.wanted + "\n";
  if (!fd.valid()) {
    outcome.write_errno = errno;
    return outcome;
  }
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size())) {
    outcome.write_errno = errno != 0 ? errno : EIO;
    return outcome;
  }
  outcome.changed = true;
  return outcome;
}

std::optional<SysctlReport> describeSysctl(const RequiredSysctl& sysctl, const SysctlOutcome& outcome, bool apply) {
  const std::string setting = "net.netfilter." + sysctl.name;
  if (outcome.changed) {
    return SysctlReport{false, "set " + setting + "=" + sysctl.wanted + " (was " + outcome.before +
                                   "); it applies to conntracks created from now on, not to those already in the "
                                   "table"};
  }
  if (outcome.before == sysctl.wanted) {
    return std::nullopt;
  }
  return SysctlReport{true, setting + " is " + outcome.before + " in this network namespace and " +
                                reason(outcome, apply) + ": " + cost(sysctl, outcome.before) +
                                ". Fix: `sysctl -w " + setting + "=" + sysctl.wanted +
                                "` in this namespace (at boot: /usr/lib/sysctl.d/60-ctaudit.conf), or run ctauditd "
                                "with CAP_NET_ADMIN and a writable /proc/sys without --no-sysctl"};
}

}  // namespace ctaudit::daemon
