// APNs provider (docs/PUSH.md, "Providers"): an alert per notification, POSTed over HTTP/2
// to {apns_endpoint}/3/device/{token} with a token-based (ES256 JWT) authorization.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/config.h"
#include "push/apns_token.h"
#include "push/http_client.h"
#include "push/provider.h"

namespace parley::push {

inline constexpr size_t kApnsMaxPayloadBytes = 4096;
// apns-expiration: how long APNs keeps trying an offline device.
inline constexpr int64_t kApnsExpirationS = 24 * 3600;

class ApnsProvider final : public Provider {
 public:
  // Reads push.apns_key_file. Errors: not_found (no file), bad_request (bad key or settings).
  static Result<std::unique_ptr<ApnsProvider>> create(const PushConfig& config);

  store::PushProvider kind() const override { return store::PushProvider::apns; }
  SendResult send(const Notification& n) override;

  // The JSON payload for `n`, at most kApnsMaxPayloadBytes (the preview cut to fit).
  static std::optional<std::string> body(const Notification& n);

  ApnsToken& token() { return *token_; }

 private:
  ApnsProvider(const PushConfig& config, std::unique_ptr<ApnsToken> token);
  SendResult send_once(const Notification& n, const std::string& topic, const std::string& body,
                       const std::string& jwt, bool& expired_token);

  std::string endpoint_;
  std::string default_topic_;
  std::unique_ptr<ApnsToken> token_;
  HttpClient http_;
};

}  // namespace parley::push
