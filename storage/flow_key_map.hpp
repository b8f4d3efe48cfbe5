// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <functional>
#include <memory_resource>
#include <utility>

#include <absl/container/node_hash_map.h>

#include "flow/flow_record.hpp"

namespace ctaudit::storage {

// A map from a flow's key to what the pipeline keeps for it while it is open: the daemon's flow
// table, the SQLite sink's open rows, a batch's fold. Each event looks up one of these at random,
// since a gateway's flows end in the kernel's hash order, not in the order they began; so a lookup
// costs its cache misses, and the map is chosen for how few it takes.
//  - absl::node_hash_map (Abseil, libabsl-dev) finds a key through a group of one-byte hash tags
//    and a slot that points at the node: about three lines of memory. std::unordered_map walks
//    from a bucket to the node before the first one, to that node and to the next one (to see
//    where the bucket ends): four or five. The daemon spent 2-16 % less CPU, the most at low rates
//    and with flows ending out of start order (bench/cpu_ab.sh, docs/benchmarks.md "Three hash
//    tables keyed by flow").
//  - Nodes rather than a flat table: absl::flat_hash_map, which holds the entries in the slot
//    array itself, saved no more in the same runs, and its array of 130-160-byte slots, up to
//    half of them empty after the table grows, would take up to twice the memory per open flow.
//  - Nodes from a pool of the map's own (std::pmr::unsynchronized_pool_resource): a flow that ends
//    gives back the node a new one takes, so the steady state allocates nothing from malloc
//    (issue #4: no per-event heap allocation between decoder and sinks). The pool keeps what it
//    took at the peak until the map is destroyed.
template <class Value>
using FlowKeyMap = absl::node_hash_map<FlowKey, Value, FlowKeyHash, std::equal_to<FlowKey>,
                                       std::pmr::polymorphic_allocator<std::pair<const FlowKey, Value>>>;

}  // namespace ctaudit::storage
