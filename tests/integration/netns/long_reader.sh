#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# long_reader (issue #3): an analyst's query that holds a read transaction open for a long time
# (a sqlite3 shell left at BEGIN) does not stop or slow the daemon enough to lose anything.
#
# One namespace; the daemon runs; a sqlite3 shell opens the database, BEGINs and reads (taking a
# WAL snapshot), and stays open for 8 s while ct_loadgen makes and deletes 10000 flows (20000
# events) at 5000 requests/s. In WAL mode the writer appends behind the reader's snapshot and
# cannot checkpoint past it. Checks:
#   - the reader's snapshot really was held: the same count at the start and the end of the hold;
#   - meanwhile the daemon kept writing: another reader sees the rows grow during the hold;
#   - after the hold, every flow ct_loadgen made is in the database, closed, and in the JSON-lines
#     file with one new and one destroy line; the kernel dropped nothing (no ENOBUFS);
#   - SIGTERM: exit 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init long_reader --daemon --query --loadgen
cta_load_ns_up
COUNT=10000
cta_daemon_start

# The long reader: a sqlite3 shell on a pipe. Answers go to a file; each query is followed by a
# marker line so the test knows when the answer is complete.
reader_out=$CTA_TMP/reader.out
reader_in=$CTA_TMP/reader.in
mkfifo "$reader_in"
sqlite3 -cmd '.timeout 5000' "$CTA_DB" <"$reader_in" >"$reader_out" 2>&1 &
reader_pid=$!
CTA_PIDS+=("$reader_pid")
exec {reader_fd}>"$reader_in"
reader_ask() { # SQL MARKER: prints the answer lines before MARKER
  printf '%s\nSELECT %s;\n' "$1" "'$2'" >&"$reader_fd"
  wait_for 10 "the long reader's answer" grep -qx "$2" "$reader_out" || return 1
  sed -n "/^$2\$/q;p" "$reader_out" | tail -n 1
}
before=$(reader_ask "BEGIN; SELECT count(*) FROM flows;" m1)
cta_log "long reader: BEGIN, sees $before rows; holding its snapshot"

rows_now() { cta_sql "SELECT count(*) FROM flows"; }
load=$CTA_TMP/loadgen.txt
cta_loadgen_bg "$load" --count "$COUNT" --rate 5000 --live 1000 --batch 16
samples=()
for ((i = 0; i < 8; i++)); do
  sleep 1
  samples+=("$(rows_now)")
done
wal_during=$(stat -c %s "$CTA_DB-wal" 2>/dev/null || echo 0)
during=$(reader_ask "SELECT count(*) FROM flows;" m2)
cta_log "rows seen by a fresh reader, once a second: ${samples[*]}; WAL $wal_during bytes"
snapshot_held() {
  [[ $before == "$during" ]] && return 0
  cta_err "the long reader saw $before rows at BEGIN and $during later: its snapshot was not held"
  return 1
}
cta_expect "the long reader held one snapshot for the whole load" snapshot_held
kept_writing() {
  local first=${samples[0]} last=${samples[-1]}
  ((last > first && last > before)) && return 0
  cta_err "rows did not grow during the hold: ${samples[*]} (reader saw $before)"
  return 1
}
cta_expect "the daemon kept writing while the reader held its snapshot" kept_writing
reader_ask "COMMIT;" m3 >/dev/null
exec {reader_fd}>&-
wait "$reader_pid"

wait "$CTA_LOADGEN_PID"
cta_log "ct_loadgen: $(tr '\n' ' ' <"$load")"
[[ $(cta_kv "$load" created) == "$COUNT" && $(cta_kv "$load" deleted) == "$COUNT" ]] ||
  cta_die "ct_loadgen did not make and delete $COUNT flows"

# Closed rows whose original source address is in 100.64.0.0/10: orig_src is an endpoint (schema
# v3 on), so the biased IPv4 address is orig_src >> 16, spelled as the flows_orig_src index's
# expression (storage/flow_row.hpp, kOrigSrcKeySql).
all_rows() {
  local n
  n=$(cta_sql "SELECT count(*) FROM flows WHERE dur_ms IS NOT NULL
    AND (CASE WHEN orig_src < '' THEN orig_src >> 16 ELSE orig_src END)
        BETWEEN 0x64400000 - 2147483648 AND 0x647FFFFF - 2147483648")
  ((n == COUNT)) && return 0
  cta_err "$n closed flows in the database, want $COUNT"
  return 1
}
cta_expect "every one of the $COUNT flows is in the database, closed" cta_eventually 10 "$COUNT closed flows" all_rows
all_lines() {
  local counts
  counts=$(cta_jsonl_lines "$CTA_JSONL" complete |
    cta_jq -r 'f("event.action")' | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')
  [[ $counts == *"destroy=$COUNT "* && $counts == *"new=$COUNT "* ]] && return 0
  cta_err "JSON lines by action: $counts; want new=$COUNT destroy=$COUNT"
  return 1
}
cta_expect "the JSON-lines file has one new and one destroy line for each" cta_eventually 10 "the JSON lines" all_lines
no_overrun() {
  ! grep -q 'ENOBUFS' "$CTA_DAEMON_LOG" && return 0
  cta_err "the daemon logged ENOBUFS: the load itself lost events, so this test proves nothing about the reader"
  return 1
}
cta_expect "the kernel dropped no event (no ENOBUFS)" no_overrun
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
cta_finish
