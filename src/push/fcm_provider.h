// FCM HTTP v1 provider (docs/PUSH.md, "Providers"): a data message per notification to
// {fcm_endpoint}/v1/projects/{project}/messages:send, authorized with an OAuth access token
// from the service account.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/config.h"
#include "push/google_oauth.h"
#include "push/http_client.h"
#include "push/provider.h"

namespace parley::push {

inline constexpr size_t kFcmMaxDataBytes = 4096;

class FcmProvider final : public Provider {
 public:
  // Reads push.fcm_service_account_file. Errors: not_found (no file), bad_request (bad
  // file, key or settings).
  static Result<std::unique_ptr<FcmProvider>> create(const PushConfig& config);

  store::PushProvider kind() const override { return store::PushProvider::fcm; }
  SendResult send(const Notification& n) override;

  // The request body for `n`; the data object is at most kFcmMaxDataBytes (the preview is
  // cut to fit). nullopt when it does not fit without a preview either.
  static std::optional<std::string> body(const Notification& n);

  GoogleOAuth& oauth() { return *oauth_; }

 private:
  FcmProvider(const PushConfig& config, std::unique_ptr<GoogleOAuth> oauth);
  SendResult send_once(const std::string& body, const std::string& token, bool& unauthorized);

  std::string url_;
  std::unique_ptr<GoogleOAuth> oauth_;
  HttpClient http_;
};

}  // namespace parley::push
