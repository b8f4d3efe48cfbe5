#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# overrun_ladder.sh: at which event rate does ctauditd start to lose conntrack events?
#
# For each rate of a ladder, in a network namespace of its own (random name, deleted on exit):
# a fresh ctauditd with default settings and both sinks on (SQLite and JSON lines, in a temp
# dir), ct_loadgen creating and deleting NAT'd entries at that rate for DURATION with LIVE entries
# alive, then deleting those. Every request gives exactly one event (NEW or DESTROY), so:
#   sent      = ct_loadgen's requests (all acknowledged)
#   received  = the daemon's "N message(s) received" in its final "stopped:" log line (events
#               plus the rows of any resync dump)
#   lost      = kernel drops + queue drops: the Drops column of the daemon's socket in
#               /proc/net/netlink (the kernel's own count of events it could not queue), plus the
#               records the daemon dropped because its queue to the sinks was full (exactly
#               counted in its "stopped:" line);   overruns = its ENOBUFS count
# plus the records each sink wrote, the daemon's CPU time (utime+stime from /proc) per 1000
# events, and how long it needed after the load ended to read its backlog (until its CPU time
# stood still for 0.5 s). Nothing runs in the root namespace; the host's conntrack table and
# sysctls are not touched.
#
# Usage (as root, from the repository, after building the ci preset):
#   bench/overrun_ladder.sh [--rates "5000 10000 20000 40000 80000 max"] [--duration 10s]
#                           [--live 10000] [--batch 32] [--markdown FILE] [-- DAEMON_ARGS...]
# Environment: CTAUDITD, CT_LOADGEN (default build/ci/{daemon/ctauditd,bench/ct_loadgen}), TMPDIR.
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${CTAUDITD:=$repo/build/ci/daemon/ctauditd}"
: "${CT_LOADGEN:=$repo/build/ci/bench/ct_loadgen}"
rates="5000 10000 20000 40000 80000 max"
duration=10s
live=10000
batch=32
markdown=""
daemon_args=()
while (($# > 0)); do
  case $1 in
    --rates) rates=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --live) live=$2; shift 2 ;;
    --batch) batch=$2; shift 2 ;;
    --markdown) markdown=$2; shift 2 ;;
    --) shift; daemon_args=("$@"); break ;;
    -h | --help) sed -n '3,22p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "overrun_ladder.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "overrun_ladder.sh: needs root (network namespaces)" >&2; exit 77; }
for tool in ip conntrack; do
  command -v "$tool" >/dev/null || { echo "overrun_ladder.sh: needs $tool" >&2; exit 77; }
done
[[ -x $CTAUDITD && -x $CT_LOADGEN ]] || {
  echo "overrun_ladder.sh: build first: cmake --preset ci && cmake --build build/ci -j2" >&2
  exit 77
}

ns=cta-ladder-$RANDOM$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cta-ladder.XXXXXX")
daemon_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $daemon_pid ]] && kill -KILL "$daemon_pid" 2>/dev/null && wait "$daemon_pid" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ip netns add "$ns" || exit 1
ip netns exec "$ns" ip link set lo up

cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
ticks_per_s=$(getconf CLK_TCK)

# The daemon has read everything when its CPU time stands still for 0.5 s (at most 120 s).
wait_idle() {
  local before after i
  before=$(cpu_ticks "$daemon_pid")
  for ((i = 0; i < 240; i++)); do
    sleep 0.5
    after=$(cpu_ticks "$daemon_pid")
    [[ $after == "$before" ]] && return 0
    before=$after
  done
  return 1
}

kv() { awk -F= -v k="$2" '$1 == k { print $2; exit }' "$1"; }

header="| target rate | achieved req/s | events sent | received | lost | loss % | ENOBUFS | kernel drops | queue drops | SQLite records | JSON records | daemon CPU s | CPU ms / 1k events | backlog s |"
rule="|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
rows=()
printf '%s\n%s\n' "$header" "$rule"
for rate in $rates; do
  step=$tmp/$rate
  mkdir -p "$step"
  # ctauditd refuses a flag given twice: DAEMON_ARGS' own --jsonl (e.g. none) replaces this one.
  jsonl_args=(--jsonl "$step/flows.jsonl")
  for arg in "${daemon_args[@]}"; do [[ $arg == --jsonl || $arg == --jsonl=* ]] && jsonl_args=(); done
  ip netns exec "$ns" "$CTAUDITD" --db "$step/flows.db" "${jsonl_args[@]}" "${daemon_args[@]}" \
    </dev/null >"$step/daemon.log" 2>&1 &
  daemon_pid=$!
  for ((i = 0; i < 100; i++)); do
    grep -qw ready "$step/daemon.log" 2>/dev/null && break
    sleep 0.1
  done
  grep -qw ready "$step/daemon.log" || { cat "$step/daemon.log" >&2; exit 1; }
  cpu0=$(cpu_ticks "$daemon_pid")
  ip netns exec "$ns" "$CT_LOADGEN" --rate "$rate" --duration "$duration" --live "$live" --batch "$batch" \
    >"$step/loadgen.txt" 2>&1
  t_end=$(date +%s%N)
  wait_idle || echo "warning: rate $rate: the daemon was still busy after 120 s" >&2
  backlog=$(awk -v a="$t_end" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 - 0.5 }')
  cpu1=$(cpu_ticks "$daemon_pid")
  # The kernel's own count of events it could not queue for the daemon: the Drops column of the
  # daemon's NETLINK_NETFILTER socket (protocol 12, the only one here subscribed to groups).
  drops=$(ip netns exec "$ns" awk '$2 == 12 && $4 != "00000000" { d += $9 } END { print d + 0 }' /proc/net/netlink)
  kill -TERM "$daemon_pid"
  wait "$daemon_pid"
  daemon_pid=""
  # The daemon's last line: "stopped: N message(s) received, …, N overrun(s), …, N written to sqlite,
  # N written to jsonl". Messages include the rows of resync dumps, so the loss is the kernel's
  # own drop count rather than sent - received.
  stopped=$(grep -o 'stopped:.*' "$step/daemon.log")
  received=$(sed -E 's/.*stopped: ([0-9]+) message.*/\1/' <<<"$stopped")
  overruns=$(sed -E 's/.* ([0-9]+) overrun.*/\1/' <<<"$stopped")
  sqlite=$(sed -E 's/.* ([0-9]+) written to sqlite.*/\1/' <<<"$stopped")
  jsonl=$(sed -E 's/.* ([0-9]+) written to jsonl.*/\1/' <<<"$stopped")
  queue_drops=$(sed -E 's/.* ([0-9]+) dropped for a full queue.*/\1/' <<<"$stopped")
  sent=$(kv "$step/loadgen.txt" requests)
  achieved=$(kv "$step/loadgen.txt" create_phase_requests_per_s)
  failed=$(($(kv "$step/loadgen.txt" create_errors) + $(kv "$step/loadgen.txt" delete_errors)))
  ((failed == 0)) || echo "warning: rate $rate: $failed ct_loadgen requests failed" >&2
  lost=$((drops + queue_drops))
  row=$(awk -v r="$rate" -v a="$achieved" -v s="$sent" -v rc="$received" -v l="$lost" -v o="$overruns" -v d="$drops" -v qd="$queue_drops" \
    -v q="$sqlite" -v j="$jsonl" -v c0="$cpu0" -v c1="$cpu1" -v hz="$ticks_per_s" -v b="$backlog" 'BEGIN {
      cpu = (c1 - c0) / hz
      printf "| %s | %d | %d | %d | %d | %.2f | %d | %d | %d | %d | %d | %.1f | %.2f | %s |", r, a, s, rc, l, 100 * l / s, o, d, qd, q, j, cpu, 1000 * cpu * 1000 / (rc > 0 ? rc : 1), b
    }')
  printf '%s\n' "$row"
  rows+=("$row")
  rm -rf "$step"
done
if [[ -n $markdown ]]; then
  printf '%s\n%s\n' "$header" "$rule" >"$markdown"
  printf '%s\n' "${rows[@]}" >>"$markdown"
fi
