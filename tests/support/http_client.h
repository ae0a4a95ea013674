// Minimal blocking HTTP/1.1 client for tests (Beast, one connection per request, 10 s timeout).
#pragma once

#include <boost/json.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

namespace parley::test {

struct HttpResponse {
  unsigned status = 0;                         // 0 if no response was read
  std::string body;                            // raw body bytes
  std::optional<boost::json::value> json;      // body parsed as JSON, if it is JSON
  std::map<std::string, std::string> headers;  // lower-case names
  std::string transport_error;                 // non-empty if the exchange failed

  // `json["error"]["code"]` if present, else "".
  std::string error_code() const;
  // The body as an object; an empty object if it is not one.
  const boost::json::object& object() const;
};

struct HttpRequestOptions {
  std::string method = "GET";
  std::string target = "/";
  std::string body;
  std::string content_type = "application/json";
  std::optional<std::string> bearer;  // Authorization: Bearer <token>
  std::map<std::string, std::string> extra_headers;
  std::chrono::milliseconds timeout = std::chrono::seconds(10);
};

HttpResponse http_request(std::uint16_t port, const HttpRequestOptions& options);

HttpResponse http_get(std::uint16_t port, const std::string& target);
HttpResponse http_post_json(std::uint16_t port, const std::string& target,
                            const boost::json::value& body,
                            std::optional<std::string> bearer = std::nullopt);
// POST with an arbitrary body (malformed JSON, oversized bodies).
HttpResponse http_post_raw(std::uint16_t port, const std::string& target, std::string body,
                           std::optional<std::string> bearer = std::nullopt);

}  // namespace parley::test
