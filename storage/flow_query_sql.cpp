// SPDX-License-Identifier: GPL-2.0-or-later
#include "storage/flow_query_sql.hpp"

#include <algorithm>
#include <limits>
#include <utility>

#include "storage/flow_row.hpp"
#include "storage/spans.hpp"

namespace ctaudit::storage {
namespace {

// Numbers the parameters of a statement in the order its terms are built.
class QueryBuilder {
public:
  // Adds `value` as the next parameter and returns its placeholder, "?N".
  std::string parameter(CompiledQuery::Parameter value) {
    parameters_.push_back(value);
    return "?" + std::to_string(parameters_.size());
  }
  [[nodiscard]] std::vector<CompiledQuery::Parameter> takeParameters() { return std::move(parameters_); }

private:
  std::vector<CompiledQuery::Parameter> parameters_;
};

// The port of an endpoint column (flow_row.hpp): the low 16 bits of an IPv4 INTEGER, the last two
// bytes of an IPv6 BLOB.
std::string endpointPortTerm(QueryBuilder& b, std::string_view column, std::uint16_t port) {
  Blob port_bytes;
  port_bytes.appendPort(port);
  const std::string c(column);
  // One parameter at a time: the order of the operands of + is unspecified, and the numbers are
  // handed out in call order.
  const std::string as_integer = b.parameter(std::int64_t{port});
  const std::string as_blob = b.parameter(port_bytes);
  return "(typeof(" + c + ") = 'integer' AND (" + c + " & 65535) = " + as_integer + " OR typeof(" + c +
         ") = 'blob' AND substr(" + c + ", 17, 2) = " + as_blob + ")";
}

// The flows whose tuples have ports: an ICMP flow keeps its echo id where the others keep the
// destination port, and a protocol without ports keeps 0 there, so a destination port alone
// matched pings whose id was 443 and, for port 0, every GRE flow. The numbers are literals of the
// enum (hasPorts()), not input.
std::string hasPortsTerm() {
  std::string list;
  for (int number = 0; number <= 255; ++number) {
    if (hasPorts(static_cast<Protocol>(number))) {
      list += (list.empty() ? "" : ", ") + std::to_string(number);
    }
  }
  return "(packed & 255) IN (" + list + ")";
}

// The index key a query narrows by, if any: it decides which indexes each arm of the statement
// names (see compileFlowQuery).
struct KeyTerm {
  enum class Kind : std::uint8_t { None, NatSource, Forwarded, Source };
  std::string sql;  // "" for Kind::None
  Kind kind{Kind::None};
};

// The translated source: one endpoint, or every port of the address (flows_nat_src's key).
std::string natSourceTerm(QueryBuilder& b, const IpAddress& address, std::optional<std::uint16_t> port) {
  if (port) {
    return "nat_src = " + b.parameter(endpointValue(address, *port));
  }
  const auto low = b.parameter(endpointValue(address, 0));
  return "nat_src BETWEEN " + low + " AND " + b.parameter(endpointValue(address, 0xFFFF));
}

// The public side of a port forward: the original destination of a DNAT'd flow, one endpoint or
// every port of the address (flows_dnat's key). `nat_dst IS NOT NULL` is the condition of the
// flows_dnat family, spelt as it is there so that SQLite may use their entries.
std::string forwardedTerm(QueryBuilder& b, const IpAddress& address, std::optional<std::uint16_t> port) {
  if (port) {
    return "nat_dst IS NOT NULL AND orig_dst = " + b.parameter(endpointValue(address, *port));
  }
  const auto low = b.parameter(endpointValue(address, 0));
  return "nat_dst IS NOT NULL AND orig_dst BETWEEN " + low + " AND " + b.parameter(endpointValue(address, 0xFFFF));
}

// The original source inside a block (flows_orig_src's key). An IPv4 block is an INTEGER range,
// an IPv6 block a BLOB range; SQLite never orders a value of one type between two of the other, so
// the families cannot mix. One IPv4 address is an equality, which lets SQLite take the rowid range
// from flows_orig_src too; an IPv6 key holds the port (kOrigSrcKeySql), so one IPv6 address is a
// range as well.
std::string sourceTerm(QueryBuilder& b, const IpNetwork& source) {
  const std::string src(kOrigSrcKeySql);
  const auto keys = sourceKeyRange(source.network(), source.last());
  if (keys.low == keys.high) {
    return src + " = " + b.parameter(keys.low);
  }
  const auto low = b.parameter(keys.low);
  return src + " BETWEEN " + low + " AND " + b.parameter(keys.high);
}

std::string idRangeTerm(QueryBuilder& b, const IdRange& range) {
  const std::string first = b.parameter(range.first);
  return "id BETWEEN " + first + " AND " + b.parameter(range.last);
}

// The buckets from `first` to `last` (SQL expressions) as the IN list that flows_nat_src and
// flows_orig_src need: their entries are keyed by the bucket first (flow_row.hpp,
// kIndexBucketShift), and SQLite searches an IN list on an index's first column once per value,
// then narrows by the key and the rowid in each bucket. A range of buckets instead would read every
// entry of every bucket in it.
std::string bucketsTerm(const std::string& first, const std::string& last) {
  return std::string(kIndexBucketSql) + " IN (WITH RECURSIVE bucket(b) AS (SELECT " + first +
         " UNION ALL SELECT b + 1 FROM bucket WHERE b < " + last + ") SELECT b FROM bucket)";
}

// Every bucket the file has: for a lookup without a lower time bound.
std::string allBucketsTerm() {
  return bucketsTerm("0", "(SELECT max(id) FROM flows) >> " + std::to_string(kIndexBucketShift));
}

std::string bucketsTerm(QueryBuilder& b, const IdRange& range) {
  const std::string first = b.parameter(range.first >> kIndexBucketShift);
  return bucketsTerm(first, b.parameter(range.last >> kIndexBucketShift));
}

}  // namespace

std::optional<StartWindow> recentStartWindow(const FlowQuery& query) {
  if (!query.from) {
    return std::nullopt;
  }
  return StartWindow{saturatingSub(startMillis(*query.from), kLongFlowMs),
                     query.to ? startMillis(*query.to) : std::numeric_limits<std::int64_t>::max()};
}

CompiledQuery compileFlowQuery(const FlowQuery& query, std::span<const IdRange> started_in_window) {
  QueryBuilder b;
  KeyTerm key;
  // Terms every arm has besides the key; built once, the parameters shared by number.
  std::vector<std::string> filters;

  if (query.nat_source_address) {
    key.sql = natSourceTerm(b, *query.nat_source_address, query.nat_source_port);
    key.kind = KeyTerm::Kind::NatSource;
  } else if (query.nat_source_port) {
    filters.push_back(endpointPortTerm(b, "nat_src", *query.nat_source_port));
  }
  if (query.forwarded_address) {
    std::string term = forwardedTerm(b, *query.forwarded_address, query.forwarded_port);
    if (key.kind == KeyTerm::Kind::None) {
      key.sql = std::move(term);
      key.kind = KeyTerm::Kind::Forwarded;
    } else {
      filters.push_back(std::move(term));
    }
  }
  if (query.source) {
    std::string term = sourceTerm(b, *query.source);
    if (key.kind == KeyTerm::Kind::None) {
      key.sql = std::move(term);
      key.kind = KeyTerm::Kind::Source;
    } else {
      filters.push_back(std::move(term));
    }
  }
  if (query.destination_port) {
    filters.push_back(hasPortsTerm());
  }
  const std::string destination = query.destination_reached ? "coalesce(nat_dst, orig_dst)" : "orig_dst";
  if (query.destination_address) {
    if (query.destination_port) {
      filters.push_back(destination + " = " +
                        b.parameter(endpointValue(*query.destination_address, *query.destination_port)));
    } else {
      const auto low = b.parameter(endpointValue(*query.destination_address, 0));
      const auto high = b.parameter(endpointValue(*query.destination_address, 0xFFFF));
      filters.push_back(destination + " BETWEEN " + low + " AND " + high);
    }
  } else if (query.destination_port) {
    filters.push_back(endpointPortTerm(b, destination, *query.destination_port));
  }
  // As for a destination port, but --proto asks for an ICMP translated id (or port 0 of a GRE
  // flow): a NAT port from a report is a port, and a ping whose id had its number is another flow.
  if (query.nat_port && !query.protocol) {
    filters.push_back(hasPortsTerm());
  }
  if (query.nat_address) {
    if (query.nat_port) {
      const auto endpoint = b.parameter(endpointValue(*query.nat_address, *query.nat_port));
      filters.push_back("(nat_src = " + endpoint + " OR nat_dst = " + endpoint + ")");
    } else {
      const auto low = b.parameter(endpointValue(*query.nat_address, 0));
      const auto high = b.parameter(endpointValue(*query.nat_address, 0xFFFF));
      filters.push_back("(nat_src BETWEEN " + low + " AND " + high + " OR nat_dst BETWEEN " + low + " AND " + high +
                        ")");
    }
  } else if (query.nat_port) {
    filters.push_back("(" + endpointPortTerm(b, "nat_src", *query.nat_port) + " OR " +
                      endpointPortTerm(b, "nat_dst", *query.nat_port) + ")");
  }
  if (query.protocol) {
    filters.push_back("(packed & 255) = " +
                      b.parameter(std::int64_t{static_cast<std::uint8_t>(*query.protocol)}));
  }
  if (query.zone) {
    filters.push_back("(zone_mark >> " + std::to_string(kZoneShift) + ") = " + b.parameter(std::int64_t{*query.zone}));
  }
  // Lifetime overlap in whole milliseconds, as the row stores it (start rounded down, end up), so
  // a flow alive at any instant of [from, to] matches. Each bound is rounded the way its column
  // is: a stored end of .000 says the flow ended at or before .000, so it cannot have been alive
  // at .000999 (from rounded up to .001), while a stored start of .000 may be a start at .000999
  // (to rounded down).
  if (query.to) {
    filters.push_back("start_ms <= " + b.parameter(startMillis(*query.to)));
  }
  std::optional<std::int64_t> from_ms;
  if (query.from) {
    from_ms = endMillis(*query.from);
    filters.push_back("(dur_ms IS NULL OR start_ms + dur_ms >= " + b.parameter(*from_ms) + ")");
  }

  const std::string select = "SELECT id, " + flowColumnList() + " FROM flows";
  const auto where = [&](std::vector<std::string> terms) {
    if (!key.sql.empty()) {
      terms.insert(terms.begin(), key.sql);
    }
    terms.insert(terms.end(), filters.begin(), filters.end());
    std::string clause;
    for (const std::string& term : terms) {
      clause += (clause.empty() ? "\nWHERE " : "\n  AND ") + term;
    }
    return clause;
  };

  const bool keyed = key.kind != KeyTerm::Kind::None;
  CompiledQuery compiled;
  if (!from_ms) {
    // No lower bound on the lifetime: the key's index in every bucket there is, or the table, in
    // one pass.
    compiled.sql = select + where(keyed ? std::vector<std::string>{allBucketsTerm()} : std::vector<std::string>{});
  } else {
    // Three arms, disjoint, so UNION ALL needs no temporary table to remove duplicates
    // (spans.hpp explains the split):
    //  1. the rows that started within kLongFlowMs before the window or in it, by rowid ranges
    //     from `spans`: one arm per range, through the key's index (its entries end in the rowid)
    //     or the table's rowid order;
    //  2. open rows outside those ranges, through flows_open_*. An open row is in those once it
    //     has been open a while, and every row that may be open without being in them is in the
    //     ranges of arm 1 (the caller adds them: meta.open_index_from);
    //  3. rows longer than kLongFlowMs that started before arm 1's window, through flows_long_*,
    //     whose entries hold their times.
    // INDEXED BY names the partial index each arm is written for: SQLite fails the statement
    // rather than quietly scanning the table if the terms stop matching the index.
    std::string not_in_ranges;
    std::vector<std::string> arm_sql;
    for (const IdRange& range : started_in_window) {
      const std::string in_range = idRangeTerm(b, range);
      arm_sql.push_back(select + where(keyed ? std::vector<std::string>{bucketsTerm(b, range), in_range}
                                             : std::vector<std::string>{in_range}));
      not_in_ranges += (not_in_ranges.empty() ? "NOT (" : " OR ") + in_range;
    }
    if (!not_in_ranges.empty()) {
      not_in_ranges += ")";
    }
    const auto outside = [&](std::vector<std::string> terms) {
      if (!not_in_ranges.empty()) {
        terms.push_back(not_in_ranges);
      }
      return terms;
    };
    const auto [open_index, long_index] = [&]() -> std::pair<std::string_view, std::string_view> {
      switch (key.kind) {
        case KeyTerm::Kind::NatSource:
          return {flow_index::kOpenNat, flow_index::kLongNat};
        case KeyTerm::Kind::Forwarded:
          return {flow_index::kOpenDnat, flow_index::kLongDnat};
        case KeyTerm::Kind::Source:
          return {flow_index::kOpenSrc, flow_index::kLongSrc};
        case KeyTerm::Kind::None:
          break;
      }
      // No key: the two that hold every open and every long row (flows_open_nat has no condition on
      // nat_src), read whole.
      return {flow_index::kOpenNat, flow_index::kLongSrc};
    }();
    const std::int64_t long_before = saturatingSub(*from_ms, kLongFlowMs);
    arm_sql.push_back(select + " INDEXED BY " + std::string(open_index) +
                      where(outside({"dur_ms IS NULL", std::string(kInOpenIndexSql)})));
    arm_sql.push_back(select + " INDEXED BY " + std::string(long_index) +
                      where(outside({"dur_ms > " + std::to_string(kLongFlowMs),
                                     "start_ms < " + b.parameter(long_before)})));
    for (const std::string& arm : arm_sql) {
      compiled.sql += (compiled.sql.empty() ? "" : "\nUNION ALL\n") + arm;
    }
  }
  compiled.sql += "\nORDER BY start_ms, id";
  if (query.limit) {
    constexpr auto kMax = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    compiled.sql += "\nLIMIT " + b.parameter(static_cast<std::int64_t>(std::min(*query.limit, kMax)));
  }
  compiled.parameters = b.takeParameters();
  return compiled;
}

std::optional<CompiledQuery> compileKeyIdQuery(const FlowQuery& query, std::span<const IdRange> started_in_window) {
  QueryBuilder b;
  std::string key;
  if ((query.nat_source_address && query.source) || query.forwarded_address) {
    // compileFlowQuery's first arm names no index, and SQLite may take either key's: ids from the
    // other would be rows it never reads. A port forward's rows are few: nothing to read ahead.
    return std::nullopt;
  }
  if (query.nat_source_address) {
    key = natSourceTerm(b, *query.nat_source_address, query.nat_source_port);
  } else if (query.source) {
    key = sourceTerm(b, *query.source);
  } else {
    return std::nullopt;
  }
  // Only id and the key's index columns: SQLite answers from the index alone, without a row.
  const std::string select = "SELECT id FROM flows\nWHERE " + key + "\n  AND ";
  CompiledQuery compiled;
  if (!query.from) {
    compiled.sql = select + allBucketsTerm();
  } else {
    for (const IdRange& range : started_in_window) {
      const std::string buckets = bucketsTerm(b, range);
      compiled.sql += (compiled.sql.empty() ? "" : "\nUNION ALL\n") + select + buckets + "\n  AND " +
                      idRangeTerm(b, range);
    }
    if (compiled.sql.empty()) {
      return std::nullopt;
    }
  }
  compiled.parameters = b.takeParameters();
  return compiled;
}

}  // namespace ctaudit::storage
