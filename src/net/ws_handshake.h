// The server side of the WebSocket opening handshake (RFC 6455 §4.2): checks an upgrade
// request and writes the 101 answer. The HTTP session reads the request; the connection
// sends the answer as the first bytes of its stream.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "net/transport.h"

namespace parley::net::ws {

// Why an upgrade request is refused, as an HTTP answer: 426 for another protocol version
// (with `Sec-WebSocket-Version: 13`), 400 for a missing or malformed key.
struct HandshakeRefusal {
  boost::beast::http::status status;
  std::string code;
  std::string message;
};

// Checks what RFC 6455 §4.2.1 asks of the request beyond beast::websocket::is_upgrade()
// (GET, HTTP/1.1, Connection: upgrade, Upgrade: websocket, a version field).
std::optional<HandshakeRefusal> check_upgrade(const HttpRequest& request);

// Sec-WebSocket-Accept for a client's Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view client_key);

// The whole 101 Switching Protocols answer, selecting `subprotocol`.
std::string switching_protocols(std::string_view client_key, std::string_view subprotocol);

}  // namespace parley::net::ws
