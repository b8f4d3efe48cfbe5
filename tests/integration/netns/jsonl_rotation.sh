#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# jsonl_rotation (issue #5): the JSON-lines file rotates under load, by ctauditd itself and by
# logrotate's rename + SIGHUP, and a reader that follows it the way Filebeat, Vector and Fluent Bit
# do (tests/tools/jsonl_follower.cpp: by inode, reading a renamed file to its end) reads every line
# exactly once.
#
# Part 1, built-in rotation: ctauditd with --jsonl-rotate 1M --jsonl-compress zstd --jsonl-grace 2s
# --jsonl-keep all, a follower on '^flows.*\.jsonl$' (the plain files only, as the shipper configs
# in docs/operations.md say), ct_loadgen offering NAT'd entries for 12 s. Checks:
#   - several files were closed; every closed file is compressed (no plain one, no .tmp left), its
#     name carries a UTC period inside the test's time, names follow each other, each holds at
#     most 1 MiB of lines;
#   - lines across all closed (decompressed) files and the active one == what the daemon reports
#     written to jsonl (records + gap lines, stats file) == what the follower counted; no line twice
#     (in the files or for the follower), none torn, every one a JSON object;
#   - the `new` and `destroy` lines match ct_loadgen's creates and deletes and the database's rows
#     (flows, and flows with an end), and the daemon wrote as many records to SQLite as to jsonl.
# Part 2, jsonl-keep: ctauditd restarted on the same directory with --jsonl-keep 3: the three newest
# closed files stay, the older ones are deleted.
# Part 3, logrotate: ctauditd with --jsonl-rotate none; during 10 s of load, logrotate runs with the
# shipped systemd/ctaudit.logrotate stanza (paths and the postrotate command pointed at this test's
# daemon) every second. The same counting checks, with the follower on flows.jsonl and its
# numbered (.1, .2, ... and delaycompressed .N.gz) files.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init jsonl_rotation --daemon --query --loadgen
: "${JSONL_FOLLOWER:=$CTA_REPO/build/ci/tests/jsonl_follower}"
[[ -x $JSONL_FOLLOWER ]] || cta_skip_or_fail "jsonl_follower not found at JSONL_FOLLOWER=$JSONL_FOLLOWER (build it)"
cta_require_tools zstd gzip logrotate
cta_load_ns_up

# follower_start DIR REGEX OUT: the follower in the background; pid in FOLLOWER_PID.
follower_start() {
  "$JSONL_FOLLOWER" "$1" "$2" >"$3" 2>"$3.err" &
  FOLLOWER_PID=$!
  CTA_PIDS+=("$FOLLOWER_PID")
}
# follower_stop OUT: SIGTERM, wait, and check it reported.
follower_stop() {
  kill -TERM "$FOLLOWER_PID" 2>/dev/null
  wait "$FOLLOWER_PID"
  local rc=$?
  ((rc == 0)) && [[ -s $1 ]] && return 0
  cta_err "jsonl_follower exited $rc: $(cat "$1.err" 2>/dev/null)"
  return 1
}

# all_lines FILE...: every line of the files, compressed ones decompressed.
all_lines() {
  local file
  for file in "$@"; do
    case $file in
      *.zst) zstd -dcq "$file" ;;
      *.gz) gzip -dc "$file" ;;
      *) cat "$file" ;;
    esac
  done
}

# written_lines STATS: records plus gap lines the daemon reports written to jsonl.
written_lines() {
  local records gaps
  gaps=$(awk '/^ctauditd_sink_gaps_written_total\{.*sink="jsonl"/ { s += $NF } END { printf "%.0f\n", s }' "$1")
  records=$(awk '/^ctauditd_sink_records_written_total\{.*sink="jsonl"/ { s += $NF } END { printf "%.0f\n", s }' "$1")
  echo $((records + gaps))
}
sqlite_written() { awk '/^ctauditd_sink_records_written_total\{.*sink="sqlite"/ { s += $NF } END { printf "%.0f\n", s }' "$1"; }
jsonl_records_written() { awk '/^ctauditd_sink_records_written_total\{.*sink="jsonl"/ { s += $NF } END { printf "%.0f\n", s }' "$1"; }

# check_counts LABEL LINES_FILE STATS FOLLOWER_OUT SUMMARY: the counting checks of parts 1 and 3.
check_counts() {
  local label=$1 lines=$2 stats=$3 follower=$4 summary=$5
  local total unique written f_lines f_dups f_bad f_unfinished news destroys created deleted rows ended bad
  total=$(wc -l <"$lines")
  unique=$(sort -u "$lines" | wc -l)
  written=$(written_lines "$stats")
  f_lines=$(jq -r .lines "$follower")
  f_dups=$(jq -r .duplicates "$follower")
  f_bad=$(jq -r .bad "$follower")
  f_unfinished=$(jq -r .unfinished_bytes "$follower")
  cta_log "$label: $total lines in the files ($unique distinct), daemon wrote $written, follower $(cat "$follower")"
  check_eq() { # WHAT GOT WANT
    (($2 == $3)) && return 0
    cta_err "$1: $2, want $3"
    return 1
  }
  cta_expect "$label: the load wrote many lines ($total)" test "$total" -gt 5000
  cta_expect "$label: lines in the files == lines the daemon reports written to jsonl" check_eq "lines" "$total" "$written"
  cta_expect "$label: no line is in the files twice" check_eq "distinct lines" "$unique" "$total"
  bad=$(jq -R -c 'try (fromjson | if type == "object" then empty else "bad" end) catch "bad"' <"$lines" | wc -l)
  cta_expect "$label: every line is one JSON object" check_eq "bad lines" "$bad" 0
  cta_expect "$label: the follower read every line" check_eq "follower lines" "$f_lines" "$total"
  cta_expect "$label: the follower read no line twice" check_eq "follower duplicates" "$f_dups" 0
  cta_expect "$label: the follower saw no torn line" check_eq "follower bad + unfinished bytes" $((f_bad + f_unfinished)) 0
  news=$(cta_jq -r 'select(f("event.action") == "new") | 1' <"$lines" | wc -l)
  destroys=$(cta_jq -r 'select(f("event.action") == "destroy") | 1' <"$lines" | wc -l)
  created=$(cta_kv "$summary" created)
  deleted=$(cta_kv "$summary" deleted)
  rows=$(cta_sql "SELECT count(*) FROM flows")
  ended=$(cta_sql "SELECT count(*) FROM flows WHERE dur_ms IS NOT NULL")
  cta_log "$label: $news new and $destroys destroy lines; ct_loadgen created $created, deleted $deleted; database $rows flows, $ended ended"
  cta_expect "$label: a new line for each entry ct_loadgen created" check_eq "new lines" "$news" "$created"
  cta_expect "$label: a destroy line for each entry ct_loadgen deleted" check_eq "destroy lines" "$destroys" "$deleted"
  cta_expect "$label: the database has a row for each new line" check_eq "database rows" "$rows" "$news"
  cta_expect "$label: the database ended a row for each destroy line" check_eq "ended rows" "$ended" "$destroys"
  cta_expect "$label: the daemon wrote as many records to SQLite as to jsonl" \
    check_eq "sqlite records" "$(sqlite_written "$stats")" "$(jsonl_records_written "$stats")"
}

# ---------------------------------------------------------------------------------------------
cta_log "part 1: built-in rotation under load"
LOGDIR=$CTA_TMP/log
mkdir -p "$LOGDIR"
CTA_JSONL=$LOGDIR/flows.jsonl
CTA_DB=$CTA_TMP/flows.db
stats=$CTA_TMP/ctauditd.prom
t0=$(date -u +%s)
follower_start "$LOGDIR" '^flows.*\.jsonl$' "$CTA_TMP/follower1.json"
cta_daemon_start --events new,destroy --jsonl-rotate 1M --jsonl-compress zstd --jsonl-grace 2s --jsonl-keep all \
  --max-batch-rows 200 --flush-interval 250ms --stats-file "$stats"

summary=$CTA_TMP/loadgen1.txt
cta_loadgen "$summary" --rate 1500 --duration 12s --live 1000 --batch 32 ||
  cta_die "ct_loadgen failed (exit $?)"
want=$(($(cta_kv "$summary" created) + $(cta_kv "$summary" deleted)))
jsonl_caught_up() { (($(jsonl_records_written "$stats") >= want)); }
wait_for 60 "the daemon to write the $want records to jsonl" jsonl_caught_up ||
  cta_fail_check "the daemon wrote the load's $want records" "stats: $(jsonl_records_written "$stats")"
# The last closed file is compressed once its 2 s grace is over.
no_plain_closed() { ! compgen -G "$LOGDIR/flows-*.jsonl" >/dev/null; }
cta_expect "every closed file was compressed after its grace" wait_for 20 "no plain closed file" no_plain_closed
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
cta_expect "the follower reported" follower_stop "$CTA_TMP/follower1.json"
t1=$(date -u +%s)

mapfile -t closed < <(cd "$LOGDIR" && ls | grep -E '^flows-[0-9]{8}T[0-9]{6}Z-[0-9]{8}T[0-9]{6}Z\.jsonl\.zst$' | sort)
cta_log "closed files: ${#closed[@]}; directory: $(cd "$LOGDIR" && ls | tr '\n' ' ')"
cta_expect "the load closed at least 5 files (${#closed[@]})" test "${#closed[@]}" -ge 5
only_ours() {
  local stray
  stray=$(cd "$LOGDIR" && ls | grep -vE '^flows-[0-9]{8}T[0-9]{6}Z-[0-9]{8}T[0-9]{6}Z\.jsonl\.zst$|^flows\.jsonl$')
  [[ -z $stray ]] && return 0
  cta_err "unexpected files (plain closed, .tmp, ...): $stray"
  return 1
}
cta_expect "only compressed closed files and the active file are left" only_ours
# basic_epoch 20261125T170000Z -> Unix seconds
basic_epoch() { date -u -d "${1:0:4}-${1:4:2}-${1:6:2}T${1:9:2}:${1:11:2}:${1:13:2}Z" +%s; }
periods_ok() {
  local name start end prev_start=0 prev_end=0 bad=0
  for name in "${closed[@]}"; do
    start=$(basic_epoch "${name:6:16}")
    end=$(basic_epoch "${name:23:16}")
    if ((start > end || start < t0 - 1 || end > t1 + 1)); then
      cta_err "$name: period $start..$end is not inside the test's time $t0..$t1"
      bad=1
    fi
    # A file begins where the one before it ended (its end is rounded up to the second).
    if ((prev_end > 0 && (start < prev_start || start > prev_end || start + 1 < prev_end))); then
      cta_err "$name does not follow the file before it (that one ran $prev_start..$prev_end)"
      bad=1
    fi
    prev_start=$start prev_end=$end
  done
  ((bad == 0))
}
cta_expect "closed names carry UTC periods that follow each other inside the test's time" periods_ok
sizes_ok() {
  local name size bad=0
  for name in "${closed[@]}"; do
    size=$(zstd -dcq "$LOGDIR/$name" | wc -c)
    if ((size > 1048576)); then
      cta_err "$name holds $size bytes, more than the 1M rotation size"
      bad=1
    fi
  done
  ((bad == 0))
}
if grep -q 'not rotating' "$CTA_DAEMON_LOG"; then
  cta_log "the daemon postponed a rotation (at most one a second): not checking the 1M bound"
else
  cta_expect "no closed file holds more than 1M of lines" sizes_ok
fi
lines1=$CTA_TMP/lines1.txt
all_lines "${closed[@]/#/$LOGDIR/}" "$CTA_JSONL" >"$lines1"
check_counts "built-in" "$lines1" "$stats" "$CTA_TMP/follower1.json" "$summary"

# ---------------------------------------------------------------------------------------------
cta_log "part 2: jsonl-keep 3 prunes the oldest closed files"
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-keep.log
# No rotation now (a line or two more could close the active file and make a fourth closed file);
# the archiver runs for jsonl-keep alone.
cta_daemon_start --events new,destroy --jsonl-rotate none --jsonl-compress zstd --jsonl-grace 1s --jsonl-keep 3 \
  --stats-file "$CTA_TMP/keep.prom"
three_left() { (($(compgen -G "$LOGDIR/flows-*.jsonl*" | wc -l) == 3)); }
wait_for 15 "three closed files left" three_left || true
kept_newest() {
  local -a now want
  mapfile -t now < <(cd "$LOGDIR" && ls flows-*.jsonl* | sort)
  want=("${closed[@]: -3}")
  [[ "${now[*]}" == "${want[*]}" ]] && return 0
  cta_err "closed files left: ${now[*]}; want the three newest: ${want[*]}"
  return 1
}
cta_expect "jsonl-keep 3: the three newest closed files stay, the ${#closed[@]} - 3 older ones are deleted" kept_newest
cta_expect "the deletions are logged" grep -q 'more than jsonl-keep=3' "$CTA_DAEMON_LOG"
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop

# ---------------------------------------------------------------------------------------------
cta_log "part 3: logrotate (the shipped stanza) + SIGHUP under load"
cta_in "$CTA_GW" conntrack -F 2>/dev/null
LOGDIR=$CTA_TMP/logrotate
mkdir -p "$LOGDIR"
chmod 0750 "$LOGDIR"
CTA_JSONL=$LOGDIR/flows.jsonl
CTA_DB=$CTA_TMP/flows-logrotate.db
stats=$CTA_TMP/logrotate.prom
CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-logrotate.log
follower_start "$LOGDIR" '^flows\.jsonl(\.[0-9]+)?$' "$CTA_TMP/follower3.json"
cta_daemon_start --events new,destroy --jsonl-rotate none --max-batch-rows 200 --flush-interval 250ms \
  --stats-file "$stats"

# The shipped stanza, uncommented, pointed at this daemon. `daily` becomes irrelevant with -f.
conf=$CTA_TMP/logrotate.conf
sed -n 's/^#: //p' "$CTA_REPO/systemd/ctaudit.logrotate" |
  sed -e "s|/var/log/ctaudit/flows.jsonl|$CTA_JSONL|" \
    -e "s|^\( *\)systemctl kill .*|\1kill -HUP $CTA_DAEMON_PID|" >"$conf"
stanza_ok() {
  grep -q "kill -HUP $CTA_DAEMON_PID" "$conf" && grep -q "^$CTA_JSONL {" "$conf" && ! grep -q copytruncate "$conf" && return 0
  cta_err "the stanza taken from systemd/ctaudit.logrotate is not what the test expects:"
  sed 's/^/#   /' "$conf" >&2
  return 1
}
cta_expect "systemd/ctaudit.logrotate holds a stanza without copytruncate whose postrotate sends SIGHUP" stanza_ok
logrotate -d -s "$CTA_TMP/logrotate.state" "$conf" >"$CTA_TMP/logrotate-d.txt" 2>&1
cta_expect "logrotate -d accepts the stanza" test $? -eq 0

summary=$CTA_TMP/loadgen3.txt
cta_loadgen_bg "$summary" --rate 1500 --duration 10s --live 1000 --batch 32
rotations=0
while ! cta_pid_exited "$CTA_LOADGEN_PID"; do
  sleep 1
  if logrotate -f -s "$CTA_TMP/logrotate.state" "$conf" >>"$CTA_TMP/logrotate.txt" 2>&1; then
    rotations=$((rotations + 1))
  fi
done
wait "$CTA_LOADGEN_PID" || cta_die "ct_loadgen failed: $(cat "$summary.err")"
cta_log "  $(tr '\n' ' ' <"$summary")"
cta_expect "logrotate rotated the file several times under load ($rotations)" test "$rotations" -ge 5
want=$(($(cta_kv "$summary" created) + $(cta_kv "$summary" deleted)))
wait_for 60 "the daemon to write the $want records to jsonl" jsonl_caught_up ||
  cta_fail_check "the daemon wrote the load's $want records" "stats: $(jsonl_records_written "$stats")"
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
cta_expect "the follower reported" follower_stop "$CTA_TMP/follower3.json"
cta_log "files: $(cd "$LOGDIR" && ls | tr '\n' ' ')"
cta_expect "every SIGHUP reopened the file" grep -q 'reopened' "$CTA_DAEMON_LOG"
lines3=$CTA_TMP/lines3.txt
mapfile -t files3 < <(compgen -G "$LOGDIR/flows.jsonl*")
all_lines "${files3[@]}" >"$lines3"
check_counts "logrotate" "$lines3" "$stats" "$CTA_TMP/follower3.json" "$summary"

cta_finish
