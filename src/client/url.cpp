#include "parley/url.h"

#include <algorithm>
#include <cctype>
#include <charconv>

#include "parley/error.h"

namespace parley {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

[[noreturn]] void Bad(std::string_view text, std::string_view why) {
  throw Error(errc::kBadUrl, "'" + std::string(text) + "': " + std::string(why));
}

bool IsHostChar(unsigned char c) { return std::isalnum(c) || c == '-' || c == '.' || c == '_'; }

bool IsIpv6Char(unsigned char c) { return std::isxdigit(c) || c == ':' || c == '.'; }

uint16_t ParsePort(std::string_view text, std::string_view port) {
  if (port.empty()) Bad(text, "empty port");
  unsigned value = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc() || end != port.data() + port.size() || value == 0 || value > 65535) {
    Bad(text, "port must be a number from 1 to 65535");
  }
  return static_cast<uint16_t>(value);
}

// The path without trailing slashes ("" for "/").
std::string Prefix(std::string_view path) {
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  return std::string(path);
}

}  // namespace

std::string Url::HostPort() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return h + ":" + std::to_string(port);
}

std::string Url::ToString() const { return scheme + "://" + HostPort() + path; }

Url ParseUrl(std::string_view text) {
  size_t sep = text.find("://");
  if (sep == std::string_view::npos || sep == 0) {
    Bad(text, "expected scheme://host[:port], e.g. http://127.0.0.1:8080");
  }
  Url url;
  url.scheme = Lower(text.substr(0, sep));
  if (url.scheme == "https" || url.scheme == "wss") {
    throw Error(errc::kUnsupportedScheme, "'" + std::string(text) + "': " + url.scheme +
                                              ":// needs TLS, which this client does not "
                                              "support yet; use http:// or ws://");
  }
  if (url.scheme != "http" && url.scheme != "ws") {
    throw Error(errc::kUnsupportedScheme, "'" + std::string(text) + "': scheme '" + url.scheme +
                                              "' is not supported; use http:// or ws://");
  }
  std::string_view rest = text.substr(sep + 3);
  size_t path_at = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, path_at);
  std::string_view path =
      path_at == std::string_view::npos ? std::string_view() : rest.substr(path_at);

  if (authority.find('@') != std::string_view::npos) Bad(text, "user info is not supported");
  if (authority.empty()) Bad(text, "missing host");

  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) Bad(text, "unterminated '[' in IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') Bad(text, "unexpected characters after ']'");
      port = after.substr(1);
      has_port = true;
    }
    if (host.empty() || !std::all_of(host.begin(), host.end(), [](char c) {
          return IsIpv6Char(static_cast<unsigned char>(c));
        })) {
      Bad(text, "bad IPv6 address");
    }
  } else {
    size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      port = authority.substr(colon + 1);
      has_port = true;
      if (port.find(':') != std::string_view::npos) Bad(text, "IPv6 addresses need brackets");
    }
    if (host.empty()) Bad(text, "missing host");
    if (!std::all_of(host.begin(), host.end(),
                     [](char c) { return IsHostChar(static_cast<unsigned char>(c)); })) {
      Bad(text, "bad character in host name");
    }
  }
  url.host = Lower(host);
  url.port = has_port ? ParsePort(text, port) : 80;

  if (path.empty()) path = "/";
  if (path.front() != '/' || path.find_first_of("?#") != std::string_view::npos) {
    Bad(text, "query and fragment are not allowed");
  }
  if (std::any_of(path.begin(), path.end(),
                  [](char c) { return static_cast<unsigned char>(c) <= ' ' || c == 0x7f; })) {
    Bad(text, "spaces or control characters in path");
  }
  url.path = std::string(path);
  return url;
}

Url WebSocketUrl(const Url& server) {
  Url ws = server;
  if (server.scheme == "ws" && server.path != "/") return ws;
  ws.scheme = "ws";
  ws.path = Prefix(server.path) + "/v1/ws";
  return ws;
}

Url HttpUrl(const Url& server, std::string_view endpoint) {
  Url http = server;
  std::string prefix = Prefix(server.path);
  if (server.scheme == "ws") {
    constexpr std::string_view kWs = "/v1/ws";
    if (prefix.size() >= kWs.size() &&
        prefix.compare(prefix.size() - kWs.size(), kWs.size(), kWs) == 0) {
      prefix.resize(prefix.size() - kWs.size());
    }
  }
  http.scheme = "http";
  http.path = prefix + std::string(endpoint);
  if (http.path.empty()) http.path = "/";
  return http;
}

}  // namespace parley
