#include "push/webhook_provider.h"

#include <boost/json.hpp>
#include <ctime>

#include "push/jwt.h"
#include "push/payload.h"

namespace parley::push {

namespace json = boost::json;

Result<std::unique_ptr<WebhookProvider>> WebhookProvider::create(const PushConfig& config) {
  const std::string& u = config.webhook_url;
  if (u.rfind("http://", 0) != 0 && u.rfind("https://", 0) != 0) {
    return Error{Errc::bad_request, "push.webhook_url must be an http:// or https:// URL"};
  }
  return std::unique_ptr<WebhookProvider>(new WebhookProvider(config));
}

WebhookProvider::WebhookProvider(const PushConfig& config)
    : url_(config.webhook_url),
      secret_(config.webhook_secret),
      max_bytes_(config.webhook_max_bytes),
      http_(HttpOptions{config.timeout_ms, config.ca_file, HttpOptions::Http2::tls}) {}

std::optional<std::string> WebhookProvider::body(const Notification& n) const {
  auto build = [&](std::string_view preview) {
    json::object o;
    o["user"] = n.target.user;
    o["device_id"] = n.target.device_id;
    o["token"] = n.target.token;
    o["app_id"] = n.target.app_id;
    o["chat_id"] = n.chat_id;
    o["count"] = n.count;
    o["badge"] = n.badge;
    o["sender"] = n.sender;
    o["seq"] = n.last_seq;
    if (!preview.empty()) o["preview"] = preview;
    return json::serialize(o);
  };
  return fit_payload(build, n.preview, max_bytes_);
}

SendResult WebhookProvider::send(const Notification& n) {
  auto payload = body(n);
  if (!payload) {
    return {SendStatus::failed, std::nullopt,
            "webhook: payload over push.webhook_max_bytes (" + std::to_string(max_bytes_) + ")"};
  }
  const std::string ts = std::to_string(static_cast<int64_t>(std::time(nullptr)));
  HttpRequest req;
  req.url = url_;
  req.body = std::move(*payload);
  req.headers = {"Content-Type: application/json", "X-Parley-Timestamp: " + ts,
                 "X-Parley-Signature: sha256=" + hmac_sha256_hex(secret_, ts + "." + req.body)};
  HttpResponse r = http_.perform(req);
  if (!r.transport_ok()) return transport_failure(r, "webhook");
  const std::string what = "webhook: HTTP " + std::to_string(r.status);
  if (r.status >= 200 && r.status < 300) return {};
  if (r.status == 410) return {SendStatus::token_gone, std::nullopt, what};
  if (r.status == 429 || r.status >= 500) return retry_result(r, what);
  return {SendStatus::failed, std::nullopt, what + ": " + body_excerpt(r.body)};
}

}  // namespace parley::push
