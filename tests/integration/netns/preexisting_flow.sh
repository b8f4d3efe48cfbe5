#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# preexisting_flow: a connection that was open before ctauditd started is recorded from the
# start-up dump, with the kernel's start time, and `ctaudit who` finds it.
#
# The extension sysctls are set in the gateway first, so the kernel attaches the accounting and
# timestamp extensions when the conntrack is created (they are not added to existing entries,
# FIELD-NOTES 3) and the start time comes from the kernel, not from the daemon. Checks:
#   - the held connection is in the gateway's table, translated, with a kernel start timestamp;
#   - after the daemon starts, `who NAT:PORT --at now` finds exactly it, observed_at_start true,
#     with the kernel's conntrack id;
#   - `who --at <time the connection opened> --slack 0s` finds it too: event.start is the kernel's
#     start, from before the daemon ran, not the time of the dump;
#   - the JSON-lines file has a `dump` line for it; a flow opened after the start is not marked
#     observed_at_start;
#   - after `conntrack -F` the record has event.end and counters both ways, and is still marked
#     observed_at_start; SIGTERM exits 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init preexisting_flow --daemon --query
cta_topology_up
cta_start_servers

cta_log "turning on nf_conntrack_{acct,timestamp,events} in the gateway before the connection opens"
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1 \
  net.netfilter.nf_conntrack_events=1 >/dev/null || cta_die "setting the conntrack sysctls in $CTA_GW failed"

# The held connection: the client sends one line and keeps its side open (the sleep holds the pipe;
# it is bounded so nothing outlives a killed test for long, and cleanup kills it at once).
hold_port=22001
hold_out=$CTA_TMP/hold.out
cta_log "opening a long-lived TCP connection $CTA_CL4:$hold_port -> $CTA_SRV4:$CTA_TCP_PORT"
cta_bg "$CTA_CL" "$hold_out" bash -c \
  "{ printf 'hold-$hold_port\n'; exec sleep 300; } | exec socat - TCP:$CTA_SRV4:$CTA_TCP_PORT,bind=$CTA_CL4:$hold_port"
wait_for 5 "the echo on the held connection" grep -qx "hold-$hold_port" "$hold_out" ||
  cta_die "the held connection did not get its echo: $(cat "$hold_out")"
T_open=$(cta_now)

line=$(cta_ct_truth "$CTA_GW" -p tcp --orig-src "$CTA_CL4" --orig-port-src "$hold_port")
read -ra truth <<<"$line"
nat_ip=${truth[8]:-} nat_port=${truth[9]:-} ct_id=${truth[10]:-}
cta_log "kernel: $line"
held_translated() {
  [[ ${truth[1]:-} == tcp && $nat_ip == "$CTA_GW4_OUT" ]] &&
    ((nat_port >= CTA_SNAT4_MIN && nat_port <= CTA_SNAT4_MAX)) && return 0
  cta_err "want one tcp entry from $CTA_CL4:$hold_port translated into $CTA_GW4_OUT:$CTA_SNAT4_MIN-$CTA_SNAT4_MAX, got '$line'"
  return 1
}
cta_expect "the held connection is in the gateway's table, translated into the SNAT range" held_translated || cta_finish
held_stamped() {
  cta_in "$CTA_GW" conntrack -L -o ktimestamp -p tcp --orig-src "$CTA_CL4" --orig-port-src "$hold_port" 2>/dev/null |
    grep -q 'start='
}
cta_expect "the kernel stamped its start time (timestamp extension attached at creation)" held_stamped

cta_daemon_start
T_now=$(cta_now)

# The dump is recorded before "ready"; give the writer its flush interval.
who_now() {
  "$CTAUDIT" who "$(cta_sockaddr "$nat_ip" "$nat_port")" --at "@$T_now" --proto tcp --db "$CTA_DB" --format json
}
wait_for 5 "who finds the held connection" who_now >/dev/null 2>&1 || true

check_found_at() { # AT_SECONDS [more who options...]
  local at=$1
  shift
  cta_capture "$CTAUDIT" who "$(cta_sockaddr "$nat_ip" "$nat_port")" --at "@$at" --proto tcp "$@" \
    --db "$CTA_DB" --format json
  if ((CTA_RC != 0)); then
    cta_err "ctaudit who $nat_ip:$nat_port --at @$at $*: exit $CTA_RC (want 0): $CTA_ERRTXT"
    return 1
  fi
  local problems
  # flows_only: a time before the daemon ran also gets a daemon_down pipeline_error line.
  problems=$(cta_jq -rs --arg s "$CTA_CL4" --arg p "$hold_port" --arg id "$ct_id" '
    map(flows_only) | if length != 1 then "want 1 record, got \(length)" else .[0] |
    [ (if f("source.ip") != $s or (f("source.port") | tostring) != $p
       then "source \(f("source.ip")):\(f("source.port")) is not \($s):\($p)" else empty end),
      (if f("conntrack.observed_at_start") != true then "conntrack.observed_at_start is not true" else empty end),
      (if (f("conntrack.id") | tostring) != $id then "conntrack.id \(f("conntrack.id")) is not \($id)" else empty end)
    ] | join("; ") end' <<<"$CTA_OUT")
  [[ -z $problems ]] && return 0
  cta_err "ctaudit who $nat_ip:$nat_port --at @$at $*: $problems"
  return 1
}
cta_expect "who $nat_ip:$nat_port --at now names $CTA_CL4:$hold_port, observed_at_start true" check_found_at "$T_now"
cta_expect "who --at <when it opened, before the daemon ran> --slack 0s finds it (kernel start time)" \
  check_found_at "$T_open" --slack 0s

jsonl_has_dump() {
  [[ -n $(cta_jq --arg id "$ct_id" \
    'select(f("event.action") == "dump" and (f("conntrack.id") | tostring) == $id and f("conntrack.observed_at_start") == true)' \
    <"$CTA_JSONL" 2>/dev/null) ]]
}
cta_expect "the JSON-lines file has a dump line for it with observed_at_start true" \
  wait_for 5 "a dump line in $CTA_JSONL" jsonl_has_dump

# A flow opened after the start is new, not observed at start.
cta_expect "a TCP flow opened after the start gets its echo" cta_tcp_flow "$CTA_CL4" 22002 "$CTA_SRV4" "$CTA_TCP_PORT"
new_flow_record() {
  cta_flows_json --proto tcp 2>/dev/null |
    cta_jq --arg s "$CTA_CL4" 'select(f("source.ip") == $s and f("source.port") == 22002)'
}
new_flow_stored() { [[ -n $(new_flow_record) ]]; }
wait_for 5 "the flow from port 22002 in the database" new_flow_stored || true
new_flow_not_marked() {
  local rec
  rec=$(new_flow_record)
  [[ -n $rec && $(cta_jq -r 'f("conntrack.observed_at_start") == true' <<<"$rec") == false ]] && return 0
  cta_err "want one record for $CTA_CL4:22002 without observed_at_start, got: '$rec'"
  return 1
}
cta_expect "the flow opened after the start is not marked observed_at_start" new_flow_not_marked

# End it: the DESTROY carries counters (acct was on when it was created) and the stop time.
cta_log "conntrack -F in the gateway"
cta_in "$CTA_GW" conntrack -F 2>/dev/null || cta_die "conntrack -F in $CTA_GW failed"
held_record() {
  cta_flows_json --proto tcp 2>/dev/null |
    cta_jq --arg id "$ct_id" 'select((f("conntrack.id") | tostring) == $id)'
}
held_ended() { [[ $(held_record | cta_jq -r 'f("event.end") != null') == true ]]; }
wait_for 10 "the held connection's record has event.end" held_ended || true
check_closed() {
  local rec problems
  rec=$(held_record)
  problems=$(cta_jq -r '
    [ (if f("event.end") == null then "no event.end" else empty end),
      (if (f("source.bytes") // 0) <= 0 then "source.bytes not > 0" else empty end),
      (if (f("destination.bytes") // 0) <= 0 then "destination.bytes not > 0" else empty end),
      (if f("conntrack.observed_at_start") != true then "observed_at_start lost" else empty end)
    ] | join("; ")' <<<"$rec")
  [[ -n $rec && -z $problems ]] && return 0
  cta_err "held connection record after the flush: ${problems:-none found} ($rec)"
  return 1
}
cta_expect "after the flush: event.end, counters both ways, still observed_at_start" check_closed

cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
cta_finish
