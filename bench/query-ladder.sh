#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The query ladder: how fast `ctaudit who` and `ctaudit flows --src` answer on 1M, 10M and 100M
# flows, next to the obvious SQL in the sqlite3 shell on ulogd2's SQLITE3 table and to grep over
# JSON lines; and how many bytes a flow costs in each. bench/flowdb_gen builds the same flows into
# all three (cached under --work, rebuilt only when the size or the generator changes).
#
#   bench/query-ladder.sh [--sizes 1M,10M,100M] [--work DIR] [--lookups N] [--cold-lookups N] [--json-max 10M]
#                         [--build DIR] [--doc docs/benchmarks.md] [--no-doc] [--rebuild] [--gen-nice N]
#
# Times are process start to exit, measured around each command with bash's EPOCHREALTIME (fork
# and exec included), warm page cache (each store is read once before timing). `who` is looked up
# at --lookups real mappings (samples.tsv: a translated address and port at a time inside a flow),
# and every answer is checked to name the right inside host. ulogd2's table has no index (none is
# shipped), so each of its queries scans the table: it runs fewer lookups (--slow-lookups).
# Then the same two ctaudit questions cold: the database file is dropped from the page cache
# (dd iflag=nocache, this file only) before each of --cold-lookups runs, as when a lookup reaches
# data the gateway has not read for a while or a log larger than RAM.
# Prints a markdown table and writes it into --doc between the query-ladder markers. --gen-nice runs
# the generator at that nice level (the queries always run at the script's own).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
sizes="1M,10M,100M"
work="${CTAUDIT_BENCH_WORK:-/var/tmp/ctaudit-query-ladder}"
lookups=200
slow_lookups=5
cold_lookups=20
json_max=10000000
build="$repo/build/ci"
doc="$repo/docs/benchmarks.md"
write_doc=1
rebuild=0
gen_nice=0

die() { echo "query-ladder: $*" >&2; exit 1; }
count_of() {  # 1M -> 1000000, 10k -> 10000, 123 -> 123
  local s=$1
  case $s in
    *[mM]) echo $(( ${s%?} * 1000000 ));;
    *[kK]) echo $(( ${s%?} * 1000 ));;
    *[!0-9]*|'') die "not a size: '$s' (use e.g. 1M, 500k, 100000)";;
    *) echo "$s";;
  esac
}

while (( $# )); do
  case $1 in
    --sizes) sizes=$2; shift 2;;
    --work) work=$2; shift 2;;
    --lookups) lookups=$2; shift 2;;
    --slow-lookups) slow_lookups=$2; shift 2;;
    --cold-lookups) cold_lookups=$2; shift 2;;
    --json-max) json_max=$(count_of "$2"); shift 2;;
    --build) build=$2; shift 2;;
    --doc) doc=$2; shift 2;;
    --no-doc) write_doc=0; shift;;
    --rebuild) rebuild=1; shift;;
    --gen-nice) gen_nice=$2; shift 2;;
    -h|--help) sed -n '3,23p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) die "unknown option '$1'; see --help";;
  esac
done

gen="$build/bench/flowdb_gen/flowdb_gen"
ctaudit="$build/query/ctaudit"
[[ -x $gen && -x $ctaudit ]] || die "build first: cmake --preset ci && cmake --build build/ci -j2 (looked in $build)"
command -v sqlite3 >/dev/null || die "sqlite3 is missing: apt-get install -y sqlite3"
command -v fincore >/dev/null || die "fincore is missing: apt-get install -y util-linux-extra"
mkdir -p "$work"
# Output goes to a file, not /dev/null: GNU grep notices /dev/null and stops at the first match
# (even with -c), which would time nothing.
sink_file="$work/.query-output"

# "wall_ms cpu_ms" taken by "$@" (stdout and stderr discarded), process start to exit; CPU is the
# child's user + system time (bash's `time`), which a loaded machine disturbs far less than wall.
elapsed_ms() {
  local TIMEFORMAT='%3R %3U %3S' line
  line=$( { time "$@" >"$sink_file" 2>&1; } 2>&1 ) || true
  awk '{ printf "%.2f %.2f\n", $1 * 1000, ($2 + $3) * 1000 }' <<<"$line"
}
# "median p99" of column $1 (default 1) of the numbers on stdin.
stats() {
  awk -v c="${1:-1}" '{ print $c }' | sort -n | awk '{ v[NR] = $1 } END {
    if (NR == 0) { print "- -"; exit }
    m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
    i = int(NR * 0.99 + 0.999999); if (i > NR) i = NR; if (i < 1) i = 1
    printf "%.1f %.1f\n", m, v[i] }'
}
human() { awk -v n="$1" 'BEGIN { if (n >= 1e6) printf "%gM", n / 1e6; else if (n >= 1e3) printf "%gk", n / 1e3; else print n }'; }
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
per_flow() { awk -v b="$1" -v n="$2" 'BEGIN { printf "%.0f", b / n }'; }
# Percent of file $1 in the page cache.
cached_pct() { fincore -b -n -o RES,SIZE "$1" | awk '{ printf "%.0f", ($2 > 0 ? $1 * 100 / $2 : 0) }'; }
# Drops file $1 (only it) from the page cache.
drop_cache() { dd if="$1" iflag=nocache count=0 status=none; }

# The cache key: what decides the stores' content (the generator, the row layout, the schema and
# the spans), not the binary, so that rebuilding with an unrelated change keeps the (slow to build)
# cache. The schema version is also in the stamp in the clear, and check_stores compares it with
# the file's user_version, so a store of another version is never measured (a version-2 store
# once was: same generator, new layout). --rebuild forces a new build.
schema_version=$(sed -n 's/.*kSchemaVersion = \([0-9]*\);.*/\1/p' "$repo/storage/schema.hpp")
[[ -n $schema_version ]] || die "cannot read kSchemaVersion from $repo/storage/schema.hpp"
gen_id=$(cat "$repo/bench/flowdb_gen/flowdb_gen.cpp" "$repo/storage/flow_row.cpp" "$repo/storage/flow_row.hpp" \
  "$repo/storage/json_mapping.cpp" \
  "$repo/storage/schema.cpp" "$repo/storage/schema.hpp" "$repo/storage/spans.cpp" | sha256sum | cut -c1-16)
# The ctaudit database and ulogd2's table hold the same flows in the same order (flowdb_gen writes
# them from two copies of one deterministic sequence, on two threads): row i of each, for 1000 i
# spread over the store and the last, must agree on the tuple, the NAT mapping, the times and the
# counters. flowdb_gen itself checks the ctaudit file against SqliteSink. Schema version 4 columns
# (docs/schema.md): orig_src/orig_dst/nat_src are endpoints ((address << 16 | port) - 2^47), the
# protocol is the low byte of packed, start_ms is the start rounded down to the
# millisecond (so exactly ulogd2's microseconds / 1000) and start_ms + dur_ms the end rounded up
# (ulogd2's end microseconds U give ceil(U / 1000) or, for a sub-microsecond rest, one more);
# `counters` holds LEB128 varints of packets + 1 and bytes, orig then reply, which SQL cannot take
# apart but can build from ulogd2's columns (leb128_hex) and compare with hex(counters).
leb128_hex() {
  local e=$1
  echo "CASE WHEN $e < 128 THEN printf('%02X', $e)
    WHEN $e < 16384 THEN printf('%02X%02X', ($e & 127) | 128, $e >> 7)
    WHEN $e < 2097152 THEN printf('%02X%02X%02X', ($e & 127) | 128, (($e >> 7) & 127) | 128, $e >> 14)
    WHEN $e < 268435456 THEN printf('%02X%02X%02X%02X', ($e & 127) | 128, (($e >> 7) & 127) | 128,
      (($e >> 14) & 127) | 128, $e >> 21)
    WHEN $e < 34359738368 THEN printf('%02X%02X%02X%02X%02X', ($e & 127) | 128, (($e >> 7) & 127) | 128,
      (($e >> 14) & 127) | 128, (($e >> 21) & 127) | 128, $e >> 28)
    ELSE 'past 2^35' END"
}
check_stores() {
  local dir=$1 n=$2 step bad version
  step=$(( n / 1000 > 0 ? n / 1000 : 1 ))
  version=$(sqlite3 -readonly "$dir/ctaudit.db" "PRAGMA user_version") || die "cannot read $dir/ctaudit.db"
  [[ $version == "$schema_version" ]] ||
    die "$dir/ctaudit.db is schema version $version, this tree writes $schema_version; rebuild with --rebuild"
  bad=$(sqlite3 -readonly "$dir/ctaudit.db" "ATTACH DATABASE '$dir/ulogd.db' AS ul;
    WITH RECURSIVE spread(i) AS (SELECT 1 UNION ALL SELECT i + $step FROM spread WHERE i + $step <= $n),
      ids(i) AS (SELECT i FROM spread UNION SELECT $n)
    SELECT (SELECT max(id) FROM flows) != $n OR (SELECT max(rowid) FROM ul.ulog_ct) != $n OR
      (SELECT count(*) FROM ids) != (SELECT count(*) FROM ids JOIN flows f ON f.id = ids.i
        JOIN ul.ulog_ct u ON u.rowid = ids.i
        WHERE u.orig_ip_saddr = (f.orig_src + 140737488355328) >> 16
          AND u.orig_l4_sport = (f.orig_src + 140737488355328) & 65535
          AND u.orig_ip_daddr = (f.orig_dst + 140737488355328) >> 16
          AND u.orig_l4_dport = (f.orig_dst + 140737488355328) & 65535
          AND u.orig_ip_protocol = (f.packed & 255)
          AND u.reply_ip_daddr = (f.nat_src + 140737488355328) >> 16
          AND u.reply_l4_dport = (f.nat_src + 140737488355328) & 65535
          AND f.start_ms = (u.flow_start_sec * 1000000 + u.flow_start_usec) / 1000
          AND f.start_ms + f.dur_ms BETWEEN (u.flow_end_sec * 1000000 + u.flow_end_usec + 999) / 1000
            AND (u.flow_end_sec * 1000000 + u.flow_end_usec + 1000) / 1000
          AND hex(f.counters) = $(leb128_hex "(u.orig_raw_pktcount + 1)") || $(leb128_hex u.orig_raw_pktlen) ||
            $(leb128_hex "(u.reply_raw_pktcount + 1)") || $(leb128_hex u.reply_raw_pktlen))") ||
    die "cannot compare the stores in $dir"
  [[ $bad == 0 ]] || die "$dir: ctaudit.db and ulogd.db do not hold the same $n flows; rebuild with --rebuild"
  echo "query-ladder: $(human "$n"): ctaudit.db and ulogd.db agree on 1000 sampled flows and the count" >&2
}

rows=()
breakdowns=()
build_times=()
cold_rows=()
for size in ${sizes//,/ }; do
  n=$(count_of "$size")
  dir="$work/$(human "$n")"
  want_json=$(( n <= json_max ))
  stamp="n=$n schema=$schema_version gen=$gen_id json=$want_json"
  if (( rebuild )) || [[ ! -f $dir/stamp || $(cat "$dir/stamp") != "$stamp" ]]; then
    echo "query-ladder: building $(human "$n") flows in $dir ..." >&2
    rm -rf "$dir"
    args=(--out "$dir" --flows "$n" --samples "$lookups")
    (( want_json )) || args+=(--no-json)
    t0=$EPOCHREALTIME
    nice -n "$gen_nice" "$gen" "${args[@]}" >&2
    built_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.0f", b - a }')
    echo "query-ladder: built in $built_s s" >&2
    # Kept with the store: the doc says how long each store took to build, and when.
    echo "$built_s s on $(date -u +%Y-%m-%d), nice $gen_nice" > "$dir/build-time"
    echo "$stamp" > "$dir/stamp"
  fi
  build_times+=("$(human "$n"): $(cat "$dir/build-time" 2>/dev/null || echo "not recorded")")
  db="$dir/ctaudit.db"
  check_stores "$dir" "$n"
  # Warm the page cache once, as a gateway's recent data would be; ctaudit's file last, so that
  # it is the one still cached if both do not fit in memory (at 100M: 13 GB + 8 GB).
  cat "$dir/ulogd.db" "$db" >/dev/null
  db_cached=$(cached_pct "$db")

  # --- ctaudit who: every sample, checked.
  who_times=()
  wrong=0
  while IFS=$'\t' read -r nat_ip nat_port at_rfc at_s inside; do
    who_times+=("$(elapsed_ms "$ctaudit" who "$nat_ip:$nat_port" --at "$at_rfc" --db "$db")")
    out=$("$ctaudit" who "$nat_ip:$nat_port" --at "$at_rfc" --db "$db" --format csv 2>/dev/null || true)
    grep -q ",$inside," <<<"$out" || wrong=$((wrong + 1))
  done < "$dir/samples.tsv"
  read -r who_med who_p99 < <(printf '%s\n' "${who_times[@]}" | stats 1)
  read -r who_cpu_med who_cpu_p99 < <(printf '%s\n' "${who_times[@]}" | stats 2)
  (( wrong == 0 )) || echo "query-ladder: WARNING: $wrong of ${#who_times[@]} who answers missed the inside host" >&2

  # --- ctaudit flows --src: one subscriber over the whole day the data spans.
  IFS=$'\t' read -r _ _ _ _ subscriber < "$dir/samples.tsv"
  day_from=1795000000; day_to=$((day_from + 86400))
  flows_out=$("$ctaudit" flows --src "$subscriber" --from "@$day_from" --to "@$day_to" --limit 0 --db "$db" --format csv)
  flows_rows=$(( $(wc -l <<<"$flows_out") - 1 ))
  flows_times=$(for _ in $(seq 20); do
    elapsed_ms "$ctaudit" flows --src "$subscriber" --from "@$day_from" --to "@$day_to" --limit 0 --db "$db"
  done)
  read -r flows_med flows_p99 < <(stats 1 <<<"$flows_times")
  read -r flows_cpu_med flows_cpu_p99 < <(stats 2 <<<"$flows_times")
  # --- Cold: the same questions with ctaudit.db dropped from the page cache before each run.
  read -r cold_who_med cold_who_p99 < <(head -n "$cold_lookups" "$dir/samples.tsv" |
    while IFS=$'\t' read -r nat_ip nat_port at_rfc _ _; do
      drop_cache "$db"
      elapsed_ms "$ctaudit" who "$nat_ip:$nat_port" --at "$at_rfc" --db "$db"
    done | stats 1)
  read -r cold_flows_med cold_flows_p99 < <(for _ in $(seq "$slow_lookups"); do
    drop_cache "$db"
    elapsed_ms "$ctaudit" flows --src "$subscriber" --from "@$day_from" --to "@$day_to" --limit 0 --db "$db"
  done | stats 1)
  cold_rows+=("| $(human "$n") | $db_cached% | $cold_who_med / $cold_who_p99 | $cold_flows_med / $cold_flows_p99 |")
  cat "$db" >/dev/null  # warm again for the rest

  # The floor: starting any process on this machine now.
  read -r true_med true_p99 < <(for _ in $(seq 50); do elapsed_ms /bin/true; done | stats 1)

  # --- ulogd2's table, the obvious SQL (reply_ip_daddr is the translated source, host order).
  ip_int() { local IFS=.; read -r a b c d <<<"$1"; echo $(( (a << 24) | (b << 16) | (c << 8) | d )); }
  read -r ul_who_med ul_who_p99 < <(head -n "$slow_lookups" "$dir/samples.tsv" |
    while IFS=$'\t' read -r nat_ip nat_port at_rfc at_s inside; do
      elapsed_ms sqlite3 -readonly "$dir/ulogd.db" "SELECT orig_ip_saddr, orig_l4_sport, orig_ip_daddr, orig_l4_dport,
        flow_start_sec, flow_end_sec FROM ulog_ct WHERE reply_ip_daddr = $(ip_int "$nat_ip")
        AND reply_l4_dport = $nat_port AND flow_start_sec <= $at_s AND flow_end_sec >= $at_s"
    done | stats)
  read -r ul_flows_med ul_flows_p99 < <(for _ in $(seq "$slow_lookups"); do
    elapsed_ms sqlite3 -readonly "$dir/ulogd.db" "SELECT * FROM ulog_ct WHERE orig_ip_saddr = $(ip_int "$subscriber")
      AND flow_start_sec <= $day_to AND flow_end_sec >= $day_from"
  done | stats)

  # --- grep over the JSON lines (the time is then read by eye; grep only finds the port's lines).
  if [[ -f $dir/flows.jsonl ]]; then
    cat "$dir/flows.jsonl" >/dev/null
    read -r gr_who_med gr_who_p99 < <(head -n "$slow_lookups" "$dir/samples.tsv" |
      while IFS=$'\t' read -r nat_ip nat_port _ _ _; do
        elapsed_ms grep -F "\"nat\":{\"ip\":\"$nat_ip\",\"port\":$nat_port}" "$dir/flows.jsonl"
      done | stats)
    read -r gr_flows_med gr_flows_p99 < <(for _ in $(seq "$slow_lookups"); do
      elapsed_ms grep -F "\"source\":{\"ip\":\"$subscriber\"," "$dir/flows.jsonl"
    done | stats)
    json_bpf=$(per_flow "$(file_size "$dir/flows.jsonl")" "$n")
  else
    gr_who_med="n/a"; gr_who_p99="n/a"; gr_flows_med="n/a"; gr_flows_p99="n/a"; json_bpf="n/a"
  fi

  ct_bpf=$(per_flow "$(file_size "$db")" "$n")
  ul_bpf=$(per_flow "$(file_size "$dir/ulogd.db")" "$n")
  breakdown=$(sqlite3 -readonly "$db" "SELECT group_concat(name || ' ' || b, ', ') FROM (SELECT name,
    printf('%.1f', sum(pgsize) * 1.0 / $n) AS b FROM dbstat WHERE name LIKE 'flows%' OR name LIKE 'spans%' GROUP BY name ORDER BY name)")
  rows+=("| $(human "$n") | $who_med / $who_p99 | $who_cpu_med / $who_cpu_p99 | $flows_med / $flows_p99 ($flows_rows rows) | $flows_cpu_med / $flows_cpu_p99 | $true_med / $true_p99 | $ul_who_med / $ul_who_p99 | $ul_flows_med / $ul_flows_p99 | $gr_who_med / $gr_who_p99 | $gr_flows_med / $gr_flows_p99 | $ct_bpf | $ul_bpf | $json_bpf |")
  breakdowns+=("| $(human "$n") | $breakdown |")
  echo "query-ladder: $(human "$n"): who ${#who_times[@]} lookups, $wrong wrong" >&2
done

built_list=$(printf '%s; ' "${build_times[@]}")
built_list=${built_list%; }
table=$(cat <<EOF
Query times in ms, median / p99, process start to exit (wall), and the CPU time (user + system)
of the same runs, warm page cache; \`/bin/true\` is the cost of starting any process at that moment; \`who\`: ${lookups} real
mappings for ctaudit (every answer checked), ${slow_lookups} for the others; \`flows --src\`: one
subscriber over the day the data spans (20 runs for ctaudit, ${slow_lookups} for the others).
Bytes per flow: file size / flows (ulogd2's table stores no NAT mapping of its own; the four reply
columns stand in for it). JSON lines only up to $(human "$json_max") flows.

| flows | ctaudit who | who CPU | ctaudit flows --src | flows CPU | /bin/true | ulogd2 SQL who | ulogd2 SQL src | grep JSON who | grep JSON src | ctaudit B/flow | ulogd2 B/flow | JSON B/flow |
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
$(printf '%s\n' "${rows[@]}")

The same ctaudit questions with a cold page cache (ctaudit.db dropped from it before each run;
\`who\` at the first ${cold_lookups} mappings, \`flows --src\` ${slow_lookups} runs), and how much of
ctaudit.db the warm runs above found in the page cache after reading it once (less than 100% when
the stores do not fit in RAM next to everything else):

| flows | ctaudit.db cached (warm runs) | who cold | flows --src cold |
|---:|---:|---:|---:|
$(printf '%s\n' "${cold_rows[@]}")

ctaudit bytes per flow by structure (dbstat, pages including their free space):

| flows | table and indexes |
|---:|---|
$(printf '%s\n' "${breakdowns[@]}")

Machine: $(nproc) cores ($(sed -n "s/^model name[[:space:]]*: //p" /proc/cpuinfo | head -n 1)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo) RAM, $(uname -r), $(date -u +%Y-%m-%d); generator \`flowdb_gen\` (--hosts 30000 --public 4, 24 h); stores built in ${built_list}.
EOF
)
echo "$table"

if (( write_doc )); then
  begin='<!-- BEGIN query-ladder -->'
  end='<!-- END query-ladder -->'
  if ! grep -qF "$begin" "$doc"; then
    printf '\n## Query ladder (`bench/query-ladder.sh`)\n\n%s\n%s\n' "$begin" "$end" >> "$doc"
  fi
  tmp=$(mktemp)
  BODY=$table awk -v begin="$begin" -v end="$end" '
    $0 == begin { print; print ENVIRON["BODY"]; skip = 1; next }
    $0 == end { skip = 0 }
    !skip { print }' "$doc" > "$tmp"
  cat "$tmp" > "$doc"
  rm -f "$tmp"
  echo "query-ladder: wrote the table into $doc" >&2
fi
