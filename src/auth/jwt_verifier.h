// Accepts JWTs from apps that own identity: HS256 with a shared secret or RS256 with a
// public key. `sub` is the Parley user id, `exp` is required and checked.
#pragma once

#include <string>
#include <string_view>

#include "common/errc.h"

namespace parley::auth {

struct JwtClaims {
  std::string user;
  std::string device;  // the optional "device" claim, default "jwt"
};

// A JWT's device claim: 1-64 characters of A-Z a-z 0-9 . _ : @ - (docs/PROTOCOL.md §3.2).
bool valid_jwt_device(std::string_view device);

class JwtVerifier {
 public:
  // Empty secret and key path: JWTs are refused. Errors: unreadable key file.
  static Result<JwtVerifier> create(const std::string& hs256_secret,
                                    const std::string& rs256_key_file);
  bool enabled() const { return !key_.empty(); }
  // unauthorized (bad signature, algorithm, claims) or token_expired.
  Result<JwtClaims> verify(std::string_view token) const;

 private:
  std::string algorithm_;
  std::string key_;
};

}  // namespace parley::auth
