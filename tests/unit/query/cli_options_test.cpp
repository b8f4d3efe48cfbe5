// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/cli_options.hpp"

#include <initializer_list>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace ctaudit::query {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const Timestamp kReportTime = *parseTime("2026-11-25T10:00:03Z");

Result<Command> parse(std::initializer_list<std::string_view> args,
                      std::optional<std::string_view> env_database = std::nullopt) {
  const std::vector<std::string_view> list(args);
  return parseCommandLine(list, env_database);
}

WhoCommand parseWho(std::initializer_list<std::string_view> args,
                    std::optional<std::string_view> env_database = std::nullopt) {
  const auto command = parse(args, env_database);
  EXPECT_TRUE(command) << command.error().detail;
  const auto* who = std::get_if<WhoCommand>(&*command);
  EXPECT_NE(who, nullptr);
  return who != nullptr ? *who : WhoCommand{};
}

FlowsCommand parseFlows(std::initializer_list<std::string_view> args,
                        std::optional<std::string_view> env_database = std::nullopt) {
  const auto command = parse(args, env_database);
  EXPECT_TRUE(command) << command.error().detail;
  const auto* flows = std::get_if<FlowsCommand>(&*command);
  EXPECT_NE(flows, nullptr);
  return flows != nullptr ? *flows : FlowsCommand{};
}

// The detail of a refused command line; fails the test when it was accepted.
std::string errorOf(std::initializer_list<std::string_view> args) {
  const auto command = parse(args);
  EXPECT_FALSE(command) << "accepted";
  if (command) {
    return {};
  }
  EXPECT_EQ(command.error().code, Errc::Usage);
  EXPECT_EQ(command.error().detail.find('\n'), std::string::npos) << "one line";
  return command.error().detail;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// Every message echoes its argument: a 100 kB one filled the terminal.
TEST(CliOptionsTest, AnOverlongArgumentIsRefusedFirstUnlessHelpIsAskedFor) {
  const std::string pasted(100'000, '1');
  EXPECT_TRUE(errorOf({"who", pasted}).starts_with("argument 2 is 100000 bytes long")) << errorOf({"who", pasted});
  EXPECT_TRUE(errorOf({"help", pasted}).starts_with("argument 2 is 100000 bytes long"));
  const auto help = parse({"who", pasted, "--help"});
  ASSERT_TRUE(help);
  EXPECT_TRUE(std::holds_alternative<HelpRequest>(*help));
}

TEST(CliOptionsTest, WhoParsesEveryOption) {
  const WhoCommand who =
      parseWho({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03Z", "--dst", "198.51.100.1:53", "--proto",
                "udp", "--zone", "7", "--slack", "2s", "--db", "/tmp/f.db", "--format", "csv"});
  EXPECT_EQ(who.translated_source.toString(), "203.0.113.7:40001");
  EXPECT_EQ(who.destination_address, IpAddress::parse("198.51.100.1"));
  EXPECT_EQ(who.destination_port, 53);
  EXPECT_EQ(who.at, kReportTime);
  EXPECT_EQ(who.protocol, Protocol::Udp);
  EXPECT_EQ(who.zone, 7);
  EXPECT_EQ(who.slack, seconds{2});
  EXPECT_EQ(who.database, "/tmp/f.db");
  EXPECT_EQ(who.format, OutputFormat::Csv);
}

TEST(CliOptionsTest, WhoAcceptsEqualsFormAndOptionsBeforeTheAddress) {
  const WhoCommand who = parseWho({"who", "--at=2026-11-25T12:00:03.5+02:00", "--slack=500ms", "--proto=icmp",
                                   "--db=/x.db", "--format=json", "203.0.113.7:7"});
  EXPECT_EQ(who.at, kReportTime + milliseconds{500});
  EXPECT_EQ(who.slack, milliseconds{500});
  EXPECT_EQ(who.protocol, Protocol::Icmp);
  EXPECT_EQ(who.translated_source.port, 7);
  EXPECT_EQ(who.database, "/x.db");
  EXPECT_EQ(who.format, OutputFormat::Json);
}

TEST(CliOptionsTest, WhoDestinationIsOfTheTranslatedSourcesFamily) {
  const WhoCommand who = parseWho({"who", "[2001:db8::7]:40001", "--at", "@1795600803", "--dst", "2001:db8::1"});
  EXPECT_EQ(who.destination_address, IpAddress::parse("2001:db8::1"));
  EXPECT_FALSE(who.destination_port);
  const std::string mixed = errorOf({"who", "203.0.113.7:40001", "--at", "@1795600803", "--dst", "2001:db8::1"});
  EXPECT_NE(mixed.find("two address families"), std::string::npos) << mixed;
}

// A review: ICMP and GRE flows keep no destination port, so --dst with one matched nothing and the
// message blamed the window.
TEST(CliOptionsTest, ADestinationPortWithAProtocolWithoutPortsIsRefused) {
  const std::string who =
      errorOf({"who", "203.0.113.7:512", "--at", "@1795600803", "--proto", "icmp", "--dst", "198.51.100.1:0"});
  EXPECT_NE(who.find("icmp flows have no destination port"), std::string::npos) << who;
  const std::string flows = errorOf({"flows", "--proto", "gre", "--dst", "198.51.100.1:0"});
  EXPECT_NE(flows.find("gre flows have no destination port"), std::string::npos) << flows;
  EXPECT_TRUE(parse({"who", "203.0.113.7:512", "--at", "@1795600803", "--proto", "icmp", "--dst", "198.51.100.1"}));
}

TEST(CliOptionsTest, WhoDefaults) {
  const WhoCommand who = parseWho({"who", "203.0.113.7:40001", "--at", "@1795600803"});
  EXPECT_EQ(who.at, kReportTime);
  EXPECT_EQ(who.slack, seconds{0});
  EXPECT_FALSE(who.protocol);
  EXPECT_EQ(who.database, std::string(kDefaultDatabasePath));
  EXPECT_EQ(who.format, OutputFormat::Table);
}

TEST(CliOptionsTest, WhoParsesBracketedIpv6) {
  const WhoCommand who = parseWho({"who", "[2001:db8::7]:40001", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(who.translated_source.address, *IpAddress::parse("2001:db8::7"));
  EXPECT_EQ(who.translated_source.port, 40001);
  EXPECT_EQ(who.translated_source.toString(), "[2001:db8::7]:40001");
}

// Tools on IPv6 sockets print IPv4 peers as ::ffff:a.b.c.d; conntrack records those flows as IPv4,
// so the mapped form is searched as the IPv4 address (it found nothing before).
TEST(CliOptionsTest, Ipv4MappedAddressesAreSearchedAsIpv4) {
  const WhoCommand who = parseWho({"who", "[::ffff:203.0.113.4]:65183", "--at", "2026-11-25T10:00:03Z"});
  EXPECT_EQ(who.translated_source.address, *IpAddress::parse("203.0.113.4"));
  EXPECT_EQ(who.translated_source.toString(), "203.0.113.4:65183");
  const FlowsCommand flows =
      parseFlows({"flows", "--src", "::ffff:100.64.0.0/106", "--dst", "::ffff:198.51.100.1", "--nat", "::ffff:203.0.113.7"});
  ASSERT_TRUE(flows.source);
  EXPECT_EQ(flows.source->toString(), "100.64.0.0/10");
  EXPECT_EQ(flows.destination_address, IpAddress::parse("198.51.100.1"));
  EXPECT_EQ(flows.nat_address, IpAddress::parse("203.0.113.7"));
  // A block wider than the mapped range is an IPv6 block; other IPv6 addresses stay as they are.
  EXPECT_EQ(parseFlows({"flows", "--src", "::fffe:0:0/95"}).source->toString(), "::fffe:0:0/95");
  EXPECT_EQ(parseFlows({"flows", "--src", "::ffff:0:0/96"}).source->toString(), "0.0.0.0/0");
  EXPECT_EQ(parseFlows({"flows", "--dst", "::1"}).destination_address, IpAddress::parse("::1"));
}

TEST(CliOptionsTest, WhoRefusesBadAddresses) {
  EXPECT_TRUE(contains(errorOf({"who", "2001:db8::7:40001", "--at", "@1"}), "[2001:db8::1]:443"));
  EXPECT_TRUE(contains(errorOf({"who", "[2001:db8::7:40001", "--at", "@1"}), "missing ']'"));
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.7", "--at", "@1"}), "has no port"));
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.300:1", "--at", "@1"}), "not an IPv4 or IPv6 address"));
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.7:65536", "--at", "@1"}), "not a port number"));
  EXPECT_TRUE(contains(errorOf({"who", "host.example:80", "--at", "@1"}), "'host.example'"));
  // Said as what it is, not as an unbracketed IPv6 address or a bare "not an address".
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.4:80:80", "--at", "@1"}), "one port after the address"));
  EXPECT_TRUE(contains(errorOf({"flows", "--dst", "192.0.2.0/24"}), "is a block; this takes one address"));
  EXPECT_TRUE(contains(errorOf({"flows", "--dst", "2001:db8::/64"}), "is a block; this takes one address"));
  EXPECT_TRUE(contains(errorOf({"flows", "--nat", "[2001:db8::/64]:80"}), "is a block; this takes one address"));
  EXPECT_TRUE(contains(errorOf({"who", "2001:db8::/64", "--at", "@1"}), "is a block; this takes one address"));
  EXPECT_TRUE(contains(errorOf({"flows", "--dst", "::ffff:1.2.3.4:80"}), "[2001:db8::1]:443"));
  EXPECT_TRUE(contains(errorOf({"who", "", "--at", "@1"}), "'' is not an IPv4 or IPv6 address"));
  EXPECT_TRUE(contains(errorOf({"help", "who", "extra"}), "takes one topic"));
}

TEST(CliOptionsTest, WhoNeedsAddressAndTime) {
  EXPECT_TRUE(contains(errorOf({"who", "--at", "@1"}), "who needs the translated ADDR:PORT"));
  const std::string no_at = errorOf({"who", "203.0.113.7:40001"});
  EXPECT_TRUE(contains(no_at, "who needs --at TIME"));
  EXPECT_TRUE(contains(no_at, "ctaudit who --help"));
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.7:1", "203.0.113.8:2", "--at", "@1"}), "'203.0.113.8:2'"));
}

TEST(CliOptionsTest, RefusesTimeWithoutZoneAndSaysHowToWriteOne) {
  const std::string detail = errorOf({"who", "203.0.113.7:40001", "--at", "2026-11-25T10:00:03"});
  EXPECT_TRUE(detail.starts_with("--at: ")) << detail;
  EXPECT_TRUE(contains(detail, "no zone"));
  EXPECT_TRUE(contains(detail, "2026-11-25T10:00:03Z"));
  EXPECT_TRUE(contains(errorOf({"flows", "--from", "yesterday"}), "--from: bad time 'yesterday'"));
  EXPECT_TRUE(contains(errorOf({"flows", "--to", "@x"}), "--to: "));
}

TEST(CliOptionsTest, RefusesBadDurationProtocolAndFormat) {
  const std::string duration = errorOf({"who", "203.0.113.7:1", "--at", "@1", "--slack", "5parsecs"});
  EXPECT_TRUE(duration.starts_with("--slack: ")) << duration;
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.7:1", "--at", "@1", "--slack", "-2s"}), "--slack: "));
  EXPECT_EQ(parseWho({"who", "203.0.113.7:1", "--at", "@1", "--proto", "TCP"}).protocol, Protocol::Tcp);
  EXPECT_EQ(parseFlows({"flows", "--proto", "ICMPv6"}).protocol, Protocol::Icmpv6);
  const std::string protocol = errorOf({"who", "203.0.113.7:1", "--at", "@1", "--proto", "tpc"});
  EXPECT_TRUE(contains(protocol, "--proto: unknown protocol 'tpc'"));
  EXPECT_TRUE(contains(protocol, "tcp, udp, icmp"));
  EXPECT_TRUE(contains(errorOf({"flows", "--proto", "256"}), "unknown protocol '256'"));
  const std::string format = errorOf({"flows", "--format", "xml"});
  EXPECT_TRUE(contains(format, "--format: unknown format 'xml'; use table, json or csv"));
}

TEST(CliOptionsTest, RefusesIcmpOfTheOtherFamily) {
  EXPECT_TRUE(contains(errorOf({"who", "[2001:db8::7]:5", "--at", "@1", "--proto", "icmp"}), "ipv6-icmp"));
  EXPECT_TRUE(contains(errorOf({"who", "203.0.113.7:5", "--at", "@1", "--proto", "icmpv6"}), "--proto icmp"));
  EXPECT_TRUE(contains(errorOf({"flows", "--nat", "2001:db8::7", "--proto", "icmp"}), "--nat"));
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "2001:db8::/32", "--proto", "1"}), "the IPv6 --src 2001:db8::/32:"));
  EXPECT_TRUE(contains(errorOf({"flows", "--dst", "192.0.2.1", "--proto", "ipv6-icmp"}), "--dst"));
  EXPECT_EQ(parseWho({"who", "[2001:db8::7]:5", "--at", "@1", "--proto", "ipv6-icmp"}).protocol, Protocol::Icmpv6);
}

// 100.64.0.40/10 is one host typed with its interface's prefix more often than a block.
TEST(CliOptionsTest, RefusesABlockWithHostBitsSet) {
  EXPECT_EQ(errorOf({"flows", "--src", "100.64.0.40/10"}),
            "--src: '100.64.0.40/10' has host bits set; write 100.64.0.0/10 for the block or 100.64.0.40 for the host");
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "2001:db8::1/32"}), "write 2001:db8::/32 for the block"));
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "::ffff:100.64.0.40/106"}),
                       "write 100.64.0.0/10 for the block or 100.64.0.40 for the host"));
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "fe80::1%eth0/64"}), "has a zone id"));
  EXPECT_EQ(parseFlows({"flows", "--src", "100.64.0.0/10"}).source->toString(), "100.64.0.0/10");
  EXPECT_EQ(parseFlows({"flows", "--src", "100.64.0.40/32"}).source->toString(), "100.64.0.40/32");
}

TEST(CliOptionsTest, RefusesAddressesOfBothFamiliesTogether) {
  EXPECT_EQ(errorOf({"flows", "--src", "100.64.0.0/10", "--dst", "2001:db8:2::1"}),
            "--src is IPv4 and --dst is IPv6: a flow's addresses are all of one family (conntrack does not "
            "translate between them), so no flow matches both; drop one");
  EXPECT_TRUE(contains(errorOf({"flows", "--nat", "2001:db8::7", "--dst", "192.0.2.1"}), "--dst is IPv4 and --nat is IPv6"));
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "2001:db8::/32", "--nat", "203.0.113.1"}), "--nat is IPv4"));
  EXPECT_TRUE(parseFlows({"flows", "--src", "100.64.0.0/10", "--dst", "192.0.2.1", "--nat", "203.0.113.1"}).source);
  EXPECT_TRUE(parseFlows({"flows", "--src", "2001:db8::/32", "--dst", "2001:db8:2::1"}).source);
}

TEST(CliOptionsTest, UnknownOptionsPointToHelp) {
  const std::string who = errorOf({"who", "203.0.113.7:1", "--at", "@1", "--limit", "5"});
  EXPECT_EQ(who, "unknown option '--limit' for 'ctaudit who'; see 'ctaudit who --help'");
  EXPECT_EQ(errorOf({"flows", "--frm=@1"}), "unknown option '--frm' for 'ctaudit flows'; see 'ctaudit flows --help'");
  EXPECT_TRUE(contains(errorOf({"flows", "-l", "5"}), "unknown option '-l'"));
  EXPECT_TRUE(contains(errorOf({"--db", "/x", "who"}), "options follow the command"));
}

TEST(CliOptionsTest, MissingValuesAreErrors) {
  EXPECT_EQ(errorOf({"who", "203.0.113.7:1", "--at"}), "option --at needs a value; see 'ctaudit who --help'");
  EXPECT_EQ(errorOf({"who", "203.0.113.7:1", "--at", "--proto", "tcp"}),
            "option --at needs a value; see 'ctaudit who --help'");
  EXPECT_EQ(errorOf({"flows", "--db="}), "option --db needs a value; see 'ctaudit flows --help'");
  EXPECT_EQ(errorOf({"flows", "--limit"}), "option --limit needs a value; see 'ctaudit flows --help'");
}

TEST(CliOptionsTest, RepeatedOptionsAreErrors) {
  EXPECT_EQ(errorOf({"who", "203.0.113.7:1", "--at", "@1", "--at=@2"}), "option --at is given more than once; give it once");
}

TEST(CliOptionsTest, DoubleDashEndsOptions) {
  EXPECT_EQ(parseWho({"who", "--at", "@1", "--", "203.0.113.7:1"}).translated_source.port, 1);
  // After "--", "--help" is an argument, and not an address.
  EXPECT_TRUE(contains(errorOf({"who", "--at", "@1", "--", "--help"}), "'--help'"));
}

TEST(CliOptionsTest, DatabaseComesFromFlagThenEnvironmentThenDefault) {
  EXPECT_EQ(parseFlows({"flows"}).database, std::string(kDefaultDatabasePath));
  EXPECT_EQ(parseFlows({"flows"}, "/env.db").database, "/env.db");
  EXPECT_EQ(parseFlows({"flows"}, "").database, std::string(kDefaultDatabasePath));
  EXPECT_EQ(parseFlows({"flows", "--db", "/flag.db"}, "/env.db").database, "/flag.db");
  EXPECT_EQ(parseWho({"who", "203.0.113.7:1", "--at", "@1"}, "/env.db").database, "/env.db");
  EXPECT_EQ(parseWho({"who", "203.0.113.7:1", "--at", "@1", "--db=/flag.db"}, "/env.db").database, "/flag.db");
}

TEST(CliOptionsTest, HelpAndVersion) {
  const auto help = [](std::initializer_list<std::string_view> args) {
    const auto command = parse(args);
    EXPECT_TRUE(command);
    const auto* request = command ? std::get_if<HelpRequest>(&*command) : nullptr;
    return request != nullptr ? std::optional(request->topic) : std::nullopt;
  };
  EXPECT_EQ(help({"--help"}), HelpTopic::Main);
  EXPECT_EQ(help({"-h"}), HelpTopic::Main);
  EXPECT_EQ(help({"help"}), HelpTopic::Main);
  EXPECT_EQ(help({"help", "who"}), HelpTopic::Who);
  EXPECT_EQ(help({"help", "flows"}), HelpTopic::Flows);
  EXPECT_EQ(help({"who", "--help"}), HelpTopic::Who);
  // Help wins over the errors around it.
  EXPECT_EQ(help({"who", "bogus", "--at", "2026", "-h"}), HelpTopic::Who);
  EXPECT_EQ(help({"flows", "--limit", "x", "--help"}), HelpTopic::Flows);
  EXPECT_EQ(help({"--version", "--help"}), HelpTopic::Main);
  EXPECT_EQ(help({"help", "--help"}), HelpTopic::Main);
  // Also after what is no command at all (an exploratory run found these refused with exit 2).
  EXPECT_EQ(help({"--bogus", "--help"}), HelpTopic::Main);
  EXPECT_EQ(help({"whom", "-h"}), HelpTopic::Main);
  EXPECT_EQ(help({"help", "-h"}), HelpTopic::Main);
  EXPECT_EQ(help({"help", "who", "--help"}), HelpTopic::Who);
  EXPECT_EQ(help({"flows", "--help=1"}), HelpTopic::Flows);

  const auto version = parse({"--version"});
  ASSERT_TRUE(version);
  EXPECT_TRUE(std::holds_alternative<VersionRequest>(*version));
  EXPECT_TRUE(contains(errorOf({"--version", "who"}), "--version takes no arguments"));
  EXPECT_TRUE(contains(errorOf({"help", "what"}), "no help on 'what'"));
}

TEST(CliOptionsTest, RefusesMissingOrUnknownCommand) {
  EXPECT_EQ(errorOf({}), "no command given: use 'ctaudit who' or 'ctaudit flows'; see 'ctaudit --help'");
  EXPECT_EQ(errorOf({"--"}), "no command given: use 'ctaudit who' or 'ctaudit flows'; see 'ctaudit --help'");
  EXPECT_EQ(errorOf({"--", "flows"}),
            "'--' goes after the command, before its arguments: 'ctaudit flows ... -- ...'; see 'ctaudit --help'");
  EXPECT_EQ(errorOf({"whois"}), "unknown command 'whois': use 'who' or 'flows'; see 'ctaudit --help'");
  EXPECT_EQ(errorOf({"--", "--help"}),
            "'--' goes after the command, before its arguments: 'ctaudit who ... -- ...'; see 'ctaudit --help'");
}

TEST(CliOptionsTest, FlowsParsesEveryOption) {
  const FlowsCommand flows =
      parseFlows({"flows", "--src", "100.64.0.0/10", "--dst", "198.51.100.1:443", "--nat=203.0.113.7:40001",
                  "--proto", "tcp", "--zone=65535", "--from", "2026-11-25T10:00:00Z", "--to=2026-11-25T11:00:00Z",
                  "--limit", "50", "--db", "/f.db", "--format", "json"});
  ASSERT_TRUE(flows.source);
  EXPECT_EQ(flows.source->toString(), "100.64.0.0/10");
  EXPECT_EQ(flows.destination_address, IpAddress::parse("198.51.100.1"));
  EXPECT_EQ(flows.destination_port, 443);
  EXPECT_EQ(flows.nat_address, IpAddress::parse("203.0.113.7"));
  EXPECT_EQ(flows.nat_port, 40001);
  EXPECT_EQ(flows.protocol, Protocol::Tcp);
  EXPECT_EQ(flows.zone, 65535);
  EXPECT_EQ(flows.from, parseTime("2026-11-25T10:00:00Z").value());
  EXPECT_EQ(flows.to, parseTime("2026-11-25T11:00:00Z").value());
  EXPECT_EQ(flows.limit, 50U);
  EXPECT_EQ(flows.database, "/f.db");
  EXPECT_EQ(flows.format, OutputFormat::Json);
}

TEST(CliOptionsTest, AZoneIsANumberFrom0To65535) {
  for (const char* bad : {"65536", "-1", "seven", "7a"}) {
    EXPECT_NE(errorOf({"flows", "--zone", bad}).find("is not a conntrack zone; give a number from 0 to 65535"),
              std::string::npos)
        << bad;
  }
  EXPECT_EQ(parseFlows({"flows", "--zone", "0"}).zone, 0);
}

TEST(CliOptionsTest, FlowsNeedsNoFilterAndDefaultsItsLimit) {
  const FlowsCommand flows = parseFlows({"flows"});
  EXPECT_FALSE(flows.source);
  EXPECT_FALSE(flows.destination_address);
  EXPECT_FALSE(flows.nat_address);
  EXPECT_FALSE(flows.from);
  EXPECT_FALSE(flows.to);
  EXPECT_EQ(flows.limit, kDefaultFlowsLimit);
  EXPECT_EQ(flows.format, OutputFormat::Table);
}

TEST(CliOptionsTest, FlowsAddressesWithOptionalPorts) {
  const FlowsCommand v4 = parseFlows({"flows", "--dst", "198.51.100.1", "--nat", "203.0.113.7"});
  EXPECT_FALSE(v4.destination_port);
  EXPECT_FALSE(v4.nat_port);
  const FlowsCommand v6 = parseFlows({"flows", "--dst", "2001:db8::1", "--nat", "[2001:db8::7]:40001"});
  EXPECT_EQ(v6.destination_address, IpAddress::parse("2001:db8::1"));
  EXPECT_FALSE(v6.destination_port);
  EXPECT_EQ(v6.nat_address, IpAddress::parse("2001:db8::7"));
  EXPECT_EQ(v6.nat_port, 40001);
  const FlowsCommand host = parseFlows({"flows", "--src", "100.64.0.7"});
  ASSERT_TRUE(host.source);
  EXPECT_EQ(host.source->toString(), "100.64.0.7/32");
  EXPECT_TRUE(contains(errorOf({"flows", "--src", "100.64.0.0/33"}), "--src: '100.64.0.0/33' is not an address or CIDR"));
  EXPECT_TRUE(contains(errorOf({"flows", "--dst", "198.51.100.1:http"}), "--dst: 'http' is not a port number"));
}

TEST(CliOptionsTest, FlowsLimit) {
  EXPECT_EQ(parseFlows({"flows", "--limit", "1"}).limit, 1U);
  EXPECT_EQ(parseFlows({"flows", "--limit", "0"}).limit, std::nullopt);
  EXPECT_TRUE(contains(errorOf({"flows", "--limit", "-1"}), "--limit: '-1' is not a count"));
  EXPECT_TRUE(contains(errorOf({"flows", "--limit", "10k"}), "0 for no limit"));
  EXPECT_TRUE(contains(errorOf({"flows", "--limit", "99999999999999999999999"}), "not a count"));
}

TEST(CliOptionsTest, FlowsRefusesReversedWindowAndPositionals) {
  EXPECT_EQ(errorOf({"flows", "--from", "2026-11-25T11:00:00Z", "--to", "2026-11-25T10:00:00Z"}),
            "--from 2026-11-25T11:00:00.000000000Z is after --to 2026-11-25T10:00:00.000000000Z; swap them");
  EXPECT_EQ(parseFlows({"flows", "--from", "@5", "--to", "@5"}).from, fromUnixNanos(5'000'000'000));
  EXPECT_TRUE(contains(errorOf({"flows", "100.64.0.7"}), "flows takes no argument '100.64.0.7'"));
}

}  // namespace
}  // namespace ctaudit::query
