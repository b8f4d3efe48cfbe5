#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# nat-lab: a three-namespace NAT gateway to try ctaudit by hand (docs/walkthrough.md).
#
#   scripts/nat-lab.sh up        create ctlab-client, ctlab-gw, ctlab-server and their echo services
#   scripts/nat-lab.sh traffic   a few TCP, UDP and ICMP flows through the gateway, and one
#                                connection to the port forward; prints the translations and the
#                                ctaudit commands that look them up
#   scripts/nat-lab.sh status    what is running in the lab and the gateway's conntrack table
#   scripts/nat-lab.sh down      stop everything in the lab namespaces (a daemon too) and delete them
#
# Same topology and nft ruleset as the integration tests (tests/integration/netns/lib.sh), with
# fixed names (CTLAB_PREFIX, default "ctlab", makes them PREFIX-client, PREFIX-gw, PREFIX-server;
# CTLAB_DIR, default /tmp/ctlab, holds the services' logs and the suggested database). Needs root.
# Only documentation addresses are used, and only inside the lab's namespaces; the root namespace
# is not touched.
set -u -o pipefail

LAB_REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Before lib.sh gives them its test defaults: the binaries the user chose, if any.
LAB_CTAUDITD=${CTAUDITD:-} LAB_CTAUDIT=${CTAUDIT:-}
# shellcheck source=../tests/integration/netns/lib.sh
source "$LAB_REPO/tests/integration/netns/lib.sh"

LAB_PREFIX=${CTLAB_PREFIX:-ctlab}
LAB_CL=$LAB_PREFIX-client LAB_GW=$LAB_PREFIX-gw LAB_SRV=$LAB_PREFIX-server
LAB_DIR=${CTLAB_DIR:-/tmp/ctlab}
# How to call this script again with the same lab, for the printed commands.
LAB_SELF=$0
[[ $LAB_PREFIX != ctlab ]] && LAB_SELF="CTLAB_PREFIX=$LAB_PREFIX $LAB_SELF"
[[ $LAB_DIR != /tmp/ctlab ]] && LAB_SELF="CTLAB_DIR=$LAB_DIR $LAB_SELF"
LAB_DB=$LAB_DIR/flows.db
LAB_JSONL=$LAB_DIR/flows.jsonl

# The lab is not a test: a missing prerequisite is an error, never a skip.
cta_skip_or_fail() {
  printf 'nat-lab: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '6,11s/^#//p' "${BASH_SOURCE[0]}"
}

lab_exists() {
  local ns
  for ns in "$LAB_CL" "$LAB_GW" "$LAB_SRV"; do
    ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$ns" && return 0
  done
  return 1
}

require_lab() {
  lab_exists || { printf 'nat-lab: the lab is not up; run: %s up\n' "$LAB_SELF" >&2; exit 1; }
  # shellcheck disable=SC2034  # read by the lib.sh traffic helpers
  CTA_CL=$LAB_CL CTA_GW=$LAB_GW CTA_SRV=$LAB_SRV
}

# A binary for the printed commands: CTAUDITD/CTAUDIT when set, else the first build that exists.
find_binary() { # ENV_VALUE SUBDIR/NAME
  if [[ -n ${1:-} && -x $1 ]]; then
    printf '%s' "$1"
    return
  fi
  local preset
  for preset in release ci dev; do
    [[ -x $LAB_REPO/build/$preset/$2 ]] && { printf '%s' "$LAB_REPO/build/$preset/$2"; return; }
  done
  printf '%s' "$LAB_REPO/build/release/$2"
}
DAEMON=$(find_binary "$LAB_CTAUDITD" daemon/ctauditd)
QUERY=$(find_binary "$LAB_CTAUDIT" query/ctaudit)

daemon_pid() { # the ctauditd running in the gateway, if any
  local pid
  for pid in $(ip netns pids "$LAB_GW" 2>/dev/null); do
    tr '\0' '\n' <"/proc/$pid/cmdline" 2>/dev/null | grep -q '\(^\|/\)ctauditd$' && { printf '%s' "$pid"; return 0; }
  done
  return 1
}

lab_down() {
  local ns
  for ns in "$LAB_CL" "$LAB_GW" "$LAB_SRV"; do
    # SIGTERM first: a daemon running in the gateway writes what it holds and exits.
    cta_ns_del "$ns"
  done
}

cmd_up() {
  cta_require_root
  cta_require_tools ip nft conntrack socat ping ss sysctl setsid
  if lab_exists; then
    printf 'nat-lab: the lab is already up (run "%s down" first to start over)\n' "$LAB_SELF" >&2
    exit 1
  fi
  mkdir -p "$LAB_DIR" || exit 1
  # A half-built lab is removed again.
  trap 'up_rc=$?; if ((up_rc != 0)); then lab_down; fi; exit $up_rc' EXIT
  cta_topology_up "$LAB_CL" "$LAB_GW" "$LAB_SRV"
  CTA_DETACH=1 cta_start_servers "$LAB_DIR"
  # The reachability pings left entries in the gateway's table, made while nf_conntrack_events was
  # still 2 with no listener: they would never report their end, and would stay open in the
  # walkthrough's output until ctauditd's next sweep (docs/operations.md). The lab starts empty.
  ip netns exec "$LAB_GW" conntrack -F >/dev/null 2>&1 || true
  trap - EXIT

  echo "The NAT lab is up."
  echo
  local row='  %-30s %-44s %s\n'
  # shellcheck disable=SC2059  # the format is the row layout above
  {
    printf "$row" "$LAB_CL" "$LAB_GW" "$LAB_SRV"
    printf "$row" "$CTA_CL4, $CTA_CL4B" "gw-in $CTA_GW4_IN   gw-out $CTA_GW4_OUT" "$CTA_SRV4"
    printf "$row" "$CTA_CL6, $CTA_CL6B" "gw-in $CTA_GW6_IN gw-out $CTA_GW6_OUT" "$CTA_SRV6"
    printf "$row" "echo on $CTA_CL4:$CTA_INSIDE_PORT" "SNAT $CTA_IN4_NET to $CTA_GW4_OUT:$CTA_SNAT4_MIN-$CTA_SNAT4_MAX" "TCP echo on :$CTA_TCP_PORT"
    printf "$row" "" "masquerade $CTA_IN6_NET to :$CTA_SNAT6_MIN-$CTA_SNAT6_MAX" "UDP echo on :$CTA_UDP_PORT"
    printf "$row" "" "DNAT $CTA_GW4_OUT:$CTA_DNAT_PORT to $CTA_CL4:$CTA_INSIDE_PORT" ""
  }
  cat <<EOF

The gateway's ruleset:  ip netns exec $LAB_GW nft list ruleset

Next, in a second terminal, run the daemon in the gateway (it stays in the foreground):

  ip netns exec $LAB_GW $DAEMON --db $LAB_DB --jsonl $LAB_JSONL

When it logs "ready", make some traffic:

  $LAB_SELF traffic
EOF
  [[ -x $DAEMON ]] || printf '\n(%s is not built yet: cmake --preset release && cmake --build --preset release)\n' "$DAEMON"
}

cmd_traffic() {
  cta_require_root
  require_lab
  if ! daemon_pid >/dev/null; then
    printf 'nat-lab: note: no ctauditd runs in %s, so these flows will not be recorded (see "%s up" for the command)\n\n' \
      "$LAB_GW" "$LAB_SELF" >&2
  fi
  # Fresh source ports each run: a port still in TIME_WAIT from the last run cannot be bound again.
  local base=$((20000 + RANDOM % 15000))
  local -a flows=(
    "tcp $CTA_CL4 $base $CTA_SRV4 $CTA_TCP_PORT"
    "tcp $CTA_CL4B $((base + 1)) $CTA_SRV4 $CTA_TCP_PORT"
    "tcp $CTA_CL6 $((base + 2)) $CTA_SRV6 $CTA_TCP_PORT"
    "udp $CTA_CL4 $((base + 3)) $CTA_SRV4 $CTA_UDP_PORT"
    "udp $CTA_CL6B $((base + 4)) $CTA_SRV6 $CTA_UDP_PORT"
  )
  local spec failed=0
  for spec in "${flows[@]}"; do
    printf '  %-52s' "$spec"
    # shellcheck disable=SC2086
    if cta_flow $spec; then echo ok; else echo FAILED; failed=1; fi
  done
  printf '  %-52s' "ping $CTA_CL4 -> $CTA_SRV4"
  if cta_ping "$CTA_CL4" "$CTA_SRV4" 2; then echo ok; else echo FAILED; failed=1; fi
  printf '  %-52s' "ping -6 $CTA_CL6 -> $CTA_SRV6"
  if cta_ping "$CTA_CL6" "$CTA_SRV6" 2; then echo ok; else echo FAILED; failed=1; fi
  printf '  %-52s' "tcp $CTA_SRV4 -> $CTA_GW4_OUT:$CTA_DNAT_PORT (port forward)"
  if cta_dnat_flow $((base + 5)); then echo ok; else echo FAILED; failed=1; fi

  local now at_rfc3339
  now=$(cta_now)
  at_rfc3339=$(date -u -d "@${now%.*}" +%Y-%m-%dT%H:%M:%SZ)
  local truth
  truth=$(cta_ct_truth "$LAB_GW")
  echo
  echo "Translations in the gateway's conntrack table now (conntrack -L -o extended in $LAB_GW):"
  local line first=""
  local -a f
  while read -r line; do
    read -ra f <<<"$line"
    ((${#f[@]} == 11)) || continue
    # Translated entries only (not the gateway's own pings).
    [[ ${f[2]} != "${f[8]}" || ${f[3]} != "${f[9]}" || ${f[4]} != "${f[6]}" || ${f[5]} != "${f[7]}" ]] || continue
    printf '  %s\n' "$(cta_describe "$line")"
    [[ -z $first && ${f[1]} == tcp && ${f[8]} == "$CTA_GW4_OUT" ]] && first=$(cta_sockaddr "${f[8]}" "${f[9]}")
  done <<<"$truth"
  echo "  (\"as\": the translated source, which ctaudit who looks up; for ICMP the port is the echo id)"
  [[ -n $first ]] || first="$CTA_GW4_OUT:$CTA_SNAT4_MIN"
  cat <<EOF

Ask who had a translated address and port at a time (records are written within a second):

  $QUERY who $first --proto tcp --at @$now --db $LAB_DB
  $QUERY who $first --proto tcp --at $at_rfc3339 --slack 5s --db $LAB_DB --format json

Everything from the inside, and the port forward:

  $QUERY flows --src $CTA_IN4_NET --db $LAB_DB --format json
  $QUERY flows --dst $CTA_GW4_OUT:$CTA_DNAT_PORT --db $LAB_DB --format json

End the flows now (each gets its end time and byte counters), then look again:

  ip netns exec $LAB_GW conntrack -F
  tail -n 3 $LAB_JSONL
EOF
  return "$failed"
}

cmd_status() {
  cta_require_root
  require_lab
  local ns pid
  for ns in "$LAB_CL" "$LAB_GW" "$LAB_SRV"; do
    echo "$ns:"
    for pid in $(ip netns pids "$ns" 2>/dev/null); do
      printf '  %6s %s\n' "$pid" "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    done
  done
  echo
  echo "conntrack -L in $LAB_GW:"
  ip netns exec "$LAB_GW" conntrack -L -o extended 2>/dev/null | sed 's/^/  /'
}

cmd_down() {
  cta_require_root
  if ! lab_exists; then
    echo "The lab is not up."
    return 0
  fi
  daemon_pid >/dev/null && echo "Stopping the ctauditd in $LAB_GW (SIGTERM: it writes what it holds)."
  lab_down
  echo "The lab is down. The records stay in $LAB_DIR."
}

case ${1:-} in
  up) cmd_up ;;
  traffic) cmd_traffic ;;
  status) cmd_status ;;
  down) cmd_down ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
