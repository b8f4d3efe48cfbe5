// SPDX-License-Identifier: GPL-2.0-or-later
#include "query/flows.hpp"

#include <limits>
#include <utility>
#include <vector>

#include "query/flow_output.hpp"
#include "query/log_check.hpp"
#include "query/output_spool.hpp"
#include "query/printable.hpp"

namespace ctaudit::query {

storage::FlowQuery toFlowQuery(const FlowsCommand& flows) {
  storage::FlowQuery query;
  query.source = flows.source;
  query.destination_address = flows.destination_address;
  query.destination_port = flows.destination_port;
  query.nat_address = flows.nat_address;
  query.nat_port = flows.nat_port;
  query.protocol = flows.protocol;
  query.zone = flows.zone;
  query.from = flows.from;
  query.to = flows.to;
  if (flows.limit && *flows.limit < std::numeric_limits<std::size_t>::max()) {
    query.limit = *flows.limit + 1;
  }
  return query;
}

ExitStatus runFlows(const FlowsCommand& flows, FlowFinder& finder, std::ostream& out, std::ostream& err,
                    OutputPath path) {
  // Coverage before the flows, as in runWho. Without --from and --to there is no window to vouch
  // for: readCoverage and checkLog read nothing then.
  const auto coverage = readCoverage(finder, flows.from, flows.to);
  if (!coverage) {
    printErrorLine(err, coverage.error().detail);
    return ExitStatus::Error;
  }
  // Printed as read (FlowStreamPrinter): `--limit 0 --format csv` over a day of a busy gateway's
  // log used to hold every flow in memory (320 bytes each) before the first line came out. The
  // query asks for one flow more than the limit, which is only counted, to say that more match.
  // Without a temporary file the lines go straight out, as before the spool existed: a slower
  // checkpoint is better than no answer.
  std::unique_ptr<OutputSpool> spool;
  if (path == OutputPath::Spooled) {
    if (auto made = OutputSpool::create()) {
      spool = std::move(*made);
    }
  }
  std::ostream& lines = spool ? spool->stream() : out;
  FlowStreamPrinter printer(lines, flows.format, finder.observerHostname());
  bool truncated = false;
  const auto read = finder.forEach(toFlowQuery(flows), [&](const storage::StoredFlow& flow) {
    if (flows.limit && printer.added() == *flows.limit) {
      truncated = true;
      return false;
    }
    printer.add(shownRecord(flow));
    return lines.good();  // the output (or the spool) took nothing more: reading on would be wasted
  });
  if (!read) {
    if (spool) {
      (void)spool->copyTo(out);  // what was read before the error, as without the spool
    }
    printErrorLine(err, read.error().detail);
    return ExitStatus::Error;
  }
  // The retention horizon after the flows (checkLog): a deletion committed in between moves it on.
  const auto check = checkLog(finder, *coverage);
  if (!check) {
    printErrorLine(err, check.error().detail);
    return ExitStatus::Error;
  }
  printer.finish();
  if (spool) {
    if (auto copied = spool->copyTo(out); !copied) {
      printErrorLine(err, copied.error().detail);
      return ExitStatus::Error;
    }
  }
  const bool none = printer.added() == 0;
  if (none && flows.format == OutputFormat::Table) {
    err << "ctaudit: no flow matched; widen the time window or drop a filter";
    // A destination port is one of a protocol with ports; a translated one may also be an ICMP id
    // ([2001:db8::1]:512), which --dst never matches.
    const bool dst_ports = !flows.protocol || hasPorts(*flows.protocol);
    const bool nat_ports = dst_ports || isIcmp(*flows.protocol);
    if ((dst_ports && mayHaveMeantAPort(flows.destination_address, flows.destination_port)) ||
        (nat_ports && mayHaveMeantAPort(flows.nat_address, flows.nat_port))) {
      err << kUnbracketedPortHint;
    }
    err << '\n';
  }
  if (truncated && out.good()) {
    err << "ctaudit: note: showing the first " << *flows.limit << (*flows.limit == 1 ? " matching flow" : " matching flows")
        << ", more match; narrow the filters, or raise --limit (0 for no limit)\n";
  }
  printLogCheck(out, err, flows.format, *check, finder.observerHostname());
  return none ? ExitStatus::NothingFound : ExitStatus::Found;
}

}  // namespace ctaudit::query
