# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
#
# Shared helpers for the netns integration tests (tests/integration/netns/*.sh) and the NAT lab
# (scripts/nat-lab.sh). Sourced, never run: ctest skips files named lib*.sh.
#
# The lab: three network namespaces joined by two veth pairs, created directly inside the
# namespaces so the root namespace never sees an interface, a route or a rule of ours.
#
#   client ns                       gateway ns                           server ns
#   eth0 100.64.0.2/24   <-veth->   gw-in  100.64.0.1/24    gw-out 203.0.113.1/24   <-veth->  eth0 203.0.113.2/24
#        100.64.0.3/24                     2001:db8:1::1/64        2001:db8:2::1/64                2001:db8:2::2/64
#        2001:db8:1::2/64
#        2001:db8:1::3/64
#   default via the gateway         forwarding on (only here)            no route back to the inside:
#                                   nft: SNAT/masquerade, DNAT, ct state  replies only come back through NAT
#
# Only documentation ranges are used: 100.64.0.0/10 and 2001:db8:1::/64 inside, 203.0.113.0/24 and
# 2001:db8:2::/64 outside. Nothing is ever sent anywhere else, and nothing in the root namespace
# (its conntrack table, sysctls or ruleset) is touched.
#
# A test does:
#   source "$(dirname "$0")/lib.sh"
#   cta_init e2e_nat --daemon --query     # prerequisites (skip/fail), temp dir, trap EXIT cleanup
#   cta_topology_up                       # random names in CTA_CL, CTA_GW, CTA_SRV
#   cta_start_servers
#   cta_daemon_start
#   ... traffic, cta_expect checks ...
#   cta_daemon_stop
#   cta_finish                            # exit 0 if every check passed, else 1
#
# Exit codes: 0 pass, 1 fail, 77 skip. Outside CI a missing tool, privilege or binary is a skip;
# with CI=true it is a failure, because CI runs as root with every tool installed.

# ---------------------------------------------------------------------------------------------
# Constants: addresses, ports, NAT ranges.

CTA_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CTA_REPO=$(cd "$CTA_LIB_DIR/../../.." && pwd)

readonly CTA_CL4=100.64.0.2          # inside host A (also the DNAT target)
readonly CTA_CL4B=100.64.0.3         # inside host B
readonly CTA_GW4_IN=100.64.0.1
readonly CTA_GW4_OUT=203.0.113.1     # the public (translated) address
readonly CTA_SRV4=203.0.113.2
readonly CTA_IN4_NET=100.64.0.0/10
readonly CTA_CL6=2001:db8:1::2
readonly CTA_CL6B=2001:db8:1::3
readonly CTA_GW6_IN=2001:db8:1::1
readonly CTA_GW6_OUT=2001:db8:2::1
readonly CTA_SRV6=2001:db8:2::2
readonly CTA_IN6_NET=2001:db8:1::/64

# Translated source ports (and ICMP ids) come from these ranges, so a translated port never equals
# the original one (the tests pick original ports below 40000) and a test can tell them apart.
readonly CTA_SNAT4_MIN=40000 CTA_SNAT4_MAX=40999
readonly CTA_SNAT6_MIN=41000 CTA_SNAT6_MAX=41999

readonly CTA_TCP_PORT=5001           # TCP echo service on the server (v4 and v6)
readonly CTA_UDP_PORT=5002           # UDP echo service on the server (v4 and v6)
readonly CTA_DNAT_PORT=8080          # 203.0.113.1:8080 is forwarded to ...
readonly CTA_INSIDE_PORT=80          # ... 100.64.0.2:80, a TCP echo service on the client

# Set by cta_topology_up.
CTA_CL="" CTA_GW="" CTA_SRV=""

# Bookkeeping for cleanup.
CTA_NAMESPACES=()
CTA_PIDS=()
CTA_TMP=""
CTA_NAME=""
CTA_CHECKS=0
CTA_FAILED=0

# Set by cta_daemon_start.
CTA_DAEMON_PID=""
CTA_DAEMON_LOG=""
CTA_DB=""
CTA_JSONL=""

: "${CTAUDITD:=$CTA_REPO/build/ci/daemon/ctauditd}"
: "${CTAUDIT:=$CTA_REPO/build/ci/query/ctaudit}"
: "${CT_LOADGEN:=$CTA_REPO/build/ci/bench/ct_loadgen}"

# Mount points of ours (cta_mount_tmpfs), unmounted by the cleanup.
CTA_MOUNTS=()

# ---------------------------------------------------------------------------------------------
# Output and checks.

cta_log() { printf '# %s\n' "$*"; }
cta_err() { printf '%s\n' "$*" >&2; }

# Stops the test at once: a setup step failed and nothing after it can be meaningful.
cta_die() {
  printf 'FAIL: %s\n' "$*" >&2
  exit 1
}

# A missing prerequisite: skip (77) outside CI, fail (1) under CI=true.
cta_skip_or_fail() {
  if [[ "${CI:-}" == "true" ]]; then
    printf 'FAIL: %s (CI=true: CI must provide every prerequisite, so this is a failure, not a skip)\n' "$*" >&2
    exit 1
  fi
  printf 'SKIP: %s\n' "$*"
  exit 77
}

# cta_expect DESCRIPTION COMMAND [ARGS...]: runs the command; success passes the check.
# The command explains a failure on stderr.
cta_expect() {
  local description=$1
  shift
  CTA_CHECKS=$((CTA_CHECKS + 1))
  if "$@"; then
    printf 'ok %d - %s\n' "$CTA_CHECKS" "$description"
    return 0
  fi
  CTA_FAILED=$((CTA_FAILED + 1))
  printf 'not ok %d - %s\n' "$CTA_CHECKS" "$description"
  return 1
}

# Records a failed check with a reason, for checks computed inline.
cta_fail_check() {
  CTA_CHECKS=$((CTA_CHECKS + 1))
  CTA_FAILED=$((CTA_FAILED + 1))
  printf 'not ok %d - %s\n' "$CTA_CHECKS" "$1"
  [[ $# -gt 1 ]] && printf '#   %s\n' "${@:2}"
  return 1
}

# Ends the test: 0 if every check passed, 1 otherwise. The EXIT trap still cleans up.
cta_finish() {
  if ((CTA_CHECKS == 0)); then
    cta_die "$CTA_NAME ran no check"
  fi
  if ((CTA_FAILED > 0)); then
    printf 'FAIL: %s: %d of %d checks failed\n' "$CTA_NAME" "$CTA_FAILED" "$CTA_CHECKS"
    exit 1
  fi
  printf 'PASS: %s: %d checks\n' "$CTA_NAME" "$CTA_CHECKS"
  exit 0
}

# wait_for TIMEOUT_SECONDS DESCRIPTION COMMAND [ARGS...]
# Polls the command every 0.1 s until it succeeds (returns 0) or the timeout passes (returns 1
# and says what it waited for on stderr). No fixed sleeps anywhere else.
wait_for() {
  local timeout=$1 description=$2
  shift 2
  local deadline
  deadline=$(($(date +%s%N) + ${timeout%.*} * 1000000000))
  while true; do
    if "$@"; then
      return 0
    fi
    if (($(date +%s%N) >= deadline)); then
      cta_err "timed out after ${timeout}s waiting for: $description"
      return 1
    fi
    sleep 0.1
  done
}

# cta_eventually TIMEOUT_SECONDS DESCRIPTION COMMAND [ARGS...]: wait_for with the command's
# complaints silenced while it polls; on a timeout the command runs once more, aloud, so the check
# says why it failed once instead of ten times a second.
cta_eventually() {
  local timeout=$1 description=$2
  shift 2
  wait_for "$timeout" "$description" cta_quietly "$@" && return 0
  "$@"
}
cta_quietly() { "$@" 2>/dev/null; }

# Unix time with nanoseconds, as `ctaudit --at @SECONDS` takes it.
cta_now() { date +%s.%N; }

# ---------------------------------------------------------------------------------------------
# Prerequisites.

cta_require_root() { # [WHY]
  [[ $(id -u) -eq 0 ]] || cta_skip_or_fail "needs root (${1:-network namespaces, nft, conntrack})"
}

cta_require_tools() {
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || cta_skip_or_fail "needs the tool '$tool' in PATH"
  done
}

cta_require_daemon() {
  [[ -x "$CTAUDITD" ]] || cta_skip_or_fail "ctauditd not found at CTAUDITD=$CTAUDITD (build it, or set CTAUDITD)"
}

cta_require_query() {
  [[ -x "$CTAUDIT" ]] || cta_skip_or_fail "ctaudit not found at CTAUDIT=$CTAUDIT (build it, or set CTAUDIT)"
}

cta_require_loadgen() {
  [[ -x "$CT_LOADGEN" ]] || cta_skip_or_fail "ct_loadgen not found at CT_LOADGEN=$CT_LOADGEN (build it, or set CT_LOADGEN)"
}

# For a test that runs ctauditd as the user nobody: NOBODY_UID, NOBODY_GID, and NOBODY_DIR, a
# directory in CTA_TMP that nobody owns (0750) and can reach (CTA_TMP becomes 0711; mktemp made it
# 0700), where CTA_DB and CTA_JSONL now point. Call after cta_init.
cta_nobody_dir() {
  id nobody >/dev/null 2>&1 || cta_skip_or_fail "needs the user nobody"
  NOBODY_UID=$(id -u nobody)
  NOBODY_GID=$(id -g nobody)
  chmod 0711 "$CTA_TMP"
  NOBODY_DIR=$CTA_TMP/nobody
  mkdir "$NOBODY_DIR" && chown "$NOBODY_UID:$NOBODY_GID" "$NOBODY_DIR" && chmod 0750 "$NOBODY_DIR" ||
    cta_die "cannot make $NOBODY_DIR for nobody"
  CTA_DB=$NOBODY_DIR/flows.db
  CTA_JSONL=$NOBODY_DIR/flows.jsonl
}

# Network namespaces need more than uid 0 (a container may deny them): try one.
cta_require_netns() {
  local probe="cta-probe-$RANDOM$$"
  if ! ip netns add "$probe" 2>/dev/null; then
    cta_skip_or_fail "cannot create network namespaces (ip netns add failed)"
  fi
  local ok=1
  printf 'table inet t {\n chain c {\n  type filter hook forward priority 0;\n  ct state established accept\n }\n}\n' |
    ip netns exec "$probe" nft -f - >/dev/null 2>&1 || ok=0
  ip netns del "$probe"
  ((ok)) || cta_skip_or_fail "nft with conntrack ('ct state') does not work in a network namespace"
}

# cta_init NAME [--daemon] [--query] [--loadgen] [--no-netns]
# Checks prerequisites, makes a temp dir and installs the cleanup trap. --daemon/--query/--loadgen
# require the binaries (--loadgen also the sqlite3 shell the load tests read the database with);
# without --no-netns, root and the namespace tools are required too.
cta_init() {
  CTA_NAME=$1
  shift
  local need_daemon=0 need_query=0 need_loadgen=0 need_netns=1 arg
  for arg in "$@"; do
    case $arg in
      --daemon) need_daemon=1 ;;
      --query) need_query=1 ;;
      --loadgen) need_loadgen=1 ;;
      --no-netns) need_netns=0 ;;
      *) cta_die "cta_init: unknown option $arg" ;;
    esac
  done
  printf '# %s (CI=%s)\n' "$CTA_NAME" "${CI:-unset}"
  cta_require_tools jq date mktemp
  if ((need_netns)); then
    cta_require_root
    cta_require_tools ip nft conntrack socat ping ss sysctl
    cta_require_netns
  fi
  ((need_daemon)) && cta_require_daemon
  ((need_query)) && cta_require_query
  if ((need_loadgen)); then
    cta_require_loadgen
    cta_require_tools sqlite3
  fi
  CTA_TMP=$(mktemp -d "${TMPDIR:-/tmp}/cta-$CTA_NAME.XXXXXX") || cta_die "mktemp failed"
  # An untrapped fatal signal would end bash without running the EXIT trap: catch the ones a
  # test meets (Ctrl-C, ctest's timeout, a closed terminal, `| head` closing the pipe).
  trap cta_cleanup EXIT
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 141' PIPE
  trap 'exit 143' TERM
}

# ---------------------------------------------------------------------------------------------
# Cleanup: every process in our namespaces, every tracked process, the namespaces, the temp dir.

# True when the process is gone or a zombie (exited, not yet reaped).
cta_pid_exited() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 0
  [[ -z "$state" || "$state" == Z ]]
}

# Sends SIGTERM to each pid, waits up to 3 s, then SIGKILLs what is left.
cta_kill_pids() {
  (($# > 0)) || return 0
  local pid
  kill -TERM "$@" 2>/dev/null
  local deadline=$(($(date +%s) + 3))
  for pid in "$@"; do
    while ! cta_pid_exited "$pid" && (($(date +%s) < deadline)); do
      sleep 0.05
    done
    cta_pid_exited "$pid" || kill -KILL "$pid" 2>/dev/null
  done
  return 0
}

cta_ns_del() {
  local ns=$1 pids
  ip netns list 2>/dev/null | awk '{print $1}' | grep -qxF "$ns" || return 0
  # Every process in a namespace of ours was started by us (servers, clients, the daemon).
  mapfile -t pids < <(ip netns pids "$ns" 2>/dev/null)
  cta_kill_pids "${pids[@]}"
  ip netns del "$ns" 2>/dev/null || cta_err "warning: could not delete namespace $ns"
}

cta_cleanup() {
  local rc=$?
  trap - EXIT HUP INT TERM
  trap '' PIPE # stdout may be a closed pipe: the cleanup must still run to the end
  if [[ -n "$CTA_DAEMON_PID" ]] && ! cta_pid_exited "$CTA_DAEMON_PID"; then
    cta_err "# cleanup: daemon (pid $CTA_DAEMON_PID) still running, killing it"
  fi
  # Only tracked processes that are still our children: an exited one's pid may have been reused.
  local pid
  local -a ours=()
  for pid in "${CTA_PIDS[@]}"; do
    [[ $(awk '{print $4}' "/proc/$pid/stat" 2>/dev/null) == "$$" ]] && ours+=("$pid")
  done
  cta_kill_pids "${ours[@]}"
  local ns
  for ns in "${CTA_NAMESPACES[@]}"; do
    cta_ns_del "$ns"
  done
  wait 2>/dev/null
  local mount_point
  for mount_point in "${CTA_MOUNTS[@]}"; do
    # Lazy as a fallback: a process we could not kill may still hold a file open there.
    umount "$mount_point" 2>/dev/null || umount -l "$mount_point" 2>/dev/null ||
      cta_err "warning: could not unmount $mount_point"
  done
  if [[ -n "$CTA_TMP" && -d "$CTA_TMP" ]]; then
    if ((rc != 0 && rc != 77)) && [[ -n "$CTA_DAEMON_LOG" && -s "$CTA_DAEMON_LOG" ]]; then
      cta_err "# --- last lines of the daemon log ($CTA_DAEMON_LOG) ---"
      tail -n 30 "$CTA_DAEMON_LOG" | sed 's/^/# /' >&2
    fi
    if [[ "${CTA_KEEP_TMP:-0}" == 1 ]]; then
      cta_err "# kept $CTA_TMP (CTA_KEEP_TMP=1)"
    else
      rm -rf "$CTA_TMP"
    fi
  fi
  exit "$rc"
}

# ---------------------------------------------------------------------------------------------
# Topology.

cta_in() {
  local ns=$1
  shift
  ip netns exec "$ns" "$@"
}

# Creates a namespace with loopback up and IPv6 duplicate address detection off, so addresses are
# usable at once (no tentative state). Registered for cleanup.
cta_ns_add() {
  local ns=$1
  ip netns add "$ns" || cta_die "ip netns add $ns failed"
  CTA_NAMESPACES+=("$ns")
  cta_in "$ns" ip link set lo up || cta_die "$ns: lo up failed"
  cta_in "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 \
    >/dev/null || cta_die "$ns: disabling IPv6 DAD failed"
}

# The gateway's ruleset. `ct state` decides what may be forwarded (new connections only from the
# inside, or to the port forward); SNAT/masquerade use port ranges so translated ports differ from
# the originals. nft only accepts a port range after a transport protocol match, hence the
# `meta l4proto` sets; for ICMP the "port" range applies to the echo id. Other protocols get the
# address translation without a port range.
cta_nft_ruleset() {
  cat <<EOF
table inet ctaudit_lab {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    iifname "gw-out" ip daddr $CTA_GW4_OUT tcp dport $CTA_DNAT_PORT dnat ip to $CTA_CL4:$CTA_INSIDE_PORT
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct state invalid counter drop
    iifname "gw-in" oifname "gw-out" ct state new accept
    iifname "gw-out" oifname "gw-in" ct state new ct status dnat accept
    counter comment "everything else is dropped"
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "gw-out" ip saddr $CTA_IN4_NET meta l4proto { tcp, udp, icmp } snat ip to $CTA_GW4_OUT:$CTA_SNAT4_MIN-$CTA_SNAT4_MAX
    oifname "gw-out" ip saddr $CTA_IN4_NET snat ip to $CTA_GW4_OUT
    oifname "gw-out" ip6 saddr $CTA_IN6_NET meta l4proto { tcp, udp, ipv6-icmp } masquerade to :$CTA_SNAT6_MIN-$CTA_SNAT6_MAX
    oifname "gw-out" ip6 saddr $CTA_IN6_NET masquerade
  }
}
EOF
}

# cta_topology_up [CLIENT GATEWAY SERVER]
# Builds the three namespaces (random names "cta-{cl,gw,srv}-<suffix>" unless given), sets
# CTA_CL, CTA_GW, CTA_SRV, and checks that every address answers a ping from its neighbour.
cta_topology_up() {
  local suffix="$RANDOM$$"
  CTA_CL=${1:-cta-cl-$suffix}
  CTA_GW=${2:-cta-gw-$suffix}
  CTA_SRV=${3:-cta-srv-$suffix}
  cta_ns_add "$CTA_CL"
  cta_ns_add "$CTA_GW"
  cta_ns_add "$CTA_SRV"

  # Both ends of each veth are created inside the namespaces: no name ever appears in the root ns.
  cta_in "$CTA_CL" ip link add eth0 type veth peer name gw-in netns "$CTA_GW" || cta_die "veth client<->gateway failed"
  cta_in "$CTA_SRV" ip link add eth0 type veth peer name gw-out netns "$CTA_GW" || cta_die "veth server<->gateway failed"

  # Forwarding on in the gateway only. Set off explicitly in the others: with
  # net.core.devconf_inherit_init_net a new namespace copies the host's settings.
  cta_in "$CTA_GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 >/dev/null ||
    cta_die "enabling forwarding in $CTA_GW failed"
  local ns
  for ns in "$CTA_CL" "$CTA_SRV"; do
    cta_in "$ns" sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0 >/dev/null ||
      cta_die "disabling forwarding in $ns failed"
  done

  local -a steps=(
    "$CTA_CL ip addr add $CTA_CL4/24 dev eth0"
    "$CTA_CL ip addr add $CTA_CL4B/24 dev eth0"
    "$CTA_CL ip -6 addr add $CTA_CL6/64 dev eth0 nodad"
    "$CTA_CL ip -6 addr add $CTA_CL6B/64 dev eth0 nodad"
    "$CTA_CL ip link set eth0 up"
    "$CTA_CL ip route add default via $CTA_GW4_IN dev eth0"
    "$CTA_CL ip -6 route add default via $CTA_GW6_IN dev eth0"
    "$CTA_GW ip addr add $CTA_GW4_IN/24 dev gw-in"
    "$CTA_GW ip -6 addr add $CTA_GW6_IN/64 dev gw-in nodad"
    "$CTA_GW ip addr add $CTA_GW4_OUT/24 dev gw-out"
    "$CTA_GW ip -6 addr add $CTA_GW6_OUT/64 dev gw-out nodad"
    "$CTA_GW ip link set gw-in up"
    "$CTA_GW ip link set gw-out up"
    "$CTA_SRV ip addr add $CTA_SRV4/24 dev eth0"
    "$CTA_SRV ip -6 addr add $CTA_SRV6/64 dev eth0 nodad"
    "$CTA_SRV ip link set eth0 up"
  )
  local step
  for step in "${steps[@]}"; do
    # shellcheck disable=SC2086  # each step is a namespace and a word-split ip command
    cta_in $step || cta_die "topology step failed: ip netns exec $step"
  done

  cta_nft_ruleset | cta_in "$CTA_GW" nft -f - || cta_die "loading the nft ruleset in $CTA_GW failed"

  # Links are up and addresses have no DAD: each hop answers at once (the wait covers link-up).
  cta_wait_ping "$CTA_CL" "$CTA_GW4_IN" && cta_wait_ping "$CTA_CL" "$CTA_GW6_IN" &&
    cta_wait_ping "$CTA_SRV" "$CTA_GW4_OUT" && cta_wait_ping "$CTA_SRV" "$CTA_GW6_OUT" ||
    cta_die "the topology does not answer pings between neighbours"
}

cta_ping_once() { cta_in "$1" ping -q -c 1 -W 1 "$2" >/dev/null 2>&1; }
cta_wait_ping() { wait_for 5 "$1 reaches $2" cta_ping_once "$1" "$2"; }

cta_topology_down() {
  local ns
  for ns in "$CTA_CL" "$CTA_GW" "$CTA_SRV"; do
    [[ -n "$ns" ]] && cta_ns_del "$ns"
  done
}

# ---------------------------------------------------------------------------------------------
# Processes.

# cta_bg NS LOGFILE COMMAND [ARGS...]: runs a command in a namespace in the background, output to
# LOGFILE; its pid is in CTA_BG_PID and tracked for cleanup. `ip netns exec` execs the command
# itself (no fork), so the pid is the command's own. With CTA_DETACH=1 (the lab, whose services
# outlive the script) it runs in a session of its own, away from the terminal.
cta_bg() {
  local ns=$1 log=$2
  shift 2
  local -a detach=()
  [[ ${CTA_DETACH:-0} == 1 ]] && detach=(setsid)
  "${detach[@]}" ip netns exec "$ns" "$@" </dev/null >"$log" 2>&1 &
  CTA_BG_PID=$!
  CTA_PIDS+=("$CTA_BG_PID")
}

cta_listening() { # NS PROTO(tcp|udp) ADDR PORT
  local flag=-ltnH
  [[ $2 == udp ]] && flag=-lunH
  cta_in "$1" ss "$flag" "src $3 and sport = :$4" 2>/dev/null | grep -q .
}

# Echo services: TCP and UDP on the server (IPv4 and IPv6), and the DNAT target on the client.
# Each echoes what it gets (socat PIPE). LOGDIR defaults to the test's temp dir.
cta_start_servers() {
  local logdir=${1:-$CTA_TMP}
  cta_bg "$CTA_SRV" "$logdir/srv-tcp4.log" socat TCP4-LISTEN:$CTA_TCP_PORT,bind=$CTA_SRV4,reuseaddr,fork PIPE
  cta_bg "$CTA_SRV" "$logdir/srv-tcp6.log" socat TCP6-LISTEN:$CTA_TCP_PORT,bind="[$CTA_SRV6]",reuseaddr,fork,ipv6only=1 PIPE
  cta_bg "$CTA_SRV" "$logdir/srv-udp4.log" socat UDP4-RECVFROM:$CTA_UDP_PORT,bind=$CTA_SRV4,fork PIPE
  cta_bg "$CTA_SRV" "$logdir/srv-udp6.log" socat UDP6-RECVFROM:$CTA_UDP_PORT,bind="[$CTA_SRV6]",fork,ipv6only=1 PIPE
  cta_bg "$CTA_CL" "$logdir/cl-tcp80.log" socat TCP4-LISTEN:$CTA_INSIDE_PORT,bind=$CTA_CL4,reuseaddr,fork PIPE
  wait_for 5 "echo services listening" cta_servers_listening ||
    cta_die "the socat echo services did not start (logs in $logdir)"
}

cta_servers_listening() {
  cta_listening "$CTA_SRV" tcp "$CTA_SRV4" $CTA_TCP_PORT && cta_listening "$CTA_SRV" tcp "[$CTA_SRV6]" $CTA_TCP_PORT &&
    cta_listening "$CTA_SRV" udp "$CTA_SRV4" $CTA_UDP_PORT && cta_listening "$CTA_SRV" udp "[$CTA_SRV6]" $CTA_UDP_PORT &&
    cta_listening "$CTA_CL" tcp "$CTA_CL4" $CTA_INSIDE_PORT
}

# socat wants IPv6 literals in brackets.
cta_sockaddr() { if [[ $1 == *:* ]]; then printf '[%s]:%s' "$1" "$2"; else printf '%s:%s' "$1" "$2"; fi; }

# cta_tcp_flow SRC_IP SRC_PORT DST_IP DST_PORT [NS]
# One short TCP connection from SRC_IP:SRC_PORT (in NS, default the client): sends a line, expects
# the same line back, closes. Returns 1 (with a reason on stderr) if the echo did not come back.
cta_tcp_flow() {
  local src=$1 sport=$2 dst=$3 dport=$4 ns=${5:-$CTA_CL}
  local payload="cta-tcp-$src-$sport-$RANDOM" reply
  reply=$(printf '%s\n' "$payload" |
    cta_in "$ns" timeout 10 socat -T 5 - "TCP:$(cta_sockaddr "$dst" "$dport"),bind=$(cta_sockaddr "$src" "$sport"),connect-timeout=3" 2>&1)
  [[ "$reply" == "$payload" ]] && return 0
  cta_err "tcp $src:$sport -> $dst:$dport: expected the echo '$payload', got '$reply'"
  return 1
}

# cta_udp_flow SRC_IP SRC_PORT DST_IP DST_PORT [NS]: one UDP request and its echoed reply. socat
# sends the line and, at the end of its input, waits -t seconds for the reply before it exits.
cta_udp_flow() {
  local src=$1 sport=$2 dst=$3 dport=$4 ns=${5:-$CTA_CL}
  local payload="cta-udp-$src-$sport-$RANDOM" reply
  reply=$(printf '%s\n' "$payload" |
    cta_in "$ns" timeout 10 socat -t 1 -T 3 - "UDP:$(cta_sockaddr "$dst" "$dport"),bind=$(cta_sockaddr "$src" "$sport")" 2>&1)
  [[ "$reply" == "$payload" ]] && return 0
  cta_err "udp $src:$sport -> $dst:$dport: expected the echo '$payload', got '$reply'"
  return 1
}

# cta_ping SRC_IP DST_IP COUNT: COUNT echo requests, every reply required.
cta_ping() {
  local src=$1 dst=$2 count=$3 out
  out=$(cta_in "$CTA_CL" ping -n -q -c "$count" -i 0.2 -W 2 -I "$src" "$dst" 2>&1)
  [[ $out == *" $count received"* ]] && return 0
  cta_err "ping $src -> $dst: not all $count replies came back: $out"
  return 1
}

# cta_flow TRANSPORT SRC_IP SRC_PORT DST_IP DST_PORT: one tcp or udp flow from the client.
cta_flow() {
  case $1 in
    tcp) cta_tcp_flow "${@:2}" ;;
    udp) cta_udp_flow "${@:2}" ;;
    *) cta_err "cta_flow: unknown transport $1"; return 1 ;;
  esac
}

# cta_flows_parallel SPEC...: runs each "TRANSPORT SRC_IP SRC_PORT DST_IP DST_PORT" flow at the
# same time (UDP flows each wait for their reply, so in sequence they would add up). Returns 1 if
# any failed.
cta_flows_parallel() {
  local spec pid failed=0
  local -a pids=()
  for spec in "$@"; do
    # shellcheck disable=SC2086  # a spec is five words
    cta_flow $spec &
    pids+=("$!")
  done
  for pid in "${pids[@]}"; do
    wait "$pid" || failed=1
  done
  return "$failed"
}

# cta_dnat_flow SRC_PORT: from the server to the port forward 203.0.113.1:8080, which reaches the
# echo service on 100.64.0.2:80.
cta_dnat_flow() {
  cta_tcp_flow "$CTA_SRV4" "$1" "$CTA_GW4_OUT" "$CTA_DNAT_PORT" "$CTA_SRV"
}

# ---------------------------------------------------------------------------------------------
# The truth: the gateway's conntrack table, as the kernel has it.

# cta_ct_truth NS [conntrack -L filter args...]
# Prints one line per conntrack entry:
#   FAMILY TRANSPORT ORIG_SRC ORIG_SPORT ORIG_DST ORIG_DPORT REPLY_SRC REPLY_SPORT REPLY_DST REPLY_DPORT CT_ID
# FAMILY is ipv4|ipv6, TRANSPORT tcp|udp|icmp|ipv6-icmp (ECS network.transport names). For ICMP
# the ports are the echo id (ORIG_SPORT, REPLY_DPORT) and "-" for the other side. The translated
# source of a SNAT/masquerade flow is REPLY_DST:REPLY_DPORT; the translated destination of a DNAT
# flow is REPLY_SRC:REPLY_SPORT (FIELD-NOTES 11). CT_ID is the kernel's conntrack id (CTA_ID).
cta_ct_truth() {
  local ns=$1
  shift
  cta_in "$ns" conntrack -L -o extended,id "$@" 2>/dev/null | awk '
    {
      family = $1; transport = $3
      if (transport == "icmpv6") transport = "ipv6-icmp"
      delete v; t = 0; ctid = "-"
      for (i = 4; i <= NF; i++) {
        eq = index($i, "="); if (eq == 0) continue
        key = substr($i, 1, eq - 1); val = substr($i, eq + 1)
        if (key == "src") t++
        if (key == "id") ctid = val               # -o id prints the conntrack id last
        if (t >= 1 && t <= 2 && !((t, key) in v)) v[t, key] = val
      }
      if (t < 2) next
      if (transport == "icmp" || transport == "ipv6-icmp") {
        osport = v[1, "id"]; odport = "-"; rsport = "-"; rdport = v[2, "id"]
      } else {
        osport = v[1, "sport"]; odport = v[1, "dport"]; rsport = v[2, "sport"]; rdport = v[2, "dport"]
      }
      print family, transport, v[1, "src"], osport, v[1, "dst"], odport, v[2, "src"], rsport, v[2, "dst"], rdport, ctid
    }'
}

# cta_endpoint IP PORT TRANSPORT: "ip:port", "[v6]:port", or for ICMP "ip id N" (or "ip").
cta_endpoint() {
  case $3 in
    icmp | ipv6-icmp) if [[ $2 == - ]]; then printf '%s' "$1"; else printf '%s id %s' "$1" "$2"; fi ;;
    *) cta_sockaddr "$1" "$2" ;;
  esac
}

# cta_describe TRUTH_LINE: "tcp 100.64.0.2:21001 -> 203.0.113.2:5001 as 203.0.113.1:40123" for a
# source translation, "... to 100.64.0.2:80" for a destination translation.
cta_describe() {
  local -a f
  read -ra f <<<"$1"
  local t=${f[1]}
  printf '%s %s -> %s' "$t" "$(cta_endpoint "${f[2]}" "${f[3]}" "$t")" "$(cta_endpoint "${f[4]}" "${f[5]}" "$t")"
  if [[ ${f[2]} != "${f[8]}" || ${f[3]} != "${f[9]}" ]]; then
    printf ' as %s' "$(cta_endpoint "${f[8]}" "${f[9]}" "$t")"
  elif [[ ${f[4]} != "${f[6]}" || ${f[5]} != "${f[7]}" ]]; then
    printf ' to %s' "$(cta_endpoint "${f[6]}" "${f[7]}" "$t")"
  fi
}

# The source-translated entries (reply destination differs from the original source), from truth
# lines on stdin. Same columns.
cta_truth_snat() { awk '$3 != $9 || $4 != $10'; }

# The destination-translated entries (reply source differs from the original destination).
cta_truth_dnat() { awk '$5 != $7 || $6 != $8'; }

# ---------------------------------------------------------------------------------------------
# The daemon.

# The command prefix that runs the daemon in a namespace of ours: the gateway once there is a
# topology, otherwise a throwaway namespace of its own (unshare execs, so the pid is the daemon's,
# and the namespace vanishes with it). Never the root namespace.
cta_daemon_launcher() {
  if [[ -n "$CTA_GW" ]]; then
    CTA_LAUNCHER=(ip netns exec "$CTA_GW")
  else
    CTA_LAUNCHER=(unshare --net --)
  fi
}

# cta_daemon_start [EXTRA_ARGS...]
# Starts ctauditd (see cta_daemon_launcher) with CTA_DB/CTA_JSONL (defaults in the temp dir) and
# waits for the line containing "ready" in its stderr log, CTA_DAEMON_LOG_FILE (default
# ctauditd.log in the temp dir). Sets CTA_DAEMON_PID and CTA_DAEMON_LOG.
cta_daemon_start() {
  : "${CTA_DB:=$CTA_TMP/flows.db}"
  : "${CTA_JSONL:=$CTA_TMP/flows.jsonl}"
  CTA_DAEMON_LOG=${CTA_DAEMON_LOG_FILE:-$CTA_TMP/ctauditd.log}
  cta_daemon_launcher
  # No built-in rotation unless a test asks for it: a test running across 00:00 UTC would
  # otherwise find its lines split over two files. ctauditd refuses a flag given twice, so a
  # default below is left out when the test gives that flag itself.
  local args=(--db "$CTA_DB" --jsonl "$CTA_JSONL") flag value
  for flag in jsonl-rotate:none log-level:debug; do
    value=${flag#*:} flag=${flag%%:*}
    [[ " $* " == *" --$flag "* || " $* " == *" --$flag="* ]] || args+=("--$flag" "$value")
  done
  args+=("$@")
  cta_log "starting: ${CTA_LAUNCHER[*]} $CTAUDITD ${args[*]}"
  "${CTA_LAUNCHER[@]}" "$CTAUDITD" "${args[@]}" </dev/null >"$CTA_DAEMON_LOG" 2>&1 &
  CTA_DAEMON_PID=$!
  CTA_PIDS+=("$CTA_DAEMON_PID")
  if ! wait_for 15 "ctauditd logs 'ready'" cta_daemon_ready; then
    cta_pid_exited "$CTA_DAEMON_PID" && cta_err "ctauditd exited before it was ready"
    cta_die "ctauditd did not become ready (log: $CTA_DAEMON_LOG)"
  fi
  cta_log "ctauditd ready (pid $CTA_DAEMON_PID)"
}

cta_daemon_ready() {
  grep -qw ready "$CTA_DAEMON_LOG" 2>/dev/null && return 0
  # A daemon that died will never log it: stop polling (cleanup shows its log).
  if cta_pid_exited "$CTA_DAEMON_PID"; then
    wait "$CTA_DAEMON_PID"
    cta_die "ctauditd exited with status $? before logging 'ready'"
  fi
  return 1
}

# cta_daemon_signal SIGNAL
cta_daemon_signal() { kill -s "$1" "$CTA_DAEMON_PID"; }

# cta_daemon_stop [TIMEOUT]: SIGTERM, then cta_daemon_wait_exit.
cta_daemon_stop() {
  kill -TERM "$CTA_DAEMON_PID" 2>/dev/null
  cta_daemon_wait_exit "${1:-10}"
}

# cta_daemon_wait_exit [TIMEOUT]: wait for the exit of a daemon already told to stop (default
# 10 s), reap it and set CTA_DAEMON_RC. Returns 0 only if it exited with status 0; a daemon that
# hangs is SIGKILLed.
cta_daemon_wait_exit() {
  local timeout=${1:-10}
  CTA_DAEMON_RC=""
  if ! wait_for "$timeout" "ctauditd exits after SIGTERM" cta_pid_exited "$CTA_DAEMON_PID"; then
    kill -KILL "$CTA_DAEMON_PID" 2>/dev/null
    wait "$CTA_DAEMON_PID" 2>/dev/null
    CTA_DAEMON_RC=killed
    return 1
  fi
  wait "$CTA_DAEMON_PID"
  CTA_DAEMON_RC=$?
  if ((CTA_DAEMON_RC != 0)); then
    cta_err "ctauditd exited with status $CTA_DAEMON_RC after SIGTERM"
    return 1
  fi
  return 0
}

# ---------------------------------------------------------------------------------------------
# Reading results.

# jq with two helpers. f("a.b") reads an ECS field whether the JSON nests it
# ({"source":{"ip":…}}) or spells it with dots ({"source.ip":…}). inside_port is the inside
# host's port: source.port, or for ICMP (no ports in ECS) the echo id, which the record may carry
# as source.port or as conntrack.original.id. flow_key is "TRANSPORT INSIDE_IP INSIDE_PORT", the
# same as columns 2-4 of a cta_ct_truth line. flows_only drops the event.kind "pipeline_error"
# lines (gaps in the log, or time no daemon recorded) that `ctaudit --format json` adds after the
# flows of a query with a time window. Usage: cta_jq [jq options...] FILTER < input
CTA_JQ_DEFS='
def f($p): ($p | split(".")) as $k | (try getpath($k) catch null) as $n
  | if $n != null then $n else .[$p] end;
def flows_only: select(f("event.kind") != "pipeline_error");
def inside_port: f("source.port") // f("conntrack.original.id");
def flow_key: "\(f("network.transport")) \(f("source.ip")) \(inside_port)";
def epoch($t): $t | sub("\\.[0-9]+"; "") | sub("\\+00:00$"; "Z") | fromdateiso8601;
'
cta_jq() {
  local filter=${*: -1}
  jq -c "${@:1:$#-1}" "$CTA_JQ_DEFS $filter"
}

# cta_capture COMMAND [ARGS...]: runs the command, stdout in CTA_OUT, stderr in CTA_ERRTXT,
# status in CTA_RC.
cta_capture() {
  local out="$CTA_TMP/capture.out" err="$CTA_TMP/capture.err"
  "$@" >"$out" 2>"$err"
  # shellcheck disable=SC2034  # results for the caller
  CTA_RC=$?
  # shellcheck disable=SC2034
  CTA_OUT=$(<"$out")
  # shellcheck disable=SC2034
  CTA_ERRTXT=$(<"$err")
}

# cta_flows_json [ctaudit flows options...]: every stored flow matching, one JSON object a line.
cta_flows_json() {
  "$CTAUDIT" flows --db "$CTA_DB" --format json --limit 100000 "$@"
}

# ---------------------------------------------------------------------------------------------
# Load, loss and storage checks (issue #3): one namespace, ct_loadgen, the daemon's stats file,
# the database through the sqlite3 shell.

# cta_load_ns_up: one namespace ("cta-load-<suffix>") for the daemon and ct_loadgen, set as
# CTA_GW, so cta_daemon_start runs the daemon there. No interfaces and no ruleset: ct_loadgen makes
# the conntrack entries (NAT'd) itself through ctnetlink.
cta_load_ns_up() {
  CTA_GW=cta-load-$RANDOM$$
  cta_ns_add "$CTA_GW"
}

# cta_loadgen SUMMARY_FILE ARGS...: runs ct_loadgen in CTA_GW in the foreground; its key=value
# summary goes to SUMMARY_FILE and, indented, to the test's output. Returns its exit status (0 all
# requests succeeded, 3 some failed; see ct_loadgen --help).
cta_loadgen() {
  local summary=$1
  shift
  cta_log "ct_loadgen $*"
  cta_in "$CTA_GW" "$CT_LOADGEN" "$@" >"$summary" 2>"$summary.err"
  local rc=$?
  cta_log "  $(tr '\n' ' ' <"$summary")"
  [[ -s "$summary.err" ]] && sed 's/^/#   ct_loadgen: /' "$summary.err"
  return "$rc"
}

# cta_loadgen_bg SUMMARY_FILE ARGS...: the same in the background; pid in CTA_LOADGEN_PID. SIGINT
# makes it stop creating (and delete what it keeps alive unless --keep); then wait for it.
cta_loadgen_bg() {
  local summary=$1
  shift
  cta_log "ct_loadgen (background) $*"
  # ip netns exec directly (not through cta_in, a function, which would run in a subshell): the pid
  # must be ct_loadgen's own for signals to reach it.
  ip netns exec "$CTA_GW" "$CT_LOADGEN" "$@" </dev/null >"$summary" 2>"$summary.err" &
  CTA_LOADGEN_PID=$!
  CTA_PIDS+=("$CTA_LOADGEN_PID")
}

# cta_kv FILE KEY: the value of KEY in a key=value file (a ct_loadgen summary), or nothing.
cta_kv() { awk -F= -v k="$2" '$1 == k { print substr($0, length(k) + 2); exit }' "$1" 2>/dev/null; }

# cta_daemon_supports OPTION: ctauditd's --help lists --OPTION. The issue #3 options
# (--stats-file, --queue-max, --reliable) are being added alongside these tests; a check that
# needs one fails (never skips) while the daemon lacks it, and says so.
cta_daemon_supports() { "$CTAUDITD" --help 2>/dev/null | grep -q -- "--$1\b"; }

# cta_stats_sum FILE REGEX: the sum of the samples in a Prometheus text file whose metric name
# matches the (awk) REGEX, e.g. 'overrun'. Prints nothing when no sample matches.
cta_stats_sum() {
  awk -v re="$2" '
    /^#/ || NF < 2 { next }
    { name = $1; sub(/\{.*/, "", name) }
    name ~ re { sum += $NF; found = 1 }
    END { if (found) printf "%.0f\n", sum }' "$1" 2>/dev/null
}

# cta_sql SQL: runs SQL on CTA_DB through the sqlite3 shell (read-only, 5 s busy timeout), one
# row a line, columns separated by '|'.
cta_sql() { sqlite3 -readonly -cmd '.timeout 5000' "$CTA_DB" "$1"; }

# ct_loadgen's flow n uses inside port 10000 + n/1000 (its default --hosts 1000), so the flows made
# with --first-index 1000·k are those of inside port 10000 + k: a batch a test can count.
# cta_port_rows PORT [OP]: stored flows, open or closed, whose inside port is OP PORT (OP "=",
# the default, or ">=" for the batches from PORT on); cta_port_closed_rows: closed ones only.
cta_port_rows() { cta_sql "SELECT count(*) FROM flows_text WHERE orig_sport ${2:-=} $1"; }
cta_port_closed_rows() { cta_sql "SELECT count(*) FROM flows_text WHERE orig_sport ${2:-=} $1 AND end_ms IS NOT NULL"; }
# cta_port_json_lines PORT ACTION [OP]: complete lines of CTA_JSONL with that inside port (OP as
# above) and event.action ACTION (new, destroy).
cta_port_json_lines() {
  cta_jsonl_lines "$CTA_JSONL" complete |
    cta_jq -R --argjson p "$1" --arg a "$2" --arg op "${3:-=}" 'try fromjson catch empty
      | select((if $op == ">=" then inside_port >= $p else inside_port == $p end) and f("event.action") == $a)' |
    wc -l
}
# cta_batch_in_db PORT COUNT WHAT / cta_batch_in_json PORT COUNT WHAT: the batch of PORT is all
# there, COUNT flows closed in the database / one new and one destroy line each in the JSON lines
# (no line twice); WHAT names the batch in the complaint.
cta_batch_in_db() {
  local n
  n=$(cta_port_closed_rows "$1")
  ((n == $2)) && return 0
  cta_err "the database has $n closed flows $3, want $2"
  return 1
}
cta_batch_in_json() {
  local new destroy
  new=$(cta_port_json_lines "$1" new)
  destroy=$(cta_port_json_lines "$1" destroy)
  ((new == $2 && destroy == $2)) && return 0
  cta_err "JSON lines $3: $new new, $destroy destroy; want $2 each, once"
  return 1
}

# cta_has_table NAME: CTA_DB has a table of that name.
cta_has_table() { [[ $(cta_sql "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='$1'") == 1 ]]; }

# cta_integrity_ok [DB]: PRAGMA integrity_check says ok. It runs on a copy of the database and
# its -wal/-shm files, so that a daemon killed mid-write recovers its own hot WAL at restart
# rather than the check doing it first.
cta_integrity_ok() {
  local db=${1:-$CTA_DB} copy=$CTA_TMP/integrity-copy result suffix
  rm -rf "$copy" && mkdir -p "$copy"
  for suffix in "" -wal -shm; do
    [[ -e "$db$suffix" ]] && cp "$db$suffix" "$copy/db$suffix"
  done
  result=$(sqlite3 "$copy/db" 'PRAGMA integrity_check' 2>&1)
  rm -rf "$copy"
  [[ $result == ok ]] && return 0
  cta_err "PRAGMA integrity_check on $db: $result"
  return 1
}

# cta_jsonl_lines FILE [complete]: the file's lines; with "complete" only up to its last newline,
# leaving out a line that the running daemon is still writing. Reads a snapshot of the file's
# current size, so bytes appended meanwhile do not matter.
cta_jsonl_lines() {
  local snapshot=$CTA_TMP/jsonl-snapshot
  head -c "$(stat -c %s "$1" 2>/dev/null || echo 0)" "$1" >"$snapshot" 2>/dev/null
  if [[ ${2:-all} == complete && -s "$snapshot" && -n $(tail -c 1 "$snapshot") ]]; then
    sed '$d' "$snapshot"
  else
    cat "$snapshot"
  fi
  rm -f "$snapshot"
}

# cta_jsonl_bad_lines FILE [complete]: how many lines are not one JSON object (torn or merged
# lines), among the complete ones with "complete".
cta_jsonl_bad_lines() {
  cta_jsonl_lines "$1" "${2:-all}" |
    jq -R -c 'try (fromjson | if type == "object" then empty else "bad" end) catch "bad"' | wc -l
}

# cta_no_loss_gaps: the database records no gap of lost records (every stored reason but
# daemon_down: kernel_overrun, queue_overflow, sink_failure).
cta_no_loss_gaps() {
  local n
  n=$(cta_sql "SELECT count(*) FROM gaps WHERE reason IN ('kernel_overrun', 'queue_overflow', 'sink_failure', 'malformed_event')")
  ((n == 0)) && return 0
  cta_err "$n gap(s) of lost records: $(cta_sql 'SELECT reason, start_ns, end_ns, lost_records FROM gaps' | tr '\n' ';')"
  return 1
}

# cta_jsonl_all_parse FILE: every line of FILE is one JSON object (says how many are not).
cta_jsonl_all_parse() {
  local bad
  bad=$(cta_jsonl_bad_lines "$1")
  ((bad == 0)) && return 0
  cta_err "$1: $bad line(s) are not a JSON object"
  return 1
}

# cta_jsonl_ends_with_newline FILE: the last byte is "\n" (or the file is empty).
cta_jsonl_ends_with_newline() {
  [[ ! -s "$1" || -z $(tail -c 1 "$1") ]] && return 0
  cta_err "$1 does not end with a newline: its last line is torn: $(tail -c 120 "$1")"
  return 1
}

# cta_pipeline_errors FILE [TEXT]: the JSON lines with event.kind "pipeline_error" (loss
# records), optionally only those that mention TEXT anywhere (e.g. a reason like daemon_down).
cta_pipeline_errors() {
  cta_jsonl_lines "$1" complete | jq -R -c --arg t "${2:-}" '
    try fromjson catch empty | select(type == "object")
    | select((.event.kind // .["event.kind"]) == "pipeline_error")
    | select($t == "" or (tostring | contains($t)))'
}

# cta_db_duplicates [WITH_START]: rows that describe the same flow twice: the same conntrack id,
# zone and original tuple (and, with WITH_START=1, the same start). Prints them, one a line:
# ct_id|zone|protocol|src|sport|dst|dport[|start_ms]|rows. The grouping is on the stored columns
# (orig_src and orig_dst are endpoints: address and port in one value; the zone is the high bits
# of zone_mark, the protocol the low byte of packed); flows_text decodes only the rows
# printed. Starts are whole milliseconds, so WITH_START=1 would merge two flows of the same id and
# tuple that started within the same millisecond: ct_loadgen's tuples repeat only after millions of
# flows, so a row it finds is one flow written twice.
cta_db_duplicates() {
  local start_col=""
  [[ ${1:-0} == 1 ]] && start_col=", start_ms"
  cta_sql "SELECT t.ct_id, t.zone, t.protocol, t.orig_src, t.orig_sport, t.orig_dst, t.orig_dport${start_col:+, t.start_ms}, d.n
           FROM (SELECT min(id) AS id, count(*) AS n FROM flows
                 GROUP BY ct_id, zone_mark >> 32, packed & 255, orig_src, orig_dst$start_col
                 HAVING count(*) > 1 LIMIT 20) AS d
           JOIN flows_text AS t ON t.id = d.id ORDER BY t.id"
}

# cta_mount_tmpfs DIR SIZE: a tmpfs of SIZE (e.g. 4m) on DIR (created), unmounted by the cleanup.
cta_mount_tmpfs() {
  mkdir -p "$1" || cta_die "mkdir $1 failed"
  mount -t tmpfs -o "size=$2,mode=0755" ctaudit-test "$1" || cta_skip_or_fail "cannot mount a tmpfs on $1"
  CTA_MOUNTS+=("$1")
}

# cta_daemon_kill9: SIGKILL the daemon (no chance to write anything) and reap it.
cta_daemon_kill9() {
  kill -KILL "$CTA_DAEMON_PID" 2>/dev/null
  wait "$CTA_DAEMON_PID" 2>/dev/null
  CTA_DAEMON_RC=killed
}

# cta_daemon_alive: the daemon process has not exited.
cta_daemon_alive() { ! cta_pid_exited "$CTA_DAEMON_PID"; }

# cta_truth_key_nat NS: "TRANSPORT INSIDE_IP INSIDE_PORT CT_ID NAT_IP NAT_PORT" for every
# source-translated entry alive in NS's conntrack table (from cta_ct_truth), sorted.
cta_truth_key_nat() {
  cta_ct_truth "$1" | cta_truth_snat | awk '{ print $2, $3, $4, $11, $9, $10 }' | sort
}

# cta_db_open_key_nat: the same columns for every flow the database holds open (no end), from
# `ctaudit flows --format json`, sorted. ctaudit prints IPv6 compressed, as conntrack -L does.
cta_db_open_key_nat() {
  "$CTAUDIT" flows --db "$CTA_DB" --format json --limit 0 --from "@$(cta_now)" |
    cta_jq -r 'select(f("event.end") == null)
      | "\(flow_key) \(f("conntrack.id")) \(f("source.nat.ip") // "-") \(f("source.nat.port") // "-")"' | sort
}
