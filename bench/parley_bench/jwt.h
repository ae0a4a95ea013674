// Mints HS256 JWTs the way parleyd verifies them (docs/PROTOCOL.md §3.2): `sub` is the user
// id (created on first use), `exp` is required, `device` names one of the user's devices.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley::bench {

class JwtMinter {
 public:
  JwtMinter(std::string secret, uint64_t ttl_s) : secret_(std::move(secret)), ttl_s_(ttl_s) {}

  // Empty `device`: no device claim (the server's default device "jwt").
  std::string mint(std::string_view user, std::string_view device) const;

 private:
  std::string secret_;
  uint64_t ttl_s_;
};

std::string base64url(std::string_view bytes);

}  // namespace parley::bench
