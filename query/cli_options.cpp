// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/cli_options.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "flow/argument_length.hpp"

namespace ctaudit::query {
namespace {

struct OptionValue {
  std::string_view name;  // with the leading "--"
  std::string_view value;
};

// The arguments of one command, split into options and positionals but not yet interpreted.
struct SplitArguments {
  std::vector<OptionValue> options;
  std::vector<std::string_view> positionals;
};

std::string seeHelp(std::string_view command) { return "see 'ctaudit " + std::string(command) + " --help'"; }

// "--help=x" too: a help request with a stray value is still one, and help wins over wrong arguments.
bool isHelpFlag(std::string_view arg) { return arg == "--help" || arg == "-h" || arg.starts_with("--help="); }

bool asksForHelp(std::span<const std::string_view> args) {
  for (const std::string_view arg : args) {
    if (arg == "--") {
      return false;
    }
    if (isHelpFlag(arg)) {
      return true;
    }
  }
  return false;
}

// Every option of every command takes a value, so the only question per `--name` is where the
// value is: after `=`, or in the next argument. A next argument that starts with "--" is taken for
// a forgotten value rather than as the value: no value of ours starts that way.
Result<SplitArguments> splitArguments(std::span<const std::string_view> args,
                                      std::span<const std::string_view> known_options,
                                      std::string_view command) {
  SplitArguments split;
  bool options_ended = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (options_ended) {
      split.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      options_ended = true;
      continue;
    }
    if (!arg.starts_with("--")) {
      if (arg.size() > 1 && arg.front() == '-') {
        return fail(Errc::Usage, "unknown option '" + std::string(arg) + "' for 'ctaudit " + std::string(command) +
                                     "'; " + seeHelp(command));
      }
      split.positionals.push_back(arg);
      continue;
    }
    const auto equals = arg.find('=');
    const std::string_view name = arg.substr(0, equals);
    if (std::find(known_options.begin(), known_options.end(), name) == known_options.end()) {
      return fail(Errc::Usage, "unknown option '" + std::string(name) + "' for 'ctaudit " + std::string(command) +
                                   "'; " + seeHelp(command));
    }
    std::string_view value;
    if (equals != std::string_view::npos) {
      value = arg.substr(equals + 1);
    } else if (i + 1 < args.size() && !args[i + 1].starts_with("--")) {
      value = args[++i];
    }
    if (value.empty()) {
      return fail(Errc::Usage, "option " + std::string(name) + " needs a value; " + seeHelp(command));
    }
    const bool repeated = std::any_of(split.options.begin(), split.options.end(),
                                      [name](const OptionValue& option) { return option.name == name; });
    if (repeated) {
      return fail(Errc::Usage, "option " + std::string(name) + " is given more than once; give it once");
    }
    split.options.push_back({name, value});
  }
  return split;
}

// Prefixes a value parser's message with the option it came from.
Unexpected optionError(std::string_view name, const Error& error) {
  return fail(Errc::Usage, std::string(name) + ": " + error.detail);
}

Result<Timestamp> timeOption(std::string_view name, std::string_view value) {
  auto parsed = parseTime(value);
  if (!parsed) {
    return optionError(name, parsed.error());
  }
  return *parsed;
}

Result<std::chrono::nanoseconds> durationOption(std::string_view name, std::string_view value) {
  auto parsed = parseDuration(value);
  if (!parsed) {
    return optionError(name, parsed.error());
  }
  return *parsed;
}

Result<Protocol> protocolOption(std::string_view name, std::string_view value) {
  const auto parsed = parseProtocol(value);
  if (!parsed) {
    return fail(Errc::Usage, std::string(name) + ": unknown protocol '" + std::string(value) +
                                 "'; use tcp, udp, icmp, ipv6-icmp, sctp, dccp, gre, udplite or a number 0-255");
  }
  return *parsed;
}

Result<OutputFormat> formatOption(std::string_view name, std::string_view value) {
  const auto parsed = parseOutputFormat(value);
  if (!parsed) {
    return fail(Errc::Usage,
                std::string(name) + ": unknown format '" + std::string(value) + "'; use table, json or csv");
  }
  return *parsed;
}

// An IPv4-mapped IPv6 address (::ffff:203.0.113.7, RFC 4291 2.5.5.2) as the IPv4 address it
// stands for: logs and tools that listen on IPv6 sockets print IPv4 peers that way, and conntrack
// records those flows as IPv4, so searching the mapped form as IPv6 would find nothing.
std::optional<IpAddress> mappedIpv4(const IpAddress& address) noexcept {
  if (address.isV4()) {
    return std::nullopt;
  }
  const auto bytes = address.bytes();
  constexpr std::array<std::uint8_t, 12> kPrefix{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
  if (!std::equal(kPrefix.begin(), kPrefix.end(), bytes.begin())) {
    return std::nullopt;
  }
  return IpAddress::v4(bytes.subspan<12, 4>());
}

Result<Endpoint::Parsed> endpointOption(std::string_view name, std::string_view value, bool port_optional) {
  auto parsed = Endpoint::parse(value, port_optional);
  if (!parsed) {
    return optionError(name, parsed.error());
  }
  if (const auto v4 = mappedIpv4(parsed->address)) {
    parsed->address = *v4;
  }
  return *parsed;
}

Result<IpNetwork> networkOption(std::string_view name, std::string_view value) {
  const auto parsed = IpNetwork::parse(value);
  if (auto zoned = zoneIdRefusal(value); !parsed && zoned) {
    return fail(Errc::Usage, std::string(name) + ": " + *zoned);
  }
  if (!parsed) {
    return fail(Errc::Usage, std::string(name) + ": '" + std::string(value) +
                                 "' is not an address or CIDR block; write e.g. 100.64.0.0/10, 2001:db8::/32 "
                                 "or 100.64.0.7");
  }
  // 100.64.0.40/10 is most likely one host typed with its interface's prefix: searching the
  // whole /10 would list a million subscribers' flows as if they were that host's.
  // A mapped block (::ffff:100.64.0.0/106) is the IPv4 block; a shorter prefix reaches beyond the
  // mapped range and stays an IPv6 block.
  constexpr unsigned kMappedPrefix = 96;
  IpNetwork block = *parsed;
  if (const auto v4 = mappedIpv4(parsed->network()); v4 && parsed->prefixLength() >= kMappedPrefix) {
    block = IpNetwork(*v4, parsed->prefixLength() - kMappedPrefix);
  }
  if (auto typed = IpAddress::parse(value.substr(0, value.find('/'))); typed && *typed != parsed->network()) {
    if (const auto v4 = mappedIpv4(*typed); v4 && block.network().isV4()) {
      typed = *v4;
    }
    return fail(Errc::Usage, std::string(name) + ": '" + std::string(value) + "' has host bits set; write " +
                                 block.toString() + " for the block or " + typed->toString() + " for the host");
  }
  return block;
}

// nullopt means no limit (`--limit 0`).
Result<std::optional<std::size_t>> limitOption(std::string_view name, std::string_view value) {
  std::size_t limit = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), limit);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    return fail(Errc::Usage, std::string(name) + ": '" + std::string(value) +
                                 "' is not a count; give a whole number of flows, or 0 for no limit");
  }
  std::optional<std::size_t> result;
  if (limit != 0) {
    result = limit;
  }
  return result;
}

Result<std::uint16_t> zoneOption(std::string_view name, std::string_view value) {
  std::uint16_t zone = 0;
  const auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), zone);
  if (ec != std::errc{} || end != value.data() + value.size()) {
    return fail(Errc::Usage, std::string(name) + ": '" + std::string(value) +
                                 "' is not a conntrack zone; give a number from 0 to 65535 (the zone column of the "
                                 "CSV and the table)");
  }
  return zone;
}

// ICMP over IPv6 is its own protocol (58), so `--proto icmp` with an IPv6 address can never match:
// say so instead of answering "nothing found".
// `shown` is the address or block as the message names it.
Result<void> checkIcmpFamily(std::optional<Protocol> protocol, bool is_v4, std::string_view what,
                             const std::string& shown) {
  if (protocol == Protocol::Icmp && !is_v4) {
    return fail(Errc::Usage, "--proto icmp never matches the IPv6 " + std::string(what) + " " + shown +
                                 ": ICMP over IPv6 is --proto ipv6-icmp");
  }
  if (protocol == Protocol::Icmpv6 && is_v4) {
    return fail(Errc::Usage, "--proto ipv6-icmp never matches the IPv4 " + std::string(what) + " " + shown +
                                 ": ICMP over IPv4 is --proto icmp");
  }
  return {};
}

Result<void> checkIcmpFamily(std::optional<Protocol> protocol, const IpAddress& address, std::string_view what) {
  return checkIcmpFamily(protocol, address.isV4(), what, address.toString());
}

// A destination port never matches a flow of a protocol without ports (flow_query_sql.cpp: an
// ICMP flow keeps its echo id there, GRE a call id or 0), so with such a --proto it would answer
// "no flow" and blame the window (a review).
Result<void> checkDestinationPort(std::optional<Protocol> protocol, std::optional<std::uint16_t> port) {
  if (protocol && port && !hasPorts(*protocol)) {
    return fail(Errc::Usage, protocolName(*protocol) +
                                 " flows have no destination port, so --dst with a port never matches them: give "
                                 "--dst the address alone");
  }
  return {};
}

// Conntrack translates within one address family (it has no NAT64), so every address of a flow
// is IPv4 or every one is IPv6: filters of both families can never match together.
Result<void> checkOneFamily(const FlowsCommand& flows) {
  std::vector<std::pair<std::string_view, IpAddress>> given;
  if (flows.source) {
    given.emplace_back("--src", flows.source->network());
  }
  if (flows.destination_address) {
    given.emplace_back("--dst", *flows.destination_address);
  }
  if (flows.nat_address) {
    given.emplace_back("--nat", *flows.nat_address);
  }
  for (const auto& [flag, address] : given) {
    const auto& [first_flag, first] = given.front();
    if (address.isV4() != first.isV4()) {
      const auto family = [](const IpAddress& a) { return a.isV4() ? "IPv4" : "IPv6"; };
      return fail(Errc::Usage, std::string(first_flag) + " is " + family(first) + " and " + std::string(flag) +
                                   " is " + family(address) +
                                   ": a flow's addresses are all of one family (conntrack does not translate "
                                   "between them), so no flow matches both; drop one");
    }
  }
  return {};
}

std::filesystem::path chooseDatabase(std::optional<std::string_view> flag, std::optional<std::string_view> env) {
  if (flag) {
    return {*flag};
  }
  if (env && !env->empty()) {
    return {*env};
  }
  return {kDefaultDatabasePath};
}

constexpr std::array<std::string_view, 7> kWhoOptions{"--at",   "--dst", "--proto", "--zone",
                                                      "--slack", "--db",  "--format"};

Result<Command> parseWho(std::span<const std::string_view> args, std::optional<std::string_view> env_database) {
  auto split = splitArguments(args, kWhoOptions, "who");
  if (!split) {
    return Unexpected{split.error()};
  }
  if (split->positionals.empty()) {
    return fail(Errc::Usage,
                "who needs the translated ADDR:PORT, e.g. 'ctaudit who 203.0.113.7:40001 --at "
                "2026-11-25T10:00:03Z'; " + seeHelp("who"));
  }
  if (split->positionals.size() > 1) {
    return fail(Errc::Usage, "who takes one ADDR:PORT, but '" + std::string(split->positionals[1]) +
                                 "' follows it; " + seeHelp("who"));
  }
  WhoCommand who;
  auto endpoint = endpointOption("who", split->positionals.front(), false);
  if (!endpoint) {
    return Unexpected{endpoint.error()};
  }
  who.translated_source = Endpoint{endpoint->address, endpoint->port.value_or(0)};

  bool have_at = false;
  std::optional<std::string_view> database;
  for (const auto& [name, value] : split->options) {
    if (name == "--at") {
      auto at = timeOption(name, value);
      if (!at) {
        return Unexpected{at.error()};
      }
      who.at = *at;
      have_at = true;
    } else if (name == "--dst") {
      auto destination = endpointOption(name, value, true);
      if (!destination) {
        return Unexpected{destination.error()};
      }
      who.destination_address = destination->address;
      who.destination_port = destination->port;
    } else if (name == "--proto") {
      auto protocol = protocolOption(name, value);
      if (!protocol) {
        return Unexpected{protocol.error()};
      }
      who.protocol = *protocol;
    } else if (name == "--zone") {
      auto zone = zoneOption(name, value);
      if (!zone) {
        return Unexpected{zone.error()};
      }
      who.zone = *zone;
    } else if (name == "--slack") {
      auto slack = durationOption(name, value);
      if (!slack) {
        return Unexpected{slack.error()};
      }
      who.slack = *slack;
    } else if (name == "--db") {
      database = value;
    } else if (name == "--format") {
      auto format = formatOption(name, value);
      if (!format) {
        return Unexpected{format.error()};
      }
      who.format = *format;
    }
  }
  if (!have_at) {
    return fail(Errc::Usage,
                "who needs --at TIME, the time of the report, e.g. --at 2026-11-25T10:00:03Z; " + seeHelp("who"));
  }
  if (auto family = checkIcmpFamily(who.protocol, who.translated_source.address, "address"); !family) {
    return Unexpected{family.error()};
  }
  if (auto port = checkDestinationPort(who.protocol, who.destination_port); !port) {
    return Unexpected{port.error()};
  }
  if (who.destination_address && who.destination_address->isV4() != who.translated_source.address.isV4()) {
    return fail(Errc::Usage, "--dst " + who.destination_address->toString() + " and " +
                                 who.translated_source.address.toString() +
                                 " are of two address families: a flow's addresses are all of one (conntrack does "
                                 "not translate between them), so no flow matches both");
  }
  who.database = chooseDatabase(database, env_database);
  return Command{who};
}

constexpr std::array<std::string_view, 10> kFlowsOptions{"--src",  "--dst",   "--nat", "--proto", "--zone",
                                                         "--from", "--to",    "--limit", "--db",  "--format"};

// Applies one option to `flows`; the name is one of kFlowsOptions.
Result<void> applyFlowsOption(FlowsCommand& flows, const OptionValue& option) {
  const auto [name, value] = option;
  if (name == "--src") {
    auto source = networkOption(name, value);
    if (!source) {
      return Unexpected{source.error()};
    }
    flows.source = *source;
  } else if (name == "--dst" || name == "--nat") {
    auto endpoint = endpointOption(name, value, true);
    if (!endpoint) {
      return Unexpected{endpoint.error()};
    }
    if (name == "--dst") {
      flows.destination_address = endpoint->address;
      flows.destination_port = endpoint->port;
    } else {
      flows.nat_address = endpoint->address;
      flows.nat_port = endpoint->port;
    }
  } else if (name == "--proto") {
    auto protocol = protocolOption(name, value);
    if (!protocol) {
      return Unexpected{protocol.error()};
    }
    flows.protocol = *protocol;
  } else if (name == "--zone") {
    auto zone = zoneOption(name, value);
    if (!zone) {
      return Unexpected{zone.error()};
    }
    flows.zone = *zone;
  } else if (name == "--from" || name == "--to") {
    auto time = timeOption(name, value);
    if (!time) {
      return Unexpected{time.error()};
    }
    (name == "--from" ? flows.from : flows.to) = *time;
  } else if (name == "--limit") {
    auto limit = limitOption(name, value);
    if (!limit) {
      return Unexpected{limit.error()};
    }
    flows.limit = *limit;
  } else if (name == "--format") {
    auto format = formatOption(name, value);
    if (!format) {
      return Unexpected{format.error()};
    }
    flows.format = *format;
  }
  return {};
}

Result<Command> parseFlows(std::span<const std::string_view> args, std::optional<std::string_view> env_database) {
  auto split = splitArguments(args, kFlowsOptions, "flows");
  if (!split) {
    return Unexpected{split.error()};
  }
  if (!split->positionals.empty()) {
    return fail(Errc::Usage, "flows takes no argument '" + std::string(split->positionals.front()) +
                                 "': filters are options such as --src 100.64.0.0/10; " + seeHelp("flows"));
  }
  FlowsCommand flows;
  std::optional<std::string_view> database;
  for (const OptionValue& option : split->options) {
    if (option.name == "--db") {
      database = option.value;
      continue;
    }
    if (auto applied = applyFlowsOption(flows, option); !applied) {
      return Unexpected{applied.error()};
    }
  }
  if (flows.from && flows.to && *flows.from > *flows.to) {
    return fail(Errc::Usage, "--from " + formatRfc3339(*flows.from) + " is after --to " + formatRfc3339(*flows.to) +
                                 "; swap them");
  }
  if (flows.source) {
    if (auto family = checkIcmpFamily(flows.protocol, flows.source->network().isV4(), "--src", flows.source->toString()); !family) {
      return Unexpected{family.error()};
    }
  }
  if (flows.destination_address) {
    if (auto family = checkIcmpFamily(flows.protocol, *flows.destination_address, "--dst"); !family) {
      return Unexpected{family.error()};
    }
  }
  if (auto port = checkDestinationPort(flows.protocol, flows.destination_port); !port) {
    return Unexpected{port.error()};
  }
  if (flows.nat_address) {
    if (auto family = checkIcmpFamily(flows.protocol, *flows.nat_address, "--nat"); !family) {
      return Unexpected{family.error()};
    }
  }
  if (auto family = checkOneFamily(flows); !family) {
    return Unexpected{family.error()};
  }
  flows.database = chooseDatabase(database, env_database);
  return Command{flows};
}

Result<Command> parseHelpCommand(std::span<const std::string_view> all_args) {
  // 'ctaudit help --help' and 'ctaudit help who -h' ask for the same help as without the flag.
  std::vector<std::string_view> args;
  for (const std::string_view arg : all_args) {
    if (!isHelpFlag(arg)) {
      args.push_back(arg);
    }
  }
  if (args.empty()) {
    return Command{HelpRequest{HelpTopic::Main}};
  }
  if (args.size() == 1 && args.front() == "who") {
    return Command{HelpRequest{HelpTopic::Who}};
  }
  if (args.size() == 1 && args.front() == "flows") {
    return Command{HelpRequest{HelpTopic::Flows}};
  }
  if (args.size() > 1) {
    return fail(Errc::Usage, "'ctaudit help' takes one topic: 'ctaudit help who' or 'ctaudit help flows'");
  }
  return fail(Errc::Usage, "no help on '" + std::string(args.front()) + "'; try 'ctaudit help who' or 'ctaudit help flows'");
}

}  // namespace

Result<Command> parseCommandLine(std::span<const std::string_view> args, std::optional<std::string_view> env_database) {
  // Help wins over wrong arguments, an overlong one included; every other path may quote one.
  if (!asksForHelp(args)) {
    if (auto lengths = checkArgumentLengths(args, "ctaudit"); !lengths) {
      return Unexpected{lengths.error()};
    }
  }
  if (args.empty() || (args.front() == "--" && args.size() == 1)) {
    return fail(Errc::Usage, "no command given: use 'ctaudit who' or 'ctaudit flows'; see 'ctaudit --help'");
  }
  if (args.front() == "--") {
    // The example names the command that followed, when it is one ("ctaudit -- --help" suggested
    // "ctaudit --help ... -- ...").
    const std::string_view example = args[1] == "flows" ? "flows" : "who";
    return fail(Errc::Usage, "'--' goes after the command, before its arguments: 'ctaudit " + std::string(example) +
                                 " ... -- ...'; see 'ctaudit --help'");
  }
  const std::string_view command = args.front();
  const auto rest = args.subspan(1);
  if (isHelpFlag(command)) {
    return Command{HelpRequest{HelpTopic::Main}};
  }
  if (command == "--version") {
    if (asksForHelp(rest)) {
      return Command{HelpRequest{HelpTopic::Main}};
    }
    if (!rest.empty()) {
      return fail(Errc::Usage, "--version takes no arguments; see 'ctaudit --help'");
    }
    return Command{VersionRequest{}};
  }
  if (command == "help") {
    return parseHelpCommand(rest);
  }
  if (command == "who") {
    if (asksForHelp(rest)) {
      return Command{HelpRequest{HelpTopic::Who}};
    }
    return parseWho(rest, env_database);
  }
  if (command == "flows") {
    if (asksForHelp(rest)) {
      return Command{HelpRequest{HelpTopic::Flows}};
    }
    return parseFlows(rest, env_database);
  }
  // `ctaudit --bogus --help`, `ctaudit whom --help`: help wins over wrong arguments here too
  // (docs/query.md), and with no command known, the main help is the one to show.
  if (asksForHelp(rest)) {
    return Command{HelpRequest{HelpTopic::Main}};
  }
  if (command.starts_with("-")) {
    return fail(Errc::Usage, "unknown option '" + std::string(command) +
                                 "': options follow the command, e.g. 'ctaudit who ... --db PATH'; see 'ctaudit --help'");
  }
  return fail(Errc::Usage, "unknown command '" + std::string(command) + "': use 'who' or 'flows'; see 'ctaudit --help'");
}

}  // namespace ctaudit::query
