#include "push/apns_provider.h"

#include <boost/json.hpp>
#include <ctime>

#include "push/payload.h"

namespace parley::push {

namespace json = boost::json;

namespace {

std::string apns_reason(const std::string& body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const json::value* r = v.get_object().if_contains("reason");
  return r && r->is_string() ? std::string(r->get_string()) : std::string();
}

}  // namespace

Result<std::unique_ptr<ApnsProvider>> ApnsProvider::create(const PushConfig& config) {
  if (config.apns_endpoint.rfind("http://", 0) != 0 &&
      config.apns_endpoint.rfind("https://", 0) != 0) {
    return Error{Errc::bad_request, "push.apns_endpoint must be an http(s) URL"};
  }
  auto pem = read_file(config.apns_key_file);
  if (!pem) return Error{Errc::not_found, "push.apns_key_file: " + pem.error().message};
  auto token = ApnsToken::create(pem.value(), config.apns_key_id, config.apns_team_id);
  if (!token) return token.error();
  return std::unique_ptr<ApnsProvider>(new ApnsProvider(config, std::move(token.value())));
}

ApnsProvider::ApnsProvider(const PushConfig& config, std::unique_ptr<ApnsToken> token)
    : endpoint_(config.apns_endpoint),
      default_topic_(config.apns_topic),
      token_(std::move(token)),
      http_(HttpOptions{config.timeout_ms, config.ca_file, HttpOptions::Http2::always}) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

std::optional<std::string> ApnsProvider::body(const Notification& n) {
  const std::string thread = "chat-" + std::to_string(n.chat_id);
  auto build = [&](std::string_view preview) {
    json::object alert;
    alert["title"] = n.sender;
    alert["body"] = preview.empty() ? json::string(count_text(n.count)) : json::string(preview);
    json::object aps;
    aps["alert"] = std::move(alert);
    aps["badge"] = n.badge;
    aps["thread-id"] = thread;
    json::object o;
    o["aps"] = std::move(aps);
    o["chat_id"] = n.chat_id;
    o["count"] = n.count;
    o["seq"] = n.last_seq;
    return json::serialize(o);
  };
  return fit_payload(build, n.preview, kApnsMaxPayloadBytes);
}

SendResult ApnsProvider::send(const Notification& n) {
  const std::string& topic = n.target.app_id.empty() ? default_topic_ : n.target.app_id;
  if (topic.empty()) {
    return {SendStatus::failed, std::nullopt, "apns: no topic (app_id or push.apns_topic)"};
  }
  auto payload = body(n);
  if (!payload) return {SendStatus::failed, std::nullopt, "apns: payload over 4096 bytes"};
  for (int attempt = 0;; ++attempt) {
    auto jwt = token_->get();
    if (!jwt) return {SendStatus::failed, std::nullopt, "apns: " + jwt.error().message};
    bool expired = false;
    SendResult r = send_once(n, topic, *payload, jwt.value(), expired);
    if (!expired) return r;
    token_->invalidate(jwt.value());  // sign a new one and try once more
    if (attempt == 1) return r;
  }
}

SendResult ApnsProvider::send_once(const Notification& n, const std::string& topic,
                                   const std::string& body, const std::string& jwt,
                                   bool& expired_token) {
  HttpRequest req;
  req.url = endpoint_ + "/3/device/" + url_escape(n.target.token);
  req.body = body;
  const int64_t expiration = static_cast<int64_t>(std::time(nullptr)) + kApnsExpirationS;
  req.headers = {"authorization: bearer " + jwt,
                 "apns-topic: " + topic,
                 "apns-push-type: alert",
                 "apns-collapse-id: chat-" + std::to_string(n.chat_id),
                 "apns-expiration: " + std::to_string(expiration),
                 "content-type: application/json"};
  HttpResponse r = http_.perform(req);
  if (!r.transport_ok()) return transport_failure(r, "apns");
  if (r.status >= 200 && r.status < 300) return {};
  const std::string reason = apns_reason(r.body);
  std::string what = "apns: HTTP " + std::to_string(r.status);
  if (!reason.empty()) what += " " + reason;
  if (r.status == 410 ||
      (r.status == 400 && (reason == "BadDeviceToken" || reason == "Unregistered"))) {
    return {SendStatus::token_gone, std::nullopt, what};
  }
  if (r.status == 403 && reason == "ExpiredProviderToken") {
    expired_token = true;
    return {SendStatus::failed, std::nullopt, what};
  }
  if (r.status == 429 || r.status >= 500) return retry_result(r, what);
  return {SendStatus::failed, std::nullopt, what};
}

}  // namespace parley::push
