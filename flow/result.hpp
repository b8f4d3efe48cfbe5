// SPDX-License-Identifier: GPL-2.0-or-later
#pragma once

#include <cstdint>
#include <string>
#include <system_error>
#include <utility>
#include <variant>

namespace ctaudit {

// What kind of thing failed; the detail says what and what to do next.
enum class Errc : std::uint8_t { Io, Netlink, Decode, Storage, Config, Usage, NotFound };

struct Error {
  Errc code{Errc::Io};
  int sys_errno{0};
  std::string detail;
};

// Wraps an Error so that Result<T> can be built from it unambiguously (std::unexpected's role).
struct Unexpected {
  Error error;
};

inline Unexpected fail(Errc code, std::string detail, int sys_errno = 0) {
  return Unexpected{Error{code, sys_errno, std::move(detail)}};
}

// The system's text for errno `error` ("No space left on device"), for a detail: strerror without
// its shared buffer, so safe on the daemon's other threads (the JSON-lines archiver).
inline std::string errnoText(int error) { return std::system_category().message(error); }

// A value or an Error: the subset of C++23 std::expected that the project uses. Results are the
// error channel on every hot path; exceptions are only thrown during start-up.
template <class T>
class [[nodiscard]] Result {
public:
  Result(T value) : state_(std::in_place_index<0>, std::move(value)) {}  // NOLINT(google-explicit-constructor): mirrors std::expected
  Result(Unexpected error) : state_(std::in_place_index<1>, std::move(error.error)) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const noexcept { return state_.index() == 0; }
  explicit operator bool() const noexcept { return has_value(); }

  // Preconditions: has_value() for value(), !has_value() for error().
  [[nodiscard]] T& value() & { return std::get<0>(state_); }
  [[nodiscard]] const T& value() const& { return std::get<0>(state_); }
  [[nodiscard]] T&& value() && { return std::get<0>(std::move(state_)); }
  [[nodiscard]] const Error& error() const { return std::get<1>(state_); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

private:
  std::variant<T, Error> state_;
};

template <>
class [[nodiscard]] Result<void> {
public:
  Result() = default;
  Result(Unexpected error) : error_(std::move(error.error)), ok_(false) {}  // NOLINT(google-explicit-constructor)

  [[nodiscard]] bool has_value() const noexcept { return ok_; }
  explicit operator bool() const noexcept { return ok_; }
  [[nodiscard]] const Error& error() const { return error_; }

private:
  Error error_{};
  bool ok_{true};
};

}  // namespace ctaudit
