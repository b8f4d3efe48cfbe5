// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>

namespace ctaudit::testing {

// How many times operator new (any form) has been called in this program so far. Calling it links
// tests/support/counting_allocator.cpp, which replaces every global allocation function with a
// counting one over malloc/free; a program that never calls it keeps the standard ones. For
// "allocates nothing per event" checks: read it before and after the code under test, on the
// thread that runs it (other threads' allocations count too).
[[nodiscard]] std::uint64_t allocationCount() noexcept;

}  // namespace ctaudit::testing
