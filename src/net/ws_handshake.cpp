#include "net/ws_handshake.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <array>
#include <cctype>

namespace http = boost::beast::http;

namespace parley::net::ws {
namespace {

// A key is 16 random bytes in base64: 22 characters of the alphabet and "==".
bool valid_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  for (char c : key.substr(0, 22))
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) return false;
  return true;
}

}  // namespace

std::optional<HandshakeRefusal> check_upgrade(const HttpRequest& request) {
  if (request[http::field::sec_websocket_version] != "13")
    return HandshakeRefusal{http::status::upgrade_required, "unsupported_version",
                            "only WebSocket version 13 is supported"};
  if (!valid_key(request[http::field::sec_websocket_key]))
    return HandshakeRefusal{http::status::bad_request, "bad_request",
                            "Sec-WebSocket-Key must be 16 bytes in base64"};
  return std::nullopt;
}

std::string accept_key(std::string_view client_key) {
  static constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
  std::string input;
  input.reserve(client_key.size() + kGuid.size());
  input.append(client_key).append(kGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr);
  std::array<unsigned char, 4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1> encoded{};
  int n = EVP_EncodeBlock(encoded.data(), digest.data(), static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(encoded.data()), static_cast<size_t>(n));
}

std::string switching_protocols(std::string_view client_key, std::string_view subprotocol) {
  return fmt::format(
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Sec-WebSocket-Accept: {}\r\n"
      "Sec-WebSocket-Protocol: {}\r\n"
      "Server: parleyd\r\n"
      "\r\n",
      accept_key(client_key), subprotocol);
}

}  // namespace parley::net::ws
