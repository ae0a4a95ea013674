#include "push/google_oauth.h"

#include <boost/json.hpp>
#include <ctime>

namespace parley::push {

namespace json = boost::json;

namespace {

constexpr auto kRefreshMargin = std::chrono::seconds(60);
constexpr int64_t kAssertionLifetimeS = 3600;  // Google accepts at most one hour

std::string form_escape(std::string_view s) { return url_escape(s); }

std::string string_field(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->get_string()) : std::string();
}

}  // namespace

Result<ServiceAccount> parse_service_account(std::string_view json_text) {
  json::error_code ec;
  json::value v = json::parse(json_text, ec);
  if (ec || !v.is_object()) return Error{Errc::bad_request, "service account file is not JSON"};
  const auto& o = v.get_object();
  ServiceAccount a;
  a.client_email = string_field(o, "client_email");
  a.private_key_pem = string_field(o, "private_key");
  a.private_key_id = string_field(o, "private_key_id");
  a.token_uri = string_field(o, "token_uri");
  if (a.client_email.empty() || a.private_key_pem.empty()) {
    return Error{Errc::bad_request, "service account file lacks client_email or private_key"};
  }
  return a;
}

Result<std::unique_ptr<GoogleOAuth>> GoogleOAuth::create(const ServiceAccount& account,
                                                         const std::string& token_uri_override,
                                                         std::string scope, HttpOptions http) {
  ServiceAccount a = account;
  if (!token_uri_override.empty()) a.token_uri = token_uri_override;
  if (a.token_uri.rfind("http://", 0) != 0 && a.token_uri.rfind("https://", 0) != 0) {
    return Error{Errc::bad_request, "service account token_uri must be an http(s) URL"};
  }
  auto key = parse_private_key(a.private_key_pem, KeyKind::rsa);
  if (!key) return Error{Errc::bad_request, "service account private_key: " + key.error().message};
  return std::unique_ptr<GoogleOAuth>(
      new GoogleOAuth(std::move(a), std::move(key.value()), std::move(scope), std::move(http)));
}

GoogleOAuth::GoogleOAuth(ServiceAccount account, PrivateKey key, std::string scope,
                         HttpOptions http)
    : account_(std::move(account)),
      key_(std::move(key)),
      scope_(std::move(scope)),
      http_(std::move(http)) {}

Result<std::string> GoogleOAuth::access_token() {
  std::lock_guard lock(mu_);
  if (!token_.empty() && std::chrono::steady_clock::now() < valid_until_) return token_;
  std::chrono::steady_clock::time_point until;
  auto t = fetch(until);
  if (!t) return t.error();
  token_ = t.value();
  valid_until_ = until;
  return t;
}

void GoogleOAuth::invalidate(const std::string& token) {
  std::lock_guard lock(mu_);
  if (token_ == token) token_.clear();
}

Result<std::string> GoogleOAuth::fetch(std::chrono::steady_clock::time_point& valid_until) {
  const auto started = std::chrono::steady_clock::now();
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  json::object header{{"alg", "RS256"}, {"typ", "JWT"}};
  if (!account_.private_key_id.empty()) header["kid"] = account_.private_key_id;
  const json::object claims{{"iss", account_.client_email},
                            {"scope", scope_},
                            {"aud", account_.token_uri},
                            {"iat", now},
                            {"exp", now + kAssertionLifetimeS}};
  auto assertion = sign_jwt_rs256(key_.get(), json::serialize(header), json::serialize(claims));
  if (!assertion) return Error{Errc::unauthorized, "oauth: " + assertion.error().message};

  HttpRequest req;
  req.url = account_.token_uri;
  req.headers = {"Content-Type: application/x-www-form-urlencoded", "Accept: application/json"};
  req.body = "grant_type=" + form_escape("urn:ietf:params:oauth:grant-type:jwt-bearer") +
             "&assertion=" + form_escape(assertion.value());
  HttpResponse r = http_.perform(req);
  if (!r.transport_ok()) {
    return Error{Errc::unavailable,
                 "oauth token: " + std::string(r.timed_out ? "timeout: " : "") + r.error};
  }
  const std::string what = "oauth token: HTTP " + std::to_string(r.status);
  if (r.status == 429 || r.status >= 500) return Error{Errc::unavailable, what};
  if (r.status < 200 || r.status >= 300) {
    return Error{Errc::unauthorized, what + ": " + body_excerpt(r.body)};
  }
  json::error_code ec;
  json::value v = json::parse(r.body, ec);
  const json::object* o = ec ? nullptr : v.if_object();
  std::string token = o ? string_field(*o, "access_token") : std::string();
  if (token.empty()) return Error{Errc::unauthorized, what + ": no access_token in the answer"};
  int64_t expires_in = 3600;
  if (const json::value* e = o->if_contains("expires_in")) {
    if (e->is_int64()) expires_in = e->get_int64();
    if (e->is_uint64()) expires_in = static_cast<int64_t>(e->get_uint64());
  }
  fetches_.fetch_add(1);
  valid_until = started + std::chrono::seconds(expires_in) - kRefreshMargin;
  return token;
}

}  // namespace parley::push
