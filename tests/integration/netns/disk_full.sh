#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# disk_full (issue #3): when the file system of the database and the JSON-lines file is full, the
# daemon keeps running, says so, holds the records (within its queue cap) and writes them all once
# there is room again.
#
# The database and the JSON-lines file live on a tmpfs of 8 MiB mounted by this test on a
# directory of its own (unmounted on exit); the daemon's log and stats file live elsewhere. After
# a first batch of flows is recorded, a filler file takes all the free space; then ct_loadgen
# makes and deletes 300 flows (600 events). Checks:
#   - the first 100 flows are recorded (the setup works);
#   - the tmpfs is full (df says 0 bytes available);
#   - the daemon keeps running and reports the failure: a log line about the full disk, and, with
#     --stats-file, a metric naming a failure or error above 0;
#   - once the filler is gone, within 15 s: all 300 flows are in the database, closed, and the
#     JSON-lines file has exactly one new and one destroy line for each; every line parses;
#   - SIGTERM: exit 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init disk_full --daemon --query --loadgen
cta_require_tools mount umount df dd
cta_load_ns_up

small=$CTA_TMP/small
cta_mount_tmpfs "$small" 8m
CTA_DB=$small/flows.db
CTA_JSONL=$small/flows.jsonl
stats=$CTA_TMP/ctauditd.prom
extra=()
cta_daemon_supports stats-file && extra+=(--stats-file "$stats")
cta_daemon_start --flush-interval 200ms "${extra[@]}"

cta_loadgen "$CTA_TMP/warmup.txt" --count 100 --first-index 0 --rate 2000 || cta_die "ct_loadgen warm-up failed"
warm_recorded() { (($(cta_port_closed_rows 10000) == 100)); }
cta_expect "the first 100 flows are recorded" cta_eventually 10 "100 warm-up flows" warm_recorded

cta_log "filling $small"
dd if=/dev/zero of="$small/filler" bs=64k 2>/dev/null
dd if=/dev/zero of="$small/filler2" bs=512 2>/dev/null
full() {
  local avail
  avail=$(df --output=avail -B1 "$small" | tail -n 1 | tr -d ' ')
  ((avail == 0)) && return 0
  cta_err "$small still has $avail bytes available"
  return 1
}
cta_expect "the file system is full" full

cta_loadgen "$CTA_TMP/full.txt" --count 300 --first-index 1000 --rate 2000 || cta_die "ct_loadgen failed while the disk was full"
T_made=$(date +%s)

# Only error and warning lines, and not the paths in them (this test's temp dir says "disk_full").
reported() {
  grep -E ' (error|warning|critical) ' "$CTA_DAEMON_LOG" | sed 's|/[^ ]*||g' |
    grep -Eiq 'disk is full|no space left|ENOSPC' && return 0
  cta_err "no log line about the full disk in $CTA_DAEMON_LOG"
  return 1
}
cta_expect "the daemon reports the failure in its log" cta_eventually 10 "a disk-full log line" reported
stats_report() {
  local n
  n=$(cta_stats_sum "$stats" 'fail|error')
  [[ -n $n ]] && ((n > 0)) && return 0
  cta_err "$stats: no metric naming a failure or error above 0 (got '${n:-none}')"
  return 1
}
if cta_daemon_supports stats-file; then
  cta_expect "the stats file counts the failed writes" cta_eventually 10 "a failure count in $stats" stats_report
else
  cta_fail_check "the stats file counts the failed writes" "ctauditd has no --stats-file option (issue #3 daemon work)"
fi
sleep_until_3s() { (($(date +%s) >= T_made + 3)); }
wait_for 5 "3 s of a full disk" sleep_until_3s
cta_expect "the daemon is still running on a full disk" cta_daemon_alive

cta_log "removing the filler"
rm -f "$small/filler" "$small/filler2"
cta_expect "within 15 s all 300 flows made while full are in the database, closed" \
  cta_eventually 15 "the 300 flows in the database" cta_batch_in_db 10001 300 "from the full-disk batch"
cta_expect "the JSON-lines file has one new and one destroy line for each of them" \
  cta_eventually 15 "the 600 JSON lines" cta_batch_in_json 10001 300 "for the full-disk batch"
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop 30
cta_expect "every line of the JSON-lines file parses" cta_jsonl_all_parse "$CTA_JSONL"
cta_expect "the JSON-lines file ends with a newline" cta_jsonl_ends_with_newline "$CTA_JSONL"
cta_finish
