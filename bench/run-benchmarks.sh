#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# run-benchmarks.sh: issue #4's benchmarks in ONE run on one machine. As root on Debian 12:
#
#   bench/run-benchmarks.sh            # full run (12-25 minutes plus the build, docs/benchmarks.md)
#   bench/run-benchmarks.sh --quick    # smoke run (about 3 minutes)
#
# 1. Installs what it needs from Debian (scripts/lib-deps.sh: CTAUDIT_BUILD_PACKAGES,
#    CTAUDIT_TEST_PACKAGES, CTAUDIT_BENCH_PACKAGES: ulogd2, ulogd2-sqlite3, ulogd2-json, gnuplot,
#    ...) and builds the `release` preset.
# 2. The ceiling: ct_loadgen as fast as it goes with one counting listener (ct_count) = the
#    fastest rate at which this kernel hands out conntrack events here.
# 3. The ingest ladder: for each tool and each offered rate up to the ceiling, in a FRESH network
#    namespace (acct and timestamp sysctls on there; never in the root namespace): start the tool,
#    ct_loadgen at that rate (creates and deletes NAT'd entries, one event each), wait until the
#    tool is idle, stop it, count what it STORED (rows and lines, not its own claims). Tools:
#      listener      ct_count (64 MiB buffer, recvmmsg, counts only): the floor
#      ctauditd      default settings, SQLite and JSON lines both on
#      ulogd-sqlite  ulogd2 NFCT -> SQLITE3, its shipped schema plus the 4 reply columns
#      ulogd-json    ulogd2 NFCT -> IP2STR -> JSON
#      conntrack     conntrack -E -o timestamp,extended > file
#    The ceiling rung of ctauditd runs for --ceiling-duration (default 60 s), the others for
#    --duration. Then real traffic: udp_flood through a masquerading gateway namespace.
# 4. bench/query-ladder.sh (the query half), when present.
# Output: a results directory (results.csv, results.json, machine.txt, logs), the tables in
# docs/benchmarks.md between <!-- BEGIN ingest-ladder --> and <!-- END ingest-ladder -->, and
# docs/img/ingest-ladder.png (recorded vs offered rate, gnuplot).
#
# Options:
#   --quick                 rates "1000 20000 ceiling", 3 s rungs, 10 s ceiling rung, 2 s real traffic
#   --rates "LIST"          offered events/s; "ceiling" = the measured ceiling; rates at or above
#                           the ceiling are dropped (default "1000 5000 20000 50000 100000 150000 ceiling")
#   --duration DUR          each rung (default 10s)
#   --ceiling-duration DUR  ctauditd's ceiling rung (default 60s)
#   --real-duration DUR     the real-traffic runs (default 5s; 0 skips them)
#   --tools "LIST"          subset of: listener ctauditd ulogd-sqlite ulogd-json conntrack
#   --live N                ct_loadgen --live (default 10000)
#   --ends fifo|random      ct_loadgen --ends: which live entry a delete takes, the oldest
#                           (default) or one at random, as a gateway's garbage collector ends them
#   --drain-timeout SEC     longest wait for a tool to go idle after the load (default 300)
#   --results DIR           results directory (default build/bench-results/DATE)
#   --no-install            do not apt-get install anything (fail if something is missing)
#   --no-build              use the binaries already in build/release
#   --no-docs               do not write docs/benchmarks.md and docs/img/ingest-ladder.png
#   --no-query              do not run bench/query-ladder.sh
#   --query-sizes "LIST"    passed to query-ladder.sh as --sizes LIST (e.g. 1M,10M; --quick: 1M)
#   --query-args "ARGS"     passed to query-ladder.sh verbatim (word-split)
#   query-ladder.sh also gets --build build/release (its flowdb_gen is built there) and, with
#   --no-docs, --no-doc, when its --help lists them.
# Environment: TMPDIR (where the tools write; default /tmp), CMAKE_* as for any build.
set -u -o pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
command_line="bench/run-benchmarks.sh${*:+ $*}"
me=run-benchmarks.sh

die() { echo "$me: $*" >&2; exit 1; }
note() { echo "$me: $*" >&2; }

# ---------------------------------------------------------------- options
quick=0
rates_default="1000 5000 20000 50000 100000 150000 ceiling"
rates=""
duration=""
ceiling_duration=""
real_duration=""
tools="listener ctauditd ulogd-sqlite ulogd-json conntrack"
live=10000
ends=fifo
drain_timeout=300
results=""
install=1
build=1
docs=1
query=1
query_sizes=""
query_args=""
while (($# > 0)); do
  case $1 in
    --quick) quick=1; shift ;;
    --rates) rates=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --ceiling-duration) ceiling_duration=$2; shift 2 ;;
    --real-duration) real_duration=$2; shift 2 ;;
    --tools) tools=$2; shift 2 ;;
    --live) live=$2; shift 2 ;;
    --ends) ends=$2; shift 2 ;;
    --drain-timeout) drain_timeout=$2; shift 2 ;;
    --results) results=$2; shift 2 ;;
    --no-install) install=0; shift ;;
    --no-build) build=0; shift ;;
    --no-docs) docs=0; shift ;;
    --no-query) query=0; shift ;;
    --query-sizes) query_sizes=$2; shift 2 ;;
    --query-args) query_args=$2; shift 2 ;;
    -h | --help) sed -n '3,/^set -u/{/^set -u/!p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done
if ((quick)); then
  : "${rates:=1000 20000 ceiling}" "${duration:=3s}" "${ceiling_duration:=10s}" "${real_duration:=2s}"
else
  : "${rates:=$rates_default}" "${duration:=10s}" "${ceiling_duration:=60s}" "${real_duration:=5s}"
fi
for tool in $tools; do
  case $tool in listener | ctauditd | ulogd-sqlite | ulogd-json | conntrack) ;;
    *) die "--tools: unknown tool '$tool' (listener ctauditd ulogd-sqlite ulogd-json conntrack)" ;;
  esac
done
for rate in $rates; do
  [[ $rate == ceiling || $rate =~ ^[1-9][0-9]*$ ]] || die "--rates: '$rate' is not a number of events/s or 'ceiling'"
done
# Durations as ct_loadgen takes them (10s, 500ms, 2m); seconds for the arithmetic here.
to_seconds() {
  local d=$1
  case $d in
    *ms) awk -v v="${d%ms}" 'BEGIN { print v / 1000 }' ;;
    *s) echo "${d%s}" ;;
    *m) echo $((${d%m} * 60)) ;;
    *) echo "$d" ;;
  esac
}
for d in "$duration" "$ceiling_duration" "$real_duration"; do
  [[ $d =~ ^[0-9]+(ms|s|m)?$ ]] || die "'$d' is not a duration such as 10s, 500ms or 2m"
done
[[ $live =~ ^[1-9][0-9]*$ ]] || die "--live: '$live' is not a positive number"
[[ $ends == fifo || $ends == random ]] || die "--ends: '$ends' is not fifo or random"
[[ $drain_timeout =~ ^[1-9][0-9]*$ ]] || die "--drain-timeout: '$drain_timeout' is not a number of seconds"

[[ $(id -u) == 0 ]] || die "needs root (network namespaces, CAP_NET_ADMIN); run it with sudo"
if [[ -r /etc/os-release ]] && ! grep -q '^VERSION_ID="12"' /etc/os-release; then
  note "warning: written for Debian 12; package names may differ here"
fi

# ---------------------------------------------------------------- packages and build
# shellcheck source=scripts/lib-deps.sh
source "$repo/scripts/lib-deps.sh"
ulogd_was_installed=0
dpkg-query -W -f='${Status}' ulogd2 2>/dev/null | grep -q "install ok installed" && ulogd_was_installed=1
if ((install)); then
  ctaudit_install_packages "${CTAUDIT_BUILD_PACKAGES[@]}" "${CTAUDIT_TEST_PACKAGES[@]}" \
    "${CTAUDIT_BENCH_PACKAGES[@]}" || die "installing packages failed (see above)"
fi
# Installing ulogd2 starts its service with Debian's default configuration (NFLOG packet
# logging in the root namespace) on a machine that runs systemd. The benchmark runs its own
# ulogd2 in namespaces and does not want that one: stop the service if it was just installed.
if ((!ulogd_was_installed)) && command -v systemctl >/dev/null && systemctl is-active -q ulogd2 2>/dev/null; then
  note "stopping and disabling the ulogd2 service that installing ulogd2 started (the benchmark runs its own)"
  systemctl disable --now ulogd2 >/dev/null 2>&1 || note "warning: could not stop the ulogd2 service"
fi
ctaudit_load_modules
for tool in ip nft conntrack sqlite3 ulogd gnuplot awk cmake; do
  command -v "$tool" >/dev/null || die "needs $tool: run without --no-install, or apt-get install it (scripts/lib-deps.sh)"
done
ulogd_plugins=$(dirname "$(dpkg -L ulogd2 2>/dev/null | grep -m1 '/ulogd_inpflow_NFCT\.so$')")
for plugin in inpflow_NFCT filter_IP2STR output_SQLITE3 output_JSON; do
  [[ -f $ulogd_plugins/ulogd_$plugin.so ]] || die "ulogd2 plugin $ulogd_plugins/ulogd_$plugin.so is missing: apt-get install ulogd2 ulogd2-sqlite3 ulogd2-json"
done
ulogd_schema=/usr/share/doc/ulogd2/sqlite3.table
[[ -r $ulogd_schema ]] || die "ulogd2's shipped SQLite schema $ulogd_schema is missing: reinstall ulogd2"

bin=$repo/build/release
ladder_script=$repo/bench/query-ladder.sh
if ((build)); then
  note "building the release preset (build/release)"
  targets=(ctauditd ctaudit ct_loadgen ct_count udp_flood)
  (cd "$repo" && cmake --preset release >/dev/null) || die "configuring the release preset failed (see above)"
  # The query half's generator.
  if ((query)); then
    targets+=(flowdb_gen)
  fi
  cmake --build "$repo/build/release" -j"$(nproc)" --target "${targets[@]}" || die "the release build failed (see above)"
fi
CTAUDITD=$bin/daemon/ctauditd
CT_LOADGEN=$bin/bench/ct_loadgen
CT_COUNT=$bin/bench/ct_count
UDP_FLOOD=$bin/bench/udp_flood
for binary in "$CTAUDITD" "$CT_LOADGEN" "$CT_COUNT" "$UDP_FLOOD"; do
  [[ -x $binary ]] || die "$binary is missing: run without --no-build"
done

# ---------------------------------------------------------------- results, cleanup
stamp=$(date -u +%Y%m%dT%H%M%SZ)
: "${results:=$repo/build/bench-results/$stamp}"
mkdir -p "$results/runs" || die "cannot create $results"
results=$(cd "$results" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/cta-bench.XXXXXX") || die "cannot create a temp dir"
namespaces=()
tool_pid=""
cleanup() {
  local rc=$? ns
  trap - EXIT INT TERM
  if [[ -n $tool_pid ]]; then
    kill -KILL "$tool_pid" 2>/dev/null
    wait "$tool_pid" 2>/dev/null
  fi
  for ns in "${namespaces[@]}"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
  done
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A fresh namespace with conntrack accounting and timestamps on (and events for every flow), its
# name in $made_ns. The sysctls are per namespace; the root namespace's are never written. Not
# called in a subshell, so that the cleanup trap knows every namespace.
made_ns=""
new_ns() {
  local ns=cta-bench-$1-$RANDOM$$
  ip netns add "$ns" || die "cannot create network namespace $ns"
  namespaces+=("$ns")
  ip -n "$ns" link set lo up
  ip netns exec "$ns" sysctl -qw net.netfilter.nf_conntrack_acct=1 net.netfilter.nf_conntrack_timestamp=1 \
    net.netfilter.nf_conntrack_events=1 >/dev/null ||
    die "cannot set the conntrack sysctls in $ns (is nf_conntrack loaded? modprobe nf_conntrack)"
  made_ns=$ns
}
del_ns() {
  local ns=$1 i
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  for i in "${!namespaces[@]}"; do
    [[ ${namespaces[$i]} == "$ns" ]] && unset 'namespaces[i]'
  done
}

# ---------------------------------------------------------------- per-process figures
ticks_per_s=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# The same in nanoseconds, from the scheduler's run time of each live thread
# (/proc/PID/task/*/schedstat): at 1k events/s a 10 s rung is ~7 ticks of 10 ms, too coarse for
# the figure. A thread that ended before the reading is missing from it, so cpu_seconds takes the
# larger of the two (ticks only ever round down).
run_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%.0f\n", n }'; }
cpu_mark() { echo "$(cpu_ticks "$1"):$(run_ns "$1")"; }
cpu_seconds() {
  awk -v a="$1" -v b="$2" -v hz="$ticks_per_s" 'BEGIN {
    split(a, x, ":"); split(b, y, ":")
    t = (y[1] - x[1]) / hz; n = (y[2] - x[2]) / 1e9
    printf "%.4f\n", (n > t ? n : t)
  }'
}
peak_rss_kib() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
# Events the kernel could not queue for the listening socket(s) of a namespace: the Drops column
# of every NETLINK_NETFILTER socket (protocol 12) subscribed to groups, in /proc/net/netlink.
# shellcheck disable=SC2016 # awk programs
kernel_drops() { ip netns exec "$1" awk '$2 == 12 && $4 != "00000000" { d += $9 } END { print d + 0 }' /proc/net/netlink; }
subscribed() { ip netns exec "$1" awk '$2 == 12 && $4 != "00000000" { n++ } END { exit n > 0 ? 0 : 1 }' /proc/net/netlink; }
kv() { awk -F= -v k="$2" '$1 == k { print $2; exit }' "$1"; }
file_bytes() { local total=0 f; for f in "$@"; do [[ -f $f ]] && total=$((total + $(stat -c %s "$f"))); done; echo "$total"; }

# The tool is idle when its CPU time (ticks) stands still for idle_polls looks 0.5 s apart
# (1.5 s); gives up after --drain-timeout. Longer than ctauditd's flush interval plus its
# reader's longest wait (1 s + 224 ms), so that the write of its last batch falls inside the
# measurement: with 1 s a daemon that spends a few ms a second could look idle before that write
# (ticks are 10 ms).
idle_polls=3
wait_idle() {
  local pid=$1 before after i still=0
  before=$(cpu_ticks "$pid")
  for ((i = 0; i < drain_timeout * 2; i++)); do
    sleep 0.5
    kill -0 "$pid" 2>/dev/null || return 1
    after=$(cpu_ticks "$pid")
    if [[ $after == "$before" ]]; then
      ((++still >= idle_polls)) && return 0
    else
      still=0
    fi
    before=$after
  done
  return 1
}

# ---------------------------------------------------------------- the tools
# start_TOOL NS DIR: starts the tool in NS, writing into DIR; sets tool_pid. Every tool is started
# with `ip netns exec NS TOOL`, which execs the tool, so $! is the tool's own PID.
# stored_TOOL DIR: after the tool has exited, prints "unit expected_kind stored bytes" lines:
# one line per output (ctauditd has two), unit = event (one record per conntrack event) or flow
# (one record per flow, written at its DESTROY).

start_listener() {
  ip netns exec "$1" "$CT_COUNT" --buffer-size 64M >"$2/count.txt" 2>"$2/tool.log" &
  tool_pid=$!
}
stored_listener() {
  echo "listener event $(( $(kv "$1/count.txt" new) + $(kv "$1/count.txt" destroy) )) 0"
}

start_ctauditd() {
  ip netns exec "$1" "$CTAUDITD" --db "$2/flows.db" --jsonl "$2/flows.jsonl" </dev/null >"$2/tool.log" 2>&1 &
  tool_pid=$!
}
# SQLite: flows whose DESTROY the daemon stored (dur_ms set: ended, and not a bound it made up itself,
# the flag 16 in packed >> 16; docs/schema.md). JSON lines: NEW and DESTROY lines (not
# dump or gap lines).
ctauditd_sqlite_complete="SELECT count(*) FROM flows WHERE dur_ms IS NOT NULL AND ((packed >> 16) & 16) = 0;"
stored_ctauditd() {
  local rows
  rows=$(sqlite3 -readonly "$1/flows.db" "$ctauditd_sqlite_complete" 2>"$1/sqlite.err") || {
    note "warning: cannot count completed flows in ctauditd's database ($(cat "$1/sqlite.err")); counting all rows"
    rows=$(sqlite3 -readonly "$1/flows.db" "SELECT count(*) FROM flows;" 2>/dev/null || echo 0)
  }
  echo "ctauditd-sqlite flow $rows $(file_bytes "$1/flows.db" "$1/flows.db-wal")"
  local lines
  lines=$(grep -c -E '"action":"(new|destroy)"' "$1/flows.jsonl" 2>/dev/null)
  echo "ctauditd-jsonl event ${lines:-0} $(file_bytes "$1/flows.jsonl")"
}

# ulogd2 with its defaults (hash on: one record per flow, at its DESTROY), configs written here.
ulogd_config() {
  local dir=$1 stack=$2 plugins=$3 output=$4 plugin
  {
    echo "[global]"
    echo "logfile=\"$dir/ulogd.log\""
    echo "loglevel=3"
    for plugin in $plugins; do echo "plugin=\"$ulogd_plugins/ulogd_$plugin.so\""; done
    echo "stack=$stack"
    echo
    echo "[ct1]"
    echo
    echo "$output"
  } >"$dir/ulogd.conf"
}
start_ulogd-sqlite() {
  # The shipped schema stores no NAT mapping: add the reply tuple (its destination address and
  # port are the translated source), as an operator would.
  sed -E 's/^([[:space:]]*ct_mark[[:space:]]+INT UNSIGNED)$/\1,\n\t\t\treply_ip_saddr INT UNSIGNED,\n\t\t\treply_ip_daddr INT UNSIGNED,\n\t\t\treply_l4_sport SMALLINT UNSIGNED,\n\t\t\treply_l4_dport SMALLINT UNSIGNED/' \
    "$ulogd_schema" >"$2/schema.sql"
  grep -q reply_l4_dport "$2/schema.sql" || die "could not add the reply columns to $ulogd_schema (its layout changed?)"
  sqlite3 "$2/ulogd.sqlite" <"$2/schema.sql" || die "cannot create ulogd2's database from $2/schema.sql"
  ulogd_config "$2" "ct1:NFCT,sqlite3_ct:SQLITE3" "inpflow_NFCT output_SQLITE3" \
    $'[sqlite3_ct]\ntable="ulog_ct"\ndb="'"$2"'/ulogd.sqlite"'
  ip netns exec "$1" ulogd -c "$2/ulogd.conf" </dev/null >"$2/tool.log" 2>&1 &
  tool_pid=$!
}
stored_ulogd-sqlite() {
  echo "ulogd-sqlite flow $(sqlite3 -readonly "$1/ulogd.sqlite" 'SELECT count(*) FROM ulog_ct;' 2>/dev/null || echo 0) $(file_bytes "$1/ulogd.sqlite" "$1/ulogd.sqlite-journal")"
}

start_ulogd-json() {
  ulogd_config "$2" "ct1:NFCT,ip2str1:IP2STR,json1:JSON" "inpflow_NFCT filter_IP2STR output_JSON" \
    $'[json1]\nfile="'"$2"'/ulogd.json"'
  ip netns exec "$1" ulogd -c "$2/ulogd.conf" </dev/null >"$2/tool.log" 2>&1 &
  tool_pid=$!
}
stored_ulogd-json() {
  local lines
  lines=$(grep -c '"ct.event"' "$1/ulogd.json" 2>/dev/null)
  echo "ulogd-json flow ${lines:-0} $(file_bytes "$1/ulogd.json")"
}

start_conntrack() {
  ip netns exec "$1" conntrack -E -o timestamp,extended >"$2/events.txt" 2>"$2/tool.log" &
  tool_pid=$!
}
stored_conntrack() {
  local lines
  lines=$(grep -c -E '\[(NEW|DESTROY)\]' "$1/events.txt" 2>/dev/null)
  echo "conntrack event ${lines:-0} $(file_bytes "$1/events.txt")"
}

# Waits until the tool listens (its socket has joined the event groups; ctauditd also logs
# "ready" after its start-up dump). At most 15 s.
wait_ready() {
  local tool=$1 ns=$2 dir=$3 i
  for ((i = 0; i < 150; i++)); do
    kill -0 "$tool_pid" 2>/dev/null || break
    if subscribed "$ns" && { [[ $tool != ctauditd ]] || grep -qw ready "$dir/tool.log" 2>/dev/null; }; then
      sleep 0.2
      return 0
    fi
    sleep 0.1
  done
  note "$tool did not start listening in $ns; its log:"
  cat "$dir/tool.log" >&2
  return 1
}

# Stops the tool (SIGTERM; SIGKILL after 120 s) and waits for it.
stop_tool() {
  local i
  kill -TERM "$tool_pid" 2>/dev/null
  for ((i = 0; i < 1200; i++)); do
    kill -0 "$tool_pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$tool_pid" 2>/dev/null; then
    note "warning: $1 did not exit within 120 s of SIGTERM; killing it"
    kill -KILL "$tool_pid" 2>/dev/null
  fi
  wait "$tool_pid" 2>/dev/null
  tool_pid=""
}

# ---------------------------------------------------------------- one measurement
csv=$results/results.csv
echo "kind,tool,output,target_rate,achieved_rate,duration_s,events_offered,flows_offered,unit,records_expected,records_stored,loss_pct,kernel_drops,cpu_s,cpu_ms_per_1k_events,peak_rss_kib,bytes,bytes_per_flow,drain_s,drained,cpu_ms_per_1k_recorded" >"$csv"

# measure KIND TOOL TARGET DURATION: KIND is "ladder" (ct_loadgen in one namespace) or "real"
# (udp_flood from a client namespace through a masquerading gateway namespace, the tool in the
# gateway). Appends one CSV row per output of the tool and prints them.
measure() {
  local kind=$1 tool=$2 target=$3 dur=$4
  local dir=$results/runs/$kind-$tool-$target
  local data=$work/$kind-$tool-$target
  mkdir -p "$dir" "$data"
  local ns client="" server=""
  if [[ $kind != real ]]; then
    new_ns l
    ns=$made_ns
  else
    new_topology
    client=$topo_client ns=$topo_gateway server=$topo_server
  fi
  "start_$tool" "$ns" "$data"
  wait_ready "$tool" "$ns" "$data" || { cp "$data/tool.log" "$dir/" 2>/dev/null; del_ns "$ns"; return 1; }
  local cpu0 t0 t_end achieved events flows
  cpu0=$(cpu_mark "$tool_pid")
  t0=$(date +%s%N)
  if [[ $kind != real ]]; then
    ip netns exec "$ns" "$CT_LOADGEN" --rate "$target" --duration "$dur" --live "$live" --ends "$ends" --batch 32 \
      >"$dir/load.txt" 2>&1
    local load_rc=$?
    ((load_rc == 0 || load_rc == 3)) || { cat "$dir/load.txt" >&2; die "ct_loadgen failed (exit $load_rc) for $tool at $target"; }
    ((load_rc == 0)) || note "warning: $tool at $target: some ct_loadgen requests failed (see $dir/load.txt)"
    events=$(kv "$dir/load.txt" requests)
    flows=$(kv "$dir/load.txt" created)
    achieved=$(kv "$dir/load.txt" create_phase_requests_per_s)
  else
    ip netns exec "$client" "$UDP_FLOOD" --rate "$target" --duration "$dur" >"$dir/load.txt" 2>&1 ||
      { cat "$dir/load.txt" >&2; die "udp_flood failed for $tool"; }
    # The DESTROY of every flow still in the table: a flush, like a garbage-collector sweep.
    ip netns exec "$ns" conntrack -F >/dev/null 2>&1
    # NAT'd flows = first packets through the nat chain (it sees only a flow's first packet).
    flows=$(ip netns exec "$ns" nft list chain ip nat post | awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") print $(i + 1) }')
    events=$((2 * flows))
    achieved=$(awk -v f="$flows" -v s="$(kv "$dir/load.txt" elapsed_s)" 'BEGIN { printf "%d", (s > 0 ? 2 * f / s : 0) }')
  fi
  t_end=$(date +%s%N)
  local drained=1
  wait_idle "$tool_pid" || { drained=0; note "warning: $tool at $target was still busy $drain_timeout s after the load"; }
  local drain_s cpu1 rss drops
  drain_s=$(awk -v a="$t_end" -v b="$(date +%s%N)" -v w="$idle_polls" 'BEGIN { printf "%.1f", (b - a) / 1e9 - w * 0.5 }')
  cpu1=$(cpu_mark "$tool_pid")
  rss=$(peak_rss_kib "$tool_pid")
  drops=$(kernel_drops "$ns")
  stop_tool "$tool"
  cp "$data/tool.log" "$dir/" 2>/dev/null
  [[ -f $data/ulogd.log ]] && cp "$data/ulogd.log" "$dir/"
  [[ -f $data/count.txt ]] && cp "$data/count.txt" "$dir/"
  local secs
  secs=$(awk -v a="$t0" -v b="$t_end" 'BEGIN { printf "%.1f", (b - a) / 1e9 }')
  local output unit stored bytes expected
  while read -r output unit stored bytes; do
    expected=$events
    [[ $unit == flow ]] && expected=$flows
    awk -v k="$kind" -v t="$tool" -v o="$output" -v tr="$target" -v a="$achieved" -v d="$secs" -v e="$events" \
      -v f="$flows" -v u="$unit" -v x="$expected" -v s="$stored" -v dr="$drops" -v cpu="$(cpu_seconds "$cpu0" "$cpu1")" \
      -v r="$rss" -v b="$bytes" -v ds="$drain_s" -v dd="$drained" 'BEGIN {
        loss = x > 0 ? 100 * (x - s) / x : 0
        if (loss < 0) loss = 0
        stored_flows = u == "flow" ? s : s / 2
        per_1k = e > 0 ? 1e6 * cpu / e : 0
        per_flow = (b > 0 && stored_flows > 0) ? sprintf("%.0f", b / stored_flows) : ""
        # CPU per 1000 events that made it into the output (a flow record stands for 2 events).
        recorded = u == "flow" ? 2 * s : s
        per_1k_recorded = recorded > 0 ? 1e6 * cpu / recorded : 0
        # %.0f, not %d, for counts: mawk clips %d at 2^31 - 1 (a 60 s ceiling rung writes 13 GB of JSON).
        printf "%s,%s,%s,%s,%d,%s,%.0f,%.0f,%s,%.0f,%.0f,%.2f,%.0f,%.2f,%.2f,%d,%.0f,%s,%s,%d,%.2f\n", k, t, o, tr, a, d, e, f, u, x, s, loss,
          dr, cpu, per_1k, r, b, per_flow, ds, dd, per_1k_recorded
      }' | tee -a "$csv"
  done < <("stored_$tool" "$data")
  del_ns "$ns"
  [[ -n $client ]] && del_ns "$client"
  [[ -n $server ]] && del_ns "$server"
  rm -rf "$data"
}

# Three namespaces: client (100.64.0.2/10, the inside hosts) -> gateway (masquerades to
# 203.0.113.1) -> server (198.51.100.10, drops the packets so that no ICMP comes back). Sets
# topo_client, topo_gateway, topo_server; dies on failure (the trap removes the namespaces).
topo_client="" topo_gateway="" topo_server=""
new_topology() {
  local client gateway server
  new_ns c && client=$made_ns
  new_ns g && gateway=$made_ns
  new_ns s && server=$made_ns
  ip link add c0 netns "$client" type veth peer name c1 netns "$gateway" &&
    ip link add s1 netns "$gateway" type veth peer name s0 netns "$server" &&
    ip -n "$client" addr add 100.64.0.2/10 dev c0 && ip -n "$client" link set c0 up &&
    ip -n "$client" route add default via 100.64.0.1 &&
    ip -n "$gateway" addr add 100.64.0.1/10 dev c1 && ip -n "$gateway" link set c1 up &&
    ip -n "$gateway" addr add 203.0.113.1/24 dev s1 && ip -n "$gateway" link set s1 up &&
    ip -n "$gateway" route add 198.51.100.0/24 via 203.0.113.2 &&
    ip -n "$server" addr add 203.0.113.2/24 dev s0 && ip -n "$server" link set s0 up &&
    ip -n "$server" addr add 198.51.100.10/32 dev lo &&
    ip netns exec "$gateway" sysctl -qw net.ipv4.ip_forward=1 >/dev/null ||
    die "cannot build the client/gateway/server namespaces (veth, addresses, routes)"
  ip netns exec "$gateway" nft -f - <<'EOF' || die "cannot load the masquerade ruleset in $gateway"
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat;
    oifname "s1" counter masquerade
  }
}
EOF
  ip netns exec "$server" nft -f - <<'EOF' || die "cannot load the drop ruleset in $server"
table inet sink {
  chain in {
    type filter hook input priority 0;
    udp dport 10000-10999 counter drop
  }
}
EOF
  topo_client=$client topo_gateway=$gateway topo_server=$server
}

# ---------------------------------------------------------------- the run
# What was measured, taken at the start: the tree may change while the run goes on.
run_date=$(date -u '+%Y-%m-%d %H:%M UTC')
run_commit=$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)
{
  echo "date: $run_date"
  echo "command: $command_line"
  echo "commit: $run_commit"
  echo "nproc: $(nproc)"
  echo "cpu: $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)"
  echo "kernel: $(uname -r)"
  echo "memory: $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "ulogd2: $(dpkg-query -W -f='${Version}' ulogd2 2>/dev/null)"
  echo "conntrack: $(dpkg-query -W -f='${Version}' conntrack 2>/dev/null)"
  echo "sqlite3: $(sqlite3 --version | cut -d' ' -f1)"
  echo "rung duration: $duration; ctauditd ceiling rung: $ceiling_duration; real traffic: $real_duration"
} >"$results/machine.txt"
cat "$results/machine.txt" >&2
run_start=$(date +%s)
# CPU time the hypervisor gave to others while this VM wanted it ("steal", /proc/stat): it is
# charged to no process, yet makes every rung slower; the header says how much the run had.
host_cpu_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9, $9 }' /proc/stat; }
read -r total_before steal_before < <(host_cpu_ticks)

note "the ceiling: ct_loadgen --rate max with one counting listener, $duration"
measure ceiling listener max "$duration" || die "the ceiling measurement failed"
ceiling=$(awk -F, '$1 == "ceiling" { print int($5 / 1000) * 1000 }' "$csv")
((ceiling > 0)) || die "the ceiling measurement gave no rate (see $results/runs/ceiling-listener-max)"
note "ceiling: $ceiling events/s"

ladder=()
for rate in $rates; do
  if [[ $rate == ceiling ]]; then
    ladder+=("$ceiling")
  elif ((rate < ceiling)); then
    ladder+=("$rate")
  else
    note "skipping rate $rate: not below the ceiling ($ceiling events/s)"
  fi
done
for rate in "${ladder[@]}"; do
  for tool in $tools; do
    dur=$duration
    [[ $tool == ctauditd && $rate == "$ceiling" ]] && dur=$ceiling_duration
    note "$tool at $rate events/s for $dur"
    measure ladder "$tool" "$rate" "$dur" || note "warning: $tool at $rate failed (see $results/runs)"
  done
done
if [[ $(to_seconds "$real_duration") != 0 ]]; then
  for tool in listener ctauditd; do
    [[ " $tools " == *" $tool "* ]] || continue
    note "real traffic: udp_flood --rate max for $real_duration through a masquerading gateway, $tool in it"
    measure real "$tool" max "$real_duration" || note "warning: real traffic with $tool failed"
  done
fi
run_seconds=$(($(date +%s) - run_start))
echo "ingest run time: ${run_seconds} s" >>"$results/machine.txt"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$results/machine.txt"
read -r total_after steal_after < <(host_cpu_ticks)
echo "cpu steal: $(awk -v t=$((total_after - total_before)) -v s=$((steal_after - steal_before)) \
  'BEGIN { printf "%.1f", (t > 0 ? 100 * s / t : 0) }') %" >>"$results/machine.txt"

# results.json: the CSV rows as objects, numbers as numbers.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) key[i] = $i; n = NF; print "["; next }
  { printf "%s  {", (NR > 2 ? ",\n" : "")
    for (i = 1; i <= n; i++) {
      v = $i
      if (v !~ /^-?[0-9]+(\.[0-9]+)?$/) v = "\"" v "\""
      printf "%s\"%s\": %s", (i > 1 ? ", " : ""), key[i], v
    }
    printf "}" }
  END { print "\n]" }' "$csv" >"$results/results.json"

# ---------------------------------------------------------------- the plot
label() {
  case $1 in
    listener) echo "counting listener (floor)" ;;
    ctauditd-sqlite) echo "ctauditd, SQLite" ;;
    ctauditd-jsonl) echo "ctauditd, JSON lines" ;;
    ulogd-sqlite) echo "ulogd2 NFCT→SQLITE3" ;;
    ulogd-json) echo "ulogd2 NFCT→IP2STR→JSON" ;;
    conntrack) echo "conntrack -E > file" ;;
    *) echo "$1" ;;
  esac
}
plot=$results/ingest-ladder.png
plot_cmds=$work/plot.gp
{
  echo "set terminal pngcairo size 1000,650 font 'sans,10'"
  echo "set output '$plot'"
  echo "set title 'Recorded vs offered conntrack event rate ($(nproc) cores, $(uname -r), ${run_date% *})'"
  echo "set xlabel 'offered events/s (ct\\_loadgen, achieved)'"
  echo "set ylabel 'recorded events/s (stored records, in events)'"
  echo "set logscale xy"
  echo "set grid"
  echo "set key left top"
  echo "set xrange [500:$((ceiling * 3 / 2))]"
  echo "set yrange [100:$((ceiling * 3 / 2))]"
  echo "set arrow from $ceiling, graph 0 to $ceiling, graph 1 nohead dashtype 3 lc rgb 'black'"
  echo "set label 'ceiling $ceiling/s' at $ceiling, graph 0.04 right offset -0.5, 0"
  echo "set datafile separator ','"
  printf "plot x title 'y = x (nothing lost)' with lines dashtype 2 lw 2 lc rgb 'black'"
  for output in listener ctauditd-sqlite ctauditd-jsonl ulogd-sqlite ulogd-json conntrack; do
    # In ladder order (the offered rate), plotted at the achieved rate.
    awk -F, -v o="$output" '$1 == "ladder" && $3 == o { print $4 "," $5 "," $5 * (100 - $12) / 100 }' "$csv" | sort -t, -n -k1 |
      cut -d, -f2- >"$work/plot-$output.csv"
    [[ -s $work/plot-$output.csv ]] &&
      printf ", '%s' using 1:2 title '%s' with linespoints" "$work/plot-$output.csv" "$(label "$output")"
  done
  echo
} >"$plot_cmds"
gnuplot "$plot_cmds" 2>"$results/gnuplot.log" || note "warning: gnuplot failed (see $results/gnuplot.log)"

# ---------------------------------------------------------------- the tables
tables=$results/ingest-ladder.md
{
  echo "Measured by \`$command_line\` from $run_date, commit \`$run_commit\`."
  echo "Machine: $(nproc) CPUs ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), kernel $(uname -r),"
  echo "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo) memory; load average before the run $(awk -F': ' '/^load before/ { print $2 }' "$results/machine.txt"), after $(awk -F': ' '/^load after/ { print $2 }' "$results/machine.txt");"
  echo "CPU steal (time the hypervisor gave to other guests) over the ingest part: $(awk -F': ' '/^cpu steal/ { print $2 }' "$results/machine.txt")."
  echo "ulogd2 $(dpkg-query -W -f='${Version}' ulogd2 2>/dev/null), conntrack $(dpkg-query -W -f='${Version}' conntrack 2>/dev/null), SQLite $(sqlite3 --version | cut -d' ' -f1)."
  echo "Rungs of $duration (ctauditd's ceiling rung $ceiling_duration), ct_loadgen \`--live $live --ends $ends --batch 32\`; the ingest part took ${run_seconds} s."
  echo
  echo "**Ceiling** (ct_loadgen \`--rate max\` with one counting listener): **$ceiling events/s**."
  echo
  echo "![recorded vs offered event rate](img/ingest-ladder.png)"
  echo
  echo "| offered events/s | tool → output | achieved events/s | events offered | unit | records expected | records stored | loss % | kernel drops | CPU ms / 1k events | CPU ms / 1k recorded | peak RSS MiB | bytes / flow | drain s |"
  echo "|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 && $1 != "real"' "$csv" | sort -t, -k1,1 -k4,4n -s | while IFS=, read -r k _ o tr a _ e _ u x s l dr _ cpk r _ bpf ds dd cpr; do
    rung=$tr
    [[ $k == ceiling ]] && rung="max: the ceiling run"
    [[ $k == ladder && $tr == "$ceiling" ]] && rung="$tr (ceiling)"
    ((dd == 1)) || ds="$ds (not idle)"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n' "$rung" "$(label "$o")" "$a" "$e" "$u" "$x" "$s" "$l" "$dr" "$cpk" \
      "$cpr" "$(awk -v r="$r" 'BEGIN { print r / 1024 }')" "${bpf:-–}" "$ds"
  done
  if grep -q '^real,' "$csv"; then
    echo
    echo "**Real traffic**: udp_flood \`--rate max\` for $real_duration, one UDP packet per new flow, from a client namespace through a masquerading gateway namespace (the tool runs in the gateway), then \`conntrack -F\` there for the DESTROYs. Offered flows = the gateway nat chain's packet counter (it sees each flow's first packet)."
    echo
    echo "| tool → output | packets sent | NAT'd flows | new flows/s | events offered | unit | records stored | loss % | kernel drops | CPU ms / 1k events | peak RSS MiB | bytes / flow | drain s |"
    echo "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|"
    awk -F, '$1 == "real"' "$csv" | while IFS=, read -r _ t o _ a _ e f u _ s l dr _ cpk r _ bpf ds _ _; do
      printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %.1f | %s | %s |\n' "$(label "$o")" "$(kv "$results/runs/real-$t-max/load.txt" packets)" "$f" \
        "$((a / 2))" "$e" "$u" "$s" "$l" "$dr" "$cpk" "$(awk -v r="$r" 'BEGIN { print r / 1024 }')" "${bpf:-–}" "$ds"
    done
  fi
} >"$tables"
cat "$tables"

if ((docs)); then
  doc=$repo/docs/benchmarks.md
  if grep -q '<!-- BEGIN ingest-ladder -->' "$doc" && grep -q '<!-- END ingest-ladder -->' "$doc"; then
    awk -v f="$tables" '
      /<!-- BEGIN ingest-ladder -->/ { print; while ((getline line < f) > 0) print line; skip = 1; next }
      /<!-- END ingest-ladder -->/ { skip = 0 }
      !skip' "$doc" >"$work/benchmarks.md" && cat "$work/benchmarks.md" >"$doc"
  else
    note "warning: $doc has no ingest-ladder markers; the tables are in $tables"
  fi
  if [[ -s $plot ]]; then
    mkdir -p "$repo/docs/img" && cp "$plot" "$repo/docs/img/ingest-ladder.png"
  fi
fi

# ---------------------------------------------------------------- the query half
if ((query)) && [[ -f $ladder_script ]]; then
  help=$(bash "$ladder_script" --help 2>&1 || true)
  qargs=()
  [[ $help == *--build* ]] && qargs+=(--build "$bin")
  ((!docs)) && [[ $help == *--no-doc* ]] && qargs+=(--no-doc)
  ((quick)) && [[ -z $query_sizes ]] && query_sizes=1M
  if [[ -n $query_sizes ]]; then
    [[ $help == *--sizes* ]] || die "--query-sizes: $ladder_script does not take --sizes (see its --help)"
    qargs+=(--sizes "$query_sizes")
  fi
  ((quick)) && [[ $help == *--quick* ]] && qargs+=(--quick)
  # shellcheck disable=SC2206 # --query-args is word-split on purpose
  [[ -n $query_args ]] && qargs+=($query_args)
  note "the query ladder: $ladder_script ${qargs[*]}"
  mkdir -p "$results/query"
  CTAUDIT_BUILD_DIR=$bin BENCH_RESULTS_DIR=$results/query BENCH_QUICK=$quick \
    bash "$ladder_script" "${qargs[@]}" 2>&1 | tee "$results/query/query-ladder.log"
  query_rc=${PIPESTATUS[0]}
  ((query_rc == 0)) || note "warning: $ladder_script failed (exit $query_rc; see $results/query/query-ladder.log)"
elif ((query)); then
  note "no $ladder_script here: the query half was not run"
fi
note "results in $results (total $(($(date +%s) - run_start)) s)"
