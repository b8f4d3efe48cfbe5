// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string_view>
#include <variant>

#include "flow/ip_address.hpp"
#include "flow/protocol.hpp"
#include "flow/result.hpp"
#include "flow/time.hpp"
#include "query/output_format.hpp"

namespace ctaudit::query {

// Where `ctaudit` looks for the database when neither --db nor $CTAUDIT_DB names one: the
// daemon's StateDirectory=ctaudit plus its default file name.
inline constexpr std::string_view kDefaultDatabasePath = "/var/lib/ctaudit/flows.db";
// How many flows `ctaudit flows` prints unless --limit says otherwise.
inline constexpr std::size_t kDefaultFlowsLimit = 1000;

// Which help text was asked for.
enum class HelpTopic : std::uint8_t { Main, Who, Flows };

struct HelpRequest {
  HelpTopic topic{HelpTopic::Main};
  friend bool operator==(const HelpRequest&, const HelpRequest&) = default;
};

struct VersionRequest {
  friend bool operator==(const VersionRequest&, const VersionRequest&) = default;
};

// `ctaudit who ADDR:PORT --at TIME`: which inside host had this translated source then?
struct WhoCommand {
  // The address and port (ICMP id) the outside world saw, i.e. the SNAT/masquerade source.
  Endpoint translated_source;
  Timestamp at;
  // How far either side of `at` a flow may lie and still match. Never negative.
  std::chrono::nanoseconds slack{0};
  std::optional<Protocol> protocol;
  std::optional<std::uint16_t> zone;  // the conntrack zone
  // The destination the report names (the victim), and its port when given: one translated source
  // can serve several inside hosts at once, each to another destination.
  std::optional<IpAddress> destination_address;
  std::optional<std::uint16_t> destination_port;
  std::filesystem::path database;
  OutputFormat format{OutputFormat::Table};
};

// `ctaudit flows [filters]`: the flows overlapping a time window, oldest first.
struct FlowsCommand {
  std::optional<IpNetwork> source;
  std::optional<IpAddress> destination_address;
  std::optional<std::uint16_t> destination_port;
  std::optional<IpAddress> nat_address;
  std::optional<std::uint16_t> nat_port;
  std::optional<Protocol> protocol;
  std::optional<std::uint16_t> zone;  // the conntrack zone
  std::optional<Timestamp> from;
  std::optional<Timestamp> to;
  // At most this many flows are printed; nullopt (`--limit 0`) prints them all.
  std::optional<std::size_t> limit{kDefaultFlowsLimit};
  std::filesystem::path database;
  OutputFormat format{OutputFormat::Table};
};

using Command = std::variant<HelpRequest, VersionRequest, WhoCommand, FlowsCommand>;

// "--dst 2001:db8::1:443" is a valid IPv6 address without a port: perhaps the port was meant.
// The no-match messages of `who` and `flows` add kUnbracketedPortHint after such an option.
[[nodiscard]] inline bool mayHaveMeantAPort(const std::optional<IpAddress>& address,
                                            const std::optional<std::uint16_t>& port) noexcept {
  return address && !address->isV4() && !port;
}
inline constexpr std::string_view kUnbracketedPortHint =
    " (an IPv6 address with a port is written in brackets, [2001:db8::1]:443; without them the last group is part "
    "of the address)";

// Turns the arguments after the program name into a typed command.
//
// Options are accepted as `--opt value` and `--opt=value`, before or after the positional
// argument; `--` ends the options. `--help`/`-h` anywhere before `--` asks for the help of the
// command it follows. The database is --db, else `env_database` ($CTAUDIT_DB, ignored when empty),
// else kDefaultDatabasePath.
//
// Errors (Errc::Usage): a missing command, an unknown command or option, a missing or repeated
// value, a value that does not parse (address, port, time, duration, protocol, format, limit), a
// time window whose start is after its end. The detail is one line that names the problem and what
// to do, without the "ctaudit: " prefix.
[[nodiscard]] Result<Command> parseCommandLine(std::span<const std::string_view> args,
                                               std::optional<std::string_view> env_database);

}  // namespace ctaudit::query
