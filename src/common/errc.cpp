#include "common/errc.h"

namespace parley {

std::string_view errc_name(Errc code) {
  switch (code) {
    case Errc::bad_request:
      return "bad_request";
    case Errc::unknown_type:
      return "unknown_type";
    case Errc::invalid_utf8:
      return "invalid_utf8";
    case Errc::too_large:
      return "too_large";
    case Errc::unauthorized:
      return "unauthorized";
    case Errc::token_expired:
      return "token_expired";
    case Errc::already_authenticated:
      return "already_authenticated";
    case Errc::not_found:
      return "not_found";
    case Errc::forbidden:
      return "forbidden";
    case Errc::conflict:
      return "conflict";
    case Errc::rate_limited:
      return "rate_limited";
    case Errc::unavailable:
      return "unavailable";
    case Errc::internal:
      return "internal";
    case Errc::username_taken:
      return "username_taken";
    case Errc::invalid_username:
      return "invalid_username";
    case Errc::weak_password:
      return "weak_password";
    case Errc::invalid_credentials:
      return "invalid_credentials";
    case Errc::registration_closed:
      return "registration_closed";
    case Errc::method_not_allowed:
      return "method_not_allowed";
    case Errc::unsupported_type:
      return "unsupported_type";
    case Errc::too_many_devices:
      return "too_many_devices";
  }
  return "internal";
}

bool errc_retryable(Errc code) {
  return code == Errc::rate_limited || code == Errc::unavailable || code == Errc::internal;
}

}  // namespace parley
