// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <filesystem>
#include <optional>
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
  // The errno of a write that failed (EACCES/EPERM without CAP_NET_ADMIN in the namespace, EROFS
  // under systemd's ProtectKernelTunables= or in a container); 0 when nothing was written or the
  // write worked.
  int write_errno{0};
};

// Reads /proc/sys/net/netfilter/<name> under `proc_root` (the caller's network namespace) and
// writes `wanted` if it differs and `apply` is set. A refused write is not an error: the outcome
// says why (write_errno), and describeSysctl turns it into the warning. Errors: the file cannot be
// read (Errc::Io with errno), e.g. when the nf_conntrack module is not loaded.
[[nodiscard]] Result<SysctlOutcome> ensureSysctl(const std::filesystem::path& proc_root,
                                                 const RequiredSysctl& sysctl, bool apply);

// What ensureSysctl's outcome means to an operator, as one log line.
struct SysctlReport {
  bool warning{false};  // false: information (the daemon set it)
  std::string text;
};

// Nothing when the setting was already as wanted. Otherwise says which setting is off in this
// namespace, why the daemon did not change it (--no-sysctl, no CAP_NET_ADMIN, read-only
// /proc/sys), what the log loses while it stays so, and how to fix it; or, when the daemon set it,
// that only conntracks created from now on get the extension. `apply`: --no-sysctl not given.
[[nodiscard]] std::optional<SysctlReport> describeSysctl(const RequiredSysctl& sysctl, const SysctlOutcome& outcome,
                                                         bool apply);

}  // namespace ctaudit::daemon
