// SHA-256 and HMAC-SHA256 over OpenSSL EVP: object ids (media_store.h) and SigV4 (sigv4.h).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

struct evp_md_ctx_st;

namespace parley::media {

using Digest = std::array<uint8_t, 32>;

// Incremental SHA-256. Not copyable; digest() may be called at any point and does not end
// the hash, so more bytes can follow.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(std::string_view bytes);
  // Digest of everything passed to update() so far.
  Digest digest() const;
  std::string hex_digest() const;

 private:
  evp_md_ctx_st* ctx_;
};

std::string to_hex(std::string_view bytes);  // lowercase
std::string to_hex(const Digest& digest);
std::string sha256_hex(std::string_view bytes);
Digest hmac_sha256(std::string_view key, std::string_view data);

}  // namespace parley::media
