#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# stop_busy_db: a SIGTERM while another process holds the database's write lock for a few seconds
# (an analyst's sqlite3 in a transaction, a copy). An exploratory run found the records given up
# after a quarter of a second, with systemd's TimeoutStopSec of 90 s unused. Checks, against the
# kernel:
#   - flows made while the lock is held and the stop asked for during it are all in the database
#     once the lock is released: the stop waits for a busy database (up to 20 s);
#   - no gap of lost records, and the stop exits 0 after saying it waits.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init stop_busy_db --daemon --query
cta_topology_up
cta_start_servers
cta_daemon_start

n=3
flows() {
  local port
  for ((port = 26001; port < 26001 + n; port++)); do
    cta_udp_flow "$CTA_CL4" "$port" "$CTA_SRV4" "$CTA_UDP_PORT" || return 1
  done
}
# The lock: sqlite3 takes the write lock and holds it until the test writes a line into the FIFO,
# after the stop has said it waits (no timing: a slow runner neither frees it early nor late).
release=$CTA_TMP/release
mkfifo "$release" || cta_die "mkfifo $release failed"
cta_bg "$CTA_GW" "$CTA_TMP/lock.out" sqlite3 "$CTA_DB" ".timeout 5000" "BEGIN IMMEDIATE;" \
  ".shell head -n 1 $release >/dev/null" "COMMIT;"
locked() { ! sqlite3 "$CTA_DB" "PRAGMA busy_timeout = 0; BEGIN IMMEDIATE; ROLLBACK;" >/dev/null 2>&1; }
cta_expect "another process holds the database's write lock" wait_for 10 "the lock" locked
cta_expect "$n UDP flows while the database is locked" flows
cta_daemon_signal TERM
said_it_waits() { grep -q 'stopping: a busy output has not taken' "$CTA_DAEMON_LOG"; }
cta_expect "SIGTERM during the lock: the stop says it waits for the busy database" \
  wait_for 15 "the stop's wait" said_it_waits
cta_expect "the lock is given up" timeout 10 bash -c "echo go >'$release'"
# The SIGTERM above is the stop; cta_daemon_stop would send a second one.
cta_expect "then ctauditd exits 0" cta_daemon_wait_exit 30
all_there() {
  local got
  got=$("$CTAUDIT" flows --src "$CTA_CL4" --proto udp --db "$CTA_DB" --format csv 2>/dev/null |
    awk -F, -v first=26001 -v n="$n" 'NR > 1 && $5 >= first && $5 < first + n' | wc -l)
  ((got == n)) && return 0
  cta_err "want the $n flows in the database, got $got"
  return 1
}
cta_expect "every flow is in the database" all_there
cta_expect "no gap of lost records" cta_no_loss_gaps

cta_finish
