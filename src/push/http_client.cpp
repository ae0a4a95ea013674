#include "push/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <ctime>

#include "common/text.h"

namespace parley::push {

namespace {

constexpr size_t kMaxResponseBody = 64u << 10;  // provider answers are small JSON objects
constexpr size_t kMaxIdleHandles = 64;

std::once_flag g_curl_once;
CURLcode g_curl_init = CURLE_OK;

struct Collector {
  HttpResponse* r;
  bool overflow = false;
};

// Header lines of every response arrive here; a status line starts a new response (1xx
// interim answers are dropped that way), so the final response's headers remain.
size_t on_header(char* p, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Collector*>(ud);
  std::string_view line(p, size * n);
  if (line.substr(0, 5) == "HTTP/") {
    c->r->headers.clear();
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    c->r->headers[ascii_lower(trim_header_value(line.substr(0, colon)))] =
        std::string(trim_header_value(line.substr(colon + 1)));
  }
  return size * n;
}

size_t on_body(char* p, size_t size, size_t n, void* ud) {
  auto* c = static_cast<Collector*>(ud);
  const size_t len = size * n;
  const size_t room = kMaxResponseBody - std::min(kMaxResponseBody, c->r->body.size());
  c->r->body.append(p, std::min(len, room));  // a longer body is cut, not an error
  if (len > room) c->overflow = true;
  return len;
}

// libcurl before 8.0.0 fails every request that reuses an h2c (prior knowledge)
// connection with "Error in the HTTP2 framing layer" (curl/curl#10634, fixed by #10643;
// Debian 12 ships 7.88.1). HTTP/2 over TLS is not affected. So for h2c on those versions a
// connection serves one request: h2c is for tests, real APNs is https.
bool h2c_reuse_broken() {
  static const bool broken = curl_version_info(CURLVERSION_NOW)->version_num < 0x080000;
  return broken;
}

bool starts_with_ci(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && ascii_lower(s.substr(0, prefix.size())) == prefix;
}

}  // namespace

struct HttpClient::Handle {
  CURL* easy = curl_easy_init();
  ~Handle() {
    if (easy) curl_easy_cleanup(easy);
  }
};

HttpClient::HttpClient(HttpOptions options) : options_(std::move(options)) {
  std::call_once(g_curl_once, [] { g_curl_init = curl_global_init(CURL_GLOBAL_DEFAULT); });
}

HttpClient::~HttpClient() = default;

std::unique_ptr<HttpClient::Handle> HttpClient::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto h = std::move(idle_.back());
      idle_.pop_back();
      return h;
    }
  }
  auto h = std::make_unique<Handle>();
  if (!h->easy) return nullptr;
  return h;
}

void HttpClient::release(std::unique_ptr<Handle> h) {
  curl_easy_reset(h->easy);  // options go, live connections stay in the handle's cache
  std::lock_guard lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(h));
}

HttpResponse HttpClient::perform(const HttpRequest& req) {
  HttpResponse resp;
  if (g_curl_init != CURLE_OK) {
    resp.curl_code = static_cast<int>(g_curl_init);
    resp.error = "curl_global_init failed";
    return resp;
  }
  auto h = acquire();
  if (!h) {
    resp.curl_code = static_cast<int>(CURLE_FAILED_INIT);
    resp.error = "out of curl handles";
    return resp;
  }
  CURL* e = h->easy;
  curl_slist* headers = nullptr;
  for (const auto& line : req.headers) headers = curl_slist_append(headers, line.c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip

  curl_easy_setopt(e, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.timeout_ms));
  if (!options_.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_file.c_str());
  long version = CURL_HTTP_VERSION_1_1;
  if (options_.http2 == HttpOptions::Http2::tls) version = CURL_HTTP_VERSION_2TLS;
  if (options_.http2 == HttpOptions::Http2::always) {
    if (starts_with_ci(req.url, "http://")) {
      version = CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
      if (h2c_reuse_broken()) {
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
      }
    } else {
      version = CURL_HTTP_VERSION_2TLS;
    }
  }
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, version);
  if (req.method == "GET") {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, req.body.data());
    if (req.method != "POST") curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  Collector collector{&resp};
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &collector);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &collector);

  const CURLcode rc = curl_easy_perform(e);
  resp.curl_code = static_cast<int>(rc);
  if (rc != CURLE_OK) {
    resp.timed_out = rc == CURLE_OPERATION_TIMEDOUT;
    resp.error = curl_easy_strerror(rc);
    resp.headers.clear();
    resp.body.clear();
  } else {
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp.status);
    curl_easy_getinfo(e, CURLINFO_HTTP_VERSION, &resp.http_version);
  }
  curl_slist_free_all(headers);
  release(std::move(h));
  return resp;
}

std::optional<int64_t> parse_retry_after(std::string_view value, int64_t now_ms) {
  value = trim_header_value(value);
  if (value.empty()) return std::nullopt;
  if (std::all_of(value.begin(), value.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t seconds = 0;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
    if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
    constexpr int64_t kMaxSeconds = int64_t{1} << 40;  // no overflow below
    return std::min(seconds, kMaxSeconds) * 1000;
  }
  const std::string date(value);
  const time_t t = curl_getdate(date.c_str(), nullptr);
  if (t < 0) return std::nullopt;
  return std::max<int64_t>(0, static_cast<int64_t>(t) * 1000 - now_ms);
}

SendResult transport_failure(const HttpResponse& r, std::string_view what) {
  SendResult out;
  const auto rc = static_cast<CURLcode>(r.curl_code);
  const bool permanent = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
                         rc == CURLE_FAILED_INIT || rc == CURLE_NOT_BUILT_IN;
  out.status = permanent ? SendStatus::failed : SendStatus::retry;
  out.error = std::string(what) + ": " + (r.timed_out ? "timeout: " : "") + r.error;
  return out;
}

SendResult retry_result(const HttpResponse& r, std::string error) {
  SendResult out{SendStatus::retry, std::nullopt, std::move(error)};
  const std::string ra = r.header("retry-after");
  if (!ra.empty()) {
    const int64_t now = static_cast<int64_t>(std::time(nullptr)) * 1000;
    out.retry_after_ms = parse_retry_after(ra, now);
  }
  return out;
}

std::string url_escape(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kDigits[c >> 4]);
      out.push_back(kDigits[c & 15]);
    }
  }
  return out;
}

std::string body_excerpt(std::string_view body, size_t max) {
  body = trim_header_value(body);
  if (body.size() <= max) return std::string(body);
  return std::string(body.substr(0, max)) + "...";
}

}  // namespace parley::push
