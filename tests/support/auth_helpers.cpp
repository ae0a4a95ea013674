#include "support/auth_helpers.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <boost/json.hpp>
#include <stdexcept>

#include "support/http_client.h"
#include "support/json_util.h"

namespace parley::test {
namespace json = boost::json;

std::string unique_username(std::string_view prefix) {
  static std::atomic<int> counter{0};
  std::string suffix = "-" + std::to_string(++counter);
  std::string p(prefix.substr(0, 32 - suffix.size()));
  return p + suffix;
}

void register_user(std::uint16_t port, const std::string& username, std::string_view password) {
  auto res = http_post_json(port, "/v1/register",
                            json::object{{"username", username}, {"password", password}});
  EXPECT_EQ(res.status, 201u) << "register " << username << ": " << res.body << res.transport_error;
  if (res.status == 201) {
    EXPECT_EQ(res.object().if_contains("user") ? to_string(res.object().at("user")) : "",
              "\"" + username + "\"")
        << res.body;
  }
}

LoginResult login(std::uint16_t port, const std::string& username, std::string_view password,
                  std::optional<std::string> device_name) {
  json::object body{{"username", username}, {"password", password}};
  if (device_name) body["device_name"] = *device_name;
  auto res = http_post_json(port, "/v1/login", body);
  LoginResult out;
  EXPECT_EQ(res.status, 200u) << "login " << username << ": " << res.body << res.transport_error;
  if (res.status != 200) return out;
  const auto& obj = res.object();
  out.user = str_field(obj, "user");
  out.device_id = str_field(obj, "device_id");
  out.token = str_field(obj, "token");
  out.pts = int_field(obj, "pts");
  return out;
}

LoginResult register_and_login(std::uint16_t port, const std::string& username,
                               std::string_view password) {
  register_user(port, username, password);
  return login(port, username, password);
}

std::unique_ptr<WsClient> connect_authed(std::uint16_t port, const std::string& token) {
  auto client = std::make_unique<WsClient>(port);
  auto res = client->auth(token);
  if (!is_ok(res)) {
    throw std::runtime_error("auth failed: " + json::serialize(res));
  }
  return client;
}

std::string base64url(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::size_t i = 0;
  auto byte = [&](std::size_t k) { return static_cast<unsigned char>(bytes[k]); };
  for (; i + 3 <= bytes.size(); i += 3) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8) | byte(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (bytes.size() - i == 1) {
    unsigned v = byte(i) << 16;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
  } else if (bytes.size() - i == 2) {
    unsigned v = (byte(i) << 16) | (byte(i + 1) << 8);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
  }
  return out;
}

std::string sign_jwt_hs256(std::string_view secret, std::string_view header_json,
                           std::string_view payload_json) {
  std::string signing_input = base64url(header_json) + "." + base64url(payload_json);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  if (HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
           reinterpret_cast<const unsigned char*>(signing_input.data()), signing_input.size(), mac,
           &mac_len) == nullptr) {
    throw std::runtime_error("HMAC-SHA256 failed");
  }
  return signing_input + "." +
         base64url(std::string_view(reinterpret_cast<const char*>(mac), mac_len));
}

std::string make_jwt(std::string_view secret, std::string_view sub,
                     std::chrono::system_clock::time_point exp, std::optional<std::string> device) {
  json::object payload{
      {"sub", sub},
      {"exp", std::chrono::duration_cast<std::chrono::seconds>(exp.time_since_epoch()).count()}};
  if (device) payload["device"] = *device;
  return sign_jwt_hs256(secret, R"({"alg":"HS256","typ":"JWT"})", json::serialize(payload));
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string hmac_sha256_hex(const std::string& key, const std::string& msg) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), mac, &len);
  std::string out;
  for (unsigned i = 0; i < len; ++i) {
    static const char* hex = "0123456789abcdef";
    out += hex[mac[i] >> 4];
    out += hex[mac[i] & 15];
  }
  return out;
}

}  // namespace parley::test
