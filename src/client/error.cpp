#include "parley/error.h"

#include <utility>

namespace parley {

Error::Error(std::string code, std::string message, bool retryable, int http_status)
    : std::runtime_error(code + ": " + message),
      code_(std::move(code)),
      message_(std::move(message)),
      retryable_(retryable),
      http_status_(http_status) {}

}  // namespace parley
