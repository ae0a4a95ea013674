// Push notifications end to end (docs/PUSH.md; issue 7 "Tests it must have", the parts that
// need the whole server): a webhook receiver on loopback stands in for the app's push
// gateway. One push per chat burst with count and badge; none while the device is online
// or once it came online; muted chats and do-not-disturb send none; a restart with jobs
// queued sends them once; the webhook signature verifies; a 410 removes the target.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_receiver.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

constexpr char kSecret[] = "push-test-webhook-secret";

TomlConfig push_config(const HttpReceiver& receiver, int collapse_ms) {
  auto config = TomlConfig::test_defaults();
  config.set_string("push", "webhook_url", receiver.url("/push"));
  config.set_string("push", "webhook_secret", kSecret);
  config.set("push", "collapse_ms", std::to_string(collapse_ms));
  config.set("push", "poll_ms", "50");
  config.set("push", "backoff_base_ms", "100");
  return config;
}

struct Device {
  std::string user;
  std::string token;
};

Device new_user(std::uint16_t port, std::string_view prefix) {
  Device d{unique_username(prefix), {}};
  register_user(port, d.user);
  d.token = login(port, d.user).token;
  return d;
}

// Registers a webhook target for the device, then disconnects it.
void register_offline(std::uint16_t port, const Device& d) {
  auto c = connect_authed(port, d.token);
  auto r = c->request(json::object{
      {"type", "push_register"}, {"provider", "webhook"}, {"token", "hook-" + d.user}});
  ASSERT_EQ(str_field(r, "type"), "ok") << to_string(r);
}

json::object body_of(const ReceivedRequest& r) { return json::parse(r.body).as_object(); }

// Nothing more arrives at the receiver within `quiet` after `n` requests.
void expect_no_more(HttpReceiver& receiver, size_t n, std::chrono::milliseconds quiet = 1500ms) {
  std::this_thread::sleep_for(quiet);
  EXPECT_EQ(receiver.received().size(), n);
}

TEST(Push, OneSignedPushPerChatBurstWithCountAndBadge) {
  HttpReceiver receiver;
  ServerProcess server(push_config(receiver, 500));
  auto alice = new_user(server.port(), "pa");
  auto bob = new_user(server.port(), "pb");
  register_offline(server.port(), bob);

  auto a = connect_authed(server.port(), alice.token);
  for (int i = 0; i < 3; ++i) send_ok(*a, bob.user, "secret text " + std::to_string(i));
  auto got = receiver.wait_for(1, 10s);
  ASSERT_EQ(got.size(), 1u);
  const auto& req = got[0];
  EXPECT_EQ(req.method, "POST");
  auto b = body_of(req);
  EXPECT_EQ(str_field(b, "user"), bob.user);
  EXPECT_EQ(str_field(b, "token"), "hook-" + bob.user);
  EXPECT_EQ(int_field(b, "count"), 3);
  EXPECT_EQ(int_field(b, "badge"), 3);
  EXPECT_EQ(str_field(b, "sender"), alice.user);
  EXPECT_FALSE(b.contains("preview"));
  EXPECT_EQ(req.body.find("secret text"), std::string::npos);  // no content leaves
  // X-Parley-Signature: sha256=HMAC(secret, "<timestamp>.<body>")
  std::string ts = req.headers.at("x-parley-timestamp");
  EXPECT_EQ(req.headers.at("x-parley-signature"),
            "sha256=" + hmac_sha256_hex(kSecret, ts + "." + req.body));
  expect_no_more(receiver, 1);

  // A second burst, later: a second push, badge counting everything unread.
  send_ok(*a, bob.user, "more");
  got = receiver.wait_for(2, 10s);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(int_field(body_of(got[1]), "count"), 1);
  EXPECT_EQ(int_field(body_of(got[1]), "badge"), 4);
}

TEST(Push, NoPushWhileOnlineOrOnceTheDeviceCameBack) {
  HttpReceiver receiver;
  ServerProcess server(push_config(receiver, 1500));
  auto alice = new_user(server.port(), "pc");
  auto bob = new_user(server.port(), "pd");
  register_offline(server.port(), bob);
  auto a = connect_authed(server.port(), alice.token);
  {
    auto b = connect_authed(server.port(), bob.token);
    send_ok(*a, bob.user, "while online");
    ASSERT_TRUE(
        b->wait_for([](const WsClient::Frame& f) { return str_field(f, "type") == "message"; }));
  }
  std::this_thread::sleep_for(200ms);  // the server sees bob's device go
  send_ok(*a, bob.user, "while offline");
  auto b = connect_authed(server.port(), bob.token);  // back within the collapse window
  expect_no_more(receiver, 0, 2500ms);
}

TEST(Push, MutedChatsAndDoNotDisturbSendNothingPreviewsWhenAsked) {
  HttpReceiver receiver;
  ServerProcess server(push_config(receiver, 200));
  auto alice = new_user(server.port(), "pe");
  auto bob = new_user(server.port(), "pf");
  auto carol = new_user(server.port(), "pg");
  register_offline(server.port(), bob);
  auto a = connect_authed(server.port(), alice.token);
  auto c = connect_authed(server.port(), carol.token);
  send_ok(*a, bob.user, "first");
  send_ok(*c, bob.user, "first from carol");
  ASSERT_EQ(receiver.wait_for(2, 10s).size(), 2u);
  {
    auto b = connect_authed(server.port(), bob.token);
    auto muted = b->request(json::object{{"type", "mute"}, {"with", alice.user}, {"until", -1}});
    ASSERT_EQ(str_field(muted, "type"), "ok") << to_string(muted);
    auto nobody = b->request(json::object{{"type", "mute"}, {"chat_id", 987654}, {"until", -1}});
    EXPECT_EQ(str_field(nobody, "type"), "error");
  }
  std::this_thread::sleep_for(200ms);
  send_ok(*a, bob.user, "muted");  // nothing
  send_ok(*c, bob.user, "not muted");
  auto got = receiver.wait_for(3, 10s);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(str_field(body_of(got[2]), "sender"), carol.user);
  expect_no_more(receiver, 3, 1000ms);

  // Do not disturb for an hour: nothing; previews on, DND off: the text comes along.
  {
    auto b = connect_authed(server.port(), bob.token);
    auto dnd = b->request(json::object{{"type", "settings"}, {"dnd_until", now_ms() + 3'600'000}});
    ASSERT_EQ(str_field(dnd, "type"), "ok") << to_string(dnd);
  }
  std::this_thread::sleep_for(200ms);
  send_ok(*c, bob.user, "during dnd");
  expect_no_more(receiver, 3, 1000ms);
  {
    auto b = connect_authed(server.port(), bob.token);
    auto s =
        b->request(json::object{{"type", "settings"}, {"dnd_until", 0}, {"push_preview", true}});
    ASSERT_EQ(str_field(s, "type"), "ok") << to_string(s);
    EXPECT_TRUE(bool_field(obj_field(s, "result"), "push_preview"));
  }
  std::this_thread::sleep_for(200ms);
  send_ok(*c, bob.user, "hello with preview");
  got = receiver.wait_for(4, 10s);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(str_field(body_of(got[3]), "preview"), "hello with preview");
}

TEST(Push, QueuedJobsSurviveARestartAndAreSentOnce) {
  HttpReceiver receiver;
  ServerProcess server(push_config(receiver, 4000));
  auto alice = new_user(server.port(), "ph");
  auto bob = new_user(server.port(), "pi");
  register_offline(server.port(), bob);
  {
    auto a = connect_authed(server.port(), alice.token);
    send_ok(*a, bob.user, "before the restart");
    send_ok(*a, bob.user, "before the restart, 2");
  }
  auto st = server.stop();  // before the job is due
  ASSERT_TRUE(st.ok()) << st.describe();
  EXPECT_TRUE(receiver.received().empty());
  server.restart();
  auto got = receiver.wait_for(1, 15s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(int_field(body_of(got[0]), "count"), 2);
  expect_no_more(receiver, 1, 2000ms);
}

TEST(Push, GoneTokenIsRemoved) {
  HttpReceiver receiver;
  receiver.script({410});
  ServerProcess server(push_config(receiver, 200));
  auto alice = new_user(server.port(), "pj");
  auto bob = new_user(server.port(), "pk");
  register_offline(server.port(), bob);
  auto a = connect_authed(server.port(), alice.token);
  send_ok(*a, bob.user, "to a gone token");
  ASSERT_EQ(receiver.wait_for(1, 10s).size(), 1u);
  std::this_thread::sleep_for(500ms);
  send_ok(*a, bob.user, "nobody to tell");
  expect_no_more(receiver, 1, 1500ms);
}

TEST(Push, RetriesAServerErrorThenDelivers) {
  HttpReceiver receiver;
  receiver.script({500, 503});
  ServerProcess server(push_config(receiver, 200));
  auto alice = new_user(server.port(), "pl");
  auto bob = new_user(server.port(), "pm");
  register_offline(server.port(), bob);
  auto a = connect_authed(server.port(), alice.token);
  send_ok(*a, bob.user, "eventually");
  auto got = receiver.wait_for(3, 20s);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].body, got[2].body);  // the same notification, retried
  expect_no_more(receiver, 3, 1500ms);
}

}  // namespace
}  // namespace parley::test
