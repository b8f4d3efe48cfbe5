// SPDX-License-Identifier: GPL-2.0-or-later
#include "flow/flow_record.hpp"

namespace ctaudit {

std::size_t FlowKeyHash::operator()(const FlowKey& key) const noexcept {
  // The kernel id is already a siphash of the entry (nf_ct_get_id); mixing in the ports separates
  // the rare id collision between live entries cheaply. Equality still compares the whole key.
  std::size_t h = key.ct_id;
  h = h * 0x9E3779B97F4A7C15ULL + key.original.src_port;
  h = h * 0x9E3779B97F4A7C15ULL + key.original.dst_port;
  h = h * 0x9E3779B97F4A7C15ULL + key.zone;
  return h;
}

}  // namespace ctaudit
