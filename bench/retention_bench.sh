#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# retention_bench.sh: what a large expiry costs ingest, and whether the file stops growing under
# steady ingest and expiry (docs/benchmarks.md, "Retention").
#
# In a network namespace of its own (random name, deleted on exit), with the database in a temp
# dir:
#   expiry   flow_db_fill writes OLD closed flows that started 3 to 2 days ago; two copies of that
#            file. ctauditd runs on one without --retention and on the other with --retention 1d
#            (which expires all OLD flows), each time while ct_loadgen offers RATE requests/s for
#            DURATION (--live 10000, so RATE/2 flows/s). Per run: requests sent, records the
#            daemon received, lost (kernel drops + queue drops, from its "stopped:" line), rows
#            written, the worst and the 99th percentile of the commit lag (now minus the start of
#            the newest row, sampled every 0.2 s: how far the database trails the events; it
#            includes the 1 s flush interval), the largest queue, the time retention took to catch
#            up and its longest step (from its log), the old flows left, and the file size before
#            and after.
#   steady   flow_db_fill writes flows that start at RATE/2 per second from 1 h + 60 s ago to
#            1 h - STEADY ago (so that, with --retention 1h, as many flows cross the horizon each
#            second as ct_loadgen adds); ctauditd --retention 1h with ct_loadgen at RATE for
#            STEADY. The file size and freelist pages are sampled every 10 s.
# Nothing runs in the root namespace; the host's conntrack table and sysctls are not touched.
#
# Usage (as root, from the repository, after building the ci preset):
#   bench/retention_bench.sh [--old 3000000] [--rate 20000] [--duration 60s] [--steady 240]
#                            [--only expiry|steady]
# Environment: CTAUDITD, CT_LOADGEN, FLOW_DB_FILL (default build/ci/...), TMPDIR.
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
: "${CTAUDITD:=$repo/build/ci/daemon/ctauditd}"
: "${CT_LOADGEN:=$repo/build/ci/bench/ct_loadgen}"
: "${FLOW_DB_FILL:=$repo/build/ci/bench/flow_db_fill}"
old=3000000
rate=20000
duration=60s
steady=240
only=""
while (($# > 0)); do
  case $1 in
    --old) old=$2; shift 2 ;;
    --rate) rate=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --steady) steady=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    -h | --help) sed -n '3,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "retention_bench.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
[[ $(id -u) == 0 ]] || { echo "retention_bench.sh: needs root (network namespaces)" >&2; exit 77; }
for tool in ip sqlite3 awk; do
  command -v "$tool" >/dev/null || { echo "retention_bench.sh: needs $tool" >&2; exit 77; }
done
[[ -x $CTAUDITD && -x $CT_LOADGEN && -x $FLOW_DB_FILL ]] || {
  echo "retention_bench.sh: build first: cmake --preset ci && cmake --build build/ci -j2" >&2
  exit 77
}

ns=cta-retbench-$RANDOM$$
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cta-retbench.XXXXXX")
daemon_pid=""
sampler_pid=""
cleanup() {
  [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
  [[ -n $daemon_pid ]] && kill -KILL "$daemon_pid" 2>/dev/null
  wait 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
ip netns add "$ns" || exit 1

size_of() { stat -c %s "$1" 2>/dev/null || echo 0; }
mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }

# Samples, every 0.2 s, now minus the start of the newest row (in ms) into FILE, once the newest
# row is one of this run's (started after T0_MS). Rows store start_ms rounded down, so a sample may
# read up to 1 ms high.
lag_sampler() {
  local db=$1 out=$2 t0=$3 newest now
  while true; do
    newest=$(sqlite3 -readonly -cmd '.timeout 2000' "$db" 'SELECT start_ms FROM flows ORDER BY id DESC LIMIT 1' 2>/dev/null)
    now=$(date +%s%3N)
    [[ -n $newest ]] && ((newest > t0)) && echo $((now - newest)) >>"$out"
    sleep 0.2
  done
}

# run_daemon DB LABEL LOADGEN_DURATION DAEMON_ARGS...: ctauditd with the load; prints one result row.
run_daemon() {
  local db=$1 label=$2 load=$3
  shift 3
  local log=$tmp/$label.log stats=$tmp/$label.prom lag=$tmp/$label.lag summary=$tmp/$label.loadgen
  local size_before
  size_before=$(size_of "$db")
  : >"$lag"
  ip netns exec "$ns" "$CTAUDITD" --db "$db" --jsonl none --stats-file "$stats" "$@" </dev/null >"$log" 2>&1 &
  daemon_pid=$!
  for _ in $(seq 100); do grep -q 'ctauditd ready' "$log" && break; sleep 0.1; done
  lag_sampler "$db" "$lag" "$(date +%s%3N)" &
  sampler_pid=$!
  ip netns exec "$ns" "$CT_LOADGEN" --rate "$rate" --duration "$load" --live 10000 --batch 32 >"$summary" 2>&1
  # The lag means something only while events come in.
  kill "$sampler_pid" 2>/dev/null; wait "$sampler_pid" 2>/dev/null; sampler_pid=""
  load_end=$(date -u +%FT%T)
  # Let the daemon finish expiring (or idle) for a moment, then stop it.
  for _ in $(seq 600); do
    [[ $label != *expiry* ]] && break
    grep -q 'retention: caught up' "$log" && break
    sleep 0.5
  done
  kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
  local sent received queue_drops kernel_drops written lag_max lag_p99 qmax caught step left
  sent=$(awk -F= '$1 == "created" || $1 == "deleted" { s += $2 } END { print s + 0 }' "$summary")
  received=$(grep -o 'stopped: [0-9]* message' "$log" | grep -o '[0-9]*')
  queue_drops=$(grep -o '[0-9]* dropped for a full queue' "$log" | grep -o '^[0-9]*')
  kernel_drops=$(grep -o '[0-9]* dropped by the kernel' "$log" | grep -o '^[0-9]*')
  written=$(grep -o '[0-9]* written to sqlite' "$log" | grep -o '^[0-9]*')
  lag_max=$(sort -n "$lag" | tail -1)
  lag_p99=$(sort -n "$lag" | awk '{ v[NR] = $1 } END { i = int(NR * 0.99); if (i < 1) i = 1; print v[i] }')
  qmax=$(awk '$1 == "ctauditd_queue_records_max" { print $2 }' "$stats")
  caught=$(grep -o 'retention: caught up.*' "$log" | head -1)
  step=$(grep -o 'the longest [0-9.]* ms' <<<"$caught" | grep -o '[0-9.]*')
  left=$(sqlite3 -readonly "$db" "SELECT count(*) FROM flows WHERE start_ms + dur_ms < $(((now - 86400) * 1000))")
  printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$sent" "${received:-?}" \
    "$((${kernel_drops:-0} + ${queue_drops:-0}))" "${written:-?}" "${lag_p99:-?}" "${lag_max:-?}" "${qmax:-?}" \
    "${step:--}" "$left" "$(mib "$size_before")" "$(mib "$(size_of "$db")")"
  [[ -n $caught ]] && echo "#   $label: $caught (logged at $(grep -m1 'retention: caught up' "$log" | cut -c1-24))"
  echo "#   $label: ready at $(grep -m1 'ctauditd ready' "$log" | cut -c1-24), load ended at $load_end"
}

now=$(date +%s)
echo "# machine: $(nproc) cores, $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg); rate $rate req/s ($((rate / 2)) flows/s)"
if [[ -z $only || $only == expiry ]]; then
  echo "# filling $old old flows ..."
  "$FLOW_DB_FILL" --db "$tmp/old.db" --flows "$old" --first "@$((now - 3 * 86400))" --last "@$((now - 2 * 86400))" |
    sed 's/^/# flow_db_fill: /'
  sqlite3 "$tmp/old.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
  cp "$tmp/old.db" "$tmp/a.db"
  mv "$tmp/old.db" "$tmp/b.db"
  echo
  echo '| run | requests sent | received | lost | records written | commit lag p99 ms | commit lag max ms | queue max | longest expiry step ms | old flows left | file MiB before | file MiB after |'
  echo '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|'
  run_daemon "$tmp/a.db" "no-retention" "$duration"
  run_daemon "$tmp/b.db" "retention-1d-expiry" "$duration" --retention 1d
  rm -f "$tmp"/a.db* "$tmp"/b.db*
fi
if [[ -z $only || $only == steady ]]; then
  flows_per_s=$((rate / 2))
  now=$(date +%s)
  count=$(((steady + 60) * flows_per_s))
  echo "# steady: filling $count flows starting from 1h+60s ago to 1h-${steady}s ago ..."
  "$FLOW_DB_FILL" --db "$tmp/s.db" --flows "$count" --first "@$((now - 3600 - 60))" --last "@$((now - 3600 + steady))" \
    --duration 1s | sed 's/^/# flow_db_fill: /'
  sqlite3 "$tmp/s.db" 'PRAGMA wal_checkpoint(TRUNCATE)' >/dev/null
  ip netns exec "$ns" "$CTAUDITD" --db "$tmp/s.db" --jsonl none --retention 1h </dev/null >"$tmp/s.log" 2>&1 &
  daemon_pid=$!
  ip netns exec "$ns" "$CT_LOADGEN" --rate "$rate" --duration "${steady}s" --live 10000 --batch 32 >"$tmp/s.loadgen" 2>&1 &
  loadgen=$!
  echo
  echo '| seconds | file MiB | freelist pages | page count | rows |'
  echo '|---:|---:|---:|---:|---:|'
  for ((t = 0; t <= steady; t += 10)); do
    printf '| %d | %s | %s | %s | %s |\n' "$t" "$(mib "$(size_of "$tmp/s.db")")" \
      "$(sqlite3 -readonly -cmd '.timeout 2000' "$tmp/s.db" 'PRAGMA freelist_count')" \
      "$(sqlite3 -readonly -cmd '.timeout 2000' "$tmp/s.db" 'PRAGMA page_count')" \
      "$(sqlite3 -readonly -cmd '.timeout 2000' "$tmp/s.db" 'SELECT count(*) FROM flows')"
    sleep 10
  done
  wait "$loadgen"
  kill -TERM "$daemon_pid"; wait "$daemon_pid"; daemon_pid=""
  echo "# $(grep -o 'stopped:.*' "$tmp/s.log")"
  grep -o 'retention:.*' "$tmp/s.log" | sed 's/^/# /'
fi
