// OAuth 2.0 access tokens for Google APIs from a service account (the "JWT bearer" grant,
// RFC 7523): an RS256 assertion signed with the account's private key is exchanged at its
// token URI for an access token, which is cached until a minute before it expires.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "common/errc.h"
#include "push/http_client.h"
#include "push/jwt.h"

namespace parley::push {

inline constexpr char kFirebaseMessagingScope[] =
    "https://www.googleapis.com/auth/firebase.messaging";

struct ServiceAccount {
  std::string client_email;
  std::string private_key_pem;
  std::string private_key_id;  // optional: the JWT header's kid
  std::string token_uri;
};

// Parses a service account JSON file's text: client_email, private_key, token_uri.
Result<ServiceAccount> parse_service_account(std::string_view json_text);

class GoogleOAuth {
 public:
  // token_uri_override: "" = the account's token_uri.
  static Result<std::unique_ptr<GoogleOAuth>> create(const ServiceAccount& account,
                                                     const std::string& token_uri_override,
                                                     std::string scope, HttpOptions http);

  // The cached access token, or a new one when there is none or it is about to expire.
  // Errors: unavailable (network, timeout, 429, 5xx: try later), unauthorized (the token
  // endpoint refused the assertion, or answered something unusable).
  Result<std::string> access_token();
  // Drops the cached token if it still is `token` (an API answered 401 for it), so that the
  // next access_token() fetches a new one; concurrent callers refresh only once.
  void invalidate(const std::string& token);

  // How many tokens were fetched so far.
  uint64_t fetches() const { return fetches_.load(); }

 private:
  GoogleOAuth(ServiceAccount account, PrivateKey key, std::string scope, HttpOptions http);
  Result<std::string> fetch(std::chrono::steady_clock::time_point& valid_until);

  ServiceAccount account_;
  PrivateKey key_;
  std::string scope_;
  HttpClient http_;
  std::mutex mu_;  // held while fetching: one fetch at a time, the others wait for it
  std::string token_;
  std::chrono::steady_clock::time_point valid_until_{};
  std::atomic<uint64_t> fetches_{0};
};

}  // namespace parley::push
