// Webhook provider (docs/PUSH.md, "Providers"): one signed JSON POST per notification to
// push.webhook_url, for an app's own push gateway.
#pragma once

#include <memory>
#include <string>

#include "common/config.h"
#include "push/http_client.h"
#include "push/provider.h"

namespace parley::push {

class WebhookProvider final : public Provider {
 public:
  // bad_request when push.webhook_url is not an http(s) URL.
  static Result<std::unique_ptr<WebhookProvider>> create(const PushConfig& config);

  store::PushProvider kind() const override { return store::PushProvider::webhook; }
  SendResult send(const Notification& n) override;

  // The JSON body for `n` (preview cut to fit push.webhook_max_bytes); nullopt when even
  // the body without a preview is over the limit.
  std::optional<std::string> body(const Notification& n) const;

 private:
  explicit WebhookProvider(const PushConfig& config);

  std::string url_;
  std::string secret_;
  size_t max_bytes_;
  HttpClient http_;
};

}  // namespace parley::push
