// Big answers and where a new device starts (findings of 2026-12-05 and issue 15): a page
// is bounded by bytes as well as by count, pipelined requests are answered, a new device
// that logged in before the messages gets every one of them, and the chat list pages by
// cursor. Over real sockets, with the server's default bounds (only the request rate is
// raised, so that the test can fill chats quickly).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;

class PagingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto config = TomlConfig::test_defaults();
    config.set("limits", "requests_per_second", "1000000");
    config.set("limits", "burst", "1000000");
    server_ = std::make_unique<ServerProcess>(config);
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

// Sends every request at once, then waits for every answer; expects each to be ok.
std::vector<json::object> pipeline_ok(WsClient& c, const std::vector<json::object>& requests) {
  std::vector<std::int64_t> ids;
  for (const auto& r : requests) ids.push_back(c.send_request(r));
  std::vector<json::object> results;
  for (auto id : ids) {
    auto f = c.wait_response(id, 30s);
    EXPECT_TRUE(f.has_value()) << "no answer to request " << id;
    if (!f) return results;
    EXPECT_EQ(str_field(*f, "type"), "ok") << to_string(*f);
    if (str_field(*f, "type") == "ok") results.push_back(obj_field(*f, "result"));
  }
  return results;
}

// `count` messages of `bytes` bytes each from `from` to a user or chat, in pipelined batches
// (at most 200 in flight, under limits.max_inflight_sends).
void send_many(WsClient& from, const json::object& target, int count, size_t bytes,
               const std::string& tag) {
  for (int done = 0; done < count;) {
    std::vector<json::object> batch;
    for (int i = 0; i < 200 && done < count; ++i, ++done) {
      json::object r = target;
      r["type"] = "send";
      r["client_msg_id"] = next_client_msg_id();
      std::string body = tag + "-" + std::to_string(done + 1) + " ";
      body.resize(bytes, 'x');
      r["body"] = body;
      batch.push_back(std::move(r));
    }
    pipeline_ok(from, batch);
  }
}

// Issue 15, item 1: bob logs in; then 50 messages arrive while no device of his is
// connected; then his device comes: a sync from the cursor its login gave returns all 50 as
// updates, in order, and no snapshot.
TEST_F(PagingTest, ADeviceThatLoggedInBeforeTheMessagesGetsEveryOneOfThem) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  auto a = connect_authed(port(), login(port(), alice).token);
  send_ok(*a, bob, "before bob's login");  // a message the new device need not get
  const auto device = login(port(), bob);
  EXPECT_EQ(device.pts, 1);
  for (int i = 1; i <= 50; ++i) send_ok(*a, bob, "m" + std::to_string(i));

  auto b = connect_authed(port(), device.token);
  auto updates = sync_all(*b, device.pts, 20);
  ASSERT_EQ(updates.size(), 50u);
  for (int i = 0; i < 50; ++i) {
    const auto& u = updates[static_cast<size_t>(i)].as_object();
    EXPECT_EQ(int_field(u, "pts"), device.pts + 1 + i);
    EXPECT_EQ(str_field(obj_field(u, "message"), "body"), "m" + std::to_string(i + 1));
    EXPECT_EQ(int_field(obj_field(u, "message"), "seq"), i + 2);
  }

  // A device linked from bob's (POST /v1/devices) starts the same way.
  auto linked =
      http_post_json(port(), "/v1/devices", json::object{{"device_name", "tab 2"}}, device.token);
  ASSERT_EQ(linked.status, 201u) << linked.body;
  EXPECT_EQ(int_field(linked.object(), "pts"), 51);
  send_ok(*a, bob, "after the link");
  auto t = connect_authed(port(), str_field(linked.object(), "token"));
  auto after_link = sync_all(*t, int_field(linked.object(), "pts"));
  ASSERT_EQ(after_link.size(), 1u);
  EXPECT_EQ(str_field(obj_field(after_link[0].as_object(), "message"), "body"), "after the link");
}

// Findings of 2026-12-05, defect 1: with 4,096-byte messages, a sync of the documented
// maximum limit, or six pipelined history pages, closed the asking connection 4008.
TEST_F(PagingTest, BigPagesAndPipelinedRequestsAreAnsweredNotClosed) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  auto a = connect_authed(port(), login(port(), alice).token);
  send_many(*a, json::object{{"to", bob}}, 1000, 4096, "big");

  auto b = connect_authed(port(), login(port(), bob).token);
  auto first = request_ok(*b, {{"type", "sync"}, {"pts", 0}, {"limit", 1000}});
  const auto& page = arr_field(first, "updates");
  ASSERT_FALSE(page.empty());
  EXPECT_LT(page.size(), 1000u) << "4 MB of updates must not fit one answer";
  EXPECT_TRUE(bool_field(first, "has_more"));
  EXPECT_EQ(int_field(first, "pts"), int_field(page.back().as_object(), "pts"));
  // Paging on from the answer's pts gives every message once, in order.
  auto all = sync_all(*b, 0, 1000);
  ASSERT_EQ(all.size(), 1000u);
  for (size_t i = 0; i < all.size(); ++i)
    ASSERT_EQ(int_field(obj_field(all[i].as_object(), "message"), "seq"),
              static_cast<std::int64_t>(i) + 1);
  const std::int64_t chat = int_field(obj_field(all[0].as_object(), "message"), "chat_id");

  // Six history pages of 200, pipelined: every one answered.
  std::vector<json::object> histories;
  for (int k = 0; k < 6; ++k)
    histories.push_back(json::object{
        {"type", "history"}, {"chat_id", chat}, {"before_seq", 1001 - 150 * k}, {"limit", 200}});
  auto answers = pipeline_ok(*b, histories);
  ASSERT_EQ(answers.size(), 6u);
  for (int k = 0; k < 6; ++k) {
    const auto& msgs = arr_field(answers[static_cast<size_t>(k)], "messages");
    ASSERT_FALSE(msgs.empty());
    EXPECT_EQ(int_field(msgs.back().as_object(), "seq"), 1000 - 150 * k);  // the newest kept
  }
  EXPECT_FALSE(b->closed()) << "closed with " << b->close_code().value_or(0);
  // Still a working connection.
  request_ok(*b, {{"type", "ping"}});
}

// Findings of 2026-12-05, defect 1: a new device of a user in 60 groups never got its
// snapshot. Now every chat is in it with its newest messages, and `older` says how many
// come before them.
TEST_F(PagingTest, ASnapshotOfManyBigChatsFitsAndCountsTheOlderMessages) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  auto a = connect_authed(port(), login(port(), alice).token);
  std::set<std::int64_t> groups;
  for (int g = 0; g < 60; ++g) {
    auto created = request_ok(*a, {{"type", "group_create"},
                                   {"name", "g" + std::to_string(g)},
                                   {"members", json::array{json::value(bob)}}});
    groups.insert(int_field(obj_field(created, "chat"), "chat_id"));
  }
  for (auto chat : groups) send_many(*a, json::object{{"chat_id", chat}}, 20, 4096, "g");

  auto b = connect_authed(port(), login(port(), bob).token);
  auto answer = b->request({{"type", "sync"}}, 30s);
  ASSERT_EQ(str_field(answer, "type"), "ok") << to_string(answer);
  const auto& snap = obj_field(answer, "result");
  EXPECT_TRUE(bool_field(snap, "snapshot"));
  const auto& chats = arr_field(snap, "chats");
  ASSERT_EQ(chats.size(), 60u);
  std::int64_t shown = 0;
  for (const auto& cv : chats) {
    const auto& c = cv.as_object();
    EXPECT_TRUE(groups.count(int_field(c, "chat_id")));
    const auto& msgs = arr_field(c, "messages");
    ASSERT_FALSE(msgs.empty()) << "every chat shows its newest messages";
    EXPECT_EQ(int_field(msgs.back().as_object(), "seq"), 21);  // the event, then 20 messages
    // bob reads the group from its creation (seq 1): everything before the window is older.
    EXPECT_EQ(int_field(c, "older"), int_field(msgs.front().as_object(), "seq") - 1);
    EXPECT_EQ(bool_field(c, "has_more"), int_field(c, "older") > 0);
    shown += static_cast<std::int64_t>(msgs.size());
  }
  EXPECT_LT(shown, 60 * 20) << "more than an answer may hold";
  EXPECT_FALSE(b->closed());
}

// Findings of 2026-12-05: `chats` said has_more with no way to the next page.
TEST_F(PagingTest, TheChatListPagesByCursorAndEachChatAppearsOnce) {
  const auto bob = unique_username("bob");
  register_user(port(), bob);
  std::set<std::int64_t> expected;
  for (int i = 0; i < 7; ++i) {
    const auto peer = unique_username("peer");
    register_user(port(), peer);
    auto p = connect_authed(port(), login(port(), peer).token);
    expected.insert(int_field(send_ok(*p, bob, "hi"), "chat_id"));
  }
  auto b = connect_authed(port(), login(port(), bob).token);
  std::vector<std::int64_t> seen;
  json::object req{{"type", "chats"}, {"limit", 3}};
  for (int pages = 0; pages < 10; ++pages) {
    auto page = request_ok(*b, req);
    for (const auto& c : arr_field(page, "chats"))
      seen.push_back(int_field(c.as_object(), "chat_id"));
    EXPECT_EQ(int_field(page, "unread_total"), 7) << "the badge counts every chat";
    if (!bool_field(page, "has_more")) {
      EXPECT_FALSE(page.contains("next_cursor"));
      break;
    }
    req["cursor"] = str_field(page, "next_cursor");
  }
  EXPECT_EQ(std::set<std::int64_t>(seen.begin(), seen.end()), expected);
  EXPECT_EQ(seen.size(), expected.size()) << "no chat twice";
  // A cursor that no answer gave is refused and changes nothing.
  EXPECT_TRUE(is_error(b->request({{"type", "chats"}, {"cursor", "garbage"}}), "bad_request"));
}

}  // namespace
}  // namespace parley::test
