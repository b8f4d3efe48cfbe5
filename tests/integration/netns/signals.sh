#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# signals: SIGHUP reopens the JSON-lines file without losing or repeating a line (logrotate's
# move-and-HUP), and SIGTERM right after a burst writes everything pending and exits 0.
#
# Part 1, rotation: N flows, wait until their `new` lines are written, `mv flows.jsonl
# flows.jsonl.1`, SIGHUP; M more flows, then at once (lines may still be pending in the daemon)
# `mv flows.jsonl flows.jsonl.2`, SIGHUP; `conntrack -F` for the DESTROYs. Checks:
#   - after each SIGHUP the daemon recreates flows.jsonl;
#   - across the three files: N+M `new` and N+M `destroy` TCP lines, each (conntrack.id,
#     event.action) once, every line valid JSON;
#   - flows.jsonl.1 holds exactly the N first `new` lines (nothing was written to the moved file
#     after the reopen) and the current flows.jsonl holds every `destroy` line;
#   - SIGTERM exits 0.
# Part 2, SIGTERM after a burst: a fresh daemon with a 60 s flush interval (so only the shutdown
# path can make the records durable), K flows, SIGTERM at once. Checks: exit 0, K TCP flows in the
# database (`ctaudit flows`), K `new` lines in the JSON-lines file.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init signals --daemon --query
cta_topology_up
cta_start_servers

N=6 M=5 K=40

# flow_specs FIRST_PORT COUNT: TCP flows from both inside hosts, one spec a line.
flow_specs() {
  local i src
  for ((i = 0; i < $2; i++)); do
    src=$CTA_CL4
    ((i % 2)) && src=$CTA_CL4B
    printf 'tcp %s %d %s %d\n' "$src" $(($1 + i)) "$CTA_SRV4" "$CTA_TCP_PORT"
  done
}
# run_flows FIRST_PORT COUNT: in parallel batches of 10.
run_flows() {
  local -a specs
  mapfile -t specs < <(flow_specs "$1" "$2")
  local i
  for ((i = 0; i < ${#specs[@]}; i += 10)); do
    cta_flows_parallel "${specs[@]:i:10}" || return 1
  done
}

# jsonl_tcp_lines FILE...: the TCP lines of the files (missing files count as empty).
jsonl_tcp_lines() {
  local file
  for file in "$@"; do
    [[ -e $file ]] && cta_jq 'select(f("network.transport") == "tcp")' <"$file"
  done
}
count_action() { # ACTION FILE...
  local action=$1
  shift
  jsonl_tcp_lines "$@" | cta_jq --arg a "$action" 'select(f("event.action") == $a)' | wc -l
}

# ---------------------------------------------------------------------------------------------
cta_log "part 1: rotation with SIGHUP"
cta_daemon_start
J=$CTA_JSONL

cta_expect "$N TCP flows before the first rotation" run_flows 23000 "$N"
has_n_new() { (($(count_action new "$J") >= N)); }
wait_for 10 "$N new lines in $J" has_n_new || cta_fail_check "the first $N new lines reach $J" "found $(count_action new "$J")"

mv "$J" "$J.1" || cta_die "mv $J $J.1 failed"
cta_daemon_signal HUP
cta_expect "SIGHUP: ctauditd recreates flows.jsonl" wait_for 5 "$J to be recreated" test -e "$J"

cta_expect "$M TCP flows after the first rotation" run_flows 23100 "$M"
# Second rotation straight after the traffic: whatever the daemon still holds must land in one
# of the files, once.
# SIGUSR1 this time, as log rotation recipes written for nginx send: it used to kill the daemon.
mv "$J" "$J.2" || cta_die "mv $J $J.2 failed"
cta_daemon_signal USR1
cta_expect "SIGUSR1: ctauditd recreates flows.jsonl too" wait_for 5 "$J to be recreated" test -e "$J"

cta_log "conntrack -F in the gateway"
cta_in "$CTA_GW" conntrack -F 2>/dev/null || cta_die "conntrack -F in $CTA_GW failed"
all_destroys() { (($(count_action destroy "$J.1" "$J.2" "$J") >= N + M)); }
wait_for 10 "$((N + M)) destroy lines" all_destroys || true

cta_expect "SIGTERM after the rotations: ctauditd exits 0" cta_daemon_stop

valid_json() {
  local file
  for file in "$J.1" "$J.2" "$J"; do
    [[ -e $file ]] || continue
    jq -e . "$file" >/dev/null 2>&1 || { cta_err "$file has a line that is not JSON"; return 1; }
  done
}
cta_expect "every line of the three files is JSON" valid_json

expect_count() { # WANT ACTION FILE...
  local want=$1 got
  got=$(count_action "${@:2}")
  ((got == want)) && return 0
  cta_err "$2 lines in ${*:3}: $got, want $want"
  return 1
}
cta_expect "$((N + M)) TCP new lines across the three files" expect_count $((N + M)) new "$J.1" "$J.2" "$J"
cta_expect "$((N + M)) TCP destroy lines across the three files" expect_count $((N + M)) destroy "$J.1" "$J.2" "$J"

no_duplicates() {
  local dups
  dups=$(jsonl_tcp_lines "$J.1" "$J.2" "$J" | cta_jq -r '"\(f("conntrack.id")) \(f("event.action"))"' | sort | uniq -d)
  [[ -z $dups ]] && return 0
  cta_err "lines written twice (conntrack.id event.action): $(tr '\n' ';' <<<"$dups")"
  return 1
}
cta_expect "no (conntrack.id, event.action) appears twice" no_duplicates
distinct_flows() {
  local n
  n=$(jsonl_tcp_lines "$J.1" "$J.2" "$J" | cta_jq -r '"\(f("source.ip")) \(f("source.port"))"' | sort -u | wc -l)
  ((n == N + M)) && return 0
  cta_err "$n distinct TCP flows in the files, want $((N + M))"
  return 1
}
cta_expect "the lines describe $((N + M)) distinct flows" distinct_flows
cta_expect "flows.jsonl.1 has exactly the first $N new lines" expect_count "$N" new "$J.1"
first_file_untouched() {
  local n
  n=$(jsonl_tcp_lines "$J.1" | wc -l)
  ((n == N)) && return 0
  cta_err "flows.jsonl.1 has $n TCP lines, want only the $N new lines written before the rotation"
  return 1
}
cta_expect "nothing was written to flows.jsonl.1 after the reopen" first_file_untouched
cta_expect "every destroy line is in the reopened flows.jsonl" expect_count $((N + M)) destroy "$J"

# ---------------------------------------------------------------------------------------------
cta_log "part 2: SIGTERM straight after a burst of $K flows"
cta_in "$CTA_GW" conntrack -F 2>/dev/null || cta_die "conntrack -F in $CTA_GW failed"
CTA_DB=$CTA_TMP/burst.db CTA_JSONL=$CTA_TMP/burst.jsonl CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-burst.log
cta_daemon_start --flush-interval 60s

cta_expect "$K TCP flows in a burst" run_flows 24000 "$K"
cta_expect "SIGTERM right after the burst: ctauditd exits 0" cta_daemon_stop

db_has_all() {
  local n
  n=$(cta_flows_json --proto tcp --src "$CTA_IN4_NET" | cta_jq -r '"\(f("source.ip")) \(f("source.port"))"' | sort -u | wc -l)
  ((n == K)) && return 0
  cta_err "ctaudit flows --proto tcp --src $CTA_IN4_NET: $n distinct flows, want $K"
  return 1
}
cta_expect "all $K flows are in the database after the stop" db_has_all
cta_expect "all $K new lines are in the JSON-lines file after the stop" expect_count "$K" new "$CTA_JSONL"

cta_finish
