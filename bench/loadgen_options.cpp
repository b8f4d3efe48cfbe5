// SPDX-License-Identifier: GPL-2.0-or-later
#include "bench/loadgen_options.hpp"

#include <charconv>
#include <variant>

#include "flow/time.hpp"

namespace ctaudit::bench {
namespace {

Result<std::uint64_t> parseNumber(std::string_view flag, std::string_view text, std::uint64_t min,
                                  std::uint64_t max) {
  std::uint64_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc{} || end != text.data() + text.size() || value < min || value > max) {
    return fail(Errc::Usage, std::string(flag) + ": '" + std::string(text) + "' is not a number from " +
                                 std::to_string(min) + " to " + std::to_string(max));
  }
  return value;
}

Result<void> parsePortRange(std::string_view text, FlowPlan::Options& plan) {
  const auto dash = text.find('-');
  if (dash == std::string_view::npos) {
    return fail(Errc::Usage, "--nat-ports: '" + std::string(text) + "' is not MIN-MAX, e.g. 1024-65535");
  }
  const auto low = parseNumber("--nat-ports", text.substr(0, dash), 1, 65535);
  const auto high = parseNumber("--nat-ports", text.substr(dash + 1), 1, 65535);
  if (!low || !high || *low > *high) {
    return fail(Errc::Usage, "--nat-ports: '" + std::string(text) + "' is not MIN-MAX with 1 <= MIN <= MAX <= 65535");
  }
  plan.nat_port_min = static_cast<std::uint16_t>(*low);
  plan.nat_port_max = static_cast<std::uint16_t>(*high);
  return {};
}

// Applies one option that takes a value.
Result<void> applyValue(LoadgenOptions& options, std::string_view name, std::string_view value) {
  const auto number = [&](std::uint64_t min, std::uint64_t max) { return parseNumber("--" + std::string(name), value, min, max); };
  if (name == "count") {
    const auto n = number(1, std::uint64_t{1} << 40U);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.count = *n;
  } else if (name == "duration") {
    const auto d = parseDuration(value);
    if (!d || d->count() <= 0) {
      return fail(Errc::Usage, "--duration: '" + std::string(value) + "' is not a positive duration, e.g. 10s");
    }
    options.duration = *d;
  } else if (name == "rate") {
    if (value == "max") {
      options.rate = 0.0;
      return {};
    }
    const auto n = number(1, 100'000'000);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.rate = static_cast<double>(*n);
  } else if (name == "live") {
    const auto n = number(1, 10'000'000);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.live = *n;
  } else if (name == "ends") {
    if (value == "fifo") {
      options.ends = EndOrder::Fifo;
    } else if (value == "random") {
      options.ends = EndOrder::Random;
    } else {
      return fail(Errc::Usage, "--ends: '" + std::string(value) + "' is not fifo or random");
    }
  } else if (name == "batch") {
    const auto n = number(1, 1024);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.batch = *n;
  } else if (name == "hosts") {
    const auto n = number(1, FlowPlan::kMaxHosts);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.plan.hosts = static_cast<std::uint32_t>(*n);
  } else if (name == "first-index") {
    const auto n = number(0, std::uint64_t{1} << 48U);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.first_index = *n;
  } else if (name == "timeout") {
    const auto n = number(1, 2'000'000'000);
    if (!n) {
      return Unexpected{n.error()};
    }
    options.create.timeout_seconds = static_cast<std::uint32_t>(*n);
  } else if (name == "nat-ports") {
    return parsePortRange(value, options.plan);
  } else if (name == "proto") {
    if (value == "tcp") {
      options.plan.protocols = ProtocolMix::Tcp;
    } else if (value == "udp") {
      options.plan.protocols = ProtocolMix::Udp;
    } else if (value == "mix") {
      options.plan.protocols = ProtocolMix::Mixed;
    } else {
      return fail(Errc::Usage, "--proto: '" + std::string(value) + "' is not tcp, udp or mix");
    }
  } else if (name == "family") {
    if (value == "4" || value == "ipv4") {
      options.plan.families = FamilyMix::V4;
    } else if (value == "6" || value == "ipv6") {
      options.plan.families = FamilyMix::V6;
    } else if (value == "mix") {
      options.plan.families = FamilyMix::Mixed;
    } else {
      return fail(Errc::Usage, "--family: '" + std::string(value) + "' is not 4, 6 or mix");
    }
  } else if (name == "acks") {
    if (value != "all" && value != "errors") {
      return fail(Errc::Usage, "--acks: '" + std::string(value) + "' is not all or errors");
    }
    options.create.ack_every_message = value == "all";
  } else if (name == "format") {
    if (value == "kv") {
      options.format = SummaryFormat::KeyValue;
    } else if (value == "json") {
      options.format = SummaryFormat::Json;
    } else {
      return fail(Errc::Usage, "--format: '" + std::string(value) + "' is not kv or json");
    }
  } else {
    return fail(Errc::Usage, "unknown option '--" + std::string(name) + "'; see ct_loadgen --help");
  }
  return {};
}

Result<void> checkConsistent(const LoadgenOptions& options) {
  if (!options.count && !options.duration) {
    return fail(Errc::Usage, "say how much: --count N and/or --duration DUR");
  }
  if (!options.delete_flows && options.live != 0) {
    return fail(Errc::Usage, "--live needs deletes; it cannot go with --no-delete");
  }
  const FlowPlan plan(options.plan);
  if (options.live > plan.natPorts()) {
    return fail(Errc::Usage, "--live " + std::to_string(options.live) + " exceeds the " +
                                 std::to_string(plan.natPorts()) +
                                 " translated ports of --nat-ports: alive entries would share a mapping");
  }
  return {};
}

}  // namespace

Result<std::variant<LoadgenOptions, LoadgenHelp>> parseLoadgenOptions(std::span<const std::string_view> args) {
  LoadgenOptions options;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view arg = args[i];
    if (arg == "--help" || arg == "-h") {
      return std::variant<LoadgenOptions, LoadgenHelp>{LoadgenHelp{}};
    }
    if (arg.rfind("--", 0) != 0) {
      return fail(Errc::Usage, "unexpected argument '" + std::string(arg) + "'; see ct_loadgen --help");
    }
    std::string_view name = arg.substr(2);
    std::optional<std::string_view> value;
    if (const auto eq = name.find('='); eq != std::string_view::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (name == "no-delete" || name == "keep" || name == "progress") {
      if (value) {
        return fail(Errc::Usage, "--" + std::string(name) + " takes no value");
      }
      if (name == "no-delete") {
        options.delete_flows = false;
        options.keep_at_exit = true;
      } else if (name == "keep") {
        options.keep_at_exit = true;
      } else {
        options.progress = true;
      }
      continue;
    }
    if (!value) {
      if (i + 1 >= args.size()) {
        return fail(Errc::Usage, "--" + std::string(name) + " needs a value; see ct_loadgen --help");
      }
      value = args[++i];
    }
    const auto applied = applyValue(options, name, *value);
    if (!applied) {
      return Unexpected{applied.error()};
    }
  }
  const auto consistent = checkConsistent(options);
  if (!consistent) {
    return Unexpected{consistent.error()};
  }
  return std::variant<LoadgenOptions, LoadgenHelp>{options};
}

std::string loadgenUsage() {
  return R"(Usage: ct_loadgen [OPTION]...
Create and delete source-NAT'd conntrack entries through ctnetlink, at a set rate, to load a
ctnetlink event listener (ctauditd) in the same network namespace. Each create gives one NEW
event, each delete one DESTROY event; the kernel builds them inside ct_loadgen's send calls.

Run it only inside a network namespace of your own, as root (CAP_NET_ADMIN there):
  ip netns exec NS ct_loadgen --rate 20000 --duration 10s --live 5000
It never touches the namespace's ruleset; no nat chain is needed.

How much (at least one):
  --count N          create N flows
  --duration DUR     create for this long (10s, 500ms, 2m); with --count, whichever ends first
Pacing:
  --rate N|max       requests per second, creates and deletes together (= conntrack events/s);
                     a token bucket that holds 50 ms or two batches (default max)
  --batch N          requests per sendmsg, 1-1024 (default 32)
  --live N           keep at most N entries alive: before a create would pass N, an entry is
                     deleted, the one --ends picks (default: no limit)
  --ends fifo|random which live entry a delete takes: the oldest (default), or one picked at
                     random, as the kernel's garbage collector and `conntrack -F` end entries
                     (in hash order); an entry that still holds the translated port a create
                     needs is then deleted just before it (counted in forced_deletes: keep
                     --live well below the translated ports, or many deletes are such)
  --no-delete        never delete: every entry stays until its timeout (not with --live)
  --keep             at the end, leave the entries still alive (default: delete them, at the
                     same rate, so that every flow has its NEW and its DESTROY)
What it creates (documentation addresses only):
  --proto tcp|udp|mix    (default mix: even flows TCP, odd flows UDP)
  --family 4|6|mix       (default 4)
  --hosts N          inside hosts: 100.64.0.1 onwards, 2001:db8:1::1 onwards (default 1000)
  --first-index N    number of the first flow (default 0); give later runs distinct numbers so
                     that they create distinct tuples
  --nat-ports MIN-MAX    translated source ports (default 1024-65535)
  --timeout SECONDS  conntrack timeout of the entries (default 600)
  Flow n is 100.64.0.1+(n mod hosts) : 10000+(n/hosts mod 50000) -> 198.51.100.10:443,
  translated to 203.0.113.1 : MIN + n mod (MAX-MIN+1); IPv6 2001:db8:1::1+(n mod hosts) ->
  [2001:db8:2::10]:443 as 2001:db8:2::1. TCP entries are ESTABLISHED; all are SEEN_REPLY|ASSURED.
Output:
  --acks all|errors  ask the kernel to acknowledge every request (default all: exact counts), or
                     only hear about errors (cheaper)
  --format kv|json   summary on stdout as key=value lines (default) or one JSON object
  --progress         one line a second on stderr
  -h, --help         show this help

The summary: created, deleted, create_errors, delete_errors, errors by errno (EEXIST: the tuple
or the mapping was taken; ENOENT: the entry to delete was gone), acks_missing, requests,
elapsed_s, requests_per_s (achieved), left_alive, forced_deletes.
Signals: the first SIGINT/SIGTERM stops creating (and deletes the live entries unless --keep);
a second one stops at once.
Exit status: 0 every request succeeded, 1 fatal error, 2 usage error, 3 some requests failed.
)";
}

}  // namespace ctaudit::bench
