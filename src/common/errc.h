// Error values shared by every component, and their stable wire names (docs/PROTOCOL.md §4).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace parley {

enum class Errc {
  bad_request,
  unknown_type,
  invalid_utf8,
  too_large,
  unauthorized,
  token_expired,
  already_authenticated,
  not_found,
  forbidden,
  conflict,
  rate_limited,
  unavailable,
  internal,
  // HTTP-only codes.
  username_taken,
  invalid_username,
  weak_password,
  invalid_credentials,
  registration_closed,
  method_not_allowed,
  unsupported_type,  // media: a content type that is not allowed (HTTP 415)
  too_many_devices,  // auth.max_devices_per_user live devices already (HTTP 409)
};

// Stable machine name of a code, as sent on the wire.
std::string_view errc_name(Errc code);
// True when the same request may succeed later.
bool errc_retryable(Errc code);

struct Error {
  Errc code;
  std::string message;
};

// A value or an Error: internal errors are values, never exceptions across seams.
template <class T>
class Result {
 public:
  Result(T value) : v_(std::move(value)) {}      // NOLINT: implicit by design
  Result(Error error) : v_(std::move(error)) {}  // NOLINT
  Result(Errc code, std::string message) : v_(Error{code, std::move(message)}) {}

  bool ok() const { return v_.index() == 0; }
  explicit operator bool() const { return ok(); }
  T& value() { return std::get<0>(v_); }
  const T& value() const { return std::get<0>(v_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  const Error& error() const { return std::get<1>(v_); }

 private:
  std::variant<T, Error> v_;
};

struct Unit {};
using Status = Result<Unit>;
inline Status ok_status() { return Unit{}; }

}  // namespace parley
