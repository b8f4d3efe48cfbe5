#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# cpu_ab.sh: does build B of ctauditd spend less CPU per event than build A?
#
# Both daemons run at the same time in one network namespace of their own (random name, deleted
# on exit), each with default settings and both sinks in a temp dir, and both subscribe to the
# same conntrack events: ct_loadgen creates and deletes NAT'd entries at RATE for DURATION, and
# each daemon receives every one of them. What the host's other tenants, the CPU's clock or the
# page cache do to one, they do to the other, so the ratio of the two is steadier than two runs
# of bench/cpu_profile.sh one after the other (A against A: 0.996-1.045 at 20k events/s, 1.009 at
# 100k, where two cpu_profile runs differ by up to 15%; repeat a run to tell a few percent from
# noise). The absolute figures are not the daemon's alone: three busy processes share the cores.
#
# Prints one line: each daemon's CPU time (nanoseconds on a CPU, all threads, from
# /proc/PID/task/*/schedstat) per 1000 events it received, from ready until both were idle (no
# CPU tick for 1.5 s: longer than the 1 s flush interval, so the last batch's write counts), and
# B/A.
#
# Usage (as root): bench/cpu_ab.sh [--rate 20000] [--duration 10s] [--live 10000]
#                                  [--ends fifo|random] A B
#   A, B: ctauditd executables (or scripts that exec one, to set an environment)
# Environment: CT_LOADGEN (default build/ci/bench/ct_loadgen), TMPDIR.
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${CT_LOADGEN:=$repo/build/ci/bench/ct_loadgen}"
rate=20000
duration=10s
live=10000
ends=fifo
builds=()
while (($# > 0)); do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --live) live=$2; shift 2 ;;
    --ends) ends=$2; shift 2 ;;
    -h | --help) sed -n '3,/^set -u/{/^set -u/!p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "cpu_ab.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) builds+=("$1"); shift ;;
  esac
done
((${#builds[@]} == 2)) || { echo "cpu_ab.sh: give two ctauditd executables, A and B (see --help)" >&2; exit 2; }
[[ $(id -u) == 0 ]] || { echo "cpu_ab.sh: needs root (network namespaces)" >&2; exit 77; }
for build in "${builds[@]}" "$CT_LOADGEN"; do
  [[ -x $build ]] || { echo "cpu_ab.sh: $build is not executable (build first: cmake --build build/ci)" >&2; exit 77; }
done

ns=cta-ab-$RANDOM$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cta-ab.XXXXXX")
pids=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  ((${#pids[@]} > 0)) && kill -KILL "${pids[@]}" 2>/dev/null && wait "${pids[@]}" 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
ip netns add "$ns" || exit 1
ip netns exec "$ns" ip link set lo up

# Nanoseconds on a CPU; %.0f, not %d: mawk clips %d at 2^31 - 1, 2.1 s.
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }

for i in 0 1; do
  ip netns exec "$ns" "${builds[i]}" --db "$tmp/$i.db" --jsonl "$tmp/$i.jsonl" --stats-file none \
    </dev/null >"$tmp/$i.log" 2>&1 &
  pids+=($!)
done
for ((i = 0; i < 100; i++)); do
  grep -qw ready "$tmp/0.log" && grep -qw ready "$tmp/1.log" && break
  sleep 0.1
done
for i in 0 1; do
  grep -qw ready "$tmp/$i.log" || { cat "$tmp/$i.log" >&2; exit 1; }
done
start=("$(run_ns "${pids[0]}")" "$(run_ns "${pids[1]}")")
ip netns exec "$ns" "$CT_LOADGEN" --rate "$rate" --duration "$duration" --live "$live" --ends "$ends" --batch 32 \
  >"$tmp/loadgen.txt" 2>&1 || { cat "$tmp/loadgen.txt" >&2; exit 1; }
before="" still=0
for ((i = 0; i < 480 && still < 3; i++)); do
  sleep 0.5
  now="$(ticks "${pids[0]}") $(ticks "${pids[1]}")"
  if [[ $now == "$before" ]]; then ((++still)); else still=0; fi
  before=$now
done
((still >= 3)) || echo "cpu_ab.sh: warning: the daemons were still busy after 240 s" >&2
end=("$(run_ns "${pids[0]}")" "$(run_ns "${pids[1]}")")
kill -TERM "${pids[@]}"
wait "${pids[@]}"
pids=()
received=()
for i in 0 1; do
  received+=("$(grep -o 'stopped: [0-9]* message' "$tmp/$i.log" | awk '{ print $2 }')")
  [[ -n ${received[i]} && ${received[i]} != 0 ]] || { cat "$tmp/$i.log" >&2; exit 1; }
done
awk -v a="$((end[0] - start[0]))" -v b="$((end[1] - start[1]))" -v ra="${received[0]}" -v rb="${received[1]}" \
  -v rate="$rate" 'BEGIN {
    pa = a / 1e3 / ra; pb = b / 1e3 / rb
    printf "rate=%s A_ms_per_1k=%.3f B_ms_per_1k=%.3f events=%d/%d B_over_A=%.3f\n", rate, pa, pb, ra, rb, pb / pa
  }'
