// castgate's one error convention after start-up (cpp-httplib's Error + to_string, OpenSSH's
// SSH_ERR_*): a function that can fail returns a Result, the value or an error, never an
// out-parameter string, a {bool ok; reason} struct or a sentinel (an empty string, a null key).
// Each library names its failures in an `enum class` with one `to_string()`; Error<Code> pairs
// the code with `detail`, the human-readable text that reaches events, logs and users unchanged.
// Exceptions remain for start-up (configuration, key files: a bad setting exits non-zero with a
// clear message) and for what third-party libraries throw, caught where they are called.
//
// Result is a subset of C++23's std::expected (gcc 12 has none): has_value()/operator bool,
// value(), error(), operator* and ->. Construct a failure with fail(error), as std::unexpected.
#pragma once

#include <cassert>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

namespace castgate {

// A module's error code with the text that goes with it.
template <class Code>
struct Error {
  Code code{};
  std::string detail;  // what an event, a log line or the user is told; may be empty

  friend bool operator==(const Error&, const Error&) = default;
};

// The failure a Result is built from (std::unexpected).
template <class E>
struct Failure {
  E error;
};

template <class E>
Failure<std::decay_t<E>> fail(E&& error) {
  return {std::forward<E>(error)};
}
template <class Code>
Failure<Error<Code>> fail(Code code, std::string detail) {
  return {Error<Code>{code, std::move(detail)}};
}

// value() on a Result that holds an error: a programming error, like std::optional's value().
class BadResultAccess : public std::logic_error {
 public:
  BadResultAccess() : std::logic_error("Result::value() on an error") {}
};

template <class T, class E>
class [[nodiscard]] Result {
  static_assert(!std::is_same_v<T, E>, "a Result's value and error types must differ");

 public:
  using value_type = T;
  using error_type = E;

  template <class U = T, class = std::enable_if_t<!std::is_same_v<std::decay_t<U>, Result> &&
                                                  std::is_constructible_v<T, U&&>>>
  Result(U&& value) : v_(std::in_place_index<0>, std::forward<U>(value)) {}
  template <class G>
  Result(Failure<G> failure) : v_(std::in_place_index<1>, std::move(failure.error)) {}

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { return checked(), std::get<0>(v_); }
  const T& value() const& { return checked(), std::get<0>(v_); }
  T&& value() && { return checked(), std::get<0>(std::move(v_)); }

  E& error() & { return assert(!has_value()), std::get<1>(v_); }
  const E& error() const& { return assert(!has_value()), std::get<1>(v_); }
  E&& error() && { return assert(!has_value()), std::get<1>(std::move(v_)); }

  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void checked() const {
    if (!has_value()) throw BadResultAccess();
  }
  std::variant<T, E> v_;
};

// Success without a value, or the error.
template <class E>
class [[nodiscard]] Result<void, E> {
 public:
  using value_type = void;
  using error_type = E;

  Result() = default;
  template <class G>
  Result(Failure<G> failure) : error_(std::move(failure.error)), failed_(true) {}

  bool has_value() const { return !failed_; }
  explicit operator bool() const { return has_value(); }
  void value() const {
    if (failed_) throw BadResultAccess();
  }

  E& error() & { return assert(failed_), error_; }
  const E& error() const& { return assert(failed_), error_; }
  E&& error() && { return assert(failed_), std::move(error_); }

 private:
  E error_{};
  bool failed_ = false;
};

}  // namespace castgate
