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

CompiledQuery compileFlowQuery(const FlowQuery& query) {
  QueryBuilder b;
  if (query.nat_source_address) {
    b.where("nat_src_ip = " + b.parameter(*query.nat_source_address));
  }
  if (query.nat_source_port) {
    b.where("nat_src_port = " + b.parameter(std::int64_t{*query.nat_source_port}));
  }
  if (query.source) {
    const auto low = b.parameter(query.source->network());
    const auto high = b.parameter(query.source->last());
    const auto size = b.parameter(static_cast<std::int64_t>(query.source->network().bytes().size()));
    b.where("orig_src BETWEEN " + low + " AND " + high);
    b.where("length(orig_src) = " + size);
  }
  if (query.destination_address) {
    b.where("orig_dst = " + b.parameter(*query.destination_address));
  }
  if (query.destination_port) {
    b.where("orig_dport = " + b.parameter(std::int64_t{*query.destination_port}));
  }
  if (query.nat_address) {
    const auto address = b.parameter(*query.nat_address);
    if (query.nat_port) {
      const auto port = b.parameter(std::int64_t{*query.nat_port});
      b.where("((nat_src_ip = " + address + " AND nat_src_port = " + port + ") OR (nat_dst_ip = " + address +
              " AND nat_dst_port = " + port + "))");
    } else {
      b.where("(nat_src_ip = " + address + " OR nat_dst_ip = " + address + ")");
    }
  } else if (query.nat_port) {
    const auto port = b.parameter(std::int64_t{*query.nat_port});
    b.where("(nat_src_port = " + port + " OR nat_dst_port = " + port + ")");
  }
  if (query.protocol) {
    b.where("protocol = " + b.parameter(std::int64_t{static_cast<std::uint8_t>(*query.protocol)}));
  }
  if (query.to) {
    b.where("start_ns <= " + b.parameter(toUnixNanos(*query.to)));
  }
  if (query.from) {
    b.where("(end_ns IS NULL OR end_ns >= " + b.parameter(toUnixNanos(*query.from)) + ")");
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
