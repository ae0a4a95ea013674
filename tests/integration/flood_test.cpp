// Per-connection rate limit and flood close (PROTOCOL.md §4, CONFIG [limits]; DESIGN G6).
#include <gtest/gtest.h>

#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

TEST(FloodTest, FloodIsRateLimitedThenClosedWith4029AndOthersAreStillServed) {
  ServerProcess server(TomlConfig::test_defaults()
                           .set("limits", "requests_per_second", "5")
                           .set("limits", "burst", "5")
                           .set("limits", "flood_close_after", "20"));
  const auto token = register_and_login(server.port(), "flooder").token;
  const auto bystander = register_and_login(server.port(), "bystander").token;
  auto quiet = connect_authed(server.port(), bystander);

  auto c = connect_authed(server.port(), token);
  int sent = 0;
  for (; sent < 400 && !c->closed(); ++sent) {
    if (c->send_text(R"({"type":"ping","id":)" + std::to_string(1000 + sent) + "}")) break;
    if (sent % 10 == 9) c->poll();
  }
  EXPECT_EQ(c->wait_close(), std::optional<std::uint16_t>(4029)) << "after " << sent << " pings";

  // Answers to the pings (rate_limited may carry the ping's id or, if the server cannot
  // tell, null; RateLimitedRequestsAreRetryableAndCarryTheirId checks the id).
  int ok = 0;
  int limited = 0;
  for (const auto& f : c->received()) {
    if (!f.contains("id") || (has_int(f, "id") && int_field(f, "id") < 1000)) continue;  // auth
    if (is_ok(f)) {
      ++ok;
      continue;
    }
    EXPECT_TRUE(is_error(f, "rate_limited", std::nullopt, /*retryable=*/true)) << to_string(f);
    EXPECT_TRUE(has_int(f, "retry_after_ms")) << to_string(f);
    if (has_int(f, "retry_after_ms")) {
      EXPECT_GE(int_field(f, "retry_after_ms"), 0);
    }
    ++limited;
  }
  EXPECT_GE(ok, 1) << "the burst should be served";
  EXPECT_LE(ok, 10) << "burst = 5 at 5 requests/s";
  EXPECT_GE(limited, 20) << "flood_close_after = 20 rejections in a row before the close";

  // Others are unaffected: an existing connection and a fresh one.
  EXPECT_TRUE(is_ok(quiet->request({{"type", "ping"}})));
  auto fresh = connect_authed(server.port(), token);
  EXPECT_TRUE(is_ok(fresh->request({{"type", "ping"}})));
  EXPECT_EQ(http_get(server.port(), "/healthz").status, 200u);
  EXPECT_TRUE(server.alive());
}

// Every request gets exactly one response with its id (§3.1), also when rate limited, so
// that the client knows which request to retry.
TEST(FloodTest, RateLimitedRequestsAreRetryableAndCarryTheirId) {
  ServerProcess server(TomlConfig::test_defaults()
                           .set("limits", "requests_per_second", "5")
                           .set("limits", "burst", "5")
                           .set("limits", "flood_close_after", "20"));
  auto c = connect_authed(server.port(), register_and_login(server.port(), "eager").token);
  // Exhaust the bucket (auth took one token) without reaching the flood threshold.
  std::set<std::int64_t> ids;
  for (int i = 0; i < 10; ++i) ids.insert(c->send_request({{"type", "ping"}}));
  std::vector<WsClient::Frame> answers;
  while (answers.size() < ids.size()) {
    auto f = c->wait_for([](const WsClient::Frame& frame) { return frame.contains("id"); });
    if (!f) break;
    answers.push_back(*f);
  }
  ASSERT_EQ(answers.size(), ids.size()) << "one answer per request";
  std::optional<std::int64_t> retry_after;
  std::set<std::int64_t> answered;
  for (const auto& f : answers) {
    EXPECT_TRUE(has_int(f, "id") && ids.count(int_field(f, "id")))
        << "answer without the request's id: " << to_string(f);
    if (has_int(f, "id")) answered.insert(int_field(f, "id"));
    if (is_ok(f)) continue;
    EXPECT_TRUE(is_error(f, "rate_limited", std::nullopt, /*retryable=*/true)) << to_string(f);
    if (has_int(f, "retry_after_ms")) retry_after = int_field(f, "retry_after_ms");
  }
  EXPECT_EQ(answered, ids);
  ASSERT_TRUE(retry_after.has_value()) << "10 pings at burst 5 should hit the limit";
  EXPECT_LE(*retry_after, 1000) << "at 5 requests/s a token comes back within 200 ms";
  // Honour retry_after_ms (the wait the protocol tells a client to make), then retry.
  std::this_thread::sleep_for(std::chrono::milliseconds(*retry_after + 50));
  auto again = c->request({{"type", "ping"}});
  EXPECT_TRUE(is_ok(again)) << to_string(again);
  EXPECT_FALSE(c->closed());
}

}  // namespace
}  // namespace parley::test
