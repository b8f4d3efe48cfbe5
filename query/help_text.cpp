// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/help_text.hpp"

namespace ctaudit::query {
namespace {

std::string commonOptions() {
  return "  --db PATH         the flow database; default $CTAUDIT_DB if set, else\n"
         "                    " +
         std::string(kDefaultDatabasePath) +
         "\n"
         "  --format FORMAT   table (default, for people), json (one ECS object per line, as the\n"
         "                    JSON-lines sink writes) or csv (RFC 4180, with a header line)\n"
         "  -h, --help        show this help\n";
}

constexpr const char* kTimeFormats =
    "TIME is RFC 3339 with a zone (2026-11-25T10:00:03Z, 2026-11-25T12:00:03.5+02:00) or Unix\n"
    "seconds after '@' (@1795600803.25). A time without a zone is refused: the zone of an abuse\n"
    "report must be stated, not guessed.\n";

constexpr const char* kExitStatus =
    "Exit status: 0 if a flow was found, 1 if none matched, 2 on an error (bad option or value,\n"
    "unreadable database).\n";

constexpr const char* kLogWarnings =
    "When the time asked about overlaps a gap in the log (events the kernel or ctauditd dropped)\n"
    "or lies outside the time a ctauditd was recording, a 'ctaudit: warning:' line on stderr says\n"
    "so, and --format json adds the gap as an ECS pipeline_error line after the flows: no match\n"
    "there means 'not known', not 'nobody'. Warnings do not change the exit status.\n";

std::string mainHelp() {
  return "Usage: ctaudit COMMAND [OPTIONS]\n"
         "\n"
         "Answers questions about the NAT flows that ctauditd recorded.\n"
         "\n"
         "Commands:\n"
         "  who ADDR:PORT --at TIME   which inside host used this translated source address and\n"
         "                            port at that time (the abuse-report question)\n"
         "  flows [FILTERS]           the flows in a time window that match the filters, oldest\n"
         "                            first (e.g. what did this inside host do)\n"
         "  help [COMMAND]            show the help of a command\n"
         "\n"
         "Options:\n"
         "  -h, --help      show this help; 'ctaudit COMMAND --help' shows a command's options\n"
         "  --version       show the version\n"
         "\n"
         "Examples:\n"
         "  ctaudit who 203.0.113.7:40001 --at 2026-11-25T10:00:03Z --proto tcp\n"
         "  ctaudit flows --src 100.64.0.7 --from 2026-11-25T09:00:00Z --to 2026-11-25T11:00:00Z\n"
         "\n" +
         std::string(kExitStatus) + "See docs/query.md for the full guide.\n";
}

std::string whoHelp() {
  return "Usage: ctaudit who ADDR:PORT --at TIME [OPTIONS]\n"
         "\n"
         "Prints every flow whose translated source (SNAT/masquerade) was ADDR:PORT and whose\n"
         "lifetime [start, end] overlaps [TIME - slack, TIME + slack], closest to TIME first: a flow\n"
         "that contains TIME comes first (the latest start first among those), then the others by\n"
         "their distance to TIME, shown in the GAP column. An open flow (END \"open\") has not ended.\n"
         "Write IPv6 as [2001:db8::1]:40001. For ICMP, PORT is the ICMP id, and --proto icmp (or\n"
         "icmpv6) is needed: without --proto, ICMP flows are left out, and so are flows of protocols\n"
         "without ports (GRE keeps a PPTP call id or 0 in the port's place). Also prints the flows\n"
         "that came in through a port forward (DNAT) of ADDR:PORT, marked MATCH forward, with a\n"
         "note: of those, the inside host is the DNAT_TO column.\n"
         "\n"
         "Options:\n"
         "  --at TIME         the time of the report (required)\n"
         "  --dst ADDR[:PORT] only flows whose packets went to this destination (after DNAT, if\n"
         "                    any), the victim the report names: SNAT gives one translated source\n"
         "                    to several inside hosts at once, each to other destinations. For a\n"
         "                    port forward, the outside host that connected to it\n"
         "  --proto PROTO     only this protocol: tcp, udp, icmp, ipv6-icmp, sctp, dccp, gre,\n"
         "                    udplite or a number\n"
         "  --zone N          only this conntrack zone (0 to 65535; the ZONE column)\n"
         "  --slack DURATION  also match flows this close to TIME (default 0), for clocks that\n"
         "                    disagree: 2s, 500ms, 1m30s\n" +
         commonOptions() +
         "\n" + kTimeFormats +
         "\n"
         "A flow's END is when conntrack destroyed the entry, i.e. its last packet plus the protocol\n"
         "timeout: later than the last packet.\n"
         "\n"
         "Example:\n"
         "  ctaudit who 203.0.113.7:40001 --at 2026-11-25T10:00:03Z --slack 2s\n"
         "\n" +
         kLogWarnings + "\n" + kExitStatus;
}

std::string flowsHelp() {
  return "Usage: ctaudit flows [OPTIONS]\n"
         "\n"
         "Prints the flows whose lifetime overlaps [--from, --to] and that match every filter given,\n"
         "oldest first. Without filters and times it prints the oldest flows of the database.\n"
         "\n"
         "Options:\n"
         "  --src CIDR        original source inside this block (100.64.0.0/10, or one address)\n"
         "  --dst ADDR[:PORT] original destination address, and port if given (only protocols\n"
         "                    with ports then)\n"
         "  --nat ADDR[:PORT] translated source or translated destination address, and port\n"
         "                    if given (only protocols with ports then, unless --proto says)\n"
         "  --proto PROTO     only this protocol: tcp, udp, icmp, ipv6-icmp, sctp, dccp, gre,\n"
         "                    udplite or a number\n"
         "  --zone N          only this conntrack zone (0 to 65535; the ZONE column)\n"
         "  --from TIME       flows still alive at or after TIME\n"
         "  --to TIME         flows started at or before TIME\n"
         "  --limit N         print at most N flows; the default is " +
         std::to_string(kDefaultFlowsLimit) +
         ", --limit 0 prints\n"
         "                    them all. When more flows match, a note on stderr says so\n" +
         commonOptions() + "\n" + kTimeFormats +
         "\n"
         "Example:\n"
         "  ctaudit flows --nat 203.0.113.7 --from 2026-11-25T10:00:00Z --to 2026-11-25T10:05:00Z\n"
         "\n" +
         kLogWarnings +
         "With only --from (or --to) the check runs to the end (from the start) of the logged time;\n"
         "without either, there is no window and no check.\n"
         "\n" +
         kExitStatus;
}

}  // namespace

std::string helpText(HelpTopic topic) {
  switch (topic) {
    case HelpTopic::Who:
      return whoHelp();
    case HelpTopic::Flows:
      return flowsHelp();
    case HelpTopic::Main:
      break;
  }
  return mainHelp();
}

}  // namespace ctaudit::query
