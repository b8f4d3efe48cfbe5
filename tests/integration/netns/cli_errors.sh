#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# cli_errors: mistakes on the command line give exit 2 and one clear line on stderr; a daemon that
# cannot open its outputs stops at once with a non-zero status naming the path.
#
# No lab topology: the query tool only reads a file, and each daemon run gets a throwaway network
# namespace of its own (`unshare --net`), so even a daemon that ignored a bad flag and started
# would not touch the root namespace. A database to query is made by a short daemon run in such
# a namespace. Checks, for ctaudit: unknown flag, unknown command, a time without a zone (the
# message says how to write one), an unparsable time, bad address, bad port, bad CIDR, bad
# protocol, bad format, bad limit, bad slack, a missing database (exit 2, not 1, and the file is not
# created). For ctauditd: unknown flag, bad duration, bad event list, bad log level (exit 2, never
# "ready"); outputs a start refuses before it opens anything, two on one file, a --db naming a
# directory or a FIFO (exit 2, nothing created); and --db / --jsonl paths that cannot be created
# (non-zero, the path or its directory in the message).
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init cli_errors --daemon --query --no-netns
cta_require_root "each daemon run gets a throwaway network namespace"
cta_require_tools unshare timeout setpriv

# expect_usage_error PATTERN COMMAND [ARGS...]: exit 2, nothing on stdout, at most two lines on
# stderr (the message, perhaps a "see --help" hint), the message matching PATTERN
# (extended regex, case-insensitive).
expect_usage_error() {
  local pattern=$1
  shift
  cta_capture timeout 10 "$@"
  local lines problems=""
  lines=$(grep -c . <<<"$CTA_ERRTXT")
  ((CTA_RC == 2)) || problems+="exit $CTA_RC, want 2; "
  [[ -z $CTA_OUT ]] || problems+="stdout not empty; "
  ((lines >= 1 && lines <= 2)) || problems+="$lines lines on stderr, want 1 (or 2 with a hint); "
  grep -Eiq -- "$pattern" <<<"$CTA_ERRTXT" || problems+="stderr does not match /$pattern/; "
  [[ -z $problems ]] && return 0
  cta_err "$*: ${problems}stderr was: $CTA_ERRTXT"
  return 1
}

# expect_startup_failure PATH COMMAND [ARGS...]: the daemon fails fast (not killed by the
# timeout), non-zero, without logging "ready", naming PATH or the directory that cannot hold it.
expect_startup_failure() {
  local path
  path=$(dirname "$1")
  shift
  cta_capture timeout 10 "$@"
  local problems=""
  ((CTA_RC != 0)) || problems+="exit 0; "
  ((CTA_RC != 124)) || problems+="still running after 10 s; "
  grep -qw ready <<<"$CTA_ERRTXT" && problems+="it logged 'ready'; "
  grep -qF -- "$path" <<<"$CTA_ERRTXT" || problems+="stderr names neither the path nor $path; "
  [[ -z $problems ]] && return 0
  cta_err "$*: ${problems}stderr was: $CTA_ERRTXT"
  return 1
}

# A real database, from a daemon that starts and stops in a throwaway namespace.
CTA_DB=$CTA_TMP/flows.db CTA_JSONL=$CTA_TMP/flows.jsonl
cta_daemon_start --flush-interval 1s
second_daemon_refused() {
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --db "$CTA_DB" --jsonl none --stats-file none
  [[ $CTA_RC == 1 ]] && grep -q "is being written by another process (another ctauditd?)" <<<"$CTA_ERRTXT" && return 0
  cta_err "exit $CTA_RC (want 1), stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "a second daemon on the same database: exit 1, says another process writes it" second_daemon_refused
second_daemon_on_the_json_lines_refused() {
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --db "$CTA_TMP/other.db" --jsonl "$CTA_JSONL" --stats-file none
  [[ $CTA_RC == 1 ]] && grep -q "JSON lines file $CTA_JSONL is being written by another process" <<<"$CTA_ERRTXT" &&
    return 0
  cta_err "exit $CTA_RC (want 1), stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "a second daemon with its own database on the same JSON lines: exit 1, says another process writes them" \
  second_daemon_on_the_json_lines_refused
# The default stats file is ctauditd.prom beside the database: a second daemon whose database is in
# the same directory would overwrite the first one's figures every 5 s.
second_daemon_on_the_stats_file_refused() {
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --db "$CTA_TMP/other.db" --jsonl none
  [[ $CTA_RC == 1 ]] && grep -q "stats file $CTA_TMP/ctauditd.prom is written by another process" <<<"$CTA_ERRTXT" &&
    grep -q -- "--stats-file" <<<"$CTA_ERRTXT" && return 0
  cta_err "exit $CTA_RC (want 1), stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "a second daemon with its own database in the same directory (one default stats file): exit 1, names --stats-file" \
  second_daemon_on_the_stats_file_refused
cta_daemon_stop || cta_die "the daemon that makes the test database did not stop cleanly"

# A database deleted under a running daemon: it stops (exit 1), saying why, so that systemd's
# Restart=on-failure starts it again on a new file, instead of writing to the deleted one.
database_deleted_stops_the_daemon() {
  rm -f "$CTA_DB" "$CTA_DB-wal" "$CTA_DB-shm"
  wait_for 10 "ctauditd exits after its database was deleted" cta_pid_exited "$CTA_DAEMON_PID" || return 1
  wait "$CTA_DAEMON_PID"
  local rc=$?
  ((rc == 1)) && grep -q "was deleted or replaced while ctauditd wrote it: stopping" "$CTA_DAEMON_LOG" && return 0
  cta_err "exit $rc (want 1); log: $(tail -n 3 "$CTA_DAEMON_LOG")"
  return 1
}
saved=("$CTA_DB" "$CTA_JSONL")
CTA_DB=$CTA_TMP/deleted.db CTA_JSONL=$CTA_TMP/deleted.jsonl CTA_DAEMON_LOG_FILE=$CTA_TMP/ctauditd-deleted.log
cta_daemon_start
cta_expect "the database deleted under the daemon: it stops with exit 1, saying why" database_deleted_stops_the_daemon
CTA_DB=${saved[0]} CTA_JSONL=${saved[1]}
unset CTA_DAEMON_LOG_FILE
[[ -e $CTA_DB ]] || cta_die "the daemon made no database at $CTA_DB"
DB=$CTA_DB
NAT=203.0.113.1:40000

cta_log "ctaudit"
cta_expect "unknown flag: exit 2, names it" \
  expect_usage_error 'bogus-flag' "$CTAUDIT" who "$NAT" --at @0 --db "$DB" --bogus-flag
cta_expect "unknown command: exit 2, names it" \
  expect_usage_error 'frobnicate' "$CTAUDIT" frobnicate --db "$DB"
cta_expect "time without a zone: exit 2, says a zone is needed" \
  expect_usage_error 'zone|offset|utc' "$CTAUDIT" who "$NAT" --at 2024-05-01T12:00:00 --db "$DB"
cta_expect "time without a zone: the message shows how to write it (Z, +hh:mm or @unix seconds)" \
  expect_usage_error '[0-9](Z|[+-][0-9]{2}:?[0-9]{2})|@' "$CTAUDIT" who "$NAT" --at 2024-05-01T12:00:00 --db "$DB"
cta_expect "unparsable time: exit 2, names it" \
  expect_usage_error 'yesterday' "$CTAUDIT" who "$NAT" --at yesterday --db "$DB"
cta_expect "bad address: exit 2, names it" \
  expect_usage_error 'not-an-address' "$CTAUDIT" who not-an-address:40000 --at @0 --db "$DB"
cta_expect "port out of range: exit 2" \
  expect_usage_error '99999|port' "$CTAUDIT" who 203.0.113.1:99999 --at @0 --db "$DB"
cta_expect "bad CIDR: exit 2" \
  expect_usage_error '100\.64\.0\.0/33|src|cidr|prefix' "$CTAUDIT" flows --src 100.64.0.0/33 --db "$DB" --format json
cta_expect "bad protocol: exit 2, names it" \
  expect_usage_error 'bogoproto' "$CTAUDIT" flows --proto bogoproto --db "$DB" --format json
cta_expect "bad format: exit 2, names it" \
  expect_usage_error 'xml' "$CTAUDIT" flows --db "$DB" --format xml
cta_expect "bad limit: exit 2" \
  expect_usage_error 'limit|lots' "$CTAUDIT" flows --limit lots --db "$DB" --format json
cta_expect "bad slack: exit 2" \
  expect_usage_error 'slack|banana' "$CTAUDIT" who "$NAT" --at @0 --slack banana --db "$DB"

missing=$CTA_TMP/no-such-dir/flows.db
cta_expect "missing database: exit 2 (an error, not 'nothing found'), names the path" \
  expect_usage_error "$(sed 's/[.[\*^$()+?{|]/\\&/g' <<<"$missing")" "$CTAUDIT" who "$NAT" --at @0 --db "$missing"
missing_here=$CTA_TMP/missing.db
missing_not_created() {
  expect_usage_error 'missing\.db' "$CTAUDIT" who "$NAT" --at @0 --db "$missing_here" || return 1
  [[ ! -e $missing_here ]] && return 0
  cta_err "ctaudit created $missing_here: the query tool must open the database read-only"
  return 1
}
cta_expect "missing database in an existing directory: exit 2, and the file is not created" missing_not_created

# /dev/full fails every write with ENOSPC: the error line names that, not a guess.
output_on_full_disk() {
  local err rc=0
  err=$("$CTAUDIT" --help 2>&1 >/dev/full) || rc=$?
  ((rc == 2)) && grep -q 'could not write the output: No space left on device' <<<"$err" && return 0
  cta_err "exit $rc, stderr: $err"
  return 1
}
cta_expect "output to a full disk: exit 2, says the disk is full" output_on_full_disk

# Evidence on a read-only mount, without the -shm a WAL database needs: SQLite cannot create it.
# The message says so (it told root to run as root). A mount namespace of its own keeps the mount
# from outliving the test.
read_only_mount_named() {
  local mnt=$CTA_TMP/ro-mount err rc=0
  mkdir -p "$mnt"
  err=$(unshare -m -- bash -c 'mount -t tmpfs ctaudit-test "$1" && cp "$2" "$1/flows.db" &&
          mount -o remount,ro "$1" && exec "$3" flows --db "$1/flows.db"' _ "$mnt" "$CTA_DB" "$CTAUDIT" 2>&1 >/dev/null) ||
    rc=$?
  ((rc == 2)) && grep -q 'the file system holding it is mounted read-only' <<<"$err" &&
    ! grep -q 'or as root' <<<"$err" && return 0
  cta_err "exit $rc, stderr: $err"
  return 1
}
cta_expect "a database on a read-only mount without its -shm: exit 2, says the mount is read-only" \
  read_only_mount_named

# An analyst in the database's group, in a directory they cannot write to, after a plain `sqlite3
# flows.db` deleted the -shm the daemon keeps: the message named the group they were in. It now
# says the -shm is missing, why, and what brings it back.
missing_shm_named() {
  local dir=$CTA_TMP/group-dir gid=4242 err rc=0
  chmod o+x "$CTA_TMP" || return 1  # the analyst passes through it, as through /var/lib
  mkdir -m 0750 "$dir" && cp "$CTA_DB" "$dir/flows.db" && chmod 0640 "$dir/flows.db" &&
    chgrp -R "$gid" "$dir" || return 1
  err=$(setpriv --reuid=65534 --regid="$gid" --clear-groups "$CTAUDIT" flows --db "$dir/flows.db" 2>&1 >/dev/null) ||
    rc=$?
  ((rc == 2)) && grep -q "flows.db-shm is missing and this user cannot create it" <<<"$err" &&
    grep -q 'Start ctauditd, which makes them again' <<<"$err" && grep -q 'sqlite3 -readonly' <<<"$err" &&
    ! grep -q 'adduser' <<<"$err" && return 0
  cta_err "exit $rc, stderr: $err"
  return 1
}
cta_expect "a group member without the -shm in a directory they cannot write: exit 2, says how it went and how to fix it" \
  missing_shm_named

cta_log "ctauditd (each run in a throwaway network namespace)"
D=(unshare --net -- "$CTAUDITD")
J=$CTA_TMP/d.jsonl
cta_expect "daemon: unknown flag: exit 2, names it" \
  expect_usage_error 'bogus-flag' "${D[@]}" --db "$CTA_TMP/d.db" --jsonl "$J" --bogus-flag
cta_expect "daemon: bad --flush-interval: exit 2" \
  expect_usage_error 'flush-interval|banana' "${D[@]}" --db "$CTA_TMP/d.db" --jsonl "$J" --flush-interval banana
cta_expect "daemon: bad --events: exit 2, names the bad event" \
  expect_usage_error 'bogus' "${D[@]}" --db "$CTA_TMP/d.db" --jsonl "$J" --events new,bogus
cta_expect "daemon: bad --log-level: exit 2" \
  expect_usage_error 'log-level|loud' "${D[@]}" --db "$CTA_TMP/d.db" --jsonl "$J" --log-level loud

# What a start refuses before it opens anything: exit 2 (the unit's RestartPreventExitStatus=2),
# and the path it was given is not created.
# refused_at_start PATTERN PATH-NOT-CREATED ARGS...
refused_at_start() {
  local pattern=$1 path=$2
  shift 2
  expect_usage_error "$pattern" "${D[@]}" --stats-file none "$@" || return 1
  [[ ! -e $path ]] && return 0
  cta_err "$path was created"
  return 1
}
cta_expect "daemon: --db and --jsonl on one file: exit 2, neither created" \
  refused_at_start 'name the same file' "$CTA_TMP/same.db" --db "$CTA_TMP/same.db" --jsonl "$CTA_TMP/./same.db"
cta_expect "daemon: --db naming a directory: exit 2, the directory not created" \
  refused_at_start "names a directory, not a file; give a file's path, e.g. $CTA_TMP/newdir/flows.db" \
  "$CTA_TMP/newdir" --db "$CTA_TMP/newdir/" --jsonl "$J"
mkfifo "$CTA_TMP/fifo.db"
cta_expect "daemon: --db on a FIFO: exit 2, says so (SQLite said 'disk I/O error')" \
  refused_at_start 'fifo.db is a FIFO, not a database file' "$CTA_TMP/fifo.db-wal" --db "$CTA_TMP/fifo.db" --jsonl "$J"

# A setting that does nothing in its configuration is a warning, and the daemon runs.
idle_setting_warned() {
  cta_capture timeout 3 "${D[@]}" --db "$CTA_TMP/idle.db" --jsonl none --stats-file none --jsonl-updates
  grep -q "warn.*jsonl-updates = true does nothing with jsonl = \"none\"" <<<"$CTA_ERRTXT" &&
    grep -qw ready <<<"$CTA_ERRTXT" && return 0
  cta_err "exit $CTA_RC; stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "daemon: --jsonl-updates without JSON lines: a warning at start, and it runs" idle_setting_warned

# Closed standard descriptors (a careless init script's `>&-`): --jsonl - has nowhere to go and is
# refused; with a file instead, the daemon runs with /dev/null on them, so that no socket or file
# it opens takes fd 0 or 1, where a stray write to standard output would land in it.
closed_stdout_refused_for_dash() {
  timeout 10 "${D[@]}" --db "$CTA_TMP/closed.db" --jsonl - --stats-file none >&- 2>"$CTA_TMP/closed.err"
  local rc=$?
  ((rc == 2)) && grep -q -- "--jsonl -: standard output is closed" "$CTA_TMP/closed.err" && [[ ! -e $CTA_TMP/closed.db ]] &&
    return 0
  cta_err "exit $rc (want 2); stderr: $(<"$CTA_TMP/closed.err")"
  return 1
}
cta_expect "daemon: --jsonl - with standard output closed: exit 2, says so, creates nothing" closed_stdout_refused_for_dash
closed_descriptors_become_dev_null() {
  "${D[@]}" --db "$CTA_TMP/closed2.db" --jsonl "$CTA_TMP/closed2.jsonl" --stats-file none <&- >&- 2>"$CTA_TMP/closed2.err" &
  local pid=$! fd problems=""  # unshare execs the daemon: $! is its pid
  CTA_PIDS+=("$pid")
  wait_for 10 "the daemon with closed fds 0 and 1 is ready" grep -qw ready "$CTA_TMP/closed2.err" || problems+="not ready; "
  for fd in 0 1; do
    [[ $(readlink "/proc/$pid/fd/$fd") == /dev/null ]] || problems+="fd $fd is $(readlink "/proc/$pid/fd/$fd"); "
  done
  kill -TERM "$pid"
  wait "$pid" || problems+="exit $? after SIGTERM; "
  [[ -z $problems ]] && return 0
  cta_err "${problems}stderr: $(<"$CTA_TMP/closed2.err")"
  return 1
}
cta_expect "daemon: started with fds 0 and 1 closed: runs with /dev/null on them, stops cleanly" \
  closed_descriptors_become_dev_null

: >"$CTA_TMP/a-file"
cta_expect "daemon: --db under a regular file: fails at once, names the path or its directory" \
  expect_startup_failure "$CTA_TMP/a-file/flows.db" "${D[@]}" --db "$CTA_TMP/a-file/flows.db" --jsonl "$J"
cta_expect "daemon: --db under /proc: fails at once, names the path or its directory" \
  expect_startup_failure /proc/ctaudit-no-such-dir/flows.db "${D[@]}" --db /proc/ctaudit-no-such-dir/flows.db --jsonl "$J"
cta_expect "daemon: --jsonl under a regular file: fails at once, names the path or its directory" \
  expect_startup_failure "$CTA_TMP/a-file/flows.jsonl" "${D[@]}" --db "$CTA_TMP/d2.db" --jsonl "$CTA_TMP/a-file/flows.jsonl"

cta_finish
