#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# retention (issue #5): ctauditd --retention deletes the flows that ended before the horizon while
# it keeps recording, loses nothing meanwhile, keeps a flow that started before the horizon and
# ended after it, and ctaudit says that time before the horizon is out of range.
#
# One namespace. flow_db_fill (bench/) first writes OLD closed flows that started 3 to 2 days ago,
# and one long flow that started 3 days ago and ended an hour ago. ctauditd then runs with
# --retention 1d while ct_loadgen creates and deletes NAT'd entries at a steady rate. Checks:
#   - while the load ran, the old flows were being deleted (a sample saw some gone and some left)
#     and new flows were being written;
#   - the daemon logged that retention caught up; no old flow is left; the long flow is;
#   - meta retention_horizon_ns is now - 1d (within a few minutes);
#   - nothing was lost: every entry ct_loadgen made is a row, and there is no kernel_overrun or
#     queue_overflow gap;
#   - `ctaudit who` at a time of the expired flows exits 1 and says the time is out of range;
#     `ctaudit who` for the long flow an hour and a half before its end finds it, without warning;
#   - SIGTERM: exit 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init retention --daemon --query --loadgen
: "${FLOW_DB_FILL:=${CT_LOADGEN%/*}/flow_db_fill}"
[[ -x $FLOW_DB_FILL ]] || cta_skip_or_fail "flow_db_fill is not built ($FLOW_DB_FILL)"
cta_load_ns_up

# Enough old flows that expiring them outlasts the daemon's first flush (1 s), so that a sample can
# see both at once: with schema version 4 an expiry deletes index entries that lie together (the
# rows' buckets) and 300,000 flows went in about a second, sometimes before the first new row.
OLD=${CTA_RETENTION_OLD_FLOWS:-1000000}
RATE=5000
CTA_DB=$CTA_TMP/flows.db
now=$(date +%s)
day=86400
cta_log "writing $OLD flows that started 3 to 2 days ago, and one that lasted from 3 days ago to 1 hour ago"
"$FLOW_DB_FILL" --db "$CTA_DB" --flows "$OLD" --first "@$((now - 3 * day))" --last "@$((now - 2 * day))" \
  >"$CTA_TMP/fill.txt" || cta_die "flow_db_fill failed"
cta_log "  $(cat "$CTA_TMP/fill.txt")"
"$FLOW_DB_FILL" --db "$CTA_DB" --flows 1 --first "@$((now - 3 * day))" --last "@$((now - 3 * day))" \
  --duration 71h >/dev/null || cta_die "flow_db_fill failed"
long_id=$(cta_sql "SELECT max(id) FROM flows")

cta_daemon_start --retention 1d
horizon_ns=$(((now - day) * 1000000000))
old_left() { cta_sql "SELECT count(*) FROM flows WHERE id < $long_id"; }
new_rows() { cta_sql "SELECT count(*) FROM flows WHERE id > $long_id"; }

summary=$CTA_TMP/loadgen.txt
cta_loadgen_bg "$summary" --rate "$RATE" --duration 20s --live 1000 --batch 32 --timeout 120
samples=$CTA_TMP/samples.txt
: >"$samples"
while ! cta_pid_exited "$CTA_LOADGEN_PID"; do
  printf '%s %s\n' "$(old_left)" "$(new_rows)" >>"$samples"
  sleep 0.5
done
wait "$CTA_LOADGEN_PID"
loadgen_rc=$?
cta_log "samples (old flows left, new rows) while the load ran: $(tr '\n' ',' <"$samples")"
created=$(cta_kv "$summary" created)
loadgen_ok() {
  ((loadgen_rc == 0)) && [[ -n $created ]] && ((created > 0)) && [[ $(cta_kv "$summary" create_errors) == 0 ]] && return 0
  cta_err "ct_loadgen: rc=$loadgen_rc created=${created:-?} create_errors=$(cta_kv "$summary" create_errors)"
  return 1
}
cta_expect "ct_loadgen made $created NAT'd entries at ${RATE}/s" loadgen_ok

overlapped() {
  awk -v old="$OLD" '$1 > 0 && $1 < old && $2 > 0 { seen = 1 } END { exit !seen }' "$samples" && return 0
  cta_err "no sample taken during the load saw the expiry under way (0 < old flows left < $OLD) while new rows were written"
  return 1
}
cta_expect "the old flows were being expired while new flows were written" overlapped

caught_up() { grep -q 'retention: caught up' "$CTA_DAEMON_LOG"; }
cta_expect "the daemon logged that retention caught up" cta_eventually 120 "retention: caught up" caught_up
cta_log "$(grep -o 'retention: caught up.*' "$CTA_DAEMON_LOG" | head -1)"
no_old() {
  local n
  n=$(old_left)
  ((n == 0)) && return 0
  cta_err "$n of the $OLD old flows are still there"
  return 1
}
cta_expect "every flow that ended before the horizon is gone" cta_eventually 60 "old flows deleted" no_old
long_kept() { [[ $(cta_sql "SELECT count(*) FROM flows WHERE id = $long_id") == 1 ]]; }
cta_expect "the flow that started 3 days ago and ended an hour ago is kept" long_kept
horizon_recorded() {
  local stored
  stored=$(cta_sql "SELECT value FROM meta WHERE key = 'retention_horizon_ns'")
  [[ -n $stored ]] && ((stored >= horizon_ns && stored <= horizon_ns + 600 * 1000000000)) && return 0
  cta_err "meta retention_horizon_ns is '${stored}', want about $horizon_ns (now - 1d)"
  return 1
}
cta_expect "meta retention_horizon_ns is now - 1 day" horizon_recorded

cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop 60
cta_log "$(grep -o 'stopped:.*' "$CTA_DAEMON_LOG")"
all_written() {
  local rows
  rows=$(new_rows)
  ((rows == created)) && return 0
  cta_err "$rows new rows for $created entries made by ct_loadgen"
  return 1
}
cta_expect "every entry ct_loadgen made is a row (nothing lost during the expiry)" all_written
cta_expect "no gap of lost records" cta_no_loss_gaps

who_out_of_range() {
  local err rc
  err=$("$CTAUDIT" who 203.0.113.1:1025 --at "@$((now - 2 * day - 3600))" --db "$CTA_DB" 2>&1 >/dev/null)
  rc=$?
  ((rc == 1)) && [[ $err == *"is out of range: flows that ended before"*"were expired by the retention of 1 day"* ]] &&
    return 0
  cta_err "ctaudit who at an expired time: exit $rc, stderr: $err"
  return 1
}
cta_expect "ctaudit who at an expired time exits 1 and says it is out of range" who_out_of_range
who_long_flow() {
  local out err rc
  out=$("$CTAUDIT" who 203.0.113.1:1024 --at "@$((now - 5400))" --db "$CTA_DB" --format json 2>"$CTA_TMP/who.err")
  rc=$?
  err=$(cat "$CTA_TMP/who.err")
  ((rc == 0)) && [[ -z $err ]] && [[ $(jq -r 'select(.event.kind == "event") | .source.ip' <<<"$out") == 100.64.0.1 ]] &&
    return 0
  cta_err "ctaudit who for the long flow: exit $rc, stdout: $out, stderr: $err"
  return 1
}
cta_expect "ctaudit who finds the flow that began before the horizon, without warning" who_long_flow
cta_expect "the database passes PRAGMA integrity_check" cta_integrity_ok
cta_finish
