// Delivery, sync, history and ordering over real sockets (PROTOCOL.md §3.3-3.7; DESIGN G2-G4).
#include <gtest/gtest.h>

#include <algorithm>
#include <latch>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;

constexpr std::int64_t kMaxSafeInteger = (std::int64_t{1} << 53) - 1;

class DeliveryTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = std::make_unique<ServerProcess>(); }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

// The message pushes in `frames`, in order.
std::vector<json::object> message_pushes(const std::vector<WsClient::Frame>& frames) {
  std::vector<json::object> out;
  for (const auto& f : frames) {
    if (is_push(f) && str_field(f, "type") == "message") out.push_back(f);
  }
  return out;
}

TEST_F(DeliveryTest, OnlineDeliveryReachesEveryDeviceExceptTheSendingConnection) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  const auto a1_token = login(port(), alice).token;
  auto a1 = connect_authed(port(), a1_token);
  // A second connection of the same device is not "the connection that sent it".
  auto a1b = connect_authed(port(), a1_token);
  auto a2 = connect_authed(port(), login(port(), alice).token);
  auto b1 = connect_authed(port(), login(port(), bob).token);
  auto b2 = connect_authed(port(), login(port(), bob).token);

  const std::int64_t before = now_ms();
  auto ack = send_ok(*a1, bob, "hi bob", "online-1");
  const std::int64_t after = now_ms();
  ASSERT_FALSE(ack.empty());
  const auto chat_id = int_field(ack, "chat_id");
  EXPECT_GE(chat_id, 1);
  EXPECT_LE(chat_id, kMaxSafeInteger);
  EXPECT_EQ(int_field(ack, "seq"), 1);
  const auto message_id = str_field(ack, "message_id");
  EXPECT_FALSE(message_id.empty());
  EXPECT_EQ(message_id.find_first_not_of("0123456789"), std::string::npos) << message_id;
  // `ts` is the server's clock in ms since the epoch; same machine, so within the call.
  EXPECT_GE(int_field(ack, "ts"), before - 1000);
  EXPECT_LE(int_field(ack, "ts"), after + 1000);
  EXPECT_EQ(int_field(ack, "pts"), 1);  // alice's first update
  EXPECT_FALSE(bool_field(ack, "duplicate"));

  for (auto* device : {b1.get(), b2.get(), a2.get(), a1b.get()}) {
    auto push = device->next_push();
    ASSERT_TRUE(push.has_value()) << "a device got no push";
    EXPECT_EQ(str_field(*push, "type"), "message");
    EXPECT_EQ(int_field(*push, "pts"), 1);  // first update in bob's log and in alice's
    const auto& m = obj_field(*push, "message");
    EXPECT_TRUE(is_message(m, chat_id, 1, alice, bob, "hi bob"));
    EXPECT_EQ(str_field(m, "message_id"), message_id);
    EXPECT_EQ(int_field(m, "ts"), int_field(ack, "ts"));
    EXPECT_EQ(str_field(m, "client_msg_id"), "online-1");
  }

  // A second send: its ack (pts 2) comes after anything about pts 1 on this connection
  // (§3.1: per connection, everything about the user's log is in pts order). So had the
  // sending connection been pushed the first message, it would be queued by now.
  auto ack2 = send_ok(*a1, bob, "second", "online-2");
  EXPECT_EQ(int_field(ack2, "seq"), 2);
  EXPECT_EQ(int_field(ack2, "pts"), 2);
  EXPECT_EQ(int_field(ack2, "chat_id"), chat_id);
  a1->poll();
  EXPECT_TRUE(message_pushes(a1->received()).empty())
      << "the sending connection was pushed its own message";
  for (auto* device : {b1.get(), b2.get(), a2.get(), a1b.get()}) {
    auto push = device->next_push();
    ASSERT_TRUE(push.has_value());
    EXPECT_EQ(int_field(*push, "pts"), 2);
    EXPECT_TRUE(is_message(obj_field(*push, "message"), chat_id, 2, alice, bob, "second"));
  }

  // Bob answers in the same chat by chat_id; bob's log is at 2, so this is bob's pts 3.
  auto reply = send_to_chat_ok(*b1, chat_id, "hi alice", "reply-1");
  EXPECT_EQ(int_field(reply, "chat_id"), chat_id);
  EXPECT_EQ(int_field(reply, "seq"), 3);
  EXPECT_EQ(int_field(reply, "pts"), 3);
  for (auto* device : {a1.get(), a2.get(), b2.get()}) {
    auto push = device->next_push();
    ASSERT_TRUE(push.has_value());
    EXPECT_EQ(int_field(*push, "pts"), 3);
    EXPECT_TRUE(is_message(obj_field(*push, "message"), chat_id, 3, bob, alice, "hi alice"));
  }
  auto ack3 = send_to_chat_ok(*b1, chat_id, "again", "reply-2");
  EXPECT_EQ(int_field(ack3, "pts"), 4);
  b1->poll();
  for (const auto& p : message_pushes(b1->received())) {
    EXPECT_NE(str_field(obj_field(p, "message"), "sender"), bob)
        << "the sending connection was pushed its own message: " << to_string(p);
  }

  // A new connection learns the committed position at auth.
  WsClient late(port());
  auto auth = late.auth(login(port(), bob).token);
  ASSERT_TRUE(is_ok(auth)) << to_string(auth);
  EXPECT_EQ(int_field(obj_field(auth, "result"), "pts"), 4);
}

TEST_F(DeliveryTest, OfflineDeviceSyncsEverythingInOrderAndPages) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  const auto bob_token = login(port(), bob).token;
  std::int64_t cursor = 0;
  {
    WsClient b(port());
    auto auth = b.auth(bob_token);
    ASSERT_TRUE(is_ok(auth)) << to_string(auth);
    cursor = int_field(obj_field(auth, "result"), "pts");
    EXPECT_EQ(cursor, 0);
  }

  constexpr int kCount = 25;
  auto a = connect_authed(port(), login(port(), alice).token);
  std::vector<json::object> acks;
  std::vector<std::string> cmids;
  for (int i = 1; i <= kCount; ++i) {
    cmids.push_back(next_client_msg_id());
    acks.push_back(send_ok(*a, bob, "m-" + std::to_string(i), cmids.back()));
  }
  const auto chat_id = int_field(acks.front(), "chat_id");

  WsClient b(port());
  auto auth = b.auth(bob_token);
  ASSERT_TRUE(is_ok(auth)) << to_string(auth);
  EXPECT_EQ(int_field(obj_field(auth, "result"), "pts"), cursor + kCount);

  auto all = request_ok(b, {{"type", "sync"}, {"pts", cursor}});
  const auto& updates = arr_field(all, "updates");
  ASSERT_EQ(updates.size(), static_cast<std::size_t>(kCount)) << to_string(all);
  for (int i = 0; i < kCount; ++i) {
    const auto& u = updates[i].as_object();
    EXPECT_EQ(int_field(u, "pts"), cursor + i + 1) << "updates must be gapless, oldest first";
    EXPECT_EQ(str_field(u, "kind"), "message");
    const auto& m = obj_field(u, "message");
    EXPECT_TRUE(is_message(m, chat_id, i + 1, alice, bob, "m-" + std::to_string(i + 1)));
    EXPECT_EQ(str_field(m, "message_id"), str_field(acks[i], "message_id"));
    EXPECT_EQ(str_field(m, "client_msg_id"), cmids[i]);
  }
  EXPECT_EQ(int_field(all, "pts"), cursor + kCount);
  EXPECT_FALSE(bool_field(all, "has_more"));
  EXPECT_FALSE(bool_field(all, "limited"));

  // The same in pages of 10: 10 + 10 + 5, has_more until the last.
  std::int64_t pts = cursor;
  std::vector<std::size_t> sizes;
  std::vector<bool> more;
  std::int64_t expect_pts = cursor + 1;
  for (int page = 0; page < 5; ++page) {
    auto r = request_ok(b, {{"type", "sync"}, {"pts", pts}, {"limit", 10}});
    const auto& ups = arr_field(r, "updates");
    sizes.push_back(ups.size());
    more.push_back(bool_field(r, "has_more"));
    for (const auto& u : ups) EXPECT_EQ(int_field(u.as_object(), "pts"), expect_pts++);
    if (!ups.empty()) {
      EXPECT_EQ(int_field(r, "pts"), int_field(ups.back().as_object(), "pts"));
    }
    pts = int_field(r, "pts");
    if (!bool_field(r, "has_more")) break;
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{10, 10, 5}));
  EXPECT_EQ(more, (std::vector<bool>{true, true, false}));
  EXPECT_EQ(pts, cursor + kCount);

  // Nothing after the head.
  auto empty = request_ok(b, {{"type", "sync"}, {"pts", pts}});
  EXPECT_TRUE(arr_field(empty, "updates").empty());
  EXPECT_FALSE(bool_field(empty, "has_more"));
  EXPECT_EQ(int_field(empty, "pts"), pts);

  // A sync from the middle starts right after it.
  auto mid = request_ok(b, {{"type", "sync"}, {"pts", cursor + 20}});
  ASSERT_EQ(arr_field(mid, "updates").size(), 5u);
  EXPECT_EQ(int_field(arr_field(mid, "updates")[0].as_object(), "pts"), cursor + 21);
}

TEST_F(DeliveryTest, SyncWithoutPtsIsASnapshotOfRecentChats) {
  const auto alice = unique_username("alice");
  const auto carol = unique_username("carol");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), carol);
  register_user(port(), bob);
  auto a = connect_authed(port(), login(port(), alice).token);
  auto c = connect_authed(port(), login(port(), carol).token);
  std::int64_t alice_chat = 0;
  for (int i = 1; i <= 25; ++i) {
    alice_chat = int_field(send_ok(*a, bob, "a-" + std::to_string(i)), "chat_id");
  }
  std::int64_t carol_chat = 0;
  for (int i = 1; i <= 3; ++i) {
    carol_chat = int_field(send_ok(*c, bob, "c-" + std::to_string(i)), "chat_id");
  }
  ASSERT_NE(alice_chat, carol_chat);

  // A new device of bob's, with no pts.
  auto b = connect_authed(port(), login(port(), bob).token);
  auto snap = request_ok(*b, {{"type", "sync"}});
  EXPECT_TRUE(bool_field(snap, "snapshot"));
  EXPECT_FALSE(bool_field(snap, "limited")) << "a fresh device is not 'limited'";
  EXPECT_EQ(int_field(snap, "pts"), 28);
  EXPECT_TRUE(arr_field(snap, "updates").empty());
  EXPECT_FALSE(bool_field(snap, "has_more"));
  const auto& chats = arr_field(snap, "chats");
  ASSERT_EQ(chats.size(), 2u) << to_string(snap);
  std::map<std::int64_t, json::object> by_id;
  for (const auto& ch : chats) by_id[int_field(ch.as_object(), "chat_id")] = ch.as_object();
  ASSERT_TRUE(by_id.count(alice_chat) && by_id.count(carol_chat)) << to_string(snap);

  const auto& ac = by_id[alice_chat];
  EXPECT_EQ(str_field(ac, "kind"), "direct");
  EXPECT_EQ(str_field(ac, "peer"), alice);
  EXPECT_EQ(int_field(ac, "last_seq"), 25);
  const auto& am = arr_field(ac, "messages");
  ASSERT_EQ(am.size(), 20u) << "default sync.snapshot_messages is 20";
  for (std::size_t i = 0; i < am.size(); ++i) {
    const auto seq = static_cast<std::int64_t>(i) + 6;  // the last 20, oldest first
    EXPECT_TRUE(
        is_message(am[i].as_object(), alice_chat, seq, alice, bob, "a-" + std::to_string(seq)));
  }
  EXPECT_TRUE(bool_field(ac, "has_more"));

  const auto& cc = by_id[carol_chat];
  EXPECT_EQ(str_field(cc, "peer"), carol);
  EXPECT_EQ(int_field(cc, "last_seq"), 3);
  ASSERT_EQ(arr_field(cc, "messages").size(), 3u);
  EXPECT_TRUE(
      is_message(arr_field(cc, "messages")[0].as_object(), carol_chat, 1, carol, bob, "c-1"));
  EXPECT_FALSE(bool_field(cc, "has_more"));

  // The device continues with sync from the snapshot's pts.
  auto next = request_ok(*b, {{"type", "sync"}, {"pts", int_field(snap, "pts")}});
  EXPECT_TRUE(arr_field(next, "updates").empty());
  EXPECT_FALSE(bool_field(next, "has_more"));
  send_ok(*a, bob, "after-snapshot");
  auto push = b->next_push();
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(int_field(*push, "pts"), 29);
}

TEST_F(DeliveryTest, HistoryPagesBackwards) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  const auto carol = unique_username("carol");
  register_user(port(), alice);
  register_user(port(), bob);
  register_user(port(), carol);
  auto a = connect_authed(port(), login(port(), alice).token);
  std::int64_t chat_id = 0;
  for (int i = 1; i <= 12; ++i) {
    chat_id = int_field(send_ok(*a, bob, "h-" + std::to_string(i)), "chat_id");
  }

  auto check_page = [&](const json::object& r, std::int64_t first, std::int64_t last,
                        bool has_more) {
    EXPECT_EQ(int_field(r, "chat_id"), chat_id);
    const auto& ms = arr_field(r, "messages");
    ASSERT_EQ(static_cast<std::int64_t>(ms.size()), last - first + 1) << to_string(r);
    for (std::int64_t seq = first; seq <= last; ++seq) {
      EXPECT_TRUE(is_message(ms[seq - first].as_object(), chat_id, seq, alice, bob,
                             "h-" + std::to_string(seq)));
    }
    EXPECT_EQ(bool_field(r, "has_more"), has_more) << to_string(r);
  };

  check_page(request_ok(*a, {{"type", "history"}, {"with", bob}, {"limit", 5}}), 8, 12, true);
  check_page(request_ok(*a, {{"type", "history"}, {"with", bob}, {"before_seq", 8}, {"limit", 5}}),
             3, 7, true);
  check_page(request_ok(*a, {{"type", "history"}, {"with", bob}, {"before_seq", 3}, {"limit", 5}}),
             1, 2, false);
  // Defaults: the newest, limit 50.
  check_page(request_ok(*a, {{"type", "history"}, {"with", bob}}), 1, 12, false);

  // The other member, by chat_id.
  auto b = connect_authed(port(), login(port(), bob).token);
  check_page(
      request_ok(*b,
                 {{"type", "history"}, {"chat_id", chat_id}, {"before_seq", 13}, {"limit", 50}}),
      1, 12, false);
  check_page(request_ok(*b, {{"type", "history"}, {"chat_id", chat_id}, {"before_seq", 2}}), 1, 1,
             false);

  // `with` a user one has no chat with: no messages, chat_id 0.
  auto none = request_ok(*a, {{"type", "history"}, {"with", carol}});
  EXPECT_EQ(int_field(none, "chat_id"), 0);
  EXPECT_TRUE(arr_field(none, "messages").empty());
}

TEST_F(DeliveryTest, ChatListIsOrderedByLastActivity) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  const auto carol = unique_username("carol");
  register_user(port(), alice);
  register_user(port(), bob);
  register_user(port(), carol);
  auto a = connect_authed(port(), login(port(), alice).token);
  auto with_bob = send_ok(*a, bob, "to bob 1");
  send_ok(*a, bob, "to bob 2");
  auto with_carol = send_ok(*a, carol, "to carol");

  auto list = request_ok(*a, {{"type", "chats"}});
  const auto& chats = arr_field(list, "chats");
  ASSERT_EQ(chats.size(), 2u) << to_string(list);
  EXPECT_EQ(int_field(chats[0].as_object(), "chat_id"), int_field(with_carol, "chat_id"));
  EXPECT_EQ(str_field(chats[0].as_object(), "peer"), carol);
  EXPECT_EQ(int_field(chats[0].as_object(), "last_seq"), 1);
  EXPECT_EQ(str_field(chats[0].as_object(), "kind"), "direct");
  EXPECT_EQ(int_field(chats[1].as_object(), "chat_id"), int_field(with_bob, "chat_id"));
  EXPECT_EQ(int_field(chats[1].as_object(), "last_seq"), 2);
  EXPECT_EQ(str_field(obj_field(chats[1].as_object(), "last_message"), "body"), "to bob 2");
  EXPECT_FALSE(bool_field(list, "has_more"));
  EXPECT_EQ(int_field(list, "pts"), 3);

  auto page = request_ok(*a, {{"type", "chats"}, {"limit", 1}});
  ASSERT_EQ(arr_field(page, "chats").size(), 1u);
  EXPECT_TRUE(bool_field(page, "has_more"));
}

TEST_F(DeliveryTest, RetryWithSameClientMsgIdIsIdempotent) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  const auto alice_token = login(port(), alice).token;
  auto a1 = connect_authed(port(), alice_token);
  auto a2 = connect_authed(port(), login(port(), alice).token);
  auto b = connect_authed(port(), login(port(), bob).token);

  auto first = send_ok(*a1, bob, "exactly once", "retry-me");
  ASSERT_FALSE(first.empty());
  EXPECT_FALSE(bool_field(first, "duplicate"));
  auto expect_same = [&](const json::object& again, const char* where) {
    SCOPED_TRACE(where);
    EXPECT_TRUE(bool_field(again, "duplicate"));
    for (const char* key : {"chat_id", "seq", "ts", "pts"}) {
      EXPECT_EQ(int_field(again, key), int_field(first, key)) << key;
    }
    EXPECT_EQ(str_field(again, "message_id"), str_field(first, "message_id"));
  };
  expect_same(send_ok(*a1, bob, "exactly once", "retry-me"), "same connection");
  expect_same(send_ok(*a2, bob, "exactly once", "retry-me"), "other device");
  {
    auto a3 = connect_authed(port(), alice_token);  // reconnect, then retry
    expect_same(send_ok(*a3, bob, "exactly once", "retry-me"), "after reconnect");
  }

  // The retries stored nothing: the next message follows directly.
  auto next = send_ok(*a1, bob, "next", "retry-next");
  EXPECT_EQ(int_field(next, "seq"), int_field(first, "seq") + 1);
  EXPECT_EQ(int_field(next, "pts"), int_field(first, "pts") + 1);

  // Bob was pushed the message once, then the next one.
  auto p1 = b->next_push();
  auto p2 = b->next_push();
  ASSERT_TRUE(p1 && p2);
  EXPECT_EQ(str_field(obj_field(*p1, "message"), "client_msg_id"), "retry-me");
  EXPECT_EQ(str_field(obj_field(*p2, "message"), "client_msg_id"), "retry-next");
  EXPECT_EQ(int_field(*p2, "pts"), int_field(*p1, "pts") + 1);

  auto history = full_history(*b, int_field(first, "chat_id"));
  ASSERT_EQ(history.size(), 2u) << to_string(history);
  EXPECT_EQ(str_field(history[0].as_object(), "client_msg_id"), "retry-me");
  EXPECT_EQ(str_field(history[0].as_object(), "message_id"), str_field(first, "message_id"));

  // client_msg_id is unique per sending user: bob may use the same key.
  auto bobs = send_ok(*b, alice, "bob's own", "retry-me");
  EXPECT_FALSE(bool_field(bobs, "duplicate"));
  EXPECT_EQ(int_field(bobs, "seq"), int_field(first, "seq") + 2);
  EXPECT_NE(str_field(bobs, "message_id"), str_field(first, "message_id"));
}

// PROTOCOL.md §3.1: a message may carry several requests, one per line, each answered on its
// own; a client that asked for batching at auth gets frames gathered into fewer messages.
TEST_F(DeliveryTest, SeveralRequestsPerMessageAndBatchedPushes) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);
  auto a = connect_authed(port(), login(port(), alice).token);
  WsClient b(port());
  ASSERT_TRUE(is_ok(b.auth(login(port(), bob).token, /*batch=*/true)));

  constexpr int kSends = 200;
  std::string message;
  for (int i = 1; i <= kSends; ++i) {
    if (i > 1) message += '\n';
    message += json::serialize(json::object{{"type", "send"},
                                            {"id", i},
                                            {"to", bob},
                                            {"client_msg_id", "batch-" + std::to_string(i)},
                                            {"body", "m" + std::to_string(i)}});
  }
  // A pretty-printed request (newlines inside the object), a malformed line and a blank line
  // in the same message: each line is its own request.
  message += "\n{\n  \"type\": \"ping\",\n  \"id\": 900\n}\n\n{not json\n";
  ASSERT_FALSE(a->send_text(message));
  for (int i = 1; i <= kSends; ++i) {
    auto r = a->wait_response(i);
    ASSERT_TRUE(r) << "no answer to send " << i;
    ASSERT_TRUE(is_ok(*r)) << to_string(*r);
    EXPECT_EQ(int_field(obj_field(*r, "result"), "seq"), i);
  }
  auto pong = a->wait_response(900);
  ASSERT_TRUE(pong);
  EXPECT_TRUE(is_ok(*pong)) << to_string(*pong);
  auto bad = a->wait_for([](const WsClient::Frame& f) {
    return str_field(f, "type") == "error" && f.at("id").is_null();
  });
  ASSERT_TRUE(bad);
  EXPECT_EQ(str_field(*bad, "code"), "bad_request");

  // Bob gets every message once, in order, with gapless pts, in fewer WebSocket messages.
  std::vector<json::object> pushes;
  while (pushes.size() < kSends) {
    auto p = b.next_push(std::chrono::seconds(10));
    ASSERT_TRUE(p) << "after " << pushes.size() << " pushes";
    if (str_field(*p, "type") == "message") pushes.push_back(*p);
  }
  for (int i = 0; i < kSends; ++i) {
    EXPECT_EQ(int_field(obj_field(pushes[i], "message"), "seq"), i + 1);
    if (i) {
      EXPECT_EQ(int_field(pushes[i], "pts"), int_field(pushes[i - 1], "pts") + 1);
    }
  }
  EXPECT_LE(b.messages(), b.received().size());
}

// Several connections of both members send into one chat at once (also racing to create
// the chat). Every device of both users must see seq 1..N gapless and in order.
TEST_F(DeliveryTest, ConcurrentSendersYieldOneGaplessOrder) {
  constexpr int kPerSender = 25;
  constexpr int kWindow = 8;  // pipelined sends per connection
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(port(), alice);
  register_user(port(), bob);

  struct Device {
    std::string user;
    std::string peer;
    std::unique_ptr<WsClient> ws;
    bool sender;
    std::vector<json::object> acks;  // in completion order
    std::string error;
  };
  std::vector<Device> devices;
  for (const auto& [user, peer] : {std::pair{alice, bob}, std::pair{bob, alice}}) {
    for (int i = 0; i < 3; ++i) {
      devices.push_back(
          Device{user, peer, connect_authed(port(), login(port(), user).token), i < 2, {}, {}});
    }
  }
  const int total = kPerSender * 4;

  std::latch go(4);
  std::vector<std::thread> threads;
  for (std::size_t d = 0; d < devices.size(); ++d) {
    if (!devices[d].sender) continue;
    threads.emplace_back([&, d] {
      Device& dev = devices[d];
      try {
        go.arrive_and_wait();
        std::deque<std::int64_t> inflight;
        int sent = 0;
        while (sent < kPerSender || !inflight.empty()) {
          while (sent < kPerSender && static_cast<int>(inflight.size()) < kWindow) {
            inflight.push_back(dev.ws->send_request(send_frame(
                dev.peer, dev.user + " #" + std::to_string(sent), next_client_msg_id())));
            ++sent;
          }
          auto res = dev.ws->wait_response(inflight.front());
          if (!res) throw std::runtime_error("no response to a send");
          if (!is_ok(*res)) throw std::runtime_error("send failed: " + to_string(*res));
          dev.acks.push_back(obj_field(*res, "result"));
          inflight.pop_front();
        }
      } catch (const std::exception& e) {
        dev.error = e.what();
      }
    });
  }
  for (auto& t : threads) t.join();
  for (const auto& dev : devices) ASSERT_TRUE(dev.error.empty()) << dev.error;

  // One chat; seqs 1..N, each once.
  std::set<std::int64_t> chat_ids;
  std::map<std::int64_t, std::string> message_id_by_seq;
  for (const auto& dev : devices) {
    for (const auto& ack : dev.acks) {
      chat_ids.insert(int_field(ack, "chat_id"));
      EXPECT_TRUE(
          message_id_by_seq.emplace(int_field(ack, "seq"), str_field(ack, "message_id")).second)
          << "seq " << int_field(ack, "seq") << " was assigned twice";
    }
  }
  ASSERT_EQ(chat_ids.size(), 1u) << "the first messages created more than one chat";
  const auto chat_id = *chat_ids.begin();
  ASSERT_EQ(message_id_by_seq.size(), static_cast<std::size_t>(total));
  EXPECT_EQ(message_id_by_seq.begin()->first, 1);
  EXPECT_EQ(message_id_by_seq.rbegin()->first, total);

  // Every device: its acks and pushes cover pts 1..N of its user's log, arrive in pts order
  // on the connection, and in pts order the seqs are 1..N.
  for (auto& dev : devices) {
    SCOPED_TRACE(dev.user + (dev.sender ? " (sender)" : " (observer)"));
    const std::size_t expect_pushes = total - dev.acks.size();
    std::size_t pushes = message_pushes(dev.ws->received()).size();
    while (pushes < expect_pushes) {
      if (!dev.ws->next_push(10s)) break;
      pushes = message_pushes(dev.ws->received()).size();
    }
    std::vector<std::pair<std::int64_t, std::int64_t>> arrival;  // (pts, seq)
    for (const auto& f : dev.ws->received()) {
      if (is_push(f) && str_field(f, "type") == "message") {
        const auto& m = obj_field(f, "message");
        EXPECT_EQ(int_field(m, "chat_id"), chat_id);
        EXPECT_EQ(str_field(m, "message_id"), message_id_by_seq[int_field(m, "seq")]);
        arrival.emplace_back(int_field(f, "pts"), int_field(m, "seq"));
      } else if (is_ok(f) && obj_field(f, "result").contains("seq")) {
        const auto& r = obj_field(f, "result");
        arrival.emplace_back(int_field(r, "pts"), int_field(r, "seq"));
      }
    }
    ASSERT_EQ(arrival.size(), static_cast<std::size_t>(total));
    for (std::size_t i = 0; i < arrival.size(); ++i) {
      EXPECT_EQ(arrival[i].first, static_cast<std::int64_t>(i) + 1)
          << "pts out of order or with a gap at arrival " << i;
      EXPECT_EQ(arrival[i].second, static_cast<std::int64_t>(i) + 1)
          << "seq out of order or with a gap at arrival " << i;
    }
  }

  // History agrees.
  auto history = full_history(*devices.back().ws, chat_id);
  ASSERT_EQ(history.size(), static_cast<std::size_t>(total));
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& m = history[i].as_object();
    EXPECT_EQ(int_field(m, "seq"), static_cast<std::int64_t>(i) + 1);
    EXPECT_EQ(str_field(m, "message_id"), message_id_by_seq[int_field(m, "seq")]);
  }
}

}  // namespace
}  // namespace parley::test
