#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# sweep: a NAT'd flow made while the gateway's nf_conntrack_events was 0, or 2 with no listener, has
# no event extension, so the kernel says nothing when it ends (FIELD-NOTES 4). It used to stay open
# in the log until the next restart, and `who` matched its translated port at any later time.
# Checks, against the kernel:
#   - a UDP flow opened before the daemon is in the start-up dump, open, first seen at start;
#   - deleted from the gateway's table it sends no DESTROY, yet within a few --sweep-interval it
#     is closed in the log with a bound end, no earlier than its deletion;
#   - a flow opened after the start (it has the extension) ends through its DESTROY, not a bound;
#   - once no flow from the start-up dump is open, the sweeps stop; no gap is recorded for them;
#   - a flow made before the sysctls were set, with nf_conntrack_events set to 1 just before the
#     start (as the package's postinst does), is found by its missing start time and swept too;
#   - a flow an earlier run first saw in its start-up dump, restored open by a restart that could
#     not tell it lacks the extension (it has a start time, and events are 1), is swept too;
#   - the same connection made again after such an entry is gone closes its flow at once, with the
#     new entry's start as the bound of its end;
#   - a restart with the sysctls on all along sweeps nothing.
# The test makes entries without the extension with nf_conntrack_events=0, which never adds it.
# Under 2 the kernel adds it when any ctnetlink listener exists on the host: its check is one
# flag for all namespaces (nf_ctnetlink_has_listener), so a `conntrack -E` or conntrackd anywhere
# on the machine would give the test's entries the extension.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init sweep --daemon --query
cta_topology_up
cta_start_servers

cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=0 >/dev/null ||
  cta_die "setting nf_conntrack_events=0 in $CTA_GW failed"
# The topology's reachability pings are in the table too, for 30 s: without them the early flow
# is the only one from the start-up dump, and when it is gone the sweeps must stop.
cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1 || cta_die "conntrack -F in $CTA_GW failed"

# cta_udp_flow leaves a replied UDP entry (timeout 120 s): long enough to outlive the test.
before_port=24001
after_port=24002
cta_expect "a NAT'd UDP flow before the daemon runs (no event extension)" \
  cta_udp_flow "$CTA_CL4" "$before_port" "$CTA_SRV4" "$CTA_UDP_PORT"

cta_daemon_start --sweep-interval 2s

# flow_json PORT: the log's one flow from the client's PORT, as `ctaudit flows` prints it.
flow_json() {
  "$CTAUDIT" flows --src "$CTA_CL4" --proto udp --db "$CTA_DB" --format json 2>/dev/null |
    cta_jq -c --arg p "$1" 'select(.event.kind == "event" and ((.source.port | tostring) == $p))'
}
flow_is() { # PORT JQ-CONDITION
  local rec
  rec=$(flow_json "$1")
  [[ -n $rec && $(cta_jq -r "$2" <<<"$rec") == true ]] && return 0
  cta_err "flow from port $1: want $2, got '$rec'"
  return 1
}
cta_expect "the early flow is in the start-up dump, open, first seen at start" \
  cta_eventually 5 "early flow logged" flow_is "$before_port" \
  '.event.action == "new" and .conntrack.observed_at_start == true and (.event.end == null)'

delete_entry() { # PORT
  cta_in "$CTA_GW" conntrack -D -p udp --orig-src "$CTA_CL4" --orig-port-src "$1" >/dev/null 2>&1 && return 0
  cta_err "conntrack -D of the flow from port $1 failed"
  return 1
}
T_deleted=$(cta_now)
cta_expect "the early flow's entry is deleted from the gateway's table" delete_entry "$before_port"

cta_expect "a sweep closes the early flow with a bound end, no earlier than its deletion" \
  cta_eventually 10 "early flow closed" flow_is "$before_port" \
  "(.conntrack.time_source.end == \"bound\") and (.event.end | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate) >= $T_deleted - 1"

cta_expect "a UDP flow after the start" cta_udp_flow "$CTA_CL4" "$after_port" "$CTA_SRV4" "$CTA_UDP_PORT"
cta_expect "... deleted too" delete_entry "$after_port"
cta_expect "the later flow ends through its DESTROY: a kernel end, not a bound" \
  cta_eventually 5 "later flow closed" flow_is "$after_port" '.conntrack.time_source.end == "kernel"'

sweeps() { grep -c 'a sweep for flows from the start-up dump' "$CTA_DAEMON_LOG"; }
no_more_sweeps() {
  local before after
  before=$(sweeps)
  sleep 5 # more than two intervals
  after=$(sweeps)
  ((before >= 1 && after - before <= 1)) && return 0 # one may have been under way
  cta_err "sweeps: $before, then $after five seconds later"
  return 1
}
cta_expect "once no flow from the start-up dump is open, the sweeps stop" no_more_sweeps
cta_expect "the sweeps record no gap" cta_no_loss_gaps
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# The package installed on a running gateway: the entry was made before the sysctls were set
# (no event extension, no kernel start time), and its postinst sets them just before the daemon
# starts, so nf_conntrack_events is 1 at start. The missing start time gives it away.
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=0 net.netfilter.nf_conntrack_timestamp=0 >/dev/null
cta_expect "a UDP flow before the sysctls are set" cta_udp_flow "$CTA_CL4" 24003 "$CTA_SRV4" "$CTA_UDP_PORT"
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=1 net.netfilter.nf_conntrack_timestamp=1 >/dev/null
: >"$CTA_DAEMON_LOG"
cta_daemon_start --sweep-interval 1s
cta_expect "it is in the start-up dump without a kernel start time" \
  cta_eventually 5 "flow 24003 logged" flow_is 24003 '.conntrack.observed_at_start == true and (.event.end == null)'
cta_expect "... deleted from the gateway's table" delete_entry 24003
cta_expect "a sweep closes it with a bound end, though nf_conntrack_events was 1 at start" \
  cta_eventually 10 "flow 24003 closed" flow_is 24003 '.conntrack.time_source.end == "bound"'
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# An earlier run's start-up dump saw the flow and a restart restores it open. This run cannot tell
# whether the entry has the extension: nf_conntrack_events is 1 now and the entry has a kernel
# start time (made without events but with timestamps on). Only the earlier run knew, so a flow first
# seen in a start-up dump is swept for until it ends.
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=0 net.netfilter.nf_conntrack_timestamp=1 >/dev/null
cta_expect "a UDP flow with a start time but no event extension" \
  cta_udp_flow "$CTA_CL4" 24005 "$CTA_SRV4" "$CTA_UDP_PORT"
: >"$CTA_DAEMON_LOG"
cta_daemon_start --sweep-interval 1s
cta_expect "the start-up dump logs it open, with its kernel start" \
  cta_eventually 5 "flow 24005 logged" flow_is 24005 \
  '.conntrack.observed_at_start == true and .conntrack.time_source.start == "kernel" and (.event.end == null)'
cta_expect "SIGTERM with the entry still in the table: ctauditd exits 0" cta_daemon_stop
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=1 >/dev/null
: >"$CTA_DAEMON_LOG"
cta_daemon_start --sweep-interval 1s
cta_expect "... deleted from the gateway's table after the restart" delete_entry 24005
cta_expect "a sweep of the restarted daemon closes the restored flow with a bound end" \
  cta_eventually 10 "flow 24005 closed" flow_is 24005 '.conntrack.time_source.end == "bound"'
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# The subscriber makes the same connection again after its entry, one without the extension, is
# gone: the new entry has the same original tuple, and its NEW shows that the old one ended, since
# the kernel holds one entry per original tuple. The old flow is closed then, with the new start as
# the bound of its end, not an hour later by a sweep. The kernel may give the new entry the old
# one's id and masquerade the same port (one run of the build before did: it merged the two), and
# then only a start more than a second later tells it apart; the wait makes sure of that.
cta_in "$CTA_GW" sysctl -qw net.netfilter.nf_conntrack_events=0 >/dev/null
cta_expect "a UDP flow from port 24006 without the event extension" \
  cta_udp_flow "$CTA_CL4" 24006 "$CTA_SRV4" "$CTA_UDP_PORT"
: >"$CTA_DAEMON_LOG"
cta_daemon_start --sweep-interval 1h
cta_expect "the start-up dump logs it open" \
  cta_eventually 5 "flow 24006 logged" flow_is 24006 '.conntrack.observed_at_start == true and (.event.end == null)'
T_again=$(cta_now)
cta_expect "... deleted from the gateway's table" delete_entry 24006
sleep 1.2
cta_expect "the same connection again, from port 24006" cta_udp_flow "$CTA_CL4" 24006 "$CTA_SRV4" "$CTA_UDP_PORT"
made_again() {
  local recs old new
  recs=$(flow_json 24006)
  old=$(cta_jq -c 'select(.conntrack.observed_at_start == true)' <<<"$recs")
  new=$(cta_jq -c 'select(.conntrack.observed_at_start != true)' <<<"$recs")
  if [[ -n $old && -n $new && $(wc -l <<<"$old") == 1 && $(wc -l <<<"$new") == 1 &&
    $(cta_jq -r "(.conntrack.time_source.end == \"bound\") and
      ((.event.end | sub(\"\\\\.[0-9]+Z$\"; \"Z\") | fromdate) >= $T_again - 1)" <<<"$old") == true &&
    $(cta_jq -r '.event.end == null' <<<"$new") == true ]]; then
    return 0
  fi
  cta_err "flows from port 24006: want the first closed with a bound end and the second open, got: $recs"
  return 1
}
cta_expect "the new entry's NEW closes the old flow with a bound end, with no sweep for an hour" \
  cta_eventually 5 "flow 24006 closed by its successor" made_again
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# Every entry made since has the extension and a start time: a restart sweeps nothing.
cta_expect "a UDP flow while no daemon runs, with the sysctls on" \
  cta_udp_flow "$CTA_CL4" 24004 "$CTA_SRV4" "$CTA_UDP_PORT"
: >"$CTA_DAEMON_LOG"
cta_daemon_start --sweep-interval 1s
sleep 4
no_sweep_at_all() {
  local n
  n=$(sweeps)
  ((n == 0)) && return 0
  cta_err "$n sweep(s) though every flow in the start-up dump has its kernel start time"
  return 1
}
cta_expect "a restart with the sysctls on all along: no sweep" no_sweep_at_all
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

cta_finish
