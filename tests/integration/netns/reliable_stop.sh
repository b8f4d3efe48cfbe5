#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# reliable_stop: in --reliable mode a SIGTERM right after a burst of DESTROYs that did not fit the
# socket still records them. The kernel keeps such entries and sends their DESTROY again until it
# is delivered, but frees them unsent once no listener is left; an exploratory run's stop read the
# socket empty and ended in 40 ms, between two of the kernel's sends, and thousands were lost.
#
# One namespace; ctauditd --reliable with a 64 KiB receive buffer (room for a few dozen events);
# ct_loadgen makes ENTRIES NAT'd entries and keeps them; once every one is stored, `conntrack -F`
# deletes them all at once and the daemon gets SIGTERM straight away. Checks:
#   - the daemon exits 0;
#   - every entry is one row, closed with the kernel's end (its DESTROY arrived), none bound.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init reliable_stop --daemon --query --loadgen
cta_load_ns_up
ENTRIES=300

cta_daemon_start --reliable --receive-buffer 64K
load=$CTA_TMP/loadgen.txt
cta_expect "ct_loadgen made $ENTRIES entries and kept them" cta_loadgen "$load" --count "$ENTRIES" --keep --rate 2000
rows() { cta_sql "SELECT count(*) FROM flows"; }
all_stored() { [[ $(rows) == "$ENTRIES" ]]; }
wait_for 20 "all $ENTRIES entries stored" all_stored || cta_die "only $(rows) of $ENTRIES entries were stored"

cta_in "$CTA_GW" conntrack -F >/dev/null 2>&1 || cta_die "conntrack -F failed"
cta_expect "SIGTERM straight after the flush: exit 0" cta_daemon_stop 30
grep -E 'SIGTERM|stopped:' "$CTA_DAEMON_LOG" | sed 's/^/# /'

ended_by_the_kernel() {
  local closed kernel
  closed=$(cta_sql "SELECT count(*) FROM flows_text WHERE end_ms IS NOT NULL")
  kernel=$(cta_sql "SELECT count(*) FROM flows_text WHERE end_source = 'kernel'")
  [[ $(rows) == "$ENTRIES" && $closed == "$ENTRIES" && $kernel == "$ENTRIES" ]] && return 0
  cta_err "$(rows) rows, $closed closed, $kernel with the kernel's end (want $ENTRIES each); last log lines:"
  tail -n 5 "$CTA_DAEMON_LOG" | sed 's/^/#   /' >&2
  return 1
}
cta_expect "each of the $ENTRIES entries is one row ended by its DESTROY" ended_by_the_kernel
cta_finish
