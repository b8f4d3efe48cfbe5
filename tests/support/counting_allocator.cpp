// SPDX-License-Identifier: GPL-2.0-or-later
// A counting replacement of the global allocation functions. Being in the same object file as
// allocationCount(), it is linked into exactly the programs that call allocationCount(): the unit
// tests and bench/json_mapping_bench.
#include "tests/support/counting_allocator.hpp"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>

namespace {
// Every operator new of the program; relaxed: a reader wants a count between calls on its own
// thread, not an order with other threads.
std::atomic<std::uint64_t> g_allocations{0};  // NOLINT(cppcoreguidelines-avoid-non-const-global-variables): the hook
}  // namespace

// The replaceable allocation functions ([new.delete]), every form of them, so that all memory from
// operator new in this binary is malloc'd here and freed here (a sanitizer runtime supplies its own
// forms; replacing only some would pair its new with our delete). GCC sees free() of memory "from
// operator new" inside the replacement itself and warns; here that pairing is the point.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
namespace {
void* countedAlloc(std::size_t size) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(size == 0 ? 1 : size);  // NOLINT(cppcoreguidelines-no-malloc): this is the allocator
}
void* countedAlignedAlloc(std::size_t size, std::align_val_t align) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  const auto alignment = std::max(static_cast<std::size_t>(align), sizeof(void*));
  return std::aligned_alloc(alignment, (std::max<std::size_t>(size, 1) + alignment - 1) / alignment * alignment);
}
void* orThrow(void* p) {
  if (p == nullptr) {
    throw std::bad_alloc{};
  }
  return p;
}
}  // namespace

void* operator new(std::size_t size) { return orThrow(countedAlloc(size)); }
void* operator new[](std::size_t size) { return orThrow(countedAlloc(size)); }
void* operator new(std::size_t size, const std::nothrow_t& /*tag*/) noexcept { return countedAlloc(size); }
void* operator new[](std::size_t size, const std::nothrow_t& /*tag*/) noexcept { return countedAlloc(size); }
void* operator new(std::size_t size, std::align_val_t align) { return orThrow(countedAlignedAlloc(size, align)); }
void* operator new[](std::size_t size, std::align_val_t align) { return orThrow(countedAlignedAlloc(size, align)); }
void* operator new(std::size_t size, std::align_val_t align, const std::nothrow_t& /*tag*/) noexcept {
  return countedAlignedAlloc(size, align);
}
void* operator new[](std::size_t size, std::align_val_t align, const std::nothrow_t& /*tag*/) noexcept {
  return countedAlignedAlloc(size, align);
}
// NOLINTBEGIN(cppcoreguidelines-no-malloc): the matching frees
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*size*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*size*/) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t& /*tag*/) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t& /*tag*/) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t /*align*/) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t /*align*/) noexcept { std::free(p); }
void operator delete(void* p, std::size_t /*size*/, std::align_val_t /*align*/) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t /*size*/, std::align_val_t /*align*/) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t /*align*/, const std::nothrow_t& /*tag*/) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t /*align*/, const std::nothrow_t& /*tag*/) noexcept { std::free(p); }
// NOLINTEND(cppcoreguidelines-no-malloc)
#pragma GCC diagnostic pop

namespace ctaudit::testing {

std::uint64_t allocationCount() noexcept { return g_allocations.load(std::memory_order_relaxed); }

}  // namespace ctaudit::testing
