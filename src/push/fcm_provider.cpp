#include "push/fcm_provider.h"

#include <boost/json.hpp>

#include "push/payload.h"

namespace parley::push {

namespace json = boost::json;

namespace {

std::string trim_slash(std::string s) {
  while (!s.empty() && s.back() == '/') s.pop_back();
  return s;
}

// The data object: string values only (FCM's rule for data messages).
json::object data_of(const Notification& n, std::string_view preview) {
  json::object d;
  d["chat_id"] = std::to_string(n.chat_id);
  d["count"] = std::to_string(n.count);
  d["badge"] = std::to_string(n.badge);
  d["sender"] = n.sender;
  d["seq"] = std::to_string(n.last_seq);
  if (!preview.empty()) d["preview"] = preview;
  return d;
}

// FCM's errorCode from an error answer's details, "" if none.
std::string fcm_error_code(const std::string& body) {
  json::error_code ec;
  json::value v = json::parse(body, ec);
  if (ec || !v.is_object()) return {};
  const json::value* err = v.get_object().if_contains("error");
  if (!err || !err->is_object()) return {};
  const json::value* details = err->get_object().if_contains("details");
  if (!details || !details->is_array()) return {};
  for (const auto& d : details->get_array()) {
    if (!d.is_object()) continue;
    const json::value* code = d.get_object().if_contains("errorCode");
    if (code && code->is_string()) return std::string(code->get_string());
  }
  return {};
}

}  // namespace

Result<std::unique_ptr<FcmProvider>> FcmProvider::create(const PushConfig& config) {
  if (config.fcm_project_id.empty())
    return Error{Errc::bad_request, "push.fcm_project_id is empty"};
  if (config.fcm_endpoint.rfind("http://", 0) != 0 &&
      config.fcm_endpoint.rfind("https://", 0) != 0) {
    return Error{Errc::bad_request, "push.fcm_endpoint must be an http(s) URL"};
  }
  auto text = read_file(config.fcm_service_account_file);
  if (!text)
    return Error{Errc::not_found, "push.fcm_service_account_file: " + text.error().message};
  auto account = parse_service_account(text.value());
  if (!account) return account.error();
  auto oauth =
      GoogleOAuth::create(account.value(), config.fcm_token_uri, kFirebaseMessagingScope,
                          HttpOptions{config.timeout_ms, config.ca_file, HttpOptions::Http2::off});
  if (!oauth) return oauth.error();
  return std::unique_ptr<FcmProvider>(new FcmProvider(config, std::move(oauth.value())));
}

FcmProvider::FcmProvider(const PushConfig& config, std::unique_ptr<GoogleOAuth> oauth)
    : url_(trim_slash(config.fcm_endpoint) + "/v1/projects/" + url_escape(config.fcm_project_id) +
           "/messages:send"),
      oauth_(std::move(oauth)),
      http_(HttpOptions{config.timeout_ms, config.ca_file, HttpOptions::Http2::tls}) {}

std::optional<std::string> FcmProvider::body(const Notification& n) {
  const std::string collapse = "chat-" + std::to_string(n.chat_id);
  auto build = [&](std::string_view preview) {
    json::object message;
    message["token"] = n.target.token;
    message["data"] = data_of(n, preview);
    message["android"] = json::object{{"collapse_key", collapse}, {"priority", "high"}};
    message["apns"] =
        json::object{{"headers", json::object{{"apns-collapse-id", collapse}}},
                     {"payload", json::object{{"aps", json::object{{"badge", n.badge}}}}}};
    return json::serialize(json::object{{"message", std::move(message)}});
  };
  auto data_size = [&](std::string_view preview) {
    return json::serialize(data_of(n, preview)).size();
  };
  return fit_payload(build, n.preview, kFcmMaxDataBytes, data_size);
}

SendResult FcmProvider::send(const Notification& n) {
  auto payload = body(n);
  if (!payload) return {SendStatus::failed, std::nullopt, "fcm: data payload over 4096 bytes"};
  for (int attempt = 0;; ++attempt) {
    auto token = oauth_->access_token();
    if (!token) {
      const bool later = token.error().code == Errc::unavailable;
      return {later ? SendStatus::retry : SendStatus::failed, std::nullopt,
              "fcm: " + token.error().message};
    }
    bool unauthorized = false;
    SendResult r = send_once(*payload, token.value(), unauthorized);
    if (!unauthorized) return r;
    // The token was revoked or expired early: a new one, once.
    oauth_->invalidate(token.value());
    if (attempt == 1) return r;
  }
}

SendResult FcmProvider::send_once(const std::string& body, const std::string& token,
                                  bool& unauthorized) {
  HttpRequest req;
  req.url = url_;
  req.body = body;
  req.headers = {"Content-Type: application/json; charset=UTF-8", "Authorization: Bearer " + token};
  HttpResponse r = http_.perform(req);
  if (!r.transport_ok()) return transport_failure(r, "fcm");
  if (r.status >= 200 && r.status < 300) return {};
  const std::string code = fcm_error_code(r.body);
  std::string what = "fcm: HTTP " + std::to_string(r.status);
  if (!code.empty()) what += " " + code;
  if (code == "UNREGISTERED" && (r.status == 404 || r.status == 400)) {
    return {SendStatus::token_gone, std::nullopt, what};
  }
  if (r.status == 401) {
    unauthorized = true;
    return {SendStatus::failed, std::nullopt, what + ": " + body_excerpt(r.body)};
  }
  if (r.status == 429 || r.status >= 500) return retry_result(r, what);
  return {SendStatus::failed, std::nullopt, what + ": " + body_excerpt(r.body)};
}

}  // namespace parley::push
