#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# resync: when the kernel drops events for the daemon's socket, a table dump repairs the record and
# the loss is written down. ctauditd runs with a receive buffer of 16 KiB (about a dozen events) in a
# namespace of its own; `conntrack -R` creates N entries in one burst, far more than fit, and later
# `conntrack -F` destroys them in one burst. Checks:
#   - after the creation burst (which may or may not overrun): every one of the N flows is
#     in the database, open, and in the JSON-lines file (a `new` line, or a `dump` line for those
#     whose NEW was lost and that the resync found);
#   - after the flush burst: every flow is closed in the database (by its DESTROY, or with a bound end
#     for those whose DESTROY was lost) and has one `destroy` line;
#   - the flush burst overran the socket (always: the kernel emits every DESTROY inside one syscall)
#     and a resync closed the window;
#   - the stats file counts kernel drops, resyncs, flows closed without their DESTROY and as many
#     kernel_overrun gaps as the log reports; SIGTERM exits 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init resync --daemon --query

# No traffic is needed, only conntrack entries: one namespace, used as the daemon's "gateway".
CTA_GW=cta-rs-$RANDOM$$
cta_ns_add "$CTA_GW"

N=3000
STATS=$CTA_TMP/ctauditd.prom
cta_daemon_start --receive-buffer 16K --stats-file "$STATS"

# conntrack -R: one line of conntrack options per entry, made in one batch.
batch=$CTA_TMP/create.txt
for ((i = 0; i < N; i++)); do
  printf -- '-I -p udp -s %s -d %s --sport %d --dport 53 -t 600\n' "$CTA_CL4" "$CTA_SRV4" $((10000 + i))
done >"$batch"

gaps_logged() { grep -c 'the log has a gap (kernel_overrun)' "$CTA_DAEMON_LOG" 2>/dev/null; }
at_least_gaps() { (($(gaps_logged) >= $1)); }

cta_log "creating $N entries in one burst"
cta_in "$CTA_GW" conntrack -R "$batch" >/dev/null 2>&1 || cta_die "conntrack -R in $CTA_GW failed"
# conntrack -R sends one request at a time and waits for each answer, so whether the reader
# thread falls behind it depends on scheduling: an overrun here is likely, not certain, and the
# checks below hold either way (overrun.sh covers creation bursts with ct_loadgen).

db_udp_ports() { cta_flows_json --proto udp | cta_jq -r "$1 | inside_port" | sort -un | wc -l; }
jsonl_count() { cta_jq -r "select(f(\"network.transport\") == \"udp\") | $1 | inside_port" <"$CTA_JSONL" | sort -un | wc -l; }
expect_n() { # WHAT COUNT
  (($2 == N)) && return 0
  cta_err "$1: $2, want $N"
  return 1
}

all_open() { expect_n "open flows in the database" "$(db_udp_ports 'select(f("event.end") == null)')"; }
all_started() {
  expect_n "flows with a new or dump line" \
    "$(jsonl_count 'select(f("event.action") == "new" or f("event.action") == "dump")')"
}
cta_expect "all $N flows are in the database, open" wait_for 10 "$N open flows" all_open
cta_expect "all $N flows have a new or dump line" wait_for 10 "$N new or dump lines" all_started

# A flush makes the kernel emit all N DESTROY events inside one syscall, far faster than any
# reader: with room for a handful of events, this burst overruns the socket every time.
gaps_before=$(gaps_logged)
cta_log "creation burst: ${gaps_before:-0} kernel-overrun gap(s); destroying them in one burst (conntrack -F)"
cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1 || cta_die "conntrack -F in $CTA_GW failed"
cta_expect "the flush burst overran the socket and the resync closed the window" \
  wait_for 20 "one more kernel-overrun gap in the log" at_least_gaps $((${gaps_before:-0} + 1))

all_closed() { expect_n "closed flows in the database" "$(db_udp_ports 'select(f("event.end") != null)')"; }
all_destroyed() { expect_n "flows with a destroy line" "$(jsonl_count 'select(f("event.action") == "destroy")')"; }
cta_expect "all $N flows are closed in the database" wait_for 10 "$N closed flows" all_closed
cta_expect "all $N flows have a destroy line" wait_for 10 "$N destroy lines" all_destroyed

cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

metric() { awk -v name="$1" '$1 == name { print $2 }' "$STATS"; }
positive() { # METRIC
  local value
  value=$(metric "$1")
  ((${value:-0} > 0)) && return 0
  cta_err "$1 = '${value}', want > 0"
  return 1
}
cta_expect "the stats file counts the kernel's drops" positive ctauditd_netlink_kernel_drops_total
cta_expect "the stats file counts the resyncs" positive ctauditd_resyncs_total
cta_expect "the stats file counts the flows closed without their DESTROY" positive ctauditd_flows_closed_unseen_total
logged_gaps() {
  local value want
  value=$(metric 'ctauditd_gaps_total{reason="kernel_overrun"}')
  want=$(gaps_logged)
  ((${value:-0} >= 1 && ${value:-0} == ${want:-0})) && return 0
  cta_err "kernel_overrun gaps in the stats file: '${value}', want the $want the log reports (>= 1)"
  return 1
}
cta_expect "the stats file counts every kernel_overrun gap" logged_gaps

cta_finish
