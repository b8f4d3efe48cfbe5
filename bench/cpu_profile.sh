#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# cpu_profile.sh: how much CPU does ctauditd spend per conntrack event, and on what?
#
# In a network namespace of its own (random name, deleted on exit): a fresh ctauditd with default
# settings and both sinks (SQLite and JSON lines, in a temp dir), ct_loadgen creating and deleting
# NAT'd entries at a fixed RATE for DURATION, then a wait until the daemon has read its backlog
# (its CPU time stands still for 1.5 s,
# longer than the flush interval after which the last batch is written), SIGTERM. Prints, as key=value lines:
#   received        messages the daemon received (its final "stopped:" line)
#   cpu_s           the daemon's utime+stime over the run (/proc/PID/stat), all threads
#   cpu_ms_per_1k   cpu_s per 1000 events received
#   run_ms_per_1k   the same from the scheduler's nanosecond run times (/proc/PID/task/*/schedstat),
#                   for A/B comparisons at low rates where ticks are too coarse
#   peak_rss_kib    the daemon's VmHWM
#   syscw_per_1k    write-type system calls (/proc/PID/io syscw: write, pwrite, writev, ...) per 1000
#                   events: the JSON-lines sink's write(2) per batch, SQLite's WAL and the wake-ups
#   wchar_per_event bytes the daemon handed to write-type system calls (/proc/PID/io wchar) per
#                   event: the JSON lines (about jsonl_bytes_per_event) plus SQLite's WAL frames and
#                   checkpoints, a whole page for each page a batch changed (write amplification)
#   syscr_per_1k    read-type system calls (/proc/PID/io syscr) per 1000 events: recvmmsg, and
#                   SQLite's reads of pages that are not in its cache (an index larger than it)
#   ctxsw_per_1k    voluntary context switches of all the daemon's threads per 1000 events
#   cpu_s_threads   the same split by thread name (ctauditd = the pipeline thread, which runs the
#                   sinks; ctauditd-reader = netlink receive and decode; ctaudit-archiver = JSON
#                   compression), e.g. "ctauditd=9.10 ctauditd-reader=4.02"
#   ctxsw_threads   voluntary context switches per second of the run, by thread name: each is a
#                   sleep and a wake-up, which on a virtual machine costs tens of microseconds
#   minflt_per_1k   minor page faults per 1000 events (/proc/PID/stat): memory the daemon touches for
#                   the first time, or again after giving it back; each costs a zeroed page
#   jsonl_bytes_per_event  size of the JSON-lines file over the events received
# With --perf FILE it also samples the daemon with `perf record -g` (call graphs through frame
# pointers and DWARF are not needed for the flat profile) during the run and prints the top
# symbols by self time, grouped the way docs/benchmarks.md "Where the CPU goes" reads them.
# --ends random makes ct_loadgen delete a random live entry instead of the oldest, as a
# gateway's garbage collector ends flows (ct_loadgen --help).
# Nothing runs in the root namespace; the host's conntrack table and sysctls are not touched.
#
# Usage (as root, from the repository, after building the ci preset):
#   bench/cpu_profile.sh [--rate 20000] [--duration 10s] [--live 10000] [--ends fifo|random]
#                        [--perf FILE]
#                        [-- DAEMON_ARGS...]        e.g. -- --jsonl none  (SQLite only)
# Environment: CTAUDITD, CT_LOADGEN (default build/ci/{daemon/ctauditd,bench/ct_loadgen}), TMPDIR,
# PERF_FREQUENCY (samples a second with --perf, default 4999; more for a run at a low rate).
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${CTAUDITD:=$repo/build/ci/daemon/ctauditd}"
: "${CT_LOADGEN:=$repo/build/ci/bench/ct_loadgen}"
rate=20000
duration=10s
live=10000
ends=fifo
perf_file=""
daemon_args=()
while (($# > 0)); do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --live) live=$2; shift 2 ;;
    --ends) ends=$2; shift 2 ;;
    --perf) perf_file=$2; shift 2 ;;
    --) shift; daemon_args=("$@"); break ;;
    -h | --help) sed -n '3,/^set -u/{/^set -u/!p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "cpu_profile.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "cpu_profile.sh: needs root (network namespaces)" >&2; exit 77; }
command -v ip >/dev/null || { echo "cpu_profile.sh: needs ip (iproute2)" >&2; exit 77; }
if [[ -n $perf_file ]] && ! command -v perf >/dev/null; then
  echo "cpu_profile.sh: --perf needs perf (apt-get install linux-perf)" >&2
  exit 77
fi
[[ -x $CTAUDITD && -x $CT_LOADGEN ]] || {
  echo "cpu_profile.sh: build first: cmake --preset ci && cmake --build build/ci -j2" >&2
  exit 77
}

ns=cta-prof-$RANDOM$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cta-prof.XXXXXX")
daemon_pid=""
perf_pid=""
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  [[ -n $perf_pid ]] && kill -INT "$perf_pid" 2>/dev/null && wait "$perf_pid" 2>/dev/null
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
write_calls() { awk '$1 == "syscw:" { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
read_calls() { awk '$1 == "syscr:" { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
written_bytes() { awk '$1 == "wchar:" { print $2 }' "/proc/$1/io" 2>/dev/null || echo 0; }
# "name ticks" per thread, summed by thread name.
thread_ticks() {
  local task
  for task in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(cat "$task/comm" 2>/dev/null)" "$(awk '{ print $14 + $15 }' "$task/stat" 2>/dev/null)"
  done | awk 'NF == 2 { t[$1] += $2 } END { for (n in t) print n, t[n] }'
}
# "name switches" per thread (voluntary), summed by thread name.
thread_switches() {
  local task
  for task in /proc/"$1"/task/*; do
    printf '%s %s\n' "$(cat "$task/comm" 2>/dev/null)" \
      "$(awk '$1 == "voluntary_ctxt_switches:" { print $2 }' "$task/status" 2>/dev/null)"
  done | awk 'NF == 2 { t[$1] += $2 } END { for (n in t) print n, t[n] }'
}
# Nanoseconds on a CPU, all threads (/proc/PID/task/*/schedstat): finer than the 10 ms ticks of
# utime + stime, which at 1k events/s leave a 10 s run with ~15 of them.
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }
minor_faults() { awk '{ print $10 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
switches() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '$1 == "voluntary_ctxt_switches:" { n += $2 } END { print n + 0 }'; }
# Idle: no CPU tick for 1.5 s, longer than the daemon's 1 s flush interval, so that the write of
# the last batch, which waits for that interval, falls inside the measurement. Ticks, not
# nanoseconds: the idle daemon's timers still run for a few microseconds a second.
wait_idle() {
  local before after i still=0
  before=$(cpu_ticks "$daemon_pid")
  for ((i = 0; i < 240; i++)); do
    sleep 0.5
    after=$(cpu_ticks "$daemon_pid")
    if [[ $after == "$before" ]]; then
      ((++still >= 3)) && return 0
    else
      still=0
    fi
    before=$after
  done
  return 1
}

# ctauditd refuses a flag given twice: DAEMON_ARGS' own --jsonl (e.g. none) replaces this one.
jsonl_args=(--jsonl "$tmp/flows.jsonl")
for arg in "${daemon_args[@]}"; do [[ $arg == --jsonl || $arg == --jsonl=* ]] && jsonl_args=(); done
ip netns exec "$ns" "$CTAUDITD" --db "$tmp/flows.db" "${jsonl_args[@]}" "${daemon_args[@]}" \
  </dev/null >"$tmp/daemon.log" 2>&1 &
daemon_pid=$!
for ((i = 0; i < 100; i++)); do
  grep -qw ready "$tmp/daemon.log" 2>/dev/null && break
  sleep 0.1
done
grep -qw ready "$tmp/daemon.log" || { cat "$tmp/daemon.log" >&2; exit 1; }
if [[ -n $perf_file ]]; then
  perf record -F "${PERF_FREQUENCY:-4999}" -g -p "$daemon_pid" -o "$perf_file" >"$tmp/perf.log" 2>&1 &
  perf_pid=$!
  sleep 0.5
fi
cpu0=$(cpu_ticks "$daemon_pid")
ns0=$(run_ns "$daemon_pid")
syscw0=$(write_calls "$daemon_pid")
syscr0=$(read_calls "$daemon_pid")
wchar0=$(written_bytes "$daemon_pid")
switches0=$(switches "$daemon_pid")
faults0=$(minor_faults "$daemon_pid")
threads0=$(thread_ticks "$daemon_pid")
thread_switches0=$(thread_switches "$daemon_pid")
started_s=$(date +%s.%N)
ip netns exec "$ns" "$CT_LOADGEN" --rate "$rate" --duration "$duration" --live "$live" --ends "$ends" --batch 32 \
  >"$tmp/loadgen.txt" 2>&1 || { cat "$tmp/loadgen.txt" >&2; exit 1; }
wait_idle || echo "warning: the daemon was still busy after 120 s" >&2
cpu1=$(cpu_ticks "$daemon_pid")
ns1=$(run_ns "$daemon_pid")
syscw1=$(write_calls "$daemon_pid")
syscr1=$(read_calls "$daemon_pid")
wchar1=$(written_bytes "$daemon_pid")
switches1=$(switches "$daemon_pid")
faults1=$(minor_faults "$daemon_pid")
threads1=$(thread_ticks "$daemon_pid")
thread_switches1=$(thread_switches "$daemon_pid")
elapsed_s=$(awk -v a="$started_s" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')
if [[ -n $perf_pid ]]; then
  kill -INT "$perf_pid"
  wait "$perf_pid"
  perf_pid=""
fi
peak_rss=$(awk '/^VmHWM/ { print $2 }' "/proc/$daemon_pid/status")
kill -TERM "$daemon_pid"
wait "$daemon_pid"
daemon_pid=""
received=$(grep -o 'stopped: [0-9]* message' "$tmp/daemon.log" | awk '{ print $2 }')
[[ -n $received ]] || { cat "$tmp/daemon.log" >&2; exit 1; }
awk -v rc="$received" -v c0="$cpu0" -v c1="$cpu1" -v hz="$(getconf CLK_TCK)" -v rss="$peak_rss" \
  -v rate="$rate" -v d="$duration" -v w="$((syscw1 - syscw0))" -v x="$((switches1 - switches0))" \
  -v f="$((faults1 - faults0))" -v r="$((syscr1 - syscr0))" -v ns="$((ns1 - ns0))" -v wc="$((wchar1 - wchar0))" 'BEGIN {
    cpu = (c1 - c0) / hz
    n = rc > 0 ? rc : 1
    printf "rate=%s\nduration=%s\nreceived=%d\ncpu_s=%.2f\ncpu_ms_per_1k=%.2f\npeak_rss_kib=%d\n", rate, d, rc, cpu,
      1e6 * cpu / n, rss
    printf "run_ms_per_1k=%.3f\n", ns / 1e3 / n
    printf "syscw_per_1k=%.1f\nsyscr_per_1k=%.1f\n", 1000 * w / n, 1000 * r / n
    printf "wchar_per_event=%.0f\n", wc / n
    printf "ctxsw_per_1k=%.1f\nminflt_per_1k=%.1f\n", 1000 * x / n, 1000 * f / n
  }'
jsonl_bytes=$(stat -c %s "$tmp/flows.jsonl" 2>/dev/null || echo 0)
awk -v b="$jsonl_bytes" -v rc="$received" 'BEGIN { printf "jsonl_bytes_per_event=%.0f\n", b / (rc > 0 ? rc : 1) }'
printf 'cpu_s_threads='
join <(sort <<<"$threads0") <(sort <<<"$threads1") | awk -v hz="$(getconf CLK_TCK)" '
  { printf "%s%s=%.2f", (NR > 1 ? " " : ""), $1, ($3 - $2) / hz } END { print "" }'
printf 'ctxsw_threads='
join <(sort <<<"$thread_switches0") <(sort <<<"$thread_switches1") | awk -v s="$elapsed_s" '
  { printf "%s%s=%.1f/s", (NR > 1 ? " " : ""), $1, ($3 - $2) / s } END { print "" }'
grep -o 'stopped:.*' "$tmp/daemon.log"
if [[ -n $perf_file ]]; then
  echo "--- perf: self time by shared object"
  perf report -i "$perf_file" --no-children --sort dso --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -15
  echo "--- perf: self time by symbol"
  perf report -i "$perf_file" --no-children --sort dso,sym --stdio -g none 2>/dev/null | grep -v '^#' |
    grep -v '^$' | head -60
fi
