#include "auth/jwt_verifier.h"

#include <fmt/format.h>
#include <jwt/jwt.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "common/ids.h"

namespace parley::auth {

bool valid_jwt_device(std::string_view device) {
  if (device.empty() || device.size() > 64) return false;
  return std::all_of(device.begin(), device.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == ':' || c == '@' || c == '-';
  });
}

Result<JwtVerifier> JwtVerifier::create(const std::string& hs256_secret,
                                        const std::string& rs256_key_file) {
  JwtVerifier v;
  if (!hs256_secret.empty() && !rs256_key_file.empty())
    return Error{Errc::bad_request,
                 "configure either auth.jwt_hs256_secret or auth.jwt_rs256_public_key_file"};
  if (!hs256_secret.empty()) {
    v.algorithm_ = "HS256";
    v.key_ = hs256_secret;
  } else if (!rs256_key_file.empty()) {
    std::ifstream in(rs256_key_file);
    if (!in)
      return Error{Errc::not_found, fmt::format("cannot read JWT public key {}", rs256_key_file)};
    std::stringstream ss;
    ss << in.rdbuf();
    v.algorithm_ = "RS256";
    v.key_ = ss.str();
  }
  return v;
}

Result<JwtClaims> JwtVerifier::verify(std::string_view token) const {
  if (!enabled()) return Error{Errc::unauthorized, "invalid token"};
  std::error_code ec;
  jwt::jwt_object obj;
  try {
    obj = jwt::decode(jwt::string_view(token.data(), token.size()),
                      jwt::params::algorithms({algorithm_}), ec, jwt::params::secret(key_),
                      jwt::params::verify(true));
  } catch (const std::exception& e) {  // malformed JSON inside the token
    return Error{Errc::unauthorized, "invalid token"};
  }
  if (ec == jwt::VerificationErrc::TokenExpired) return Error{Errc::token_expired, "token expired"};
  if (ec) return Error{Errc::unauthorized, fmt::format("invalid token: {}", ec.message())};
  const auto& payload = obj.payload();
  if (!payload.has_claim("exp")) return Error{Errc::unauthorized, "invalid token: exp is required"};
  // nlohmann asserts (aborts) on a missing key: check presence before every read.
  if (!payload.has_claim("sub")) return Error{Errc::unauthorized, "invalid token: sub is required"};
  JwtClaims claims;
  try {
    claims.user = payload.get_claim_value<std::string>("sub");
    claims.device =
        payload.has_claim("device") ? payload.get_claim_value<std::string>("device") : "jwt";
  } catch (const std::exception&) {
    return Error{Errc::unauthorized, "invalid token: sub and device must be strings"};
  }
  if (!valid_user_id(claims.user))
    return Error{Errc::unauthorized, "invalid token: sub is not a valid user id"};
  if (!valid_jwt_device(claims.device))
    return Error{Errc::unauthorized,
                 "invalid token: device must be 1-64 characters of A-Z a-z 0-9 . _ : @ -"};
  return claims;
}

}  // namespace parley::auth
