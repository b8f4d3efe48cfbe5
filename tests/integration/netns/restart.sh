#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# restart (issue #3): what happens while the daemon is down is reconciled when it comes back, and
# the downtime itself is on the record.
#
# One namespace; ct_loadgen makes NAT'd entries that stay alive (--no-delete). Flows are told apart
# by their inside port (ct_loadgen's flow n uses port 10000 + n/1000 with --hosts 1000):
#   A: 200 flows (port 10000), made while the daemon runs;
#   then SIGTERM; while it is down:
#   B: 100 flows (port 10001) made and left alive;
#   A-: 50 of the A flows deleted (conntrack -D);
#   C: 100 flows (port 10002) made and deleted again, never seen by any daemon;
#   then the daemon is started again. Checks:
#   - the first run recorded all 200 A flows, and exited 0 on SIGTERM;
#   - every B flow is in the database, open, observed_at_start true, with the kernel's conntrack
#     id and translation;
#   - every A- flow has one row, closed, with conntrack.time_source.end "bound" and an end no
#     earlier than the stop and no later than the restart;
#   - the 150 A flows still alive are open, each in one row;
#   - the open flows in the database are exactly the kernel's entries;
#   - the downtime is a gap: a gaps row with reason daemon_down covering it, a pipeline_error
#     JSON line that says daemon_down, and two rows in the runs table;
#   - no flow has two rows; the second run exits 0 on SIGTERM.
# The bound end times, the gaps and the runs table are issue #3 work; until the daemon and the
# storage have them those checks fail and say so.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init restart --daemon --query --loadgen
cta_load_ns_up

ns_now() { date +%s%N; }

# flows_with_port PORT: the kernel's source-translated entries whose inside port is PORT, in the
# cta_truth_key_nat columns (transport inside_ip inside_port ct_id nat_ip nat_port).
flows_with_port() { cta_truth_key_nat "$CTA_GW" | awk -v p="$1" '$3 == p'; }

# db_rows_for_port PORT: every stored flow from inside port PORT, one JSON object a line.
db_rows_for_port() {
  "$CTAUDIT" flows --db "$CTA_DB" --src "$CTA_IN4_NET" --format json --limit 0 2>/dev/null |
    cta_jq --argjson p "$1" 'select(inside_port == $p)'
}
count_port_rows() { db_rows_for_port "$1" | wc -l; }

# ---------------------------------------------------------------------------------------------
cta_log "run 1: the daemon records the A flows"
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-1.log
cta_daemon_start
cta_loadgen "$CTA_TMP/a.txt" --count 200 --first-index 0 --no-delete --rate 5000 ||
  cta_die "ct_loadgen could not make the A flows"
has_all_a() {
  local n
  n=$(count_port_rows 10000)
  ((n == 200)) && return 0
  cta_err "the database has $n A flows, want 200"
  return 1
}
cta_expect "run 1 recorded the 200 A flows" cta_eventually 10 "200 A flows in the database" has_all_a
T_stop=$(ns_now)
cta_expect "SIGTERM: run 1 exits 0" cta_daemon_stop
T_down=$(ns_now)

# ---------------------------------------------------------------------------------------------
cta_log "the daemon is down: B flows made, 50 A flows deleted, C flows made and deleted"
cta_loadgen "$CTA_TMP/b.txt" --count 100 --first-index 1000 --no-delete --rate 5000 ||
  cta_die "ct_loadgen could not make the B flows"
a_minus=$CTA_TMP/a-minus.txt
flows_with_port 10000 | sort -t' ' -k2,2V | head -n 50 >"$a_minus"
deleted=0
while read -r transport ip port _; do
  cta_in "$CTA_GW" conntrack -D -p "$transport" --orig-src "$ip" --orig-port-src "$port" >/dev/null 2>&1 &&
    deleted=$((deleted + 1))
done <"$a_minus"
((deleted == 50)) || cta_die "conntrack -D removed $deleted of the 50 A- flows"
cta_loadgen "$CTA_TMP/c.txt" --count 100 --first-index 2000 --rate 5000 ||
  cta_die "ct_loadgen could not make and delete the C flows"
T_up=$(ns_now)

# ---------------------------------------------------------------------------------------------
cta_log "run 2: the daemon starts again"
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-2.log
cta_daemon_start
T_ready=$(ns_now)
truth=$CTA_TMP/truth.txt
cta_truth_key_nat "$CTA_GW" >"$truth"
cta_log "the kernel holds $(wc -l <"$truth") entries (want 250: 150 A, 100 B)"

b_found() {
  local rows problems
  rows=$(db_rows_for_port 10001)
  problems=$(join -v1 <(awk '$3 == 10001 { print $1"/"$2"/"$4"/"$5"/"$6 }' "$truth" | sort) \
    <(cta_jq -r 'select(f("event.end") == null and f("conntrack.observed_at_start") == true)
        | "\(f("network.transport"))/\(f("source.ip"))/\(f("conntrack.id"))/\(f("source.nat.ip"))/\(f("source.nat.port"))"' \
      <<<"$rows" | sort) | wc -l)
  ((problems == 0 && $(wc -l <<<"$rows") == 100)) && return 0
  cta_err "B flows: $(wc -l <<<"$rows") row(s), want 100; $problems of the kernel's B entries have no open row with" \
    "observed_at_start true and the same id and translation"
  return 1
}
cta_expect "the 100 flows opened while down are found: open, observed_at_start, kernel id and translation" \
  cta_eventually 10 "the B flows in the database" b_found

a_minus_closed() {
  local rows problems
  rows=$(db_rows_for_port 10000)
  problems=$(while read -r transport ip port id _; do
    cta_jq -r --arg t "$transport" --arg ip "$ip" --arg id "$id" '
      select(f("network.transport") == $t and f("source.ip") == $ip and (f("conntrack.id") | tostring) == $id)' <<<"$rows" |
      jq -s -r --arg who "$transport $ip:$port" --argjson lo "$T_stop" --argjson hi "$T_ready" '
        def ns: sub("Z$"; "") | capture("^(?<s>[^.]+)(\\.(?<f>[0-9]+))?$")
          | ((.s + "Z") | fromdateiso8601) * 1000000000 + (((.f // "0") + "000000000")[0:9] | tonumber);
        if length != 1 then "\($who): \(length) rows, want 1"
        elif .[0].event.end == null then "\($who): not closed"
        elif .[0].conntrack.time_source.end != "bound" then "\($who): time_source.end is \(.[0].conntrack.time_source.end), want bound"
        elif (.[0].event.end | ns) < $lo or (.[0].event.end | ns) > $hi + 1000000000 then
          "\($who): end \(.[0].event.end) is outside [stop, restart]"
        else empty end'
  done <"$a_minus")
  [[ -z $problems ]] && return 0
  cta_err "$(wc -l <<<"$problems") of the 50 flows deleted while down: $(head -n 3 <<<"$problems" | tr '\n' ';')"
  return 1
}
cta_expect "the 50 flows that ended while down are closed, end time a bound between stop and restart" \
  cta_eventually 10 "the A- flows closed" a_minus_closed

a_rest_open() {
  local open
  open=$(db_rows_for_port 10000 | cta_jq -r 'select(f("event.end") == null) | "\(f("network.transport"))/\(f("source.ip"))"' | sort)
  local want
  want=$(awk '$3 == 10000 { print $1"/"$2 }' "$truth" | sort)
  [[ $open == "$want" && $(wc -l <<<"$want") == 150 ]] && return 0
  cta_err "open A flows in the database: $(wc -l <<<"$open"), the kernel's: $(wc -l <<<"$want") (want 150, the same)"
  return 1
}
cta_expect "the 150 A flows still alive are open in the database" cta_eventually 10 "the open A flows" a_rest_open

db=$CTA_TMP/db-open.txt
open_matches_kernel() {
  cta_db_open_key_nat >"$db" || true
  cmp -s "$truth" "$db" && return 0
  cta_err "open flows in the database ($(wc -l <"$db")) differ from the kernel's entries ($(wc -l <"$truth")):" \
    "$(diff "$truth" "$db" | grep -c '^[<>]') line(s) differ"
  return 1
}
cta_expect "the open flows in the database are exactly the kernel's entries" \
  cta_eventually 10 "the open flows to match the kernel" open_matches_kernel

# ---------------------------------------------------------------------------------------------
downtime_gap() {
  cta_has_table gaps || { cta_err "$CTA_DB has no gaps table (issue #3 storage work)"; return 1; }
  local n
  n=$(cta_sql "SELECT count(*) FROM gaps WHERE reason = 'daemon_down' AND start_ns <= $T_down AND end_ns >= $T_up")
  ((n >= 1)) && return 0
  cta_err "no daemon_down gap covers [$T_down, $T_up]; gaps: $(cta_sql 'SELECT reason, start_ns, end_ns FROM gaps' | tr '\n' ';')"
  return 1
}
cta_expect "the downtime is a gaps row (daemon_down) that covers it" cta_eventually 10 "a daemon_down gap" downtime_gap
json_downtime() { [[ -n $(cta_pipeline_errors "$CTA_JSONL" daemon_down) ]]; }
cta_expect "a pipeline_error JSON line says daemon_down" cta_eventually 10 "a daemon_down pipeline_error line" json_downtime
two_runs() {
  cta_has_table runs || { cta_err "$CTA_DB has no runs table (issue #3 daemon work)"; return 1; }
  local n
  n=$(cta_sql "SELECT count(*) FROM runs")
  ((n == 2)) && return 0
  cta_err "runs has $n rows, want 2"
  return 1
}
cta_expect "the runs table has both runs" two_runs

no_duplicates() {
  local dups
  # A query that fails prints nothing: that must not read as "no duplicates".
  dups=$(cta_db_duplicates) || { cta_err "cannot look for duplicate rows in $CTA_DB"; return 1; }
  [[ -z $dups ]] && return 0
  cta_err "flows with more than one row (ct_id|zone|proto|src|sport|dst|dport|rows): $(head -n 3 <<<"$dups" | tr '\n' ';')"
  return 1
}
cta_expect "no flow has two rows" no_duplicates
cta_expect "SIGTERM: run 2 exits 0" cta_daemon_stop
cta_finish
