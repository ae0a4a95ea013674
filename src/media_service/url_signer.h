// Short-lived download URLs (docs/MEDIA.md, "Signed URLs"): HMAC-SHA256 over "<id>\n<exp>",
// so that a client or a CDN can fetch an object without a session until `exp`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/errc.h"

namespace parley::media_service {

class UrlSigner {
 public:
  // An empty key draws a random one: URLs then die with the process and are not valid on
  // other nodes (set media.url_signing_key for several nodes).
  explicit UrlSigner(std::string key);

  // Lowercase hex HMAC-SHA256 of "<id>\n<exp>".
  std::string signature(std::string_view id, int64_t exp) const;
  // The relative URL: /v1/media/<id>?exp=<exp>&sig=<signature>
  std::string url(std::string_view id, int64_t exp) const;
  // ok, or forbidden (expired, tampered, malformed). `now` in Unix seconds.
  Status verify(std::string_view id, std::string_view exp, std::string_view sig, int64_t now) const;

 private:
  std::string key_;
};

}  // namespace parley::media_service
