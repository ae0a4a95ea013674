#include "support/chat_helpers.h"

#include <unistd.h>

#include <atomic>

#include "support/auth_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"

namespace parley::test {
namespace json = boost::json;

std::string next_client_msg_id() {
  static std::atomic<long> counter{0};
  return "c-" + std::to_string(getpid()) + "-" + std::to_string(++counter);
}

json::object send_frame(std::string_view to, std::string_view body,
                        std::string_view client_msg_id) {
  return {{"type", "send"}, {"to", to}, {"client_msg_id", client_msg_id}, {"body", body}};
}

json::object send_to_chat_frame(std::int64_t chat_id, std::string_view body,
                                std::string_view client_msg_id) {
  return {{"type", "send"}, {"chat_id", chat_id}, {"client_msg_id", client_msg_id}, {"body", body}};
}

json::object request_ok(WsClient& c, json::object request) {
  std::string text = json::serialize(request);
  auto res = c.request(std::move(request));
  if (!is_ok(res)) {
    ADD_FAILURE() << "request " << text << " was answered " << json::serialize(res);
    return {};
  }
  const auto* result = res.if_contains("result");
  if (result == nullptr || !result->is_object()) {
    ADD_FAILURE() << "ok without a result object: " << json::serialize(res);
    return {};
  }
  return result->as_object();
}

json::object send_ok(WsClient& c, std::string_view to, std::string_view body,
                     std::optional<std::string> client_msg_id) {
  return request_ok(c, send_frame(to, body, client_msg_id.value_or(next_client_msg_id())));
}

json::object send_to_chat_ok(WsClient& c, std::int64_t chat_id, std::string_view body,
                             std::optional<std::string> client_msg_id) {
  return request_ok(
      c, send_to_chat_frame(chat_id, body, client_msg_id.value_or(next_client_msg_id())));
}

::testing::AssertionResult is_error(const WsClient::Frame& f, std::string_view code,
                                    std::optional<json::value> id, bool retryable) {
  auto fail = [&](std::string_view why) {
    return ::testing::AssertionFailure()
           << why << "; expected error " << code << ", got " << json::serialize(f);
  };
  const auto* type = f.if_contains("type");
  if (type == nullptr || !type->is_string() || type->as_string() != "error") {
    return fail("not an error frame");
  }
  const auto* c = f.if_contains("code");
  if (c == nullptr || !c->is_string() || c->as_string() != code) return fail("wrong code");
  const auto* message = f.if_contains("message");
  if (message == nullptr || !message->is_string()) return fail("no string message");
  const auto* r = f.if_contains("retryable");
  if (r == nullptr || !r->is_bool()) return fail("no boolean retryable");
  if (r->as_bool() != retryable) return fail("wrong retryable");
  if (id) {
    const auto* got = f.if_contains("id");
    if (got == nullptr) return fail("no id field");
    if (*got != *id) return fail("wrong id (expected " + json::serialize(*id) + ")");
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult is_message(const json::object& m, std::int64_t chat_id, std::int64_t seq,
                                      std::string_view sender, std::string_view to,
                                      std::string_view body) {
  try {
    std::string why;
    if (int_field(m, "chat_id") != chat_id) why += " chat_id";
    if (int_field(m, "seq") != seq) why += " seq";
    if (str_field(m, "sender") != sender) why += " sender";
    if (str_field(m, "to") != to) why += " to";
    if (str_field(m, "kind") != "text") why += " kind";
    if (str_field(m, "body") != body) why += " body";
    auto id = str_field(m, "message_id");
    if (id.empty() || id.find_first_not_of("0123456789") != std::string::npos) {
      why += " message_id";
    }
    if (int_field(m, "ts") <= 0) why += " ts";
    if (str_field(m, "client_msg_id").empty()) why += " client_msg_id";
    if (!why.empty()) {
      return ::testing::AssertionFailure()
             << "message differs in" << why << ": expected chat_id=" << chat_id << " seq=" << seq
             << " sender=" << sender << " to=" << to << " body=" << body << ", got "
             << json::serialize(m);
    }
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << e.what();
  }
  return ::testing::AssertionSuccess();
}

json::array full_history(WsClient& c, std::int64_t chat_id, std::int64_t page) {
  json::array all;
  std::optional<std::int64_t> before;
  for (int guard = 0; guard < 10000; ++guard) {
    json::object req{{"type", "history"}, {"chat_id", chat_id}, {"limit", page}};
    if (before) req["before_seq"] = *before;
    auto result = request_ok(c, req);
    if (result.empty()) return all;
    const auto& messages = arr_field(result, "messages");
    json::array merged(messages.begin(), messages.end());
    merged.insert(merged.end(), all.begin(), all.end());
    all = std::move(merged);
    if (!bool_field(result, "has_more") || messages.empty()) return all;
    before = int_field(messages.front().as_object(), "seq");
  }
  ADD_FAILURE() << "history paging did not end";
  return all;
}

json::array sync_all(WsClient& c, std::int64_t pts, std::int64_t limit) {
  json::array all;
  for (int guard = 0; guard < 10000; ++guard) {
    auto result = request_ok(c, {{"type", "sync"}, {"pts", pts}, {"limit", limit}});
    if (result.empty()) return all;
    if (const auto* snap = result.if_contains("snapshot");
        snap && snap->is_bool() && snap->as_bool()) {
      ADD_FAILURE() << "sync from pts " << pts << " answered with a snapshot";
      return all;
    }
    for (const auto& u : arr_field(result, "updates")) all.push_back(u);
    std::int64_t next = int_field(result, "pts");
    if (!bool_field(result, "has_more")) return all;
    if (next <= pts) {
      ADD_FAILURE() << "sync has_more without progress at pts " << pts;
      return all;
    }
    pts = next;
  }
  ADD_FAILURE() << "sync paging did not end";
  return all;
}

void expect_server_healthy(std::uint16_t port, const std::string& token) {
  auto health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200u) << health.body << health.transport_error;
  try {
    auto c = connect_authed(port, token);
    auto pong = c->request({{"type", "ping"}});
    EXPECT_TRUE(is_ok(pong)) << json::serialize(pong);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "a fresh client is not served: " << e.what();
  }
}

}  // namespace parley::test
