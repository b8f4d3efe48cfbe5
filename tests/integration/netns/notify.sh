#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# notify: the sd_notify protocol as systemd sees it. notify_listener plays the service manager on
# an AF_UNIX datagram socket in the temp dir; ctauditd runs in a namespace of its own with
# NOTIFY_SOCKET, WATCHDOG_USEC=2s and WATCHDOG_PID set as systemd sets them. Checks:
#   - READY=1 is the first message, and when it arrives the 20,000 conntrack entries created before
#     the start are already in the database: the listener counts the rows the moment READY=1 comes
#     (dumping and writing them takes far longer than that count), and with --flush-interval 10m
#     and a batch larger than the table nothing else is written before SIGTERM;
#   - WATCHDOG=1 keeps arriving, never further apart than the 2 s timeout allows;
#   - STATUS= lines have the documented form, and report the event rate of a burst;
#   - SIGTERM: STOPPING=1 arrives, after READY=1, and ctauditd exits 0;
#   - with WATCHDOG_PID naming another process, no WATCHDOG=1 is sent (sd_watchdog_enabled);
#   - a database of schema version 5 (one index changed back): the upgrade asks for more start
#     time (EXTEND_TIMEOUT_USEC= with its STATUS=) before READY=1, and leaves this version with the
#     index as this version defines it.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init notify --daemon --query
cta_require_tools sqlite3
: "${NOTIFY_LISTENER:=$CTA_REPO/build/ci/tests/integration/notify_listener}"
[[ -x "$NOTIFY_LISTENER" ]] || cta_skip_or_fail "notify_listener not found at NOTIFY_LISTENER=$NOTIFY_LISTENER"

CTA_GW=cta-nt-$RANDOM$$
cta_ns_add "$CTA_GW"

SOCK=$CTA_TMP/notify.sock
MSGS=$CTA_TMP/notify.log
AT_READY=$CTA_TMP/rows-at-ready.txt
CTA_DB=$CTA_TMP/flows.db
"$NOTIFY_LISTENER" "$SOCK" "$MSGS" \
  "sqlite3 -readonly -cmd '.timeout 5000' '$CTA_DB' 'SELECT count(*) FROM flows' >'$AT_READY' 2>&1" \
  2>"$CTA_TMP/listener.err" &
CTA_PIDS+=("$!")
wait_for 5 "the notify socket exists" test -S "$SOCK" || cta_die "notify_listener did not start: $(cat "$CTA_TMP/listener.err")"

PRE=20000
cta_log "$PRE conntrack entries made before the start: udp $CTA_CL4:10000-$((10000 + PRE - 1)) -> $CTA_SRV4:53"
batch=$CTA_TMP/pre.txt
for ((i = 0; i < PRE; i++)); do
  printf -- '-I -p udp -s %s -d %s --sport %d --dport 53 -t 600\n' "$CTA_CL4" "$CTA_SRV4" $((10000 + i))
done >"$batch"
cta_in "$CTA_GW" conntrack -R "$batch" >/dev/null 2>&1 || cta_die "conntrack -R in $CTA_GW failed"

# Like systemd: the variables in the environment, WATCHDOG_PID the daemon's own pid (ip netns exec
# and `exec` keep the pid, so $$ of the bash that execs ctauditd is ctauditd's).
cta_daemon_launcher() {
  CTA_LAUNCHER=(ip netns exec "$CTA_GW" env NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=2000000
    bash -c 'export WATCHDOG_PID=$$; exec "$@"' notify-launcher)
}
cta_daemon_start --flush-interval 10m --max-batch-rows 1000000 --stats-file none

# Lines of the listener's log: "<datagram> <time> KEY=VALUE".
assignments() { awk -v k="$1" 'index($3, k "=") == 1 { print }' "$MSGS"; }
has_ready() { [[ -n $(assignments READY) ]]; }
cta_expect "READY=1 arrives" wait_for 5 "READY=1 from ctauditd" has_ready
ready_first() {
  local first
  first=$(awk 'NR == 1 { print $1 " " $3 }' "$MSGS")
  [[ $first == "1 READY=1" ]] && return 0
  cta_err "first message: '$first', want datagram 1 READY=1"
  return 1
}
cta_expect "READY=1 is the first message" ready_first
pre_in_db() {
  wait_for 5 "the row count at READY=1" test -s "$AT_READY"
  [[ $(cat "$AT_READY") == "$PRE" ]] && return 0
  cta_err "when READY=1 arrived the database had '$(cat "$AT_READY")' flows, want the $PRE made before the start"
  return 1
}
cta_expect "when READY=1 arrives the $PRE entries from before the start are in the database" pre_in_db
ready_status() {
  local status
  status=$(awk '$1 == 1 && index($3, "STATUS=") == 1' "$MSGS")
  [[ $status == *"STATUS=ready: $PRE flow(s) in the kernel's table at start"* ]] && return 0
  cta_err "READY=1 came with '$status'"
  return 1
}
cta_expect "READY=1 comes with STATUS=ready: $PRE flow(s) ..." ready_status

cta_log "a burst of 500 entries for the event rate"
batch=$CTA_TMP/create.txt
for ((i = 0; i < 500; i++)); do
  printf -- '-I -p udp -s %s -d %s --sport %d --dport 53 -t 600\n' "$CTA_CL4B" "$CTA_SRV4" $((10000 + i))
done >"$batch"
cta_in "$CTA_GW" conntrack -R "$batch" >/dev/null 2>&1 || cta_die "conntrack -R in $CTA_GW failed"

# A status line covering the burst: the rate of 500 events over 5 s is at least 1/s.
busy_status() { assignments STATUS | grep -qE 'STATUS=[1-9][0-9]* events/s; '; }
cta_expect "a STATUS= line reports the burst's event rate" wait_for 12 "a STATUS line with a rate above 0" busy_status
status_form() {
  local bad
  bad=$(assignments STATUS | awk '$1 != 1' | cut -d' ' -f3- |
    grep -vE '^STATUS=[0-9]+ events/s; [0-9]+(\.[0-9][kMG])? records written, [0-9]+(\.[0-9][kMG])? events lost; [0-9]+(\.[0-9][kMG])? flows open$')
  [[ -z $bad && -n $(assignments STATUS | awk '$1 != 1') ]] && return 0
  cta_err "STATUS lines not of the form 'N events/s; N records written, N events lost; N flows open': ${bad:-none at all}"
  return 1
}
cta_expect "every periodic STATUS= line parses" status_form

watchdog_regular() {
  local pings
  pings=$(assignments WATCHDOG | wc -l)
  # Every gap between pings, and from the last ping to now, must stay below the 2 s timeout.
  assignments WATCHDOG | awk -v now="$(cta_now)" -v n="$pings" '
    { if (NR > 1 && $2 - last > max) max = $2 - last; last = $2 }
    END {
      if (now - last > max) max = now - last
      if (n < 4 || max >= 2.0) { printf "%d WATCHDOG=1 pings, longest gap %.2f s (want >= 4, < the 2 s timeout)\n", n, max > "/dev/stderr"; exit 1 }
    }'
}
cta_expect "WATCHDOG=1 keeps arriving within the 2 s timeout" watchdog_regular

cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
stopping_last() {
  local stop ready
  stop=$(assignments STOPPING | awk '{ print $1 }' | head -1)
  ready=$(assignments READY | awk '{ print $1 }' | head -1)
  [[ -n $stop && $stop -gt ${ready:-0} ]] && return 0
  cta_err "STOPPING=1 in datagram '${stop}', READY=1 in '${ready}'"
  return 1
}
cta_expect "STOPPING=1 arrives at SIGTERM" stopping_last

# A WATCHDOG_PID that is not ctauditd's: the watchdog belongs to another process.
: >"$MSGS"
cta_daemon_launcher() {
  CTA_LAUNCHER=(ip netns exec "$CTA_GW" env NOTIFY_SOCKET="$SOCK" WATCHDOG_USEC=2000000 WATCHDOG_PID=1)
}
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-2.log cta_daemon_start --stats-file none
cta_expect "READY=1 with a foreign WATCHDOG_PID" wait_for 5 "READY=1" has_ready
no_pings() {
  sleep 2.5 # longer than the 1 s ping interval a wrongly enabled watchdog would use
  [[ -z $(assignments WATCHDOG) ]] && return 0
  cta_err "WATCHDOG=1 sent although WATCHDOG_PID names another process"
  return 1
}
cta_expect "no WATCHDOG=1 when WATCHDOG_PID is another process's" no_pings
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# The same database made to look like version 5: the version number, flows_orig_src with a
# definition other than this version's and no flows_dnat (version 7's), which the upgrade must
# build again.
index_sql() { sqlite3 -readonly "$CTA_DB" "SELECT sql FROM sqlite_master WHERE name = '$1'"; }
current_version=$(sqlite3 -readonly "$CTA_DB" "PRAGMA user_version")
current_index=$(index_sql flows_orig_src)
dnat_index=$(index_sql flows_dnat)
[[ -n $current_index && -n $dnat_index ]] || cta_die "no flows_orig_src or flows_dnat in $CTA_DB"
sqlite3 "$CTA_DB" "DROP INDEX flows_orig_src; CREATE INDEX flows_orig_src ON flows (id >> 20, orig_src);
  DROP INDEX flows_dnat; DROP INDEX flows_open_dnat; DROP INDEX flows_long_dnat;
  PRAGMA user_version = 5;" || cta_die "cannot turn $CTA_DB into version 5"
: >"$MSGS"
cta_daemon_launcher() {
  CTA_LAUNCHER=(ip netns exec "$CTA_GW" env NOTIFY_SOCKET="$SOCK")
}
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-3.log cta_daemon_start --stats-file none
cta_expect "READY=1 after the upgrade" wait_for 10 "READY=1" has_ready
extend_before_ready() {
  local extend ready status
  extend=$(assignments EXTEND_TIMEOUT_USEC | head -1)
  ready=$(assignments READY | awk '{ print $1 }' | head -1)
  status=$(awk -v d="${extend%% *}" '$1 == d && index($3, "STATUS=") == 1' "$MSGS" | cut -d' ' -f3-)
  if [[ ${extend%% *} -ge 1 && ${extend%% *} -lt ${ready:-0} && $extend == *" EXTEND_TIMEOUT_USEC=30000000" &&
    $status == "STATUS=upgrading the flow database's schema" ]]; then
    return 0
  fi
  cta_err "EXTEND_TIMEOUT_USEC: '${extend}' with '${status}', READY=1 in datagram '${ready}'"
  return 1
}
cta_expect "the upgrade asks for more start time (EXTEND_TIMEOUT_USEC=30000000) before READY=1" extend_before_ready
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
upgraded() {
  local version index dnat
  version=$(sqlite3 -readonly "$CTA_DB" "PRAGMA user_version")
  index=$(index_sql flows_orig_src)
  dnat=$(index_sql flows_dnat)
  [[ $version == "$current_version" && $index == "$current_index" && $dnat == "$dnat_index" ]] && return 0
  cta_err "after the upgrade: user_version '$version', flows_orig_src '$index', flows_dnat '$dnat'" \
    "(want $current_version, '$current_index', '$dnat_index')"
  return 1
}
cta_expect "the database is version $current_version again, with this version's flows_orig_src and flows_dnat" upgraded

cta_finish
