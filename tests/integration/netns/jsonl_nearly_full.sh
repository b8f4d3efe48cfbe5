#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# jsonl_nearly_full: the JSON-lines file's disk fills up part way through a batch. The whole lines
# written stay in the file, and only the rest is retried once there is room, so a shipper that
# follows the file reads every line exactly once. (An exploratory run found the partial batch cut
# off again: its follower read 24,221 lines of which 2,768 were distinct, and lines it had read
# were then reported lost.)
#
# The JSON-lines file lives on a tmpfs of 4 MiB mounted by this test, filled to leave about 64 KiB;
# the database lives elsewhere. A follower (`tail -F`) copies every line it reads. ct_loadgen makes
# and deletes 1000 flows (2000 events, about 1.8 MB of lines) at 2000/s: the first batches fit,
# one fails part way, the rest wait. Checks:
#   - the disk really ran full while the daemon wrote (a log line about it);
#   - once the filler is gone, within 15 s: the file has one new and one destroy line for each of
#     the 1000 flows, no line twice;
#   - the follower read exactly the lines the file holds, in the same order: nothing it read was
#     taken back, nothing twice;
#   - every line parses; SIGTERM: exit 0.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init jsonl_nearly_full --daemon --query --loadgen
cta_require_tools mount umount df dd tail jq
cta_load_ns_up

small=$CTA_TMP/small
cta_mount_tmpfs "$small" 4m
CTA_JSONL=$small/flows.jsonl
cta_daemon_start --flush-interval 200ms --stats-file none

# The follower: bytes as tail reads them, from the file's first byte, following it by name.
followed=$CTA_TMP/followed.jsonl
tail -c +1 -F "$CTA_JSONL" >"$followed" 2>/dev/null &
CTA_PIDS+=("$!")

cta_log "filling $small to leave about 64 KiB"
avail=$(df --output=avail -B1 "$small" | tail -n 1 | tr -d ' ')
dd if=/dev/zero of="$small/filler" bs=4096 count=$(((avail - 65536) / 4096)) 2>/dev/null ||
  cta_die "cannot write the filler"

cta_loadgen "$CTA_TMP/load.txt" --count 1000 --first-index 1000 --rate 2000 || cta_die "ct_loadgen failed"

reported() {
  grep -E ' (error|warning) ' "$CTA_DAEMON_LOG" | grep -q 'No space left on device' && return 0
  cta_err "no log line about the full disk in $CTA_DAEMON_LOG"
  return 1
}
cta_expect "the disk ran full while the daemon wrote" cta_eventually 10 "a disk-full log line" reported

cta_log "removing the filler"
rm -f "$small/filler"
cta_expect "within 15 s the file has one new and one destroy line for each of the 1000 flows" \
  cta_eventually 15 "the 2000 JSON lines" cta_batch_in_json 10001 1000 "for the batch"
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop 30

followed_all() {
  local want got
  want=$(wc -c <"$CTA_JSONL")
  got=$(wc -c <"$followed")
  ((got == want))
}
cta_eventually 5 "the follower to reach the end of the file" followed_all
same_lines() {
  cmp -s "$CTA_JSONL" "$followed" && return 0
  cta_err "the follower read $(wc -l <"$followed") lines, $(sort "$followed" | uniq -d | wc -l) of them more than once;" \
    "the file holds $(wc -l <"$CTA_JSONL")"
  return 1
}
cta_expect "the follower read exactly the file's lines: none taken back, none twice" same_lines
cta_expect "every line of the JSON-lines file parses" cta_jsonl_all_parse "$CTA_JSONL"
cta_finish
