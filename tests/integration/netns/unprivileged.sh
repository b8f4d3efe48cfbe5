#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# unprivileged: ctauditd as the user nobody holding CAP_NET_ADMIN and nothing else (setpriv, as
# systemd's User= + AmbientCapabilities=CAP_NET_ADMIN would run it) in the NAT gateway namespace.
# Three runs on one database in a directory owned by nobody:
#   1. /proc/sys read-only (a mount namespace with it remounted read-only, as systemd's
#      ProtectKernelTunables= does) and the conntrack sysctls at the kernel's defaults (0, 0, 2):
#      one warning per setting naming it, its value, the read-only /proc/sys and the cost; the
#      sysctls stay as they were; NAT'd flows are still recorded (`ctaudit who` names the inside
#      host); /proc/PID/status shows uid 65534 and CapEff/CapPrm exactly cap_net_admin;
#   2. /proc/sys writable: CAP_NET_ADMIN is enough to set net.* sysctls in the namespace, and the
#      daemon says it set each one;
#   3. /proc/sys read-only again, the sysctls now preset to 1: no sysctl warning at all.
# Every run records a NAT'd TCP flow that `ctaudit who` finds, and stops with exit 0 at SIGTERM.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init unprivileged --daemon --query
cta_require_tools setpriv unshare mount
cta_nobody_dir
cta_topology_up
cta_start_servers

SETPRIV=(setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups --inh-caps=-all,+net_admin
  --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin)
# `unshare --mount` without --fork and bash's exec keep the pid: CTA_DAEMON_PID is ctauditd's.
RO_PROC=(unshare --mount -- bash -c 'mount --bind /proc/sys /proc/sys && mount -o remount,bind,ro /proc/sys && exec "$@"'
  ro-proc-sys)
WRAP=()
cta_daemon_launcher() { CTA_LAUNCHER=(ip netns exec "$CTA_GW" "${WRAP[@]}" "${SETPRIV[@]}"); }

gw_sysctls() {
  cta_in "$CTA_GW" sysctl -n net.netfilter.nf_conntrack_acct net.netfilter.nf_conntrack_timestamp \
    net.netfilter.nf_conntrack_events | tr '\n' ' ' | sed 's/ $//'
}
sysctls_are() { # "A T E"
  [[ $(gw_sysctls) == "$1" ]] && return 0
  cta_err "gateway acct/timestamp/events: $(gw_sysctls), want $1"
  return 1
}

# The value of a /proc/PID/status field, its words separated by single spaces.
status_field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$CTA_DAEMON_PID/status"; }
only_net_admin() {
  local eff prm uid
  eff=$(status_field CapEff) prm=$(status_field CapPrm) uid=$(status_field Uid)
  # CAP_NET_ADMIN is bit 12.
  [[ $eff == 0000000000001000 && $prm == 0000000000001000 && $uid == "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID" ]] &&
    return 0
  cta_err "ctauditd: Uid '$uid', CapEff $eff, CapPrm $prm; want uid $NOBODY_UID and 0000000000001000 (cap_net_admin)"
  return 1
}

# who_finds SPORT: the NAT'd TCP flow from CTA_CL4:SPORT, looked up by its translated address.
who_finds() {
  local sport=$1 line got
  line=$(cta_ct_truth "$CTA_GW" | awk -v p="$sport" -v s="$CTA_CL4" '$2 == "tcp" && $3 == s && $4 == p' | head -1)
  if [[ -z $line ]]; then
    cta_err "no conntrack entry for tcp $CTA_CL4:$sport in the gateway"
    return 1
  fi
  local -a f
  read -ra f <<<"$line"
  got=$("$CTAUDIT" who "${f[8]}:${f[9]}" --at "@$(cta_now)" --proto tcp --db "$CTA_DB" --format json 2>&1 |
    cta_jq -r 'flows_only | "\(f("source.ip")):\(inside_port)"' | head -1)
  [[ $got == "$CTA_CL4:$sport" ]] && return 0
  cta_err "ctaudit who ${f[8]}:${f[9]}: '$got', want $CTA_CL4:$sport"
  return 1
}

sysctl_warnings() { grep -c 'warning \[daemon\] net.netfilter.nf_conntrack_' "$CTA_DAEMON_LOG"; }
warns_about() { # NAME VALUE COST
  grep -F "net.netfilter.$1 is $2 in this network namespace and ctauditd cannot set it: /proc/sys is read-only" \
    "$CTA_DAEMON_LOG" | grep -qF "$3" && return 0
  cta_err "no read-only warning for $1=$2 mentioning '$3' in $CTA_DAEMON_LOG"
  return 1
}

# --- 1. read-only /proc/sys, sysctls at the defaults --------------------------------------------
cta_expect "the gateway starts with the kernel's defaults 0 0 2" sysctls_are "0 0 2"
WRAP=("${RO_PROC[@]}")
CTA_DAEMON_LOG_FILE=$CTA_TMP/run1.log cta_daemon_start
cta_expect "run 1: uid nobody, CapEff and CapPrm exactly cap_net_admin" only_net_admin
cta_expect "run 1: warns that nf_conntrack_acct is 0 and flows get no counters" \
  warns_about nf_conntrack_acct 0 "no packet or byte counters"
cta_expect "run 1: warns that nf_conntrack_timestamp is 0 and flows get no kernel times" \
  warns_about nf_conntrack_timestamp 0 "no kernel start and stop times"
cta_expect "run 1: warns that nf_conntrack_events is 2 and ends can be missed" \
  warns_about nf_conntrack_events 2 "never report their end"
cta_expect "run 1: the sysctls are untouched" sysctls_are "0 0 2"
cta_expect "run 1: a NAT'd TCP flow goes through" cta_tcp_flow "$CTA_CL4" 23001 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "run 1: ctaudit who names $CTA_CL4:23001" cta_eventually 5 "who finds 23001" who_finds 23001
cta_expect "run 1: SIGTERM: ctauditd exits 0" cta_daemon_stop

# --- 2. writable /proc/sys: CAP_NET_ADMIN sets them ----------------------------------------------
WRAP=()
CTA_DAEMON_LOG_FILE=$CTA_TMP/run2.log cta_daemon_start
cta_expect "run 2: uid nobody, CapEff and CapPrm exactly cap_net_admin" only_net_admin
set_all() {
  local name missing=0
  for name in nf_conntrack_acct nf_conntrack_timestamp; do
    grep -qF "set net.netfilter.$name=1 (was 0)" "$CTA_DAEMON_LOG" || { cta_err "no 'set $name=1 (was 0)'"; missing=1; }
  done
  grep -qF "set net.netfilter.nf_conntrack_events=1 (was 2)" "$CTA_DAEMON_LOG" || { cta_err "no 'set events=1 (was 2)'"; missing=1; }
  return "$missing"
}
cta_expect "run 2: with CAP_NET_ADMIN it sets each sysctl and says so" set_all
cta_expect "run 2: the gateway's sysctls are 1 1 1" sysctls_are "1 1 1"
cta_expect "run 2: a NAT'd TCP flow goes through" cta_tcp_flow "$CTA_CL4" 23002 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "run 2: ctaudit who names $CTA_CL4:23002" cta_eventually 5 "who finds 23002" who_finds 23002
cta_expect "run 2: SIGTERM: ctauditd exits 0" cta_daemon_stop

# --- 3. read-only again, sysctls preset ------------------------------------------------------------
WRAP=("${RO_PROC[@]}")
CTA_DAEMON_LOG_FILE=$CTA_TMP/run3.log cta_daemon_start
no_sysctl_warning() {
  local n
  n=$(sysctl_warnings)
  ((n == 0)) && return 0
  cta_err "$n sysctl warning(s) although every sysctl is already 1: $(grep 'net.netfilter' "$CTA_DAEMON_LOG")"
  return 1
}
cta_expect "run 3: sysctls preset, /proc/sys read-only: no sysctl warning" no_sysctl_warning
cta_expect "run 3: a NAT'd TCP flow goes through" cta_tcp_flow "$CTA_CL4" 23003 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "run 3: ctaudit who names $CTA_CL4:23003" cta_eventually 5 "who finds 23003" who_finds 23003
cta_expect "run 3: SIGTERM: ctauditd exits 0" cta_daemon_stop

root_unchanged() {
  local now
  now=$(sysctl -n net.netfilter.nf_conntrack_acct net.netfilter.nf_conntrack_timestamp \
    net.netfilter.nf_conntrack_events 2>/dev/null | tr '\n' ' ')
  [[ $now == "0 0 2 " ]] && return 0
  cta_err "the root namespace's acct/timestamp/events are now: $now (the host's were 0 0 2)"
  return 1
}
cta_expect "the root namespace's conntrack sysctls are unchanged" root_unchanged

cta_finish
