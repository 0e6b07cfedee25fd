// result<T>: the value of an operation that can fail in an expected way.
//
// Policy (docs/ARCHITECTURE.md, "Errors"): expected failures (bad input,
// outages, disk errors) are returned as result<T> holding an `error`; broken
// invariants are asserts (assert.h). No exceptions on the data path.
//
//   result<int> parse_port(std::string_view s);
//   auto port = parse_port(text);
//   if (!port) return port.error();          // propagate
//   use(*port);
#pragma once

#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "base/assert.h"
#include "base/errc.h"

namespace outrider {

// An expected failure: a catalog code and a message for humans. The message
// names the offending input ("queue 'orders' not found"), never secrets.
struct error {
  errc code = errc::internal;
  std::string message;

  error() = default;
  error(errc c, std::string m) : code(c), message(std::move(m)) {}
  explicit error(errc c) : code(c), message(describe(c).meaning) {}

  const error_info& info() const noexcept { return describe(code); }
};

template <class T>
class [[nodiscard]] result {
  static_assert(!std::is_reference_v<T>, "result<T&> is not supported");
  static_assert(!std::is_same_v<std::remove_cv_t<T>, outrider::error>,
                "result<error> is ambiguous");

 public:
  using value_type = T;

  template <class U = T>
  requires std::is_constructible_v<T, U&&> &&
      (!std::is_same_v<std::remove_cvref_t<U>, outrider::error>)&&(
          !std::is_same_v<std::remove_cvref_t<U>, result>)result(U&& value)
      : storage_(std::in_place_index<0>, std::forward<U>(value)) {}              // NOLINT: implicit
  result(outrider::error e) : storage_(std::in_place_index<1>, std::move(e)) {}  // NOLINT: implicit

  bool ok() const noexcept { return storage_.index() == 0; }
  explicit operator bool() const noexcept { return ok(); }

  // REQUIRES: ok().
  T& value() & {
    OUTRIDER_ASSERT(ok(), "result::value() on an error");
    return *std::get_if<0>(&storage_);
  }
  const T& value() const& {
    OUTRIDER_ASSERT(ok(), "result::value() on an error");
    return *std::get_if<0>(&storage_);
  }
  T&& value() && {
    OUTRIDER_ASSERT(ok(), "result::value() on an error");
    return std::move(*std::get_if<0>(&storage_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  // REQUIRES: !ok().
  const outrider::error& error() const& {
    OUTRIDER_ASSERT(!ok(), "result::error() on a value");
    return *std::get_if<1>(&storage_);
  }
  outrider::error&& error() && {
    OUTRIDER_ASSERT(!ok(), "result::error() on a value");
    return std::move(*std::get_if<1>(&storage_));
  }

  template <class U>
  T value_or(U&& fallback) const& {
    return ok() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, outrider::error> storage_;
};

// result<void>: success or an error.
template <>
class [[nodiscard]] result<void> {
 public:
  result() = default;
  result(outrider::error e) : error_(std::move(e)), failed_(true) {}  // NOLINT: implicit

  bool ok() const noexcept { return !failed_; }
  explicit operator bool() const noexcept { return ok(); }

  const outrider::error& error() const& {
    OUTRIDER_ASSERT(failed_, "result::error() on success");
    return error_;
  }
  outrider::error&& error() && {
    OUTRIDER_ASSERT(failed_, "result::error() on success");
    return std::move(error_);
  }

 private:
  outrider::error error_;
  bool failed_ = false;
};

using status = result<void>;

inline status ok_status() {
  return {};
}

}  // namespace outrider

// Propagates the error of a result-returning expression; otherwise continues.
#define OUTRIDER_TRY(expr)                                 \
  do {                                                     \
    if (auto outrider_try_r_ = (expr); !outrider_try_r_) { \
      return std::move(outrider_try_r_).error();           \
    }                                                      \
  } while (0)
