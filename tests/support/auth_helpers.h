// Accounts and tokens for tests: register/login over HTTP, HS256 JWTs, authenticated sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "support/ws_client.h"

namespace parley::test {

inline constexpr std::string_view kPassword = "correct horse battery";

struct LoginResult {
  std::string user;
  std::string device_id;
  std::string token;
  std::int64_t pts = 0;  // the device's first cursor (PROTOCOL.md §2, login)
};

// A valid user id, unique within this test process: "<prefix>-<n>" (prefix shortened if
// needed to stay within 32 chars).
std::string unique_username(std::string_view prefix);

// POST /v1/register; adds a test failure unless the answer is 201 {"user":username}.
void register_user(std::uint16_t port, const std::string& username,
                   std::string_view password = kPassword);
// POST /v1/login; adds a test failure (and returns empty fields) unless it is 200.
LoginResult login(std::uint16_t port, const std::string& username,
                  std::string_view password = kPassword,
                  std::optional<std::string> device_name = std::nullopt);
LoginResult register_and_login(std::uint16_t port, const std::string& username,
                               std::string_view password = kPassword);

// Connects to /v1/ws and authenticates with `token`; throws unless the auth is answered `ok`.
std::unique_ptr<WsClient> connect_authed(std::uint16_t port, const std::string& token);

// Base64url without padding (RFC 7515 §2).
std::string base64url(std::string_view bytes);
// Lowercase hex HMAC-SHA256 of `msg` with `key` (webhook and signed-URL checks).
std::string hmac_sha256_hex(const std::string& key, const std::string& msg);
// header.payload.signature with HMAC-SHA256 over "header.payload" (header and payload are
// JSON text, encoded as given, so tests can forge odd headers).
std::string sign_jwt_hs256(std::string_view secret, std::string_view header_json,
                           std::string_view payload_json);
// A JWT {"alg":"HS256","typ":"JWT"} / {"sub":sub,"exp":exp[,"device":device]}.
std::string make_jwt(std::string_view secret, std::string_view sub,
                     std::chrono::system_clock::time_point exp,
                     std::optional<std::string> device = std::nullopt);

// Milliseconds since the Unix epoch, as the protocol's `ts`.
std::int64_t now_ms();

}  // namespace parley::test
