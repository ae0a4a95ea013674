#include "media_service/url_signer.h"

#include <fmt/format.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <charconv>

namespace parley::media_service {

UrlSigner::UrlSigner(std::string key) : key_(std::move(key)) {
  if (key_.empty()) {
    key_.resize(32);
    RAND_bytes(reinterpret_cast<unsigned char*>(key_.data()), static_cast<int>(key_.size()));
  }
}

std::string UrlSigner::signature(std::string_view id, int64_t exp) const {
  std::string msg = fmt::format("{}\n{}", id, exp);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  std::string hex;
  hex.reserve(len * 2);
  for (unsigned i = 0; i < len; ++i) hex += fmt::format("{:02x}", mac[i]);
  return hex;
}

std::string UrlSigner::url(std::string_view id, int64_t exp) const {
  return fmt::format("/v1/media/{}?exp={}&sig={}", id, exp, signature(id, exp));
}

Status UrlSigner::verify(std::string_view id, std::string_view exp, std::string_view sig,
                         int64_t now) const {
  int64_t when = 0;
  auto [end, ec] = std::from_chars(exp.data(), exp.data() + exp.size(), when);
  if (ec != std::errc{} || end != exp.data() + exp.size() || exp.empty())
    return Error{Errc::forbidden, "malformed signed URL"};
  std::string want = signature(id, when);
  if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0)
    return Error{Errc::forbidden, "bad signature"};
  if (when < now) return Error{Errc::forbidden, "signed URL expired"};
  return Unit{};
}

}  // namespace parley::media_service
