// Blocking HTTP requests over libcurl for the push providers: a pool of easy handles, each
// keeping its connections (HTTP/2 included) alive between requests, so that a provider
// called from `concurrency` threads holds at most that many connections and reuses them.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "push/provider.h"

namespace parley::push {

struct HttpOptions {
  uint32_t timeout_ms = 10000;  // the whole request, connecting included
  std::string ca_file;          // extra CA bundle; "" = the system's
  // off: HTTP/1.1. tls: HTTP/2 where ALPN negotiates it (https), else HTTP/1.1. always:
  // HTTP/2 by ALPN for https, by prior knowledge (h2c) for http endpoints.
  enum class Http2 { off, tls, always } http2 = Http2::off;
};

struct HttpRequest {
  std::string method = "POST";
  std::string url;
  std::vector<std::string> headers;  // "name: value"
  std::string body;
};

struct HttpResponse {
  // Transport: 0 when a response arrived, else the CURLcode; `error` says what went wrong.
  int curl_code = 0;
  bool timed_out = false;
  std::string error;
  long status = 0;
  long http_version = 0;                       // CURL_HTTP_VERSION_* of the response
  std::map<std::string, std::string> headers;  // lowercase names, final response only
  std::string body;

  bool transport_ok() const { return curl_code == 0; }
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Thread-safe; blocks until the response (or the timeout).
  HttpResponse perform(const HttpRequest& request);

  const HttpOptions& options() const { return options_; }

 private:
  struct Handle;
  std::unique_ptr<Handle> acquire();
  void release(std::unique_ptr<Handle> h);

  HttpOptions options_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Handle>> idle_;
};

// Retry-After: delta seconds or an HTTP date, as milliseconds from now_ms (never negative);
// nullopt when absent or unparsable.
std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms);

// The SendResult for a request that got no HTTP response: a timeout or network error is
// worth retrying, a malformed URL or unsupported scheme is not.
SendResult transport_failure(const HttpResponse& r, std::string_view what);

// "retry" with the response's Retry-After, if any.
SendResult retry_result(const HttpResponse& r, std::string error);

// Percent-encodes everything but RFC 3986 unreserved characters (for URL path segments).
std::string url_escape(std::string_view s);

// The first `max` characters of a response body, for error messages.
std::string body_excerpt(std::string_view body, size_t max = 200);

}  // namespace parley::push
