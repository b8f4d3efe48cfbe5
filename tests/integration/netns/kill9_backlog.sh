#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# kill9_backlog: a daemon killed while it works through a backlog leaves the records it had not
# written inside the daemon_down gap that the next start records, so that `ctaudit` warns about
# them instead of answering "nobody" for their time.
#
# The heartbeat that the gap starts from used to be the pipeline's clock at each flush, while the
# records still queued behind it were older: a kill then lost them outside any gap.
#
# One namespace; ct_loadgen runs a steady load (short flows). The daemon is stopped (SIGSTOP) for
# 2 s, so that the kernel queues a backlog in its socket; 50 ms after SIGCONT, while it works
# through that backlog (and has made the flush that was due meanwhile), it is killed (SIGKILL) and
# started again. Checks, with G the start of the daemon_down gap the restart recorded:
#   - G is after the last flow written before the stop began (the gap is not the whole run);
#   - the flows that began in the second before the stop up to G are in the database at the rate
#     at which they were stored in the second before that: every event before G was written, so
#     none of those the kill lost began before G.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init kill9_backlog --daemon --query --loadgen
cta_load_ns_up

CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-0.log
cta_daemon_start
load=$CTA_TMP/loadgen.txt
# 4000 events/s: 2000 flows a second, each alive 0.1 s. Bounded: it stops by itself after 30 s.
cta_loadgen_bg "$load" --rate 4000 --live 200 --duration 30s --batch 16
sleep 4

now_ms() { echo $(($(date +%s%N) / 1000000)); }
stop_ms=$(now_ms)
kill -STOP "$CTA_DAEMON_PID" || cta_die "cannot SIGSTOP the daemon"
sleep 2
kill -CONT "$CTA_DAEMON_PID"
sleep 0.05
cta_daemon_kill9
cta_log "SIGSTOP at $stop_ms ms, 2 s; SIGKILL 50 ms after SIGCONT"

CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-1.log
cta_daemon_start
sleep 1
kill -INT "$CTA_LOADGEN_PID" 2>/dev/null
wait "$CTA_LOADGEN_PID"
cta_log "ct_loadgen: $(tr '\n' ' ' <"$load")"
cta_expect "SIGTERM: the restarted daemon exits 0" cta_daemon_stop 30

gap_ms=$(cta_sql "SELECT min(start_ns) / 1000000 FROM gaps WHERE reason = 'daemon_down'")
cta_log "daemon_down gap from $gap_ms ms (stop at $stop_ms ms, $((gap_ms - stop_ms)) ms after it)"
rows() { cta_sql "SELECT count(*) FROM flows WHERE start_ms >= $1 AND start_ms < $2"; }

gap_after_the_stored_rows() {
  [[ -n $gap_ms ]] || { cta_err "no daemon_down gap in $CTA_DB"; return 1; }
  local before
  before=$(rows $((stop_ms - 2000)) "$stop_ms")
  ((gap_ms > stop_ms - 2000 && before > 0)) && return 0
  cta_err "the gap starts at $gap_ms ms, $((stop_ms - gap_ms)) ms before the stop; $before rows in the 2 s before it"
  return 1
}
cta_expect "the daemon_down gap does not swallow the flows written before the stop" gap_after_the_stored_rows

written_up_to_the_gap() {
  local reference window expected span=$((gap_ms - (stop_ms - 1000)))
  reference=$(rows $((stop_ms - 2000)) $((stop_ms - 1000)))
  ((span > 0)) || return 0 # the gap starts before the window: it covers all of it
  window=$(rows $((stop_ms - 1000)) "$gap_ms")
  expected=$((reference * span / 1000))
  cta_log "flows that began in the $span ms before the gap: $window stored, $expected expected at the rate of the second before ($reference)"
  ((window * 100 >= expected * 90)) && return 0
  cta_err "only $window of about $expected flows that began before the gap are stored: the kill lost flows outside the gap"
  return 1
}
cta_expect "every flow that began before the gap is stored (the kill lost none outside it)" written_up_to_the_gap
cta_finish
