#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# e2e_nat: ctauditd in a NAT gateway records every mapping the kernel makes, and `ctaudit who`
# answers "which inside host had this translated address:port at time T" for each of them.
#
# With the daemon running in the gateway, the client sends TCP and UDP flows (IPv4 and IPv6, two
# inside hosts, one inside port reused by both hosts and by both protocols) and pings (IPv4 and
# IPv6); the server opens one connection to the port forward 203.0.113.1:8080. The kernel's own
# table (conntrack -L in the gateway) is the truth. Checks:
#   - the daemon turned on nf_conntrack_{acct,timestamp,events} in the gateway namespace;
#   - the kernel translated every flow into the SNAT/masquerade port range (the lab works);
#   - for EVERY translated port: `ctaudit who NAT:PORT --at T --proto P` exits 0 and returns
#     exactly the inside host(s) and port(s) the kernel mapped to it; 1 hour earlier it exits 1;
#   - two hosts that held one translated port at once (to two destinations): `who` notes it, and
#     `who --dst` names the one that talked to that destination;
#   - the DNAT flow is found by its original destination and by its translated one, with
#     destination.nat = 100.64.0.2:80;
#   - after `conntrack -F` in the gateway every flow has event.end, counters both ways and the
#     kernel's conntrack id; `who` still finds it at T and not 1 hour after;
#   - the JSON-lines file has exactly one `new` and one `destroy` line for each flow;
#   - SIGTERM: exit 0; the root namespace's conntrack sysctls are unchanged.
set -u -o pipefail
# shellcheck source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

cta_init e2e_nat --daemon --query
cta_topology_up
cta_start_servers

root_sysctls() {
  sysctl -n net.netfilter.nf_conntrack_acct net.netfilter.nf_conntrack_timestamp \
    net.netfilter.nf_conntrack_events | tr '\n' ' '
}
root_before=$(root_sysctls)

cta_daemon_start

gw_sysctls_on() {
  local values
  values=$(cta_in "$CTA_GW" sysctl -n net.netfilter.nf_conntrack_acct net.netfilter.nf_conntrack_timestamp \
    net.netfilter.nf_conntrack_events | tr '\n' ' ')
  [[ $values == "1 1 1 " ]] && return 0
  cta_err "gateway: acct timestamp events = $values, expected 1 1 1"
  return 1
}
cta_expect "ctauditd set nf_conntrack_acct/timestamp/events=1 in the gateway namespace" gw_sysctls_on

# ---------------------------------------------------------------------------------------------
cta_log "traffic: TCP/UDP over IPv4/IPv6 from two inside hosts, pings, one port-forward connection"
flows=(
  "tcp $CTA_CL4 21001 $CTA_SRV4 $CTA_TCP_PORT"
  "tcp $CTA_CL4 21002 $CTA_SRV4 $CTA_TCP_PORT"
  "tcp $CTA_CL4B 21001 $CTA_SRV4 $CTA_TCP_PORT"
  "tcp $CTA_CL6 21003 $CTA_SRV6 $CTA_TCP_PORT"
  "tcp $CTA_CL6B 21003 $CTA_SRV6 $CTA_TCP_PORT"
  "udp $CTA_CL4 21001 $CTA_SRV4 $CTA_UDP_PORT"
  "udp $CTA_CL4B 21004 $CTA_SRV4 $CTA_UDP_PORT"
  "udp $CTA_CL6 21005 $CTA_SRV6 $CTA_UDP_PORT"
  "udp $CTA_CL6B 21005 $CTA_SRV6 $CTA_UDP_PORT"
)
cta_expect "every TCP/UDP flow got its echo back through the gateway" cta_flows_parallel "${flows[@]}"
cta_expect "ping $CTA_CL4 -> $CTA_SRV4 (3 echoes)" cta_ping "$CTA_CL4" "$CTA_SRV4" 3
cta_expect "ping $CTA_CL4B -> $CTA_SRV4 (2 echoes)" cta_ping "$CTA_CL4B" "$CTA_SRV4" 2
cta_expect "ping -6 $CTA_CL6 -> $CTA_SRV6 (3 echoes)" cta_ping "$CTA_CL6" "$CTA_SRV6" 3
dnat_sport=31001
cta_expect "server -> $CTA_GW4_OUT:$CTA_DNAT_PORT reaches $CTA_CL4:$CTA_INSIDE_PORT" cta_dnat_flow "$dnat_sport"
# Two inside hosts from one port in the SNAT range to two destination ports: the kernel keeps the
# port for both (their reply tuples differ), so one translated source serves two hosts at once.
shared_port=40800
for port in 5003 5004; do
  cta_bg "$CTA_SRV" "$CTA_TMP/srv-udp-$port.log" socat UDP4-RECVFROM:$port,bind=$CTA_SRV4,fork PIPE
done
wait_for 5 "echo services on 5003 and 5004" eval 'cta_listening "$CTA_SRV" udp "$CTA_SRV4" 5003 && cta_listening "$CTA_SRV" udp "$CTA_SRV4" 5004' ||
  cta_die "the UDP echo services on 5003 and 5004 did not start"
cta_expect "udp $CTA_CL4:$shared_port -> $CTA_SRV4:5003 got its echo" cta_udp_flow "$CTA_CL4" "$shared_port" "$CTA_SRV4" 5003
cta_expect "udp $CTA_CL4B:$shared_port -> $CTA_SRV4:5004 got its echo" cta_udp_flow "$CTA_CL4B" "$shared_port" "$CTA_SRV4" 5004

# Every flow above is in the gateway's table now and stays there (TCP TIME_WAIT 120 s, UDP and
# ICMP 30 s) until the flush below, so T is a time inside each of them.
T=$(cta_now)
truth=$CTA_TMP/truth.txt snat=$CTA_TMP/snat.txt dnat=$CTA_TMP/dnat.txt
cta_ct_truth "$CTA_GW" >"$truth"
cta_truth_snat <"$truth" >"$snat"
cta_truth_dnat <"$truth" >"$dnat"
cta_log "the gateway's table at T=$T:"
sed 's/^/#   /' "$truth"

# ---------------------------------------------------------------------------------------------
# The lab itself: each flow was translated, into the configured range.

in_nat_range() { # FAMILY NAT_IP NAT_PORT
  case $1 in
    ipv4) [[ $2 == "$CTA_GW4_OUT" ]] && (($3 >= CTA_SNAT4_MIN && $3 <= CTA_SNAT4_MAX)) ;;
    ipv6) [[ $2 == "$CTA_GW6_OUT" ]] && (($3 >= CTA_SNAT6_MIN && $3 <= CTA_SNAT6_MAX)) ;;
    *) return 1 ;;
  esac
}

check_translated() { # TRANSPORT SRC SPORT DST DPORT
  local line
  line=$(awk -v t="$1" -v s="$2" -v sp="$3" -v d="$4" -v dp="$5" \
    '$2 == t && $3 == s && $4 == sp && $5 == d && $6 == dp' "$snat")
  if [[ -z $line || $(wc -l <<<"$line") -ne 1 ]]; then
    cta_err "expected one translated entry for $*, found: '$line'"
    return 1
  fi
  local -a f
  read -ra f <<<"$line"
  in_nat_range "${f[0]}" "${f[8]}" "${f[9]}" && return 0
  cta_err "translated to ${f[8]}:${f[9]}, outside the configured range"
  return 1
}
for spec in "${flows[@]}"; do
  # shellcheck disable=SC2086
  cta_expect "kernel translated $spec into the SNAT range" check_translated $spec
done

check_icmp_translated() { # TRANSPORT SRC
  local -a lines
  mapfile -t lines < <(awk -v t="$1" -v s="$2" '$2 == t && $3 == s' "$snat")
  if ((${#lines[@]} == 0)); then
    cta_err "no translated $1 entry from $2"
    return 1
  fi
  local line
  local -a f
  for line in "${lines[@]}"; do
    read -ra f <<<"$line"
    in_nat_range "${f[0]}" "${f[8]}" "${f[9]}" || { cta_err "echo id ${f[9]} outside the range"; return 1; }
  done
}
cta_expect "kernel translated the ICMP echo id of $CTA_CL4 into the range" check_icmp_translated icmp "$CTA_CL4"
cta_expect "kernel translated the ICMP echo id of $CTA_CL4B into the range" check_icmp_translated icmp "$CTA_CL4B"
cta_expect "kernel translated the ICMPv6 echo id of $CTA_CL6 into the range" check_icmp_translated ipv6-icmp "$CTA_CL6"

dnat_line=$(awk -v s="$CTA_SRV4" -v sp="$dnat_sport" -v d="$CTA_GW4_OUT" -v dp="$CTA_DNAT_PORT" \
  -v ns="$CTA_CL4" -v np="$CTA_INSIDE_PORT" '$2 == "tcp" && $3 == s && $4 == sp && $5 == d && $6 == dp && $7 == ns && $8 == np' "$dnat")
cta_expect "kernel forwarded $CTA_GW4_OUT:$CTA_DNAT_PORT to $CTA_CL4:$CTA_INSIDE_PORT" test -n "$dnat_line"

mapfile -t snat_lines <"$snat"
cta_log "${#snat_lines[@]} translated (SNAT/masquerade) flows to look up"

# ---------------------------------------------------------------------------------------------
# The records: wait until the daemon has stored every translated flow (flush interval 1 s).

stored_snat_count() {
  cta_flows_json 2>/dev/null | cta_jq 'select(f("source.nat.ip") != null)' | wc -l
}
all_snat_stored() { (($(stored_snat_count) >= ${#snat_lines[@]})); }
wait_for 10 "ctaudit flows lists all ${#snat_lines[@]} translated flows" all_snat_stored ||
  cta_fail_check "the database holds every translated flow within 10 s" "it holds $(stored_snat_count)"

# check_who AT_SECONDS TRUTH_LINE: `who` for the line's translated address:port returns exactly
# the inside hosts/ports that the truth maps to it (the same translated port can serve flows to
# different destinations at once), and every returned record has that translation.
check_who() {
  local at=$1
  local -a f
  read -ra f <<<"$2"
  local transport=${f[1]} nat_ip=${f[8]} nat_port=${f[9]} nat
  nat=$(cta_sockaddr "$nat_ip" "$nat_port")
  cta_capture "$CTAUDIT" who "$nat" --at "@$at" --proto "$transport" --db "$CTA_DB" --format json
  if ((CTA_RC != 0)); then
    cta_err "ctaudit who $nat --at @$at --proto $transport: exit $CTA_RC (want 0): $CTA_ERRTXT"
    return 1
  fi
  local expected got wrong
  expected=$(awk -v t="$transport" -v a="$nat_ip" -v p="$nat_port" '$2 == t && $9 == a && $10 == p {print $3, $4}' "$snat" | sort -u)
  got=$(cta_jq -r 'flows_only | "\(f("source.ip")) \(inside_port)"' <<<"$CTA_OUT" | sort -u)
  wrong=$(cta_jq --arg a "$nat_ip" --arg p "$nat_port" \
    'flows_only | select(f("source.nat.ip") != $a or (f("source.nat.port") | tostring) != $p)' <<<"$CTA_OUT")
  if [[ $got != "$expected" || -n $wrong ]]; then
    cta_err "ctaudit who $nat --at @$at --proto $transport: want inside [$expected], got [$got]${wrong:+; records with another translation: $wrong}"
    return 1
  fi
}

# AT_SECONDS TRUTH_LINE: exits 1 and prints no flow. Before the daemon ran, the output may hold a
# daemon_down pipeline_error line: the log says it does not cover that time.
check_who_none() {
  local at=$1
  local -a f
  read -ra f <<<"$2"
  local nat
  nat=$(cta_sockaddr "${f[8]}" "${f[9]}")
  cta_capture "$CTAUDIT" who "$nat" --at "@$at" --proto "${f[1]}" --db "$CTA_DB" --format json
  if ((CTA_RC != 1)) || [[ -n $(cta_jq 'flows_only' <<<"$CTA_OUT") ]]; then
    cta_err "ctaudit who $nat --at @$at --proto ${f[1]}: exit $CTA_RC (want 1), stdout '$CTA_OUT', stderr '$CTA_ERRTXT'"
    return 1
  fi
}

before=$(awk -v t="$T" 'BEGIN { printf "%.3f", t - 3600 }')
after=$(awk -v t="$T" 'BEGIN { printf "%.3f", t + 3600 }')
# Human-readable forms of a truth line for the check descriptions (cta_describe: the flow).
describe_nat() { # the translated source a `who` looks up
  local -a f
  read -ra f <<<"$1"
  printf '%s --proto %s' "$(cta_sockaddr "${f[8]}" "${f[9]}")" "${f[1]}"
}
describe_inside() {
  local -a f
  read -ra f <<<"$1"
  cta_endpoint "${f[2]}" "${f[3]}" "${f[1]}"
}

for line in "${snat_lines[@]}"; do
  cta_expect "who $(describe_nat "$line") at T names $(describe_inside "$line")" check_who "$T" "$line"
  cta_expect "who $(describe_nat "$line") 1 hour before T finds nothing (exit 1)" check_who_none "$before" "$line"
done

# Both hosts held $CTA_GW4_OUT:$shared_port at T: who says so, and --dst (the victim) parts them.
shared_port_noted() {
  cta_capture "$CTAUDIT" who "$CTA_GW4_OUT:$shared_port" --at "@$T" --proto udp --db "$CTA_DB"
  ((CTA_RC == 0)) && grep -q "note: 2 inside hosts held $CTA_GW4_OUT:$shared_port" <<<"$CTA_ERRTXT" &&
    grep -q -- "--dst ADDR\[:PORT\]" <<<"$CTA_ERRTXT" && return 0
  cta_err "who $CTA_GW4_OUT:$shared_port: exit $CTA_RC, stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "who for a translated port two hosts held at once says so in a note" shared_port_noted
shared_port_by_victim() {
  cta_capture "$CTAUDIT" who "$CTA_GW4_OUT:$shared_port" --at "@$T" --dst "$CTA_SRV4:5004" --db "$CTA_DB" --format json
  local got
  got=$(cta_jq -r 'flows_only | "\(f("source.ip")) \(f("destination.port"))"' <<<"$CTA_OUT" | sort -u)
  ((CTA_RC == 0)) && [[ $got == "$CTA_CL4B 5004" ]] && return 0
  cta_err "who $CTA_GW4_OUT:$shared_port --dst $CTA_SRV4:5004: exit $CTA_RC, got [$got], stderr: $CTA_ERRTXT"
  return 1
}
cta_expect "who --dst $CTA_SRV4:5004 names only $CTA_CL4B" shared_port_by_victim

unused_port_none() {
  check_who_none "$T" "ipv4 tcp - - - - - - $CTA_GW4_OUT $((CTA_SNAT4_MIN - 1)) -"
}
cta_expect "who for a port the kernel never used finds nothing (exit 1)" unused_port_none

# ---------------------------------------------------------------------------------------------
# The port forward (DNAT).

dnat_record_ok() { # the records in CTA_OUT include the port-forward flow, translated
  local n
  n=$(cta_jq --arg s "$CTA_SRV4" --arg sp "$dnat_sport" --arg n "$CTA_CL4" --arg np "$CTA_INSIDE_PORT" \
    --arg d "$CTA_GW4_OUT" --arg dp "$CTA_DNAT_PORT" '
    select(f("source.ip") == $s and (f("source.port") | tostring) == $sp
       and f("destination.ip") == $d and (f("destination.port") | tostring) == $dp
       and f("destination.nat.ip") == $n and (f("destination.nat.port") | tostring) == $np)' <<<"$CTA_OUT" | wc -l)
  ((n == 1)) && return 0
  cta_err "want one record $CTA_SRV4:$dnat_sport -> $CTA_GW4_OUT:$CTA_DNAT_PORT with destination.nat $CTA_CL4:$CTA_INSIDE_PORT, found $n in: $CTA_OUT"
  return 1
}
dnat_by_destination() {
  cta_capture "$CTAUDIT" flows --dst "$CTA_GW4_OUT:$CTA_DNAT_PORT" --proto tcp --db "$CTA_DB" --format json
  ((CTA_RC == 0)) || { cta_err "ctaudit flows --dst: exit $CTA_RC: $CTA_ERRTXT"; return 1; }
  dnat_record_ok
}
dnat_by_nat() {
  cta_capture "$CTAUDIT" flows --nat "$CTA_CL4:$CTA_INSIDE_PORT" --proto tcp --db "$CTA_DB" --format json
  ((CTA_RC == 0)) || { cta_err "ctaudit flows --nat: exit $CTA_RC: $CTA_ERRTXT"; return 1; }
  dnat_record_ok
}
cta_expect "flows --dst $CTA_GW4_OUT:$CTA_DNAT_PORT has the port-forward flow, destination.nat $CTA_CL4:$CTA_INSIDE_PORT" dnat_by_destination
cta_expect "flows --nat $CTA_CL4:$CTA_INSIDE_PORT (translated destination) has the port-forward flow" dnat_by_nat

# An abuse report naming the forward's public address and port: no flow had it as its translated
# source, so `who` answers with the flow forwarded from it, and says so.
dnat_by_who() { # [--dst VICTIM]
  cta_capture "$CTAUDIT" who "$CTA_GW4_OUT:$CTA_DNAT_PORT" --at "@$T" "$@" --db "$CTA_DB" --format json
  ((CTA_RC == 0)) || { cta_err "ctaudit who $CTA_GW4_OUT:$CTA_DNAT_PORT $*: exit $CTA_RC: $CTA_ERRTXT"; return 1; }
  [[ $CTA_ERRTXT == *"came in through a port forward (DNAT)"* ]] || {
    cta_err "who $CTA_GW4_OUT:$CTA_DNAT_PORT $*: no port-forward note on stderr: $CTA_ERRTXT"
    return 1
  }
  local n
  n=$(cta_jq 'flows_only' <<<"$CTA_OUT" | cta_jq -s 'length')
  ((n == 1)) || { cta_err "who $CTA_GW4_OUT:$CTA_DNAT_PORT $*: want 1 flow, got $n: $CTA_OUT"; return 1; }
  dnat_record_ok
}
dnat_other_victim_none() {
  cta_capture "$CTAUDIT" who "$CTA_GW4_OUT:$CTA_DNAT_PORT" --at "@$T" --dst "$CTA_SRV4:$((dnat_sport + 1))" \
    --db "$CTA_DB" --format json
  ((CTA_RC == 1)) && [[ -z $(cta_jq 'flows_only' <<<"$CTA_OUT") ]] && return 0
  cta_err "who $CTA_GW4_OUT:$CTA_DNAT_PORT --dst $CTA_SRV4:$((dnat_sport + 1)): exit $CTA_RC (want 1): $CTA_OUT"
  return 1
}
cta_expect "who $CTA_GW4_OUT:$CTA_DNAT_PORT (a port forward) names $CTA_CL4:$CTA_INSIDE_PORT" dnat_by_who
cta_expect "who $CTA_GW4_OUT:$CTA_DNAT_PORT --dst $CTA_SRV4:$dnat_sport (the outside client) names it too" \
  dnat_by_who --dst "$CTA_SRV4:$dnat_sport"
cta_expect "who $CTA_GW4_OUT:$CTA_DNAT_PORT --dst another client port finds nothing (exit 1)" dnat_other_victim_none

# ---------------------------------------------------------------------------------------------
# End of the flows: flush the gateway's table. Each flow's DESTROY carries its counters and stop
# time (FIELD-NOTES 1).

audited=("${snat_lines[@]}")
[[ -n $dnat_line ]] && audited+=("$dnat_line")
audited_keys=$(for line in "${audited[@]}"; do awk '{print $2, $3, $4}' <<<"$line"; done | sort -u)

cta_log "conntrack -F in the gateway"
cta_in "$CTA_GW" conntrack -F 2>/dev/null || cta_die "conntrack -F in $CTA_GW failed"

ended_keys() {
  cta_flows_json 2>/dev/null |
    cta_jq -r 'select(f("event.end") != null) | flow_key' | sort -u
}
all_ended() { [[ -z $(comm -23 <(printf '%s\n' "$audited_keys") <(ended_keys)) ]]; }
if ! wait_for 10 "every flow has event.end" all_ended; then
  cta_fail_check "every flow has event.end within 10 s of the flush" \
    "still open: $(comm -23 <(printf '%s\n' "$audited_keys") <(ended_keys) | tr '\n' ';')"
fi

final=$CTA_TMP/flows-final.json
cta_flows_json >"$final" 2>"$CTA_TMP/flows-final.err"

check_closed_record() { # TRUTH_LINE
  local -a f
  read -ra f <<<"$1"
  local rec
  rec=$(cta_jq --arg k "${f[*]:1:3}" 'select(flow_key == $k)' <"$final")
  if [[ -z $rec || $(wc -l <<<"$rec") -ne 1 ]]; then
    cta_err "want exactly one stored record for ${f[1]} ${f[2]}:${f[3]}, got: $rec"
    return 1
  fi
  local problems
  problems=$(cta_jq -r --arg id "${f[10]}" --arg nip "${f[8]}" --arg np "${f[9]}" --arg snat "$([[ ${f[2]} != "${f[8]}" ]] && echo 1)" '
    [ (if f("event.end") == null then "no event.end" else empty end),
      (if f("event.start") == null then "no event.start"
       elif f("event.end") != null and epoch(f("event.start")) > epoch(f("event.end")) then "event.start after event.end"
       else empty end),
      (if (f("source.bytes") // 0) <= 0 then "source.bytes not > 0" else empty end),
      (if (f("destination.bytes") // 0) <= 0 then "destination.bytes not > 0" else empty end),
      (if (f("source.packets") // 0) <= 0 then "source.packets not > 0" else empty end),
      (if (f("destination.packets") // 0) <= 0 then "destination.packets not > 0" else empty end),
      (if (f("conntrack.id") | tostring) != $id then "conntrack.id \(f("conntrack.id")) is not the kernel id \($id)" else empty end),
      (if $snat == "1" and (f("source.nat.ip") != $nip or (f("source.nat.port") | tostring) != $np)
       then "source.nat \(f("source.nat.ip")):\(f("source.nat.port")) is not \($nip):\($np)" else empty end)
    ] | join("; ")' <<<"$rec")
  [[ -z $problems ]] && return 0
  cta_err "${f[1]} ${f[2]}:${f[3]}: $problems"
  return 1
}
for line in "${audited[@]}"; do
  cta_expect "after the flush, $(cta_describe "$line") has end, counters both ways, the kernel's id" check_closed_record "$line"
done

for line in "${snat_lines[@]}"; do
  cta_expect "who $(describe_nat "$line") at T still names $(describe_inside "$line") after its end" check_who "$T" "$line"
  cta_expect "who $(describe_nat "$line") 1 hour after T (after its end) finds nothing" check_who_none "$after" "$line"
done

# ---------------------------------------------------------------------------------------------
# The JSON-lines file: one `new` and one `destroy` line per flow (updates are off by default).

check_jsonl() { # TRUTH_LINE
  local -a f
  read -ra f <<<"$1"
  local lines summary
  lines=$(cta_jq --arg k "${f[*]:1:3}" 'select(flow_key == $k)' <"$CTA_JSONL")
  summary=$(cta_jq -rs '
    [ (map(select(f("event.action") == "new")) | length | tostring),
      (map(select(f("event.action") == "destroy")) | length | tostring),
      (map(select(f("event.action") == "new" and (f("event.type") | index("start")) == null)) | length | tostring),
      (map(select(f("event.action") == "destroy" and ((f("event.type") | index("end")) == null or f("event.end") == null))) | length | tostring)
    ] | join(" ")' <<<"$lines")
  [[ $summary == "1 1 0 0" ]] && return 0
  cta_err "${f[1]} ${f[2]}:${f[3]}: new/destroy/bad-new/bad-destroy lines = $summary, want 1 1 0 0"
  return 1
}
jsonl_destroy_count() { cta_jq 'select(f("event.action") == "destroy")' <"$CTA_JSONL" 2>/dev/null | wc -l; }
jsonl_has_destroys() { (($(jsonl_destroy_count) >= ${#audited[@]})); }
# The database already has every DESTROY; give the JSON-lines sink its flush interval too.
wait_for 5 "the JSON-lines file has ${#audited[@]} destroy lines" jsonl_has_destroys || true
for line in "${audited[@]}"; do
  cta_expect "JSON lines: one new and one destroy line for $(cta_describe "$line")" check_jsonl "$line"
done

# ---------------------------------------------------------------------------------------------
cta_expect "SIGTERM: ctauditd exits 0" cta_daemon_stop
root_unchanged() {
  local now
  now=$(root_sysctls)
  [[ $now == "$root_before" ]] && return 0
  cta_err "root namespace acct/timestamp/events changed: '$root_before' -> '$now'"
  return 1
}
cta_expect "the root namespace's conntrack sysctls are unchanged" root_unchanged

cta_finish
