// Opaque device tokens: random secrets that the server keeps only as a SHA-256.
#pragma once

#include <string>
#include <string_view>

namespace parley::auth {

// "pt_" + 43 base64url characters (32 random bytes).
std::string new_token();
// Lower-case hex SHA-256 of the token: what the store keeps and looks up.
std::string token_hash(std::string_view token);
// JWTs have three dot-separated parts; opaque tokens have none.
bool looks_like_jwt(std::string_view token);

}  // namespace parley::auth
