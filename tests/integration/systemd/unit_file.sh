#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# unit_file: systemd/ctauditd.service as systemd itself reads it, without systemd running.
#   - `systemd-analyze verify` prints nothing: no unknown or misspelt key, no bad value, and
#     ExecStart= names an executable (the built ctauditd stands in for /usr/sbin/ctauditd);
#   - `systemd-analyze security --offline=true` rates the unit at most EXPOSURE_MAX (on its 0-100
#     scale: 11 is the "1.1 OK" quoted in docs/operations.md), and the settings this unit is about
#     are each reported as in force.
#   - the unit's SystemCallFilter= allows every system call ctauditd makes (the strace list).
# Usage: unit_file.sh UNIT_FILE (ctest passes systemd/ctauditd.service and CTAUDITD).
set -u -o pipefail

UNIT=${1:?usage: unit_file.sh UNIT_FILE}
# The exposure this unit reaches today. Raise it only with a reason written in the unit file.
EXPOSURE_MAX=11

skip_or_fail() {
  if [[ "${CI:-}" == "true" ]]; then
    printf 'FAIL: %s (CI=true: CI must provide every prerequisite)\n' "$*" >&2
    exit 1
  fi
  printf 'SKIP: %s\n' "$*"
  exit 77
}
command -v systemd-analyze >/dev/null || skip_or_fail "needs systemd-analyze (Debian package systemd)"
command -v jq >/dev/null || skip_or_fail "needs jq"
[[ -x "${CTAUDITD:-}" ]] || skip_or_fail "needs the built ctauditd in CTAUDITD"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/cta-unit.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# verify checks that ExecStart's program exists: point it at the build. The unit keeps its name,
# which verify and security report by.
sed "s|/usr/sbin/ctauditd|$CTAUDITD|" "$UNIT" >"$tmp/ctauditd.service"

checks=0 failed=0
check() { # DESCRIPTION COMMAND...
  local description=$1
  shift
  checks=$((checks + 1))
  if "$@"; then
    printf 'ok %d - %s\n' "$checks" "$description"
  else
    failed=$((failed + 1))
    printf 'not ok %d - %s\n' "$checks" "$description"
  fi
}

verify_clean() {
  local out rc
  # --man=no: man:ctauditd(8) is installed with the package, not on a build machine.
  out=$(systemd-analyze verify --man=no "$tmp/ctauditd.service" 2>&1)
  rc=$?
  [[ $rc -eq 0 && -z "$out" ]] && return 0
  printf '#   systemd-analyze verify (exit %d):\n' "$rc" >&2
  sed 's/^/#     /' <<<"$out" >&2
  return 1
}
check "systemd-analyze verify: no warning, no error" verify_clean

security_text=$(systemd-analyze security --offline=true "$tmp/ctauditd.service" 2>&1)
security_json=$(systemd-analyze security --offline=true --json=short "$tmp/ctauditd.service" 2>/dev/null)
within_threshold() {
  # --threshold makes systemd-analyze itself fail above the value.
  systemd-analyze security --offline=true --threshold="$EXPOSURE_MAX" "$tmp/ctauditd.service" >/dev/null 2>&1 &&
    return 0
  printf '#   %s (want at most %s on the 0-100 scale)\n' "$(grep -F 'Overall exposure' <<<"$security_text")" \
    "$EXPOSURE_MAX" >&2
  return 1
}
check "systemd-analyze security: exposure at most $EXPOSURE_MAX/100" within_threshold

in_force() { # NAME as systemd-analyze security names the check
  local set
  set=$(jq -r --arg n "$1" '.[] | select(.name == $n) | .set' <<<"$security_json")
  [[ $set == true ]] && return 0
  printf '#   %s: set=%s, want true\n' "$1" "${set:-missing}" >&2
  return 1
}
for setting in "User=/DynamicUser=" "NoNewPrivileges=" "ProtectSystem=" "ProtectHome=" "PrivateTmp=" \
  "PrivateDevices=" "ProtectKernelTunables=" "MemoryDenyWriteExecute=" "NotifyAccess=" \
  "CapabilityBoundingSet=~CAP_SYS_ADMIN" "CapabilityBoundingSet=~CAP_SET(UID|GID|PCAP)" \
  "CapabilityBoundingSet=~CAP_(DAC_*|FOWNER|IPC_OWNER)" "RestrictAddressFamilies=~AF_(INET|INET6)" \
  "RestrictAddressFamilies=~AF_PACKET" "SystemCallFilter=~@privileged" "SystemCallFilter=~@resources" \
  "SystemCallArchitectures="; do
  check "security: $setting in force" in_force "$setting"
done

# The system calls ctauditd makes under the unit (strace of a run through start-up, events, SIGHUP,
# resync and SIGTERM; docs/operations.md "systemd service") must pass the unit's filter: the allow
# list @system-service minus the groups the unit denies, expanded by systemd-analyze itself.
expand_group() {
  systemd-analyze syscall-filter "$1" 2>/dev/null | tail -n +2 | sed 's/^ *//' | grep -v -e '^#' -e '^$' |
    while read -r entry; do
      if [[ $entry == @* ]]; then expand_group "$entry"; else printf '%s\n' "$entry"; fi
    done
}
DAEMON_SYSCALLS="access arch_prctl bind brk clone3 close connect eventfd2 execve exit exit_group fcntl
  fdatasync ftruncate futex geteuid getpid getrandom getsockname getsockopt gettid lseek madvise mmap
  mprotect munmap newfstatat openat poll prctl pread64 prlimit64 pwrite64 read recvmmsg recvmsg rename
  rseq rt_sigaction rt_sigprocmask sendmsg sendto set_robust_list set_tid_address setsockopt signalfd4
  socket umask uname unlink write"
filter_allows_daemon() {
  local allowed denied group missing=""
  allowed=$(grep -E '^SystemCallFilter=[^~]' "$UNIT" | sed 's/^SystemCallFilter=//' | tr ' ' '\n')
  denied=$(grep -E '^SystemCallFilter=~' "$UNIT" | sed 's/^SystemCallFilter=~//' | tr ' ' '\n')
  local -A ok=()
  for group in $allowed; do
    while read -r call; do ok[$call]=1; done < <(if [[ $group == @* ]]; then expand_group "$group"; else echo "$group"; fi)
  done
  for group in $denied; do
    while read -r call; do unset "ok[$call]"; done < <(if [[ $group == @* ]]; then expand_group "$group"; else echo "$group"; fi)
  done
  for call in $DAEMON_SYSCALLS; do
    [[ -n ${ok[$call]:-} ]] || missing+=" $call"
  done
  [[ -z $missing ]] && return 0
  printf '#   the unit'"'"'s SystemCallFilter denies what ctauditd calls:%s\n' "$missing" >&2
  return 1
}
check "SystemCallFilter allows every system call ctauditd makes" filter_allows_daemon

unit_has() { grep -qxF "$1" "$UNIT" || { printf '#   %s: no line "%s"\n' "$UNIT" "$1" >&2; return 1; }; }
check "Type=notify with a watchdog" bash -c "grep -qx 'Type=notify' '$UNIT' && grep -qE '^WatchdogSec=[1-9]' '$UNIT'"
check "a refused configuration (exit 2) is not restarted" unit_has "RestartPreventExitStatus=2"
check "CAP_NET_ADMIN is the only capability" unit_has "AmbientCapabilities=CAP_NET_ADMIN"
check "the bounding set is CAP_NET_ADMIN alone" unit_has "CapabilityBoundingSet=CAP_NET_ADMIN"

grep -F 'Overall exposure' <<<"$security_text" | sed 's/^/# /'
if ((failed > 0)); then
  printf 'FAIL: unit_file: %d of %d checks failed\n' "$failed" "$checks"
  exit 1
fi
printf 'PASS: unit_file: %d checks\n' "$checks"
