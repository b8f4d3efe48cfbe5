// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "flow/result.hpp"

namespace ctaudit::daemon {

// One conntrack sysctl the daemon depends on, and why.
struct RequiredSysctl {
  std::string name;     // "nf_conntrack_acct", under /proc/sys/net/netfilter/
  std::string wanted;   // "1"
  std::string purpose;  // what is lost while it is off, for the warning
};

// nf_conntrack_acct (counters), nf_conntrack_timestamp (start/stop), nf_conntrack_events=1
// (the event extension on every new entry, not only while a listener exists: FIELD-NOTES 4).
[[nodiscard]] std::vector<RequiredSysctl> requiredSysctls();

// What ensureSysctl found and did.
struct SysctlOutcome {
  std::string name;
  std::string before;
  bool changed{false};
};

// Reads /proc/sys/net/netfilter/<name> under `proc_root` (the caller's network namespace) and
// writes `wanted` if it differs and `apply` is set. Errors: unreadable or unwritable file
// (Errc::Io with errno), e.g. when the nf_conntrack module is not loaded or without CAP_NET_ADMIN.
[[nodiscard]] Result<SysctlOutcome> ensureSysctl(const std::filesystem::path& proc_root,
                                                 const RequiredSysctl& sysctl, bool apply);

}  // namespace ctaudit::daemon
