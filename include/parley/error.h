// parley::Error: the one exception type libparley throws and stores in futures.
#pragma once

#include <stdexcept>
#include <string>

namespace parley {

// Error codes produced by the client itself (the server's codes are in PROTOCOL.md §4 and
// are passed through unchanged).
namespace errc {
inline constexpr char kBadUrl[] = "bad_url";                        // URL cannot be parsed
inline constexpr char kUnsupportedScheme[] = "unsupported_scheme";  // wss://, https://, ...
inline constexpr char kConnectionFailed[] = "connection_failed";    // resolve/connect/handshake
inline constexpr char kTimeout[] = "timeout";                       // no answer in time
inline constexpr char kBadResponse[] = "bad_response";              // server answer not understood
inline constexpr char kStopped[] = "stopped";                       // Client::Stop() was called
inline constexpr char kInvalidArgument[] = "invalid_argument";      // caller passed bad input
inline constexpr char kIo[] = "io_error";                           // local file I/O failed
inline constexpr char kFileExists[] = "file_exists";  // download target exists (no overwrite)
}  // namespace errc

// An error with a stable machine-readable `code` (a server code such as "not_found" or one of
// parley::errc) and a human message. what() is "<code>: <message>".
class Error : public std::runtime_error {
 public:
  Error(std::string code, std::string message, bool retryable = false, int http_status = 0);

  const std::string& code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  // True when the same request may succeed later (the server's `retryable` flag).
  bool retryable() const noexcept { return retryable_; }
  // HTTP status of the failed HTTP call; 0 when the error did not come from an HTTP response.
  int http_status() const noexcept { return http_status_; }

 private:
  std::string code_;
  std::string message_;
  bool retryable_;
  int http_status_;
};

}  // namespace parley
