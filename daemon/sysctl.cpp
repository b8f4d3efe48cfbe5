// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/sysctl.hpp"

#include <cerrno>
#include <cstring>
#include <fstream>

namespace ctaudit::daemon {

std::vector<RequiredSysctl> requiredSysctls() {
  return {
      {"nf_conntrack_acct", "1", "flows carry no packet or byte counters"},
      {"nf_conntrack_timestamp", "1", "flows carry no kernel start and stop times"},
      {"nf_conntrack_events", "1",
       "flows created while no listener is subscribed never report their end (DESTROY)"},
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
  SysctlOutcome outcome{sysctl.name, before, false};
  if (before == sysctl.wanted || !apply) {
    return outcome;
  }
  std::ofstream out(path);
  out << sysctl.wanted << '\n';
  out.flush();
  if (!out) {
    const int err = errno;
    return fail(Errc::Io,
                "cannot set " + path.string() + " to " + sysctl.wanted + ": " + std::strerror(err) +
                    " (needs CAP_NET_ADMIN in this network namespace; or run with --no-sysctl)",
                err);
  }
  outcome.changed = true;
  return outcome;
}

}  // namespace ctaudit::daemon
