#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# run_as_user: ctauditd started as root with `--user nobody` in the NAT gateway. Checks:
#   - mistakes are clear errors that change nothing: an unknown user, --user when not started as
#     root, a database directory the user cannot write;
#   - once running: uid and gid are nobody's (real, effective, saved, fs), the groups are only
#     nobody's, CapEff/CapPrm/CapBnd are exactly cap_net_admin, nothing inheritable or ambient;
#   - the database, its -wal and -shm, the JSON-lines file and the stats file belong to nobody,
#     mode 0640;
#   - a NAT'd flow is recorded (`ctaudit who` names the inside host);
#   - SIGHUP after moving the JSON-lines file away: a new file, nobody's and 0640, gets the next flow;
#   - a forced resync after the drop (16 KiB receive buffer, 3000 entries destroyed in one burst,
#     as resync.sh does) dumps the table as nobody with CAP_NET_ADMIN: every flow is closed and the
#     stats file counts the resync; SIGTERM exits 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init run_as_user --daemon --query
cta_require_tools setpriv stat
cta_nobody_dir
cta_topology_up
cta_start_servers

STATS=$NOBODY_DIR/ctauditd.prom

# --- mistakes ----------------------------------------------------------------------------------------
# expect_start_error DESCRIPTION REGEX COMMAND...: exits 1 or 2, says REGEX on stderr, no database.
expect_start_error() {
  local regex=$1
  shift
  cta_capture "$@"
  if [[ $CTA_RC != 1 && $CTA_RC != 2 ]] || ! grep -qE "$regex" <<<"$CTA_ERRTXT"; then
    cta_err "exit $CTA_RC (want 1 or 2), stderr: $CTA_ERRTXT (want /$regex/)"
    return 1
  fi
  return 0
}
BAD=$CTA_TMP/bad
mkdir -p "$BAD/rootdir" && chmod 0755 "$BAD/rootdir"
cta_expect "--user for an unknown user: 'no such user'" expect_start_error "no such user" \
  ip netns exec "$CTA_GW" "$CTAUDITD" --db "$BAD/unknown.db" --jsonl none --stats-file none --user ctaudit-no-such-user
cta_expect "... and nothing was created" test ! -e "$BAD/unknown.db"
cta_expect "--user when not started as root: says it needs root" expect_start_error "started as root" \
  ip netns exec "$CTA_GW" setpriv --reuid="$NOBODY_UID" --regid="$NOBODY_GID" --clear-groups \
  --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin --bounding-set=-all,+net_admin \
  "$CTAUDITD" --db "$NOBODY_DIR/not-root.db" --jsonl none --stats-file none --user nobody
# On a file with a previous run (A, stopped cleanly), so that the failed start (B) shows what it
# leaves: no run of its own, so that the next run (C) records the whole time since A stopped.
saved=("$CTA_DB" "$CTA_JSONL")
CTA_DB=$BAD/rootdir/flows.db CTA_JSONL=$BAD/rootdir/flows.jsonl CTA_DAEMON_LOG_FILE=$CTA_TMP/run-a.log
cta_daemon_start --stats-file none
cta_expect "run A on $CTA_DB stops cleanly" cta_daemon_stop
cta_expect "--user with a database directory nobody cannot write: names the directory and the chown" \
  expect_start_error "cannot create files in $BAD/rootdir .*chown nobody: $BAD/rootdir" \
  ip netns exec "$CTA_GW" "$CTAUDITD" --db "$BAD/rootdir/flows.db" --jsonl none --stats-file none --user nobody
CTA_DAEMON_LOG_FILE=$CTA_TMP/run-c.log
cta_daemon_start --stats-file none
cta_expect "run C stops cleanly" cta_daemon_stop
failed_start_left_no_run() {
  local runs gap stopped
  runs=$(cta_sql "SELECT count(*) FROM runs")
  stopped=$(cta_sql "SELECT stopped_ns FROM runs ORDER BY id LIMIT 1")
  gap=$(cta_sql "SELECT start_ns FROM gaps WHERE reason = 'daemon_down' ORDER BY start_ns LIMIT 1")
  [[ $runs == 2 && -n $gap && $gap == "$stopped" ]] && return 0
  cta_err "runs: $runs (want 2: A and C); the daemon_down gap starts at ${gap:-none}, run A stopped at $stopped"
  return 1
}
cta_expect "the failed start left no run: C's daemon_down gap starts where A stopped" failed_start_left_no_run
CTA_DB=${saved[0]} CTA_JSONL=${saved[1]}
unset CTA_DAEMON_LOG_FILE

# --- the run -------------------------------------------------------------------------------------------
cta_daemon_start --user nobody --receive-buffer 16K --stats-file "$STATS"
cta_expect "logs the switch to nobody" grep -q "running as user nobody (uid $NOBODY_UID, gid $NOBODY_GID)" "$CTA_DAEMON_LOG"

status_field() { awk -v k="$1:" '$1 == k { $1 = ""; sub(/^ /, ""); print }' "/proc/$CTA_DAEMON_PID/status"; }
field_is() { # FIELD VALUE
  local got
  got=$(status_field "$1")
  [[ $got == "$2" ]] && return 0
  cta_err "/proc/$CTA_DAEMON_PID/status $1: '$got', want '$2'"
  return 1
}
cta_expect "uid is nobody's (real, effective, saved, fs)" field_is Uid "$NOBODY_UID $NOBODY_UID $NOBODY_UID $NOBODY_UID"
cta_expect "gid is nobody's primary group" field_is Gid "$NOBODY_GID $NOBODY_GID $NOBODY_GID $NOBODY_GID"
cta_expect "supplementary groups: nobody's only" field_is Groups "$(id -G nobody)"
cta_expect "CapEff is exactly cap_net_admin" field_is CapEff 0000000000001000
cta_expect "CapPrm is exactly cap_net_admin" field_is CapPrm 0000000000001000
cta_expect "CapBnd is exactly cap_net_admin" field_is CapBnd 0000000000001000
cta_expect "nothing inheritable" field_is CapInh 0000000000000000
cta_expect "nothing ambient" field_is CapAmb 0000000000000000

owned_0640() {
  local file bad=0 got
  for file in "$@"; do
    got=$(stat -c '%u %a' "$file" 2>&1)
    [[ $got == "$NOBODY_UID 640" ]] || { cta_err "$file: owner and mode '$got', want '$NOBODY_UID 640'"; bad=1; }
  done
  return "$bad"
}
wait_for 10 "the stats file" test -e "$STATS"
cta_expect "database, -wal, -shm, JSON lines and stats file are nobody's, mode 0640" \
  owned_0640 "$CTA_DB" "$CTA_DB-wal" "$CTA_DB-shm" "$CTA_JSONL" "$STATS"

who_finds() { # SPORT
  local sport=$1 line got
  line=$(cta_ct_truth "$CTA_GW" | awk -v p="$sport" -v s="$CTA_CL4" '$2 == "tcp" && $3 == s && $4 == p' | head -1)
  [[ -n $line ]] || { cta_err "no conntrack entry for tcp $CTA_CL4:$sport in the gateway"; return 1; }
  local -a f
  read -ra f <<<"$line"
  got=$("$CTAUDIT" who "${f[8]}:${f[9]}" --at "@$(cta_now)" --proto tcp --db "$CTA_DB" --format json 2>&1 |
    cta_jq -r 'flows_only | "\(f("source.ip")):\(inside_port)"' | head -1)
  [[ $got == "$CTA_CL4:$sport" ]] && return 0
  cta_err "ctaudit who ${f[8]}:${f[9]}: '$got', want $CTA_CL4:$sport"
  return 1
}
cta_expect "a NAT'd TCP flow goes through" cta_tcp_flow "$CTA_CL4" 24001 "$CTA_SRV4" "$CTA_TCP_PORT"
cta_expect "ctaudit who names $CTA_CL4:24001" cta_eventually 5 "who finds 24001" who_finds 24001

# --- SIGHUP after a rotation ------------------------------------------------------------------------
mv "$CTA_JSONL" "$CTA_JSONL.1" || cta_die "mv $CTA_JSONL failed"
reopened() { grep -q "reopened $CTA_JSONL\$" "$CTA_DAEMON_LOG" && test -e "$CTA_JSONL"; }
cta_daemon_signal HUP
cta_expect "SIGHUP: a new JSON-lines file" wait_for 5 "the reopened $CTA_JSONL" reopened
cta_expect "the new file is nobody's, mode 0640" owned_0640 "$CTA_JSONL"
cta_expect "a NAT'd TCP flow after the reopen" cta_tcp_flow "$CTA_CL4" 24002 "$CTA_SRV4" "$CTA_TCP_PORT"
in_new_file() { cta_jq -r 'select(f("source.port") == 24002) | f("source.ip")' <"$CTA_JSONL" | grep -qx "$CTA_CL4"; }
cta_expect "it is written to the new file" wait_for 5 "port 24002 in the new $CTA_JSONL" in_new_file

# --- a forced resync after the drop -----------------------------------------------------------------
N=3000
batch=$CTA_TMP/create.txt
for ((i = 0; i < N; i++)); do
  printf -- '-I -p udp -s %s -d %s --sport %d --dport 53 -t 600\n' "$CTA_CL4B" "$CTA_SRV4" $((10000 + i))
done >"$batch"
gaps_logged() { grep -c 'the log has a gap (kernel_overrun)' "$CTA_DAEMON_LOG" 2>/dev/null; }
at_least_gaps() { (($(gaps_logged) >= $1)); }
cta_in "$CTA_GW" conntrack -R "$batch" >/dev/null 2>&1 || cta_die "conntrack -R in $CTA_GW failed"
db_udp() { # JQ_SELECT: distinct inside ports of CTA_CL4B's udp flows matching
  cta_flows_json --proto udp | cta_jq -r "select(f(\"source.ip\") == \"$CTA_CL4B\") | $1 | inside_port" | sort -un | wc -l
}
all_open() { (($(db_udp 'select(f("event.end") == null)') == N)) || { cta_err "open: $(db_udp 'select(f("event.end") == null)'), want $N"; return 1; }; }
cta_expect "all $N entries are in the database, open" cta_eventually 10 "$N open flows" all_open
gaps_before=$(gaps_logged)
cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1 || cta_die "conntrack -F in $CTA_GW failed"
cta_expect "the flush burst overran the socket and a resync closed the window" \
  wait_for 20 "one more kernel-overrun gap" at_least_gaps $((${gaps_before:-0} + 1))
all_closed() { (($(db_udp 'select(f("event.end") != null)') == N)) || { cta_err "closed: $(db_udp 'select(f("event.end") != null)'), want $N"; return 1; }; }
cta_expect "all $N flows are closed in the database" cta_eventually 10 "$N closed flows" all_closed
no_dump_error() {
  ! grep -E "table dump|Operation not permitted" "$CTA_DAEMON_LOG" | grep -iE "cannot|refused|failed|not permitted"
}
cta_expect "no dump was refused (EPERM) after the drop" no_dump_error

cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
resyncs() {
  local value
  value=$(awk '$1 == "ctauditd_resyncs_total" { print $2 }' "$STATS")
  ((${value:-0} > 0)) && return 0
  cta_err "ctauditd_resyncs_total = '$value', want > 0"
  return 1
}
cta_expect "the stats file counts the resync" resyncs

cta_finish
