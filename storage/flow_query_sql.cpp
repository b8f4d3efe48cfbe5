// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_query_sql.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "storage/flow_row.hpp"

namespace ctaudit::storage {
namespace {

// Collects the WHERE terms and their parameters in step.
class QueryBuilder {
public:
  // Adds `value` as the next parameter and returns its placeholder, "?N".
  std::string parameter(CompiledQuery::Parameter value) {
    parameters_.push_back(value);
    return "?" + std::to_string(parameters_.size());
  }
  void where(const std::string& term) {
    where_ += where_.empty() ? "\nWHERE " : "\n  AND ";
    where_ += term;
  }
  [[nodiscard]] const std::string& whereClause() const noexcept { return where_; }
  [[nodiscard]] std::vector<CompiledQuery::Parameter> takeParameters() { return std::move(parameters_); }

private:
  std::string where_;
  std::vector<CompiledQuery::Parameter> parameters_;
};

}  // namespace

namespace {

// The port of an endpoint column (flow_row.hpp): the low 16 bits of an IPv4 INTEGER, the last two
// bytes of an IPv6 BLOB.
std::string endpointPortTerm(QueryBuilder& b, std::string_view column, std::uint16_t port) {
  Blob port_bytes;
  port_bytes.appendPort(port);
  const std::string c(column);
  return "(typeof(" + c + ") = 'integer' AND (" + c + " & 65535) = " + b.parameter(std::int64_t{port}) +
         " OR typeof(" + c + ") = 'blob' AND substr(" + c + ", 17, 2) = " + b.parameter(port_bytes) + ")";
}

}  // namespace

CompiledQuery compileFlowQuery(const FlowQuery& query) {
  QueryBuilder b;
  if (query.nat_source_address) {
    if (query.nat_source_port) {
      b.where("nat_src = " + b.parameter(endpointValue(*query.nat_source_address, *query.nat_source_port)));
    } else {
      const auto low = b.parameter(endpointValue(*query.nat_source_address, 0));
      const auto high = b.parameter(endpointValue(*query.nat_source_address, 0xFFFF));
      b.where("nat_src BETWEEN " + low + " AND " + high);
    }
  } else if (query.nat_source_port) {
    b.where(endpointPortTerm(b, "nat_src", *query.nat_source_port));
  }
  if (query.source) {
    // An IPv4 block is an INTEGER range, an IPv6 block a BLOB range; SQLite never orders a value of
    // one type between two of the other, so the families cannot mix.
    const auto low = b.parameter(addressValue(query.source->network()));
    const auto high = b.parameter(addressValue(query.source->last()));
    b.where("orig_src BETWEEN " + low + " AND " + high);
  }
  if (query.destination_address) {
    b.where("orig_dst = " + b.parameter(addressValue(*query.destination_address)));
  }
  if (query.destination_port) {
    b.where("orig_dport = " + b.parameter(std::int64_t{*query.destination_port}));
  }
  if (query.nat_address) {
    if (query.nat_port) {
      const auto endpoint = b.parameter(endpointValue(*query.nat_address, *query.nat_port));
      b.where("(nat_src = " + endpoint + " OR nat_dst = " + endpoint + ")");
    } else {
      const auto low = b.parameter(endpointValue(*query.nat_address, 0));
      const auto high = b.parameter(endpointValue(*query.nat_address, 0xFFFF));
      b.where("(nat_src BETWEEN " + low + " AND " + high + " OR nat_dst BETWEEN " + low + " AND " + high + ")");
    }
  } else if (query.nat_port) {
    b.where("(" + endpointPortTerm(b, "nat_src", *query.nat_port) + " OR " +
            endpointPortTerm(b, "nat_dst", *query.nat_port) + ")");
  }
  if (query.protocol) {
    b.where("protocol = " + b.parameter(std::int64_t{static_cast<std::uint8_t>(*query.protocol)}));
  }
  if (query.to) {
    b.where("start_ns <= " + b.parameter(toUnixNanos(*query.to)));
  }
  if (query.from) {
    // dur_ns is in flows_nat_src, so `who` checks the end in the index entry and reads only the
    // rows that match.
    b.where("(dur_ns IS NULL OR start_ns + dur_ns >= " + b.parameter(toUnixNanos(*query.from)) + ")");
  }

  CompiledQuery compiled;
  compiled.sql = "SELECT id, " + flowColumnList() + "\nFROM flows" + b.whereClause() + "\nORDER BY start_ns, id";
  if (query.limit) {
    constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    compiled.sql += "\nLIMIT " + b.parameter(static_cast<std::int64_t>(std::min(*query.limit, kMax)));
  }
  compiled.parameters = b.takeParameters();
  return compiled;
}

}  // namespace ctaudit::storage
