#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks the man pages as they are installed (gzipped, version filled in):
#   - groff renders each without a single warning (-ww: all warnings; -z: no output);
#   - every long option a binary's --help prints has an entry (a tag line of its own) in its page,
#     and every option entry in the page is one the binary's --help prints: a new flag must be
#     documented, and a removed one must leave the page;
#   - the page's title line carries the version the binary reports.
# Usage: check_man.sh CTAUDITD CTAUDIT CTAUDITD_PAGE CTAUDIT_PAGE
# Exit: 0 pass, 1 fail (each problem on stderr), 77 skip (groff missing, outside CI).
set -uo pipefail

if (($# != 4)); then
  echo "usage: $0 CTAUDITD CTAUDIT CTAUDITD_PAGE CTAUDIT_PAGE" >&2
  exit 1
fi
ctauditd=$1 ctaudit=$2 daemon_page=$3 query_page=$4

if ! command -v groff >/dev/null 2>&1; then
  if [[ "${CI:-}" == "true" ]]; then
    echo "FAIL: groff is missing (package groff-base; CI=true: a missing tool is a failure)" >&2
    exit 1
  fi
  echo "SKIP: groff is missing (apt-get install groff-base)"
  exit 77
fi

failures=0
fail() {
  printf 'FAIL: %s\n' "$*" >&2
  failures=$((failures + 1))
}

# groff's warnings (its stderr, captured; its stdout dropped); nothing when the page is clean.
# shellcheck disable=SC2069  # the order is the point: stderr to the pipe, stdout away
page_warnings() { zcat -f -- "$1" | groff -man -ww -z 2>&1 >/dev/null; }

# The page as plain text: no hyphenation and very long lines, so no flag is ever split.
page_text() { zcat -f -- "$1" | groff -man -Tascii -P-cbou -rHY=0 -rLL=250n 2>/dev/null; }

# The long options in a help text, one a line, sorted and unique.
help_flags() { grep -oE -- '--[a-z][a-z0-9-]*' | sort -u; }

# The long options that start an entry in the rendered page: tag lines of .TP, indented 7 spaces,
# such as "       --db path" or "       -h, --help".
page_entries() {
  page_text "$1" | sed -nE 's/^ {7}(-[A-Za-z], )?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u
}

# check_page NAME PAGE VERSION_LINE HELP_TEXT
check_page() {
  local name=$1 page=$2 version=$3 help=$4
  if [[ ! -s "$page" ]]; then
    fail "$name: the man page $page does not exist (build the target ctaudit_man_pages)"
    return
  fi
  local warnings
  warnings=$(page_warnings "$page")
  if [[ -n "$warnings" ]]; then
    fail "$name: groff -man -ww warns about $page:"$'\n'"$warnings"
  fi
  local want=${version##* }
  if ! zcat -f -- "$page" | grep -q "^\.TH .*\"ctaudit $want\""; then
    fail "$name: the title line of $page does not name version $want ($version)"
  fi
  local flag missing=0 entries
  entries=$(page_entries "$page")
  while read -r flag; do
    [[ -z "$flag" ]] && continue
    if ! grep -qxF -- "$flag" <<<"$entries"; then
      fail "$name: '$name --help' lists $flag, but $page has no entry for it (add a .TP under OPTIONS)"
      missing=$((missing + 1))
    fi
  done < <(help_flags <<<"$help")
  while read -r flag; do
    [[ -z "$flag" ]] && continue
    if ! help_flags <<<"$help" | grep -qxF -- "$flag"; then
      fail "$name: $page documents $flag, which '$name --help' does not list (removed or renamed?)"
    fi
  done <<<"$entries"
  printf '# %s: %d options in --help, %d entries in the page\n' "$name" \
    "$(help_flags <<<"$help" | wc -l)" "$(grep -c . <<<"$entries")"
}

daemon_help=$("$ctauditd" --help) || fail "ctauditd --help failed"
daemon_version=$("$ctauditd" --version) || fail "ctauditd --version failed"
query_help="$("$ctaudit" --help)"$'\n'"$("$ctaudit" who --help)"$'\n'"$("$ctaudit" flows --help)" ||
  fail "ctaudit --help failed"
query_version=$("$ctaudit" --version) || fail "ctaudit --version failed"

check_page ctauditd "$daemon_page" "$daemon_version" "$daemon_help"
check_page ctaudit "$query_page" "$query_version" "$query_help"

if ((failures > 0)); then
  echo "FAIL: $failures problems in the man pages" >&2
  exit 1
fi
echo "PASS: man pages"
