#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package, end to end, on this machine:
#   1. build it (scripts/build-deb.sh: release build, prefix /usr, CPack), or take CTAUDIT_DEB;
#   2. install it with apt-get, and check the user and group, every file's place, mode and owner,
#      the man pages, the conffiles, the version, and that the host's conntrack sysctls did not
#      change (this machine is not booted with systemd: the postinst must leave them alone);
#   3. run the installed /usr/sbin/ctauditd the way the installed unit would: its ExecStart=, as its
#      User=/Group=, with its UMask= and only its AmbientCapabilities= (setpriv), no new privileges,
#      writing to the real /var/lib/ctaudit and /var/log/ctaudit, but in the gateway namespace of
#      the netns lab (tests/integration/netns/lib.sh) with the package's sysctl.d file applied
#      there, as systemd-sysctl would at boot;
#   4. send NAT'd traffic, check that the flows are recorded, that the files are 0640
#      ctaudit:ctaudit, and that a member of the group (nobody with the supplementary group
#      ctaudit) can run `ctaudit who` while the daemon runs and after it stopped, and a non-member
#      cannot;
#   5. upgrade to the next Debian revision over an admin's change to a conffile: the change, the
#      user, the data and the enablement stay;
#   6. purge the package, check what is removed and what is kept, and remove what the package
#      keeps on purge (the user, the group, the data directories) if the test created them.
# The machine is left as found, also when a check fails or the test is interrupted (trap).
# It refuses to run (skip, or fail under CI=true) when ctaudit is already installed or its data
# directories already exist: it would change or remove someone's installation.
# Env: CTAUDIT_DEB=path reuses a built package; CTA_KEEP_TMP=1 keeps the temp dir.

# shellcheck source=tests/integration/netns/lib.sh
source "$(dirname "$0")/../netns/lib.sh"

readonly PKG=ctaudit
readonly STATE_DIR=/var/lib/ctaudit
readonly LOG_DIR=/var/log/ctaudit
readonly SYSCTLS=(net.netfilter.nf_conntrack_acct net.netfilter.nf_conntrack_timestamp net.netfilter.nf_conntrack_events)
# apt-get waits this long for the dpkg lock when another job holds it.
readonly APT=(apt-get -o DPkg::Lock::Timeout=120 -y -q)

DEB_INSTALLED=0 DEB_MADE_USER=0 DEB_MADE_GROUP=0 DEB_MADE_DIRS=0
HOST_SYSCTLS=""

host_sysctls() { sysctl -n "${SYSCTLS[@]}" 2>/dev/null | tr '\n' ' '; }

# Undoes what the test did to the machine, then the lib's cleanup (processes, namespaces, temp
# dir), which exits with the test's status.
deb_cleanup() {
  local rc=$?
  trap - EXIT
  # The daemon first: userdel refuses a user that still has processes.
  if [[ -n "$CTA_DAEMON_PID" ]] && ! cta_pid_exited "$CTA_DAEMON_PID"; then
    cta_kill_pids "$CTA_DAEMON_PID"
  fi
  if ((DEB_INSTALLED)) && dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q installed; then
    cta_err "# cleanup: purging $PKG"
    DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge "$PKG" >/dev/null 2>&1 ||
      dpkg --purge "$PKG" >/dev/null 2>&1 || cta_err "warning: could not purge $PKG"
  fi
  if ((DEB_MADE_DIRS)); then
    rm -rf "$STATE_DIR" "$LOG_DIR"
  fi
  if ((DEB_MADE_USER)) && getent passwd ctaudit >/dev/null; then
    userdel ctaudit 2>/dev/null || cta_err "warning: could not delete the user ctaudit"
  fi
  if ((DEB_MADE_GROUP)) && getent group ctaudit >/dev/null; then
    groupdel ctaudit 2>/dev/null || cta_err "warning: could not delete the group ctaudit"
  fi
  if [[ -n "$HOST_SYSCTLS" && "$(host_sysctls)" != "$HOST_SYSCTLS" ]]; then
    cta_err "FAIL: the host's conntrack sysctls changed to '$(host_sysctls)'; restoring '$HOST_SYSCTLS'"
    local -a values
    read -ra values <<<"$HOST_SYSCTLS"
    local i
    for i in "${!SYSCTLS[@]}"; do
      sysctl -qw "${SYSCTLS[$i]}=${values[$i]}" >/dev/null
    done
    ((rc == 0)) && rc=1
  fi
  (exit "$rc")
  cta_cleanup
}

cta_init deb_install
cta_require_tools dpkg dpkg-deb dpkg-query apt-get lintian setpriv groff zcat getent userdel groupdel stat
trap deb_cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Preconditions: nothing of ctaudit on the machine, so everything the test finds is the package's
# and everything it removes is its own.

if dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed"; then
  cta_skip_or_fail "the package $PKG is already installed; this test installs and purges it (apt-get purge $PKG first)"
fi
for dir in "$STATE_DIR" "$LOG_DIR"; do
  [[ -e "$dir" ]] && cta_skip_or_fail "$dir exists; this test creates and removes it (move it away first)"
done
getent passwd ctaudit >/dev/null || DEB_MADE_USER=1
getent group ctaudit >/dev/null || DEB_MADE_GROUP=1
DEB_MADE_DIRS=1
HOST_SYSCTLS=$(host_sysctls)
cta_log "host conntrack sysctls (acct timestamp events): $HOST_SYSCTLS"

# ---------------------------------------------------------------------------------------------
# 1. Build.

deb=${CTAUDIT_DEB:-}
if [[ -z "$deb" ]]; then
  cta_log "building the package (scripts/build-deb.sh)"
  deb=$("$CTA_REPO/scripts/build-deb.sh" 2>"$CTA_TMP/build-deb.log" | tail -n 1) || {
    tail -n 40 "$CTA_TMP/build-deb.log" >&2
    cta_die "scripts/build-deb.sh failed"
  }
fi
[[ -f "$deb" ]] || cta_die "no package at '$deb'"
deb=$(realpath "$deb") # apt-get takes a file only as a path with a slash in front
cta_log "package: $deb"
deb_version=$(dpkg-deb -f "$deb" Version)
upstream_version=${deb_version%-*}

# Debian's package checker: no error or warning. Its info and pedantic notes are shown, not
# failed on (there were none when this was written). Suppressed: initial-upload-closes-no-bugs
# (the package is not uploaded to Debian, so there is no ITP bug to close).
lintian_clean() {
  local out rc
  out=$(lintian --pedantic --fail-on error,warning --suppress-tags initial-upload-closes-no-bugs "$deb" 2>&1)
  rc=$?
  out=$(grep -v '^running with root privileges' <<<"$out")
  [[ -n "$out" ]] && sed 's/^/#   lintian: /' <<<"$out"
  ((rc == 0)) && return 0
  cta_err "lintian found errors or warnings (status $rc)"
  return 1
}
cta_expect "lintian: no error or warning" lintian_clean

contents=$(dpkg-deb -c "$deb" | awk '{ print $NF }' | sed 's|^\./|/|')
no_test_files() {
  local found
  found=$(grep -E 'ct_loadgen|unit_tests|gtest|/bench|/tests?/|\.a$|/include/' <<<"$contents")
  [[ -z "$found" ]] && return 0
  cta_err "the package ships build or test files: $found"
  return 1
}
cta_expect "the package holds no tests, benchmark tools, libraries or headers" no_test_files

# ---------------------------------------------------------------------------------------------
# 2. Install and inspect.

cta_log "apt-get install $deb"
DEB_INSTALLED=1
if ! DEBIAN_FRONTEND=noninteractive "${APT[@]}" install "$deb" >"$CTA_TMP/apt-install.log" 2>&1; then
  tail -n 30 "$CTA_TMP/apt-install.log" >&2
  cta_die "apt-get install $deb failed"
fi
sed 's/^/#   /' "$CTA_TMP/apt-install.log" | grep -iE 'warn|error|ctaudit' | head -n 20

installed_ok() { dpkg-query -W -f='${Status}' "$PKG" | grep -qx "install ok installed"; }
cta_expect "dpkg says $PKG is installed and configured" installed_ok

sysctls_unchanged() {
  local now
  now=$(host_sysctls)
  [[ "$now" == "$HOST_SYSCTLS" ]] && return 0
  cta_err "host conntrack sysctls were '$HOST_SYSCTLS', now '$now'"
  return 1
}
cta_expect "installing applied no sysctl to the host (not booted with systemd)" sysctls_unchanged

# The account: a system user with no login, its own group, home in the state directory.
user_ok() {
  local entry uid gid home shell
  entry=$(getent passwd ctaudit) || { cta_err "no user ctaudit"; return 1; }
  IFS=: read -r _ _ uid gid _ home shell <<<"$entry"
  local group_gid
  group_gid=$(getent group ctaudit | cut -d: -f3)
  local ok=0
  [[ "$shell" == /usr/sbin/nologin ]] || { cta_err "ctaudit's shell is '$shell', not /usr/sbin/nologin"; ok=1; }
  [[ "$home" == "$STATE_DIR" ]] || { cta_err "ctaudit's home is '$home', not $STATE_DIR"; ok=1; }
  [[ -n "$group_gid" && "$gid" == "$group_gid" ]] || { cta_err "ctaudit's primary group is $gid, not the group ctaudit ($group_gid)"; ok=1; }
  ((uid < 1000)) || { cta_err "ctaudit's uid $uid is not a system uid"; ok=1; }
  return "$ok"
}
cta_expect "user ctaudit: system uid, group ctaudit, home $STATE_DIR, shell /usr/sbin/nologin" user_ok

# file_is PATH MODE OWNER:GROUP [TYPE]: stat says so (TYPE: "regular file", "directory", ...).
file_is() {
  local path=$1 mode=$2 owner=$3 type=${4:-regular file} actual
  actual=$(stat -c '%a %U:%G %F' "$path" 2>&1) || { cta_err "$path: $actual"; return 1; }
  [[ "$actual" == "$mode $owner $type" || ("$type" == "regular file" && "$actual" == "$mode $owner regular empty file") ]] && return 0
  cta_err "$path is '$actual', expected '$mode $owner $type'"
  return 1
}

unit=""
for candidate in /lib/systemd/system/ctauditd.service /usr/lib/systemd/system/ctauditd.service; do
  if grep -qxF "$candidate" <<<"$contents"; then
    unit=$candidate
  fi
done
unit_in_place() {
  [[ -n "$unit" ]] && return 0
  cta_err "the package has no ctauditd.service in /lib/systemd/system or /usr/lib/systemd/system"
  return 1
}
cta_expect "the unit is in systemd's system unit directory ($unit)" unit_in_place

for spec in \
  "/usr/sbin/ctauditd 755" \
  "/usr/bin/ctaudit 755" \
  "/usr/lib/sysusers.d/ctaudit.conf 644" \
  "/usr/lib/tmpfiles.d/ctaudit.conf 644" \
  "/usr/lib/sysctl.d/60-ctaudit.conf 644" \
  "/usr/lib/modules-load.d/ctaudit.conf 644" \
  "/etc/logrotate.d/ctaudit 644" \
  "/usr/share/man/man8/ctauditd.8.gz 644" \
  "/usr/share/man/man1/ctaudit.1.gz 644" \
  "/usr/share/doc/ctaudit/copyright 644" \
  "/usr/share/doc/ctaudit/changelog.Debian.gz 644" \
  "/usr/share/doc/ctaudit/operations.md 644" \
  "/usr/share/doc/ctaudit/query.md 644" \
  "${unit:-/lib/systemd/system/ctauditd.service} 644"; do
  read -r path mode <<<"$spec"
  cta_expect "$path: mode $mode, root:root" file_is "$path" "$mode" root:root
done
cta_expect "$STATE_DIR: 0750 ctaudit:ctaudit (tmpfiles.d)" file_is "$STATE_DIR" 750 ctaudit:ctaudit directory
cta_expect "$LOG_DIR: 0750 ctaudit:ctaudit (tmpfiles.d)" file_is "$LOG_DIR" 750 ctaudit:ctaudit directory

misplaced_none() {
  local found
  found=$(grep -E '^/usr/etc/|^/usr/local/|^/usr/lib/[a-z0-9_]+-linux-gnu/' <<<"$contents")
  [[ -z "$found" ]] && return 0
  cta_err "files outside the FHS/Debian places: $found"
  return 1
}
cta_expect "nothing under /usr/etc, /usr/local or the multiarch library directory" misplaced_none

# Every file the package puts under /etc is a conffile, and only those.
conffiles_ok() {
  local etc conf
  etc=$(grep '^/etc/' <<<"$contents" | grep -v '/$' | sort)
  conf=$(dpkg-query -W -f='${Conffiles}\n' "$PKG" | awk 'NF { print $1 }' | sort)
  [[ -n "$etc" && "$etc" == "$conf" ]] && return 0
  cta_err "files under /etc: [$(tr '\n' ' ' <<<"$etc")], conffiles: [$(tr '\n' ' ' <<<"$conf")]"
  return 1
}
cta_expect "every file under /etc is a conffile (/etc/logrotate.d/ctaudit among them)" conffiles_ok

man_ok() {
  local page warnings
  for page in /usr/share/man/man8/ctauditd.8.gz /usr/share/man/man1/ctaudit.1.gz; do
    gzip -t "$page" || return 1
    warnings=$(zcat "$page" | groff -man -ww -z 2>&1 >/dev/null)
    [[ -z "$warnings" ]] || { cta_err "$page: $warnings"; return 1; }
    zcat "$page" | grep -q "^\.TH .*\"ctaudit $upstream_version\"" || { cta_err "$page does not name version $upstream_version"; return 1; }
  done
}
cta_expect "man pages ctauditd(8) and ctaudit(1): gzip, render without warnings, version $upstream_version" man_ok

version_ok() {
  local daemon query
  daemon=$(/usr/sbin/ctauditd --version) && query=$(/usr/bin/ctaudit --version) || return 1
  [[ "$daemon" == "ctauditd $upstream_version" && "$query" == "ctaudit $upstream_version" ]] && return 0
  cta_err "versions: '$daemon', '$query'; the package is $deb_version"
  return 1
}
cta_expect "ctauditd --version and ctaudit --version say $upstream_version (package $deb_version)" version_ok

enabled_link=/etc/systemd/system/multi-user.target.wants/ctauditd.service
enabled_ok() {
  [[ -L "$enabled_link" && "$(readlink "$enabled_link")" == */ctauditd.service ]] && return 0
  cta_err "$enabled_link is missing or wrong: $(ls -l "$enabled_link" 2>&1)"
  return 1
}
cta_expect "the unit is enabled for the next boot (deb-systemd-helper)" enabled_ok

# ---------------------------------------------------------------------------------------------
# 3. The installed daemon, run as the unit would run it.

unit_value() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
exec_start=$(unit_value ExecStart)
exec_start=${exec_start#[-@:+!]}
read -ra daemon_argv <<<"$exec_start"
unit_user=$(unit_value User)
unit_group=$(unit_value Group)
unit_umask=$(unit_value UMask)
unit_caps=$(unit_value AmbientCapabilities)
[[ ${#daemon_argv[@]} -gt 0 && "${daemon_argv[0]}" == /usr/sbin/ctauditd ]] ||
  cta_die "the unit's ExecStart is '$exec_start', expected /usr/sbin/ctauditd ..."
[[ -n "$unit_user" && -n "$unit_caps" ]] || cta_die "the unit sets no User= or no AmbientCapabilities="
# AmbientCapabilities=CAP_NET_ADMIN -> setpriv's -all,+net_admin
caps="-all"
for cap in $unit_caps; do
  cap=${cap,,}
  caps+=",+${cap#cap_}"
done
cta_log "unit: ExecStart=$exec_start User=$unit_user Group=${unit_group:-$unit_user} UMask=${unit_umask:-0022} caps=$caps"

cta_topology_up
cta_start_servers
# What systemd-sysctl does at boot, in the gateway namespace only (these keys are per namespace).
cta_in "$CTA_GW" sysctl -q -p /usr/lib/sysctl.d/60-ctaudit.conf >/dev/null ||
  cta_die "applying /usr/lib/sysctl.d/60-ctaudit.conf in $CTA_GW failed"

CTA_DAEMON_LOG=$CTA_TMP/ctauditd.log
(
  umask "${unit_umask:-0022}"
  exec ip netns exec "$CTA_GW" setpriv --reuid "$unit_user" --regid "${unit_group:-$unit_user}" --init-groups \
    --inh-caps "$caps" --ambient-caps "$caps" --bounding-set "$caps" --no-new-privs -- "${daemon_argv[@]}"
) </dev/null >"$CTA_DAEMON_LOG" 2>&1 &
CTA_DAEMON_PID=$!
CTA_PIDS+=("$CTA_DAEMON_PID")
wait_for 15 "the installed ctauditd logs 'ready'" cta_daemon_ready || cta_die "the installed ctauditd did not become ready"
cta_log "installed ctauditd ready (pid $CTA_DAEMON_PID)"

privileges_ok() {
  local status uid caps_eff caps_bnd
  status=$(cat "/proc/$CTA_DAEMON_PID/status") || return 1
  uid=$(awk '/^Uid:/ { print $3 }' <<<"$status")
  caps_eff=$(awk '/^CapEff:/ { print $2 }' <<<"$status")
  caps_bnd=$(awk '/^CapBnd:/ { print $2 }' <<<"$status")
  # CAP_NET_ADMIN is capability 12: bit 0x1000.
  [[ "$uid" == "$(id -u "$unit_user")" && "$caps_eff" == 0000000000001000 && "$caps_bnd" == 0000000000001000 ]] && return 0
  cta_err "daemon runs with euid $uid, CapEff $caps_eff, CapBnd $caps_bnd"
  return 1
}
cta_expect "the daemon runs as $unit_user with CAP_NET_ADMIN only" privileges_ok

# Traffic through the NAT: two TCP flows and one UDP flow from the inside.
cta_expect "TCP flow 100.64.0.2:21001 -> server" cta_tcp_flow "$CTA_CL4" 21001 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "TCP flow 100.64.0.3:21002 -> server" cta_tcp_flow "$CTA_CL4B" 21002 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "UDP flow 100.64.0.2:21003 -> server" cta_udp_flow "$CTA_CL4" 21003 "$CTA_SRV4" "$CTA_UDP_PORT"
query_time=$(cta_now)

# The translated port of the first TCP flow, from the kernel.
nat_port=$(cta_ct_truth "$CTA_GW" -p tcp --orig-src "$CTA_CL4" --sport 21001 | cta_truth_snat | awk '{ print $10; exit }')
[[ -n "$nat_port" ]] || cta_die "the gateway has no NAT entry for 100.64.0.2:21001"
cta_log "100.64.0.2:21001 was translated to $CTA_GW4_OUT:$nat_port"

db=$STATE_DIR/flows.db
jsonl=$LOG_DIR/flows.jsonl
# ctaudit as nobody, with or without the supplementary group ctaudit; the default --db.
as_analyst() { setpriv --reuid nobody --regid nogroup --groups "$(getent group ctaudit | cut -d: -f3)" -- "$@"; }
as_stranger() { setpriv --reuid nobody --regid nogroup --clear-groups -- "$@"; }

# who_finds RUNNER: `ctaudit who` run by RUNNER names 100.64.0.2:21001.
who_finds() {
  local out
  # Warnings (a window reaching past the daemon's stop) go to stderr, apart from the JSON.
  out=$("$1" /usr/bin/ctaudit who "$CTA_GW4_OUT:$nat_port" --at "@$query_time" --slack 30s --proto tcp --format json \
    2>"$CTA_TMP/who.err") || {
    cta_err "ctaudit who failed: $out $(<"$CTA_TMP/who.err")"
    return 1
  }
  local inside
  inside=$(cta_jq -r 'flows_only | "\(f("source.ip")):\(inside_port)"' <<<"$out" | head -n 1)
  [[ "$inside" == "$CTA_CL4:21001" ]] && return 0
  cta_err "ctaudit who answered '$inside', expected $CTA_CL4:21001: $out"
  return 1
}

cta_expect "a member of the group ctaudit (nobody) finds the flow with 'ctaudit who' while the daemon runs" \
  cta_eventually 10 "ctaudit who as an analyst" who_finds as_analyst

stranger_refused() {
  local out rc
  out=$(as_stranger /usr/bin/ctaudit who "$CTA_GW4_OUT:$nat_port" --at "@$query_time" 2>&1)
  rc=$?
  [[ $rc -eq 2 && "$out" == *"Permission denied"* ]] && return 0
  cta_err "ctaudit as nobody without the group: status $rc, '$out' (expected status 2, permission denied)"
  return 1
}
cta_expect "nobody without the group is refused (status 2, permission denied)" stranger_refused

jsonl_has_flows() {
  local count
  count=$(cta_jsonl_lines "$jsonl" complete |
    cta_jq -r 'flows_only | select(f("source.ip") | tostring | startswith("100.64.0.")) | f("source.port")' | sort -u | wc -l)
  ((count >= 3)) && return 0
  cta_err "$jsonl has $count of the 3 inside flows"
  return 1
}
cta_expect "the JSON lines record the three flows" cta_eventually 10 "the flows in $jsonl" jsonl_has_flows

for file in "$db" "$db-wal" "$db-shm" "$jsonl" "$STATE_DIR/ctauditd.prom" "$STATE_DIR/ctauditd.prom.lock"; do
  cta_expect "$file: 0640 ctaudit:ctaudit" file_is "$file" 640 ctaudit:ctaudit
done

cta_expect "the installed daemon stops cleanly on SIGTERM (status 0)" cta_daemon_stop 20

wal_kept() { file_is "$db-wal" 640 ctaudit:ctaudit && file_is "$db-shm" 640 ctaudit:ctaudit; }
cta_expect "after the stop, $db-wal and $db-shm are kept, 0640 ctaudit:ctaudit" wal_kept
cta_expect "a member of the group finds the flow with 'ctaudit who' after the daemon stopped" who_finds as_analyst
all_flows_after_stop() {
  local count
  count=$(as_analyst /usr/bin/ctaudit flows --src "$CTA_IN4_NET" --format json 2>/dev/null | cta_jq -r 'flows_only | f("source.port")' | sort -u | wc -l)
  ((count >= 3)) && return 0
  cta_err "ctaudit flows --src $CTA_IN4_NET found $count of the 3 flows"
  return 1
}
cta_expect "the database holds the three flows (ctaudit flows as the analyst)" all_flows_after_stop
cta_expect "the host's sysctls are still unchanged after the daemon ran" sysctls_unchanged

# ---------------------------------------------------------------------------------------------
# 5. Upgrade to the next Debian revision, over an admin's change to a conffile.

logrotate_conf=/etc/logrotate.d/ctaudit
printf '# changed by the admin (deb_install test)\n' >>"$logrotate_conf"
uid_before=$(id -u ctaudit)
db_inode_before=$(stat -c %i "$db")
next_release=$((${deb_version##*-} + 1))
cta_log "building revision $next_release for the upgrade"
deb2=$(CTAUDIT_DEB_RELEASE=$next_release "$CTA_REPO/scripts/build-deb.sh" 2>"$CTA_TMP/build-deb2.log" | tail -n 1) || {
  tail -n 40 "$CTA_TMP/build-deb2.log" >&2
  cta_die "scripts/build-deb.sh for revision $next_release failed"
}
# Without a terminal dpkg cannot ask about a conffile: an upgrade that needed to would fail here.
if ! DEBIAN_FRONTEND=noninteractive "${APT[@]}" install "$deb2" </dev/null >"$CTA_TMP/apt-upgrade.log" 2>&1; then
  tail -n 30 "$CTA_TMP/apt-upgrade.log" >&2
  cta_fail_check "apt-get install $deb2 (upgrade) succeeds"
fi
upgraded_ok() {
  local version
  version=$(dpkg-query -W -f='${Status} ${Version}' "$PKG")
  [[ "$version" == "install ok installed $upstream_version-$next_release" ]] && return 0
  cta_err "after the upgrade dpkg says '$version'"
  return 1
}
cta_expect "upgraded to $upstream_version-$next_release" upgraded_ok
upgrade_kept_ok() {
  local ok=0
  grep -q 'changed by the admin' "$logrotate_conf" || { cta_err "the admin's change to $logrotate_conf is gone"; ok=1; }
  [[ "$(id -u ctaudit)" == "$uid_before" ]] || { cta_err "the uid of ctaudit changed"; ok=1; }
  [[ "$(stat -c %i "$db")" == "$db_inode_before" ]] || { cta_err "$db was replaced"; ok=1; }
  [[ -L "$enabled_link" ]] || { cta_err "the unit is no longer enabled"; ok=1; }
  file_is "$STATE_DIR" 750 ctaudit:ctaudit directory || ok=1
  return "$ok"
}
cta_expect "the upgrade keeps the admin's conffile change, the user, the data and the enablement" upgrade_kept_ok
cta_expect "a member of the group still finds the flow after the upgrade" who_finds as_analyst
cta_expect "the upgrade applied no sysctl to the host" sysctls_unchanged

# ---------------------------------------------------------------------------------------------
# 6. Purge.

cta_log "apt-get purge $PKG"
if ! DEBIAN_FRONTEND=noninteractive "${APT[@]}" purge "$PKG" >"$CTA_TMP/apt-purge.log" 2>&1; then
  tail -n 30 "$CTA_TMP/apt-purge.log" >&2
  cta_fail_check "apt-get purge $PKG succeeds"
fi
purged_ok() {
  local left=""
  dpkg-query -W -f='${Status}' "$PKG" 2>/dev/null | grep -q "ok installed" && left+=" (still installed)"
  local path
  for path in /usr/sbin/ctauditd /usr/bin/ctaudit /etc/logrotate.d/ctaudit "$unit" "$enabled_link" \
              /usr/share/man/man8/ctauditd.8.gz /usr/share/doc/ctaudit; do
    [[ -e "$path" || -L "$path" ]] && left+=" $path"
  done
  [[ -z "$left" ]] && return 0
  cta_err "left after purge:$left"
  return 1
}
cta_expect "purge removes the binaries, the conffiles, the unit and its enablement" purged_ok
kept_ok() { [[ -s "$db" && -s "$jsonl" ]] && getent passwd ctaudit >/dev/null; }
cta_expect "purge keeps the audit data and the ctaudit user (docs/operations.md)" kept_ok
cta_expect "the host's sysctls are unchanged at the end" sysctls_unchanged

cta_finish
