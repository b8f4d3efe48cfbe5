// SPDX-License-Identifier: GPL-2.0-or-later
#include "daemon/event_mask.hpp"

namespace ctaudit::daemon {

Result<EventMask> EventMask::parse(std::string_view text) {
  EventMask mask{false, false, false};
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view item = text.substr(pos, comma - pos);
    if (item == "new") {
      mask.new_events = true;
    } else if (item == "update") {
      mask.update_events = true;
    } else if (item == "destroy") {
      mask.destroy_events = true;
    } else {
      return fail(Errc::Usage, "unknown event '" + std::string(item) + "'; the events are new, update and destroy");
    }
    pos = comma + 1;
  }
  return mask;
}

std::uint32_t EventMask::groups() const noexcept {
  return (new_events ? 1U : 0U) | (update_events ? 2U : 0U) | (destroy_events ? 4U : 0U);
}

std::string EventMask::toString() const {
  std::string out;
  const auto add = [&out](bool on, const char* name) {
    if (on) {
      out += out.empty() ? "" : ",";
      out += name;
    }
  };
  add(new_events, "new");
  add(update_events, "update");
  add(destroy_events, "destroy");
  return out;
}

}  // namespace ctaudit::daemon
