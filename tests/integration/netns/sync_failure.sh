#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sync_failure: what ctauditd does when fdatasync fails (an I/O error under the database and the
# JSON-lines file), and when its main loop's poll() fails. Neither can be made to happen for real
# in a namespace, so the daemon runs with tests/integration/tools/fault_shim.cpp preloaded, which
# fails those calls while a trigger file exists; everything else is the real kernel.
#
# After a first batch of 100 flows is recorded, fdatasync fails for at least 3 s while ct_loadgen
# makes and deletes 200 flows (400 events); then it works again. Checks:
#   - the daemon keeps running and says so: log lines about the failed fdatasync (JSON lines) and
#     the failed commit (SQLite);
#   - nothing already recorded is lost: the 100 first flows are still in the database;
#   - SQLite's commits failed, so none of the 200 flows is in the database while the failure lasts,
#     and the daemon held those batches: once fdatasync works, all 200 are there, closed, each once;
#   - the JSON-lines sink cannot know whether the kernel kept the lines it wrote before the failed
#     sync, so it says so: a sink_failure gap for the sink jsonl, with lost_records > 0, in the
#     database and in the JSON-lines file; the lines themselves appear once each (no rewrite);
# Then poll() fails in the pipeline thread while ct_loadgen is still making flows:
#   - the daemon logs the failure, stops the reader, writes everything it received, and exits
#     with status 1: its "stopped:" line counts as many records written to each sink as it received;
#   - the flows of that phase in the database match its JSON lines, new for new, destroy for closed;
#   - the database passes PRAGMA integrity_check.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init sync_failure --daemon --query --loadgen
: "${FAULT_SHIM:=$CTA_REPO/build/ci/tests/integration/libfault_shim.so}"
[[ -f $FAULT_SHIM ]] || cta_skip_or_fail "no fault_shim library at $FAULT_SHIM (build the ci preset)"
cta_load_ns_up

faults=$CTA_TMP/faults
mkdir -p "$faults"
LD_PRELOAD=$FAULT_SHIM CTAUDIT_FAULT_DIR=$faults cta_daemon_start --flush-interval 200ms

cta_loadgen "$CTA_TMP/warmup.txt" --count 100 --first-index 0 --rate 2000 || cta_die "ct_loadgen warm-up failed"
warm_recorded() { (($(cta_port_closed_rows 10000) == 100)); }
cta_expect "the first 100 flows are recorded" cta_eventually 10 "100 warm-up flows" warm_recorded

cta_log "fdatasync fails from now"
touch "$faults/fdatasync"
# Over a second, so that batches are written between failed syncs.
cta_loadgen "$CTA_TMP/failing.txt" --count 200 --first-index 1000 --rate 200 || cta_die "ct_loadgen failed"
T_made=$(date +%s)
reported() { # SINK PATTERN
  grep -E " (error|warning|critical) \[$1\]" "$CTA_DAEMON_LOG" | grep -q "$2" && return 0
  cta_err "no error or warning line of [$1] matching '$2' in $CTA_DAEMON_LOG"
  return 1
}
cta_expect "the JSON-lines sink reports the failed fdatasync in the log" \
  cta_eventually 10 "a jsonl fdatasync line" reported jsonl 'fdatasync.*failed'
cta_expect "the SQLite sink reports the failed commit in the log" \
  cta_eventually 10 "a sqlite commit line" reported sqlite 'COMMIT: disk I/O error'
three_seconds_on() { (($(date +%s) >= T_made + 3)); }
wait_for 5 "3 s of failing fdatasync" three_seconds_on
cta_expect "the daemon is still running while fdatasync fails" cta_daemon_alive
held_back() {
  local n
  n=$(cta_port_rows 10001)
  ((n == 0)) && return 0
  cta_err "$n rows of the failing batch are in the database although every commit's sync failed"
  return 1
}
cta_expect "no commit went through while fdatasync failed" held_back
# A write that works between failed syncs is not a recovery; and one error line says the flushes
# fail, not one a flush interval.
said_once() {
  local recovered flush_errors
  recovered=$(grep -c -E '\[jsonl\].*works again|\[pipeline\] jsonl.*works again' "$CTA_DAEMON_LOG")
  flush_errors=$(grep -c 'error \[pipeline\] jsonl.*flush failed' "$CTA_DAEMON_LOG")
  ((recovered == 0 && flush_errors == 1)) && return 0
  cta_err "while fdatasync fails: $recovered line(s) saying the JSON-lines file works again (want 0), $flush_errors 'flush failed' error(s) (want 1)"
  return 1
}
cta_expect "the log says it once, and not that it works again" said_once
cta_log "fdatasync works again"
rm -f "$faults/fdatasync"
recovery_said() {
  grep -q '\[jsonl\].*works again' "$CTA_DAEMON_LOG" && grep -q '\[pipeline\] jsonl.*flushing works again' "$CTA_DAEMON_LOG" &&
    return 0
  cta_err "no line of [jsonl] and [pipeline] saying that the JSON-lines file works again"
  return 1
}

cta_expect "the 100 flows recorded before the failure are still there" \
  cta_batch_in_db 10000 100 "of those recorded before the failure"
cta_expect "within 15 s all 200 flows made while fdatasync failed are in the database, closed" \
  cta_eventually 15 "the 200 flows in the database" cta_batch_in_db 10001 200 "of the batch made while fdatasync failed"
json_once() { cta_batch_in_json 10001 200 "for the batch made while fdatasync failed"; }
cta_expect "the JSON-lines file has one new and one destroy line for each of them" \
  cta_eventually 15 "the 400 JSON lines" json_once
cta_expect "the log says when it works again" cta_eventually 5 "a recovery line" recovery_said
db_gap() {
  local n
  n=$(cta_sql "SELECT count(*) FROM gaps WHERE reason = 'sink_failure' AND sink = 'jsonl' AND lost_records > 0")
  ((n >= 1)) && return 0
  cta_err "gaps: no sink_failure gap of the sink jsonl with lost_records > 0 ($(cta_sql 'SELECT * FROM gaps_text'))"
  return 1
}
cta_expect "the database records a sink_failure gap for the JSON-lines sink" cta_eventually 10 "a gap row" db_gap
json_gap() {
  local n
  n=$(cta_pipeline_errors "$CTA_JSONL" sink_failure |
    cta_jq 'select(f("ctaudit.gap.reason") == "sink_failure" and f("ctaudit.gap.sink") == "jsonl" and
      f("ctaudit.gap.lost_records") > 0)' | wc -l)
  ((n >= 1)) && return 0
  cta_err "$CTA_JSONL: no sink_failure gap line of the sink jsonl with lost_records > 0"
  return 1
}
cta_expect "the JSON-lines file has the same gap" cta_eventually 10 "a gap line" json_gap

# poll() fails while records are still arriving: the daemon must write what it queued, not drop it.
cta_loadgen_bg "$CTA_TMP/polling.txt" --count 4000 --first-index 2000 --rate 2000
under_way() { (($(cta_port_rows 10002 ">=") >= 200)); }
wait_for 10 "the first 200 flows of the poll phase in the database" under_way ||
  cta_die "ct_loadgen's flows do not reach the database"
cta_log "poll fails from now in the pipeline thread"
touch "$faults/poll"
if wait_for 20 "ctauditd exits after its poll failed" cta_pid_exited "$CTA_DAEMON_PID"; then
  wait "$CTA_DAEMON_PID"
  rc=$?
else
  kill -KILL "$CTA_DAEMON_PID" 2>/dev/null
  wait "$CTA_DAEMON_PID" 2>/dev/null
  rc=killed
fi
rm -f "$faults/poll"
kill -INT "$CTA_LOADGEN_PID" 2>/dev/null
wait "$CTA_LOADGEN_PID" 2>/dev/null
exited_with_error() {
  [[ $rc == 1 ]] && return 0
  cta_err "ctauditd's status after a failed poll: $rc (want 1, the runtime failure status)"
  return 1
}
cta_expect "after a failed poll ctauditd exits with status 1" exited_with_error
poll_reported() {
  grep -E ' (error|critical) ' "$CTA_DAEMON_LOG" | grep -q 'poll failed' && return 0
  cta_err "no error line 'poll failed' in $CTA_DAEMON_LOG"
  return 1
}
cta_expect "it says why in its log" poll_reported
# "stopped: N message(s) received, ..., N written to sqlite, N written to jsonl; ..."
drained() {
  local line received sqlite jsonl
  line=$(grep 'stopped:' "$CTA_DAEMON_LOG" | tail -n 1)
  received=$(sed -nE 's/.*stopped: ([0-9]+) message.*/\1/p' <<<"$line")
  sqlite=$(sed -nE 's/.* ([0-9]+) written to sqlite.*/\1/p' <<<"$line")
  jsonl=$(sed -nE 's/.* ([0-9]+) written to jsonl.*/\1/p' <<<"$line")
  [[ -n $received && $received == "$sqlite" && $received == "$jsonl" ]] && return 0
  cta_err "after a failed poll: '$line' (want every record received written to both sinks)"
  return 1
}
cta_expect "every record received before it stopped is written to both sinks" drained
same_flows() {
  local rows closed new destroy
  rows=$(cta_port_rows 10002 ">=")
  closed=$(cta_port_closed_rows 10002 ">=")
  new=$(cta_port_json_lines 10002 new ">=")
  destroy=$(cta_port_json_lines 10002 destroy ">=")
  ((rows >= 200 && rows == new && closed == destroy)) && return 0
  cta_err "poll phase: the database has $rows flows ($closed closed), the JSON lines $new new and $destroy destroy"
  return 1
}
cta_expect "the poll phase's flows in the database match its JSON lines" same_flows
cta_expect "the failing batch's JSON lines are still there once each" json_once
cta_expect "the database passes integrity_check" cta_integrity_ok
cta_finish
