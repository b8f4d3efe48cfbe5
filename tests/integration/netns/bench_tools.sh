#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# bench_tools (issue #4): the benchmark's own instruments count right, or its tables mean nothing.
#
# 1. ct_count, the floor listener: in a load namespace, ct_loadgen creates and deletes 2000 NAT'd
#    entries (500 alive at most); ct_count must have counted exactly 2000 NEW and 2000 DESTROY
#    events, with no kernel drops, and exit 0 on SIGTERM.
#    Then `--ends random` with 150 of only 200 translated ports alive, so that entries outlive
#    their port's next turn: every create succeeds (the entry still holding its port is deleted
#    first, counted in forced_deletes; without that the kernel refuses the create, EEXIST), every
#    entry is deleted, and ct_count sees a DESTROY for each NEW. With --no-delete no entry is
#    deleted, forced or not.
# 2. udp_flood, the real-packet generator: from the lab's client namespace through its NAT gateway,
#    3000 UDP packets from distinct source and destination ports; ct_count in the gateway must count
#    3000 NEW events (one per packet: each is a new flow), and 3000 DESTROY events after a flush of
#    the gateway's table; the gateway's table holds 3000 source-translated UDP entries before it.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init bench_tools --loadgen
bench_dir=$(dirname "$CT_LOADGEN")
: "${CT_COUNT:=$bench_dir/ct_count}"
: "${UDP_FLOOD:=$bench_dir/udp_flood}"
[[ -x $CT_COUNT && -x $UDP_FLOOD ]] || cta_skip_or_fail "ct_count or udp_flood not found beside $CT_LOADGEN (build the bench targets)"

# ct_count in namespace $1 until stop_counter; its counts in $2, "ready" on stderr in $2.err.
counter_pid=""
start_counter() {
  ip netns exec "$1" "$CT_COUNT" >"$2" 2>"$2.err" &
  counter_pid=$!
  CTA_PIDS+=("$counter_pid")
  cta_eventually 5 "ct_count is listening" grep -q ready "$2.err" || cta_die "ct_count did not start: $(cat "$2.err")"
}
stop_counter() {
  kill -TERM "$counter_pid"
  wait "$counter_pid"
}
equals() { # DESCRIPTION WANT GOT
  [[ $2 == "$3" ]] && return 0
  cta_err "$1: want $2, got $3"
  return 1
}

# ---- 1. ct_count against ct_loadgen
cta_load_ns_up
counts=$CTA_TMP/counts.txt
start_counter "$CTA_GW" "$counts"
summary=$CTA_TMP/loadgen.txt
cta_loadgen "$summary" --count 2000 --rate 20000 --live 500 || cta_die "ct_loadgen failed"
# The events were queued for ct_count inside ct_loadgen's own send calls; its last poll at the
# stop reads whatever is still queued.
stop_counter
rc=$?
cta_expect "ct_count exits 0 on SIGTERM" equals "exit status" 0 "$rc"
cta_expect "ct_loadgen created and deleted 2000 entries" equals "created/deleted" "2000/2000" \
  "$(cta_kv "$summary" created)/$(cta_kv "$summary" deleted)"
cta_expect "ct_count counted 2000 NEW events" equals "new" 2000 "$(cta_kv "$counts" new)"
cta_expect "ct_count counted 2000 DESTROY events" equals "destroy" 2000 "$(cta_kv "$counts" destroy)"
cta_expect "the kernel dropped no event for ct_count" equals "kernel_drops" 0 "$(cta_kv "$counts" kernel_drops)"
cta_expect "ct_count reports a 64 MiB receive buffer" equals "buffer_bytes" $((64 << 20)) "$(cta_kv "$counts" buffer_bytes)"

counts=$CTA_TMP/random-counts.txt
start_counter "$CTA_GW" "$counts"
summary=$CTA_TMP/loadgen-random.txt
cta_loadgen "$summary" --count 3000 --rate 20000 --live 150 --nat-ports 40000-40199 --ends random --first-index 10000 ||
  cta_die "ct_loadgen --ends random failed"
stop_counter
cta_expect "--ends random: 3000 created and deleted, no create or delete errors" equals \
  "created/deleted/create_errors/delete_errors" "3000/3000/0/0" \
  "$(cta_kv "$summary" created)/$(cta_kv "$summary" deleted)/$(cta_kv "$summary" create_errors)/$(cta_kv "$summary" delete_errors)"
forced_some() {
  local forced
  forced=$(cta_kv "$summary" forced_deletes)
  ((forced > 0 && forced < 3000)) && return 0
  cta_err "forced_deletes=$forced, want some but not all of 3000 (150 of 200 ports held)"
  return 1
}
cta_expect "--ends random: some deletes were forced by a port still held" forced_some
cta_expect "--ends random: ct_count counted 3000 NEW and 3000 DESTROY events" equals "new/destroy" "3000/3000" \
  "$(cta_kv "$counts" new)/$(cta_kv "$counts" destroy)"

summary=$CTA_TMP/loadgen-keep.txt
# 250 creates through 200 ports: the last 50 find their mapping taken (EEXIST, exit 3).
cta_loadgen "$summary" --count 250 --rate 20000 --nat-ports 40000-40199 --ends random --no-delete --first-index 20000
cta_expect "--ends random --no-delete: nothing deleted, 50 creates refused" equals \
  "deleted/forced_deletes/created/create_errors" "0/0/200/50" \
  "$(cta_kv "$summary" deleted)/$(cta_kv "$summary" forced_deletes)/$(cta_kv "$summary" created)/$(cta_kv "$summary" create_errors)"
cta_ns_del "$CTA_GW"

# ---- 2. udp_flood through the NAT gateway
cta_topology_up
# The pings that checked the topology left entries: flush them, so that every DESTROY is ours.
cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1
counts=$CTA_TMP/gw-counts.txt
start_counter "$CTA_GW" "$counts"
flood=$CTA_TMP/flood.txt
cta_in "$CTA_CL" "$UDP_FLOOD" --src-base "$CTA_CL4" --hosts 1 --src-ports 30000-30299 \
  --dst "$CTA_SRV4" --dst-ports 20000-20009 --count 3000 --rate 20000 >"$flood" 2>&1 ||
  cta_die "udp_flood failed: $(cat "$flood")"
cta_log "udp_flood: $(tr '\n' ' ' <"$flood")"
cta_expect "udp_flood sent 3000 packets, 3000 flows, no errors" equals "packets/flows/errors" "3000/3000/0" \
  "$(cta_kv "$flood" packets)/$(cta_kv "$flood" flows)/$(cta_kv "$flood" errors)"
nat_entries() {
  cta_in "$CTA_GW" conntrack -L -p udp --dst "$CTA_SRV4" 2>/dev/null | grep -c "dst=$CTA_GW4_OUT sport=.* dport=40[0-9][0-9][0-9]"
}
cta_expect "the gateway holds 3000 source-translated UDP entries" equals "entries" 3000 "$(nat_entries)"
cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1
stop_counter
cta_expect "ct_count in the gateway counted one NEW per packet" equals "new" 3000 "$(cta_kv "$counts" new)"
cta_expect "and one DESTROY per flow after the flush" equals "destroy" 3000 "$(cta_kv "$counts" destroy)"

cta_finish
