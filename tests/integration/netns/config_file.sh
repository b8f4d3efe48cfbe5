#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# config_file: the real binary with a config file. --check-config prints the effective
# configuration with each value's origin, creates nothing and exits 0; its output read back as a
# config file gives the same configuration; a bad file exits 2 with FILE:LINE:COL and never
# starts; a daemon given only --config writes its database, JSON lines and stats file where the
# file says, and a flag overrides the file.
#
# No lab topology and no traffic: the daemon runs in a throwaway network namespace of its own
# (`unshare --net`, cta_daemon_launcher) and only has to start, record its run and stop.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init config_file --daemon --no-netns
cta_require_root "the daemon run gets a throwaway network namespace"
cta_require_tools unshare timeout

CONF=$CTA_TMP/ctauditd.toml
STATE=$CTA_TMP/state
cat >"$CONF" <<EOF
# written by config_file.sh
db = "$STATE/flows.db"
jsonl = "$STATE/flows.jsonl"
flush-interval = "200ms"
events = ["new", "destroy"]
EOF

cta_log "--check-config"
cta_capture timeout 10 "$CTAUDITD" --check-config --config "$CONF" --log-level debug
check_output() {
  local problems=""
  ((CTA_RC == 0)) || problems+="exit $CTA_RC, want 0; "
  grep -qxF "db = \"$STATE/flows.db\"  # $CONF:2" <<<"$CTA_OUT" || problems+="db line; "
  grep -qxF 'events = ["new", "destroy"]  # '"$CONF:5" <<<"$CTA_OUT" || problems+="events line; "
  grep -qxF 'log-level = "debug"  # command line' <<<"$CTA_OUT" || problems+="log-level line; "
  grep -qxF 'queue-max = "512M"  # default' <<<"$CTA_OUT" || problems+="queue-max line; "
  grep -qF "the directory $STATE does not exist yet" <<<"$CTA_ERRTXT" || problems+="no warning about $STATE; "
  [[ ! -e $STATE ]] || problems+="it created $STATE; "
  [[ -z $problems ]] && return 0
  cta_err "${problems}stdout: $CTA_OUT"$'\n'"stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "--check-config: every origin right, a warning for the missing directory, nothing created" check_output

round_trip() {
  local first=$CTA_OUT
  printf '%s\n' "$first" >"$CTA_TMP/effective.toml"
  cta_capture timeout 10 "$CTAUDITD" --check-config --config "$CTA_TMP/effective.toml"
  ((CTA_RC == 0)) || { cta_err "exit $CTA_RC: $CTA_ERRTXT"; return 1; }
  # Same keys and values; only the origins (after "  # ") and the header differ.
  diff <(grep -v '^#' <<<"$first" | sed 's/  # .*//') <(grep -v '^#' <<<"$CTA_OUT" | sed 's/  # .*//') >&2
}
cta_expect "--check-config output read back as a config file gives the same configuration" round_trip

cta_log "a bad config file"
printf 'db = "%s/flows.db"\nreliable = "yes"\n' "$STATE" >"$CTA_TMP/bad.toml"
bad_file() {
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --config "$CTA_TMP/bad.toml"
  local problems=""
  ((CTA_RC == 2)) || problems+="exit $CTA_RC, want 2; "
  grep -qF "$CTA_TMP/bad.toml:2:12: 'reliable' must be true or false" <<<"$CTA_ERRTXT" || problems+="message; "
  grep -qw ready <<<"$CTA_ERRTXT" && problems+="it started; "
  [[ ! -e $STATE ]] || problems+="it created $STATE; "
  [[ -z $problems ]] && return 0
  cta_err "${problems}stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "bad value type: exit 2, FILE:LINE:COL and what to write, nothing started or created" bad_file
missing_file() {
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --config "$CTA_TMP/missing.toml"
  ((CTA_RC == 2)) && grep -qF "cannot read config file $CTA_TMP/missing.toml" <<<"$CTA_ERRTXT" && return 0
  cta_err "exit $CTA_RC, stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "a named config file that does not exist: exit 2, names it" missing_file
# Found by an exploratory run: --check-config refused these with 2, the start with 1, which the
# unit restarts (RestartPreventExitStatus=2) again and again.
foreign_db() {
  local db=$CTA_TMP/foreign.db
  sqlite3 "$db" 'PRAGMA user_version = 3; CREATE TABLE t (a)' || return 1
  cta_capture timeout 10 unshare --net -- "$CTAUDITD" --config none --no-sysctl --db "$db" --jsonl none \
    --stats-file none
  ((CTA_RC == 2)) && grep -qF "$db: not a ctaudit database" <<<"$CTA_ERRTXT" && return 0
  cta_err "exit $CTA_RC, stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "a start on another application's database: exit 2, as --check-config" foreign_db

cta_log "the daemon with only --config (and one overriding flag)"
cta_daemon_launcher
CTA_DAEMON_LOG=$CTA_TMP/ctauditd.log
"${CTA_LAUNCHER[@]}" "$CTAUDITD" --config "$CONF" --stats-file "$CTA_TMP/override.prom" </dev/null >"$CTA_DAEMON_LOG" 2>&1 &
CTA_DAEMON_PID=$!
CTA_PIDS+=("$CTA_DAEMON_PID")
wait_for 15 "ctauditd logs 'ready'" cta_daemon_ready || cta_die "ctauditd did not become ready (log: $CTA_DAEMON_LOG)"
cta_expect "ctauditd stops cleanly" cta_daemon_stop
files_where_configured() {
  local problems=""
  [[ -s $STATE/flows.db ]] || problems+="no database at $STATE/flows.db; "
  [[ -e $STATE/flows.jsonl ]] || problems+="no JSON-lines file at $STATE/flows.jsonl; "
  [[ -s $CTA_TMP/override.prom ]] || problems+="no stats file at the flag's $CTA_TMP/override.prom; "
  [[ ! -e $STATE/ctauditd.prom ]] || problems+="a stats file beside the database despite the flag; "
  [[ -z $problems ]] && return 0
  cta_err "$problems"
  return 1
}
cta_expect "database and JSON lines where the file says, the stats file where the flag says" files_where_configured

cta_finish
