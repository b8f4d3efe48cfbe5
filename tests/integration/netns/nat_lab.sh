#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# nat_lab: the README's walkthrough works as written. scripts/nat-lab.sh runs under a random
# CTLAB_PREFIX (so a lab someone has up on this machine is not touched), and the commands it prints
# are run as printed. Checks:
#   - `up` creates the three namespaces and prints the daemon command; a second `up` refuses;
#   - the printed daemon command starts ctauditd in the gateway ("ready");
#   - `traffic` succeeds and lists translations into the SNAT range, and the `ctaudit who` command
#     it prints finds the inside host;
#   - `status` works; `down` stops the daemon (exit 0 on its SIGTERM), kills the echo services and
#     deletes the namespaces.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init nat_lab --daemon --query
cta_require_tools setsid

lab=(env "CTLAB_PREFIX=cta-lab-$RANDOM$$" "CTLAB_DIR=$CTA_TMP/lab" "CTAUDITD=$CTAUDITD" "CTAUDIT=$CTAUDIT"
  bash "$CTA_REPO/scripts/nat-lab.sh")
prefix=${lab[1]#CTLAB_PREFIX=}
# Registered for cleanup in case a step below fails before `down`.
CTA_NAMESPACES+=("$prefix-client" "$prefix-gw" "$prefix-server")

ns_exists() { ip netns list | awk '{print $1}' | grep -qxF "$1"; }
all_ns_exist() { ns_exists "$prefix-client" && ns_exists "$prefix-gw" && ns_exists "$prefix-server"; }
no_ns_exists() { ! ns_exists "$prefix-client" && ! ns_exists "$prefix-gw" && ! ns_exists "$prefix-server"; }

lab_run() { # SUBCOMMAND: output in $CTA_TMP/SUBCOMMAND.out
  "${lab[@]}" "$1" >"$CTA_TMP/$1.out" 2>&1
  local rc=$?
  ((rc == 0)) && return 0
  cta_err "nat-lab.sh $1: exit $rc:"
  sed 's/^/#   /' "$CTA_TMP/$1.out" >&2
  return 1
}

cta_expect "nat-lab.sh up: exit 0" lab_run up || cta_finish
cta_expect "up created $prefix-client, $prefix-gw, $prefix-server" all_ns_exist
up_again_refused() {
  "${lab[@]}" up >"$CTA_TMP/up2.out" 2>&1 && { cta_err "a second up succeeded"; return 1; }
  grep -q 'already up' "$CTA_TMP/up2.out"
}
cta_expect "a second up refuses (already up)" up_again_refused

daemon_cmd=$(grep -E "^ +ip netns exec $prefix-gw .*ctauditd --db " "$CTA_TMP/up.out" | sed 's/^ *//')
cta_expect "up prints the command that starts ctauditd in the gateway" test -n "$daemon_cmd"

# Run it as printed. `bash -c` execs a single command, so $! is the daemon.
CTA_DAEMON_LOG=$CTA_TMP/lab-daemon.log
bash -c "$daemon_cmd" </dev/null >"$CTA_DAEMON_LOG" 2>&1 &
CTA_DAEMON_PID=$!
CTA_PIDS+=("$CTA_DAEMON_PID")
cta_expect "the printed daemon command starts ctauditd ('ready')" \
  wait_for 15 "ctauditd logs 'ready'" cta_daemon_ready

cta_expect "nat-lab.sh traffic: exit 0, every flow ok" lab_run traffic
translated_in_range() {
  local ports
  ports=$(grep -oE " as $CTA_GW4_OUT:[0-9]+" "$CTA_TMP/traffic.out" | sed 's/.*://')
  [[ -n $ports ]] || { cta_err "no IPv4 translation listed"; return 1; }
  local port
  for port in $ports; do
    ((port >= CTA_SNAT4_MIN && port <= CTA_SNAT4_MAX)) || { cta_err "port $port outside the range"; return 1; }
  done
}
cta_expect "traffic lists IPv4 translations into $CTA_GW4_OUT:$CTA_SNAT4_MIN-$CTA_SNAT4_MAX" translated_in_range

who_cmd=$(grep -E '^ +[^ ]*ctaudit who .* --at @[0-9.]+ --db ' "$CTA_TMP/traffic.out" | head -n 1 | sed 's/^ *//')
cta_expect "traffic prints a ctaudit who command" test -n "$who_cmd"
who_nat=$(awk '{print $3}' <<<"$who_cmd")
who_inside=$(grep -E " as $who_nat\$" "$CTA_TMP/traffic.out" | awk '{print $2}' | sed 's/:[0-9]*$//' | head -n 1)
printed_who_finds() { bash -c "$who_cmd" 2>&1 | grep -qF "$who_inside"; }
cta_expect "the printed '$who_cmd' names $who_inside" \
  wait_for 5 "the printed who command to find $who_inside" printed_who_finds

cta_expect "nat-lab.sh status: exit 0" lab_run status

lab_pids=()
for ns in "$prefix-client" "$prefix-gw" "$prefix-server"; do
  mapfile -t -O "${#lab_pids[@]}" lab_pids < <(ip netns pids "$ns" 2>/dev/null)
done
cta_expect "nat-lab.sh down: exit 0" lab_run down
daemon_stopped_cleanly() {
  cta_pid_exited "$CTA_DAEMON_PID" || { cta_err "the daemon still runs"; return 1; }
  wait "$CTA_DAEMON_PID"
  local rc=$?
  ((rc == 0)) || cta_err "the daemon exited with status $rc after down's SIGTERM"
  ((rc == 0))
}
cta_expect "down stopped the daemon, which exited 0" daemon_stopped_cleanly
cta_expect "down deleted the namespaces" no_ns_exists
nothing_left() {
  local pid
  for pid in "${lab_pids[@]}"; do
    cta_pid_exited "$pid" || { cta_err "process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline")) survived down"; return 1; }
  done
}
cta_expect "no process of the lab survived down" nothing_left

cta_finish
