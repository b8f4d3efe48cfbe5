#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# foreign_sender: any process with CAP_NET_ADMIN in the gateway's namespace can send messages to
# the conntrack event groups, and ctauditd used to read them as the kernel's events. Found by an
# exploratory run whose undecodable messages were counted as malformed and nothing else. Checks,
# against the kernel:
#   - messages from user space to the NEW group are ignored, with one warning that names them, and
#     are neither counted as malformed nor recorded as a gap;
#   - the kernel's events around them are all recorded.
# (An undecodable message from the kernel itself is a malformed_event gap and a resync: unit tests,
# since the kernel does not send one on demand.)
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init foreign_sender --daemon --query
: "${CT_GROUP_SENDER:=$CTA_REPO/build/ci/tests/integration/ct_group_sender}"
[[ -x "$CT_GROUP_SENDER" ]] || cta_skip_or_fail "ct_group_sender not found at CT_GROUP_SENDER=$CT_GROUP_SENDER"
cta_topology_up
cta_start_servers
cta_daemon_start

cta_expect "a UDP flow before" cta_udp_flow "$CTA_CL4" 25001 "$CTA_SRV4" "$CTA_UDP_PORT"
cta_expect "25 messages from user space to the conntrack NEW group" cta_in "$CTA_GW" "$CT_GROUP_SENDER" 25
cta_expect "a UDP flow after" cta_udp_flow "$CTA_CL4" 25002 "$CTA_SRV4" "$CTA_UDP_PORT"

warned_once() {
  local n
  n=$(grep -c ' warning .*ignored a message to the conntrack event groups from user space' "$CTA_DAEMON_LOG")
  ((n == 1)) && return 0
  cta_err "want one warning about messages from user space, got $n"
  return 1
}
cta_expect "the daemon warns once about messages from user space" cta_eventually 5 "the warning" warned_once
logged() { # PORT
  local n
  n=$("$CTAUDIT" flows --src "$CTA_CL4" --proto udp --db "$CTA_DB" --format csv 2>/dev/null | grep -c ",$1,")
  ((n == 1)) && return 0
  cta_err "want the flow from port $1 once in the log, got $n"
  return 1
}
cta_expect "the flow before is logged" cta_eventually 5 "flow 25001" logged 25001
cta_expect "the flow after is logged" cta_eventually 5 "flow 25002" logged 25002
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
nothing_malformed() {
  grep -q 'stopped:.* 0 malformed, 25 ignored from user space,' "$CTA_DAEMON_LOG" && return 0
  cta_err "the stop summary counts malformed messages: $(grep 'stopped:' "$CTA_DAEMON_LOG")"
  return 1
}
cta_expect "none of them counted as malformed; all 25 counted as ignored" nothing_malformed
cta_expect "and no gap recorded for them" cta_no_loss_gaps

cta_finish
