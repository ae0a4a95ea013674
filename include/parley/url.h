// Server URL parsing: http:// and ws:// only (no TLS in this version).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace parley {

struct Url {
  std::string scheme;  // "http" or "ws"
  std::string host;    // without brackets, e.g. "127.0.0.1", "::1", "chat.example"
  uint16_t port = 0;   // explicit or the scheme's default (80)
  std::string path;    // starts with '/', "/" when the URL had none; no query or fragment

  // "host:port", with brackets around an IPv6 literal: the HTTP Host header value.
  std::string HostPort() const;
  // The URL written back, e.g. "http://127.0.0.1:8080/".
  std::string ToString() const;
};

// Parses "scheme://host[:port][/path]". Accepts http and ws; rejects https and wss with
// Error{"unsupported_scheme"} (TLS is not supported yet) and anything malformed (missing host,
// bad port, userinfo, query or fragment) with Error{"bad_url"}.
Url ParseUrl(std::string_view text);

// The WebSocket endpoint for a server URL: http://h:p/prefix -> ws://h:p/prefix/v1/ws;
// a ws:// URL with a path other than "/" is used as is, ws://h:p or ws://h:p/ gets /v1/ws.
Url WebSocketUrl(const Url& server);

// An HTTP endpoint below the server URL: (http://h:p/prefix, "/v1/login") ->
// http://h:p/prefix/v1/login. A ws:// server URL maps to http:// with the same host and port.
Url HttpUrl(const Url& server, std::string_view endpoint);

}  // namespace parley
