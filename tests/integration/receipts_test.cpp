// Receipts, unread counts and typing end to end over real sockets (PROTOCOL.md §3.4, §3.5,
// §3.7, §3.9, §3.11, §3.12; issue 5 "Tests it must have": read positions monotonic under
// concurrent devices; unread counts right after a mix of sends, reads and membership changes;
// receipts delivered to an offline sender when it returns).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <latch>
#include <map>
#include <memory>
#include <optional>
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
using Frame = WsClient::Frame;

// The shared server: groups above 4 members are large; typing starts hold for 30 s (longer
// than any wait here, so a `stop` seen within a test was caused by what the test did) and at
// most one start per 200 ms is passed on.
constexpr int kLargeThreshold = 4;
constexpr std::int64_t kLongTypingTtlMs = 30'000;
constexpr int kTypingMinIntervalMs = 200;
// The typing-expiry server: starts not renewed within 1.5 s are stopped by the server.
constexpr std::int64_t kShortTypingTtlMs = 1500;

constexpr std::int64_t kNoSuchChat = 987654321;
// How long to watch for something that must not arrive.
constexpr auto kQuiet = std::chrono::milliseconds(400);
// Longer than typing.min_interval_ms: the next start is passed on again.
constexpr auto kPastMinInterval = std::chrono::milliseconds(kTypingMinIntervalMs + 100);

// ---------------------------------------------------------------------------------------------
// Helpers

struct Account {
  std::string name;
  std::string token;  // the first device's
};

Account new_account(std::uint16_t port, std::string_view prefix) {
  Account a{unique_username(prefix), {}};
  register_user(port, a.name);
  a.token = login(port, a.name).token;
  return a;
}

// A connection of a new device of `a` (a fresh login).
std::unique_ptr<WsClient> connect_new_device(std::uint16_t port, const Account& a) {
  return connect_authed(port, login(port, a.name).token);
}

bool is_str(const json::value* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->as_string() == s;
}
bool is_int(const json::value* v, std::int64_t n) {
  return v != nullptr && v->is_int64() && v->as_int64() == n;
}

json::array users_array(const std::vector<std::string>& users) {
  json::array out;
  for (const auto& u : users) out.emplace_back(u);
  return out;
}

json::object create_group(WsClient& c, std::string_view name,
                          const std::vector<std::string>& members) {
  return request_ok(c,
                    {{"type", "group_create"}, {"name", name}, {"members", users_array(members)}});
}
std::int64_t chat_of(const json::object& group_result) {
  return int_field(obj_field(group_result, "chat"), "chat_id");
}

json::object mark_frame(std::string_view type, std::int64_t chat_id,
                        std::optional<std::int64_t> seq = std::nullopt) {
  json::object f{{"type", type}, {"chat_id", chat_id}};
  if (seq) f["seq"] = *seq;
  return f;
}
json::object typing_frame(std::int64_t chat_id, std::string_view state) {
  return {{"type", "typing"}, {"chat_id", chat_id}, {"state", state}};
}

// Sends `request` and expects an error with `code`.
::testing::AssertionResult refused(WsClient& c, json::object request, std::string_view code) {
  const auto text = json::serialize(request);
  auto f = c.request(std::move(request));
  auto r = is_error(f, code);
  if (!r) r << " (request " << text << ")";
  return r;
}

// Runs the connection for `d`: answers pings and queues whatever arrives.
void pump(WsClient& c, std::chrono::milliseconds d) {
  c.wait_for([](const Frame&) { return false; }, d);
}

// Waits for the `message` push of (chat_id, seq); removes it from the inbox.
std::optional<Frame> wait_message(WsClient& c, std::int64_t chat_id, std::int64_t seq,
                                  std::chrono::milliseconds timeout = 10s) {
  return c.wait_for(
      [&](const Frame& f) {
        if (!is_push(f) || !is_str(f.if_contains("type"), "message")) return false;
        const auto* m = f.if_contains("message");
        return m != nullptr && m->is_object() &&
               is_int(m->as_object().if_contains("chat_id"), chat_id) &&
               is_int(m->as_object().if_contains("seq"), seq);
      },
      timeout);
}

bool is_receipt_push(const Frame& f) {
  const auto* r = f.if_contains("receipt");
  return is_push(f) && is_str(f.if_contains("type"), "receipt") && r != nullptr && r->is_object();
}

bool receipt_matches(const json::object& r, std::int64_t chat_id, const std::string& user,
                     std::string_view kind, std::optional<std::int64_t> seq) {
  return is_int(r.if_contains("chat_id"), chat_id) && is_str(r.if_contains("user"), user) &&
         is_str(r.if_contains("kind"), kind) && (!seq || is_int(r.if_contains("seq"), *seq));
}

// Waits for a `receipt` push about (chat_id, user, kind[, seq]); removes it from the inbox.
std::optional<Frame> wait_receipt(WsClient& c, std::int64_t chat_id, const std::string& user,
                                  std::string_view kind, std::optional<std::int64_t> seq,
                                  std::chrono::milliseconds timeout = 10s) {
  return c.wait_for(
      [&](const Frame& f) {
        return is_receipt_push(f) &&
               receipt_matches(f.at("receipt").as_object(), chat_id, user, kind, seq);
      },
      timeout);
}

// Checks a receipt object (PROTOCOL.md §3.11).
::testing::AssertionResult is_receipt(const json::object& r, std::int64_t chat_id,
                                      const std::string& user, std::string_view kind,
                                      std::int64_t seq) {
  if (!receipt_matches(r, chat_id, user, kind, seq) || !has_int(r, "ts") ||
      int_field(r, "ts") <= 0) {
    return ::testing::AssertionFailure()
           << "expected receipt {chat_id:" << chat_id << ", user:" << user << ", kind:" << kind
           << ", seq:" << seq << ", ts>0}, got " << to_string(r);
  }
  return ::testing::AssertionSuccess();
}

// Every receipt push received so far (taken or not) about (chat_id, user, kind).
std::vector<json::object> receipts_received(const WsClient& c, std::int64_t chat_id,
                                            const std::string& user, std::string_view kind) {
  std::vector<json::object> out;
  for (const auto& f : c.received()) {
    if (is_receipt_push(f) &&
        receipt_matches(f.at("receipt").as_object(), chat_id, user, kind, std::nullopt))
      out.push_back(f);
  }
  return out;
}

bool is_typing_push(const Frame& f, std::int64_t chat_id, const std::string& user,
                    std::string_view state) {
  return is_push(f) && is_str(f.if_contains("type"), "typing") &&
         is_int(f.if_contains("chat_id"), chat_id) && is_str(f.if_contains("user"), user) &&
         is_str(f.if_contains("state"), state);
}
std::optional<Frame> wait_typing(WsClient& c, std::int64_t chat_id, const std::string& user,
                                 std::string_view state, std::chrono::milliseconds timeout = 10s) {
  return c.wait_for([&](const Frame& f) { return is_typing_push(f, chat_id, user, state); },
                    timeout);
}
// How many typing pushes of (chat_id, user, state) the connection received so far.
std::size_t typing_count(const WsClient& c, std::int64_t chat_id, const std::string& user,
                         std::string_view state) {
  return static_cast<std::size_t>(
      std::count_if(c.received().begin(), c.received().end(),
                    [&](const Frame& f) { return is_typing_push(f, chat_id, user, state); }));
}
std::size_t typing_pushes_of_chat(const WsClient& c, std::int64_t chat_id) {
  return static_cast<std::size_t>(
      std::count_if(c.received().begin(), c.received().end(), [&](const Frame& f) {
        return is_push(f) && is_str(f.if_contains("type"), "typing") &&
               is_int(f.if_contains("chat_id"), chat_id);
      }));
}

// A typing request answered ok; returns `forwarded` (false after adding a failure).
bool typing_ok(WsClient& c, json::object request) {
  auto r = request_ok(c, std::move(request));
  if (r.empty()) return false;
  return bool_field(r, "forwarded");
}

json::object chats_of(WsClient& c) { return request_ok(c, {{"type", "chats"}}); }

// The entry of `chat_id` in a `chats` result (empty after adding a failure).
json::object chat_entry(const json::object& chats, std::int64_t chat_id) {
  for (const auto& v : arr_field(chats, "chats")) {
    if (int_field(v.as_object(), "chat_id") == chat_id) return v.as_object();
  }
  ADD_FAILURE() << "chat " << chat_id << " is not in " << to_string(chats);
  return {};
}

// The entry of `user` in an array of {"user":...} objects (`reads`, group_info `members`).
json::object user_entry(const json::array& entries, const std::string& user) {
  for (const auto& v : entries) {
    if (is_str(v.as_object().if_contains("user"), user)) return v.as_object();
  }
  ADD_FAILURE() << user << " is not in " << to_string(entries);
  return {};
}
std::set<std::string> users_in(const json::array& entries) {
  std::set<std::string> out;
  for (const auto& v : entries) out.insert(str_field(v.as_object(), "user"));
  return out;
}

// Expects the user's own read state in a chat entry (`chats`).
void expect_own_state(const json::object& entry, std::int64_t read_seq, std::int64_t delivered_seq,
                      std::int64_t unread) {
  if (entry.empty()) return;
  EXPECT_EQ(int_field(entry, "read_seq"), read_seq) << to_string(entry);
  EXPECT_EQ(int_field(entry, "delivered_seq"), delivered_seq) << to_string(entry);
  EXPECT_EQ(int_field(entry, "unread"), unread) << to_string(entry);
}
void expect_badge(const json::object& chats, std::int64_t unread_total, std::int64_t unread_chats) {
  if (chats.empty()) return;
  EXPECT_EQ(int_field(chats, "unread_total"), unread_total) << to_string(chats);
  EXPECT_EQ(int_field(chats, "unread_chats"), unread_chats) << to_string(chats);
}

// Checks a mark_read / mark_delivered result.
::testing::AssertionResult is_mark_result(const json::object& r, std::int64_t chat_id,
                                          std::string_view kind, std::int64_t seq, bool advanced,
                                          std::int64_t unread) {
  if (r.empty()) return ::testing::AssertionFailure() << "no result";
  if (int_field(r, "chat_id") != chat_id || str_field(r, "kind") != kind ||
      int_field(r, "seq") != seq || bool_field(r, "advanced") != advanced ||
      int_field(r, "unread") != unread || !has_int(r, "pts")) {
    return ::testing::AssertionFailure()
           << "expected {chat_id:" << chat_id << ", kind:" << kind << ", seq:" << seq
           << ", advanced:" << advanced << ", unread:" << unread << ", pts}, got " << to_string(r);
  }
  return ::testing::AssertionSuccess();
}

// `pts` of a mark result (-1 for the empty result of a failed request).
std::int64_t pts_of(const json::object& r) { return r.empty() ? -1 : int_field(r, "pts"); }

std::vector<std::string> kinds_of(const json::array& updates) {
  std::vector<std::string> out;
  for (const auto& u : updates) out.push_back(str_field(u.as_object(), "kind"));
  return out;
}

::testing::AssertionResult gapless_pts(const json::array& updates, std::int64_t first) {
  std::int64_t want = first;
  for (const auto& u : updates) {
    if (int_field(u.as_object(), "pts") != want)
      return ::testing::AssertionFailure()
             << "expected pts " << want << ", got " << to_string(u) << " in " << to_string(updates);
    ++want;
  }
  return ::testing::AssertionSuccess();
}

// The user's committed log position, from `chats`.
std::int64_t log_head(WsClient& c) {
  auto r = chats_of(c);
  return r.empty() ? -1 : int_field(r, "pts");
}

// Nothing was added to the user's log after `pts`.
void expect_log_unchanged(WsClient& c, std::int64_t pts, std::string_view who) {
  auto r = request_ok(c, {{"type", "sync"}, {"pts", pts}});
  if (r.empty()) return;
  EXPECT_TRUE(arr_field(r, "updates").empty()) << who << "'s log grew: " << to_string(r);
  EXPECT_EQ(int_field(r, "pts"), pts) << who << ": " << to_string(r);
}

// ---------------------------------------------------------------------------------------------
// A server with the default configuration but for the large-group threshold and typing.

class ReceiptsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<ServerProcess>(
        TomlConfig::test_defaults()
            .set("groups", "large_threshold", std::to_string(kLargeThreshold))
            .set("typing", "ttl_ms", std::to_string(kLongTypingTtlMs))
            .set("typing", "min_interval_ms", std::to_string(kTypingMinIntervalMs)));
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

// A direct chat: bob's `mark_delivered` reaches alice; bob's `mark_read` reaches alice and
// bob's other device; every position lands in the logs in pts order.
TEST_F(ReceiptsTest, DirectChatReceiptsReachThePeerAndTheOtherDevices) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  auto b2 = connect_new_device(port(), bob);

  std::int64_t chat_id = 0;
  for (int i = 1; i <= 3; ++i) {
    auto ack = send_ok(*a1, bob.name, fmt::format("m{}", i));
    ASSERT_FALSE(ack.empty());
    chat_id = int_field(ack, "chat_id");
    EXPECT_EQ(int_field(ack, "seq"), i);
    EXPECT_EQ(int_field(ack, "pts"), i);
  }
  for (auto* dev : {b1.get(), b2.get()})
    ASSERT_TRUE(wait_message(*dev, chat_id, 3)) << "bob's device did not get the messages";

  // delivered: to the peer's log only.
  auto delivered = request_ok(*b1, mark_frame("mark_delivered", chat_id, 3));
  EXPECT_TRUE(is_mark_result(delivered, chat_id, "delivered", 3, true, 3));
  EXPECT_EQ(pts_of(delivered), 0) << "a direct delivered receipt goes to the peer";
  {
    auto push = wait_receipt(*a1, chat_id, bob.name, "delivered", 3);
    ASSERT_TRUE(push.has_value()) << "alice got no delivered receipt";
    ASSERT_TRUE(has_int(*push, "pts")) << to_string(*push);
    EXPECT_EQ(int_field(*push, "pts"), 4);
    EXPECT_TRUE(is_receipt(obj_field(*push, "receipt"), chat_id, bob.name, "delivered", 3));
  }

  // read up to 2: to both users' logs.
  auto read = request_ok(*b1, mark_frame("mark_read", chat_id, 2));
  EXPECT_TRUE(is_mark_result(read, chat_id, "read", 2, true, 1));
  EXPECT_EQ(pts_of(read), 4) << "bob's log: 3 messages, then this";
  {
    auto push = wait_receipt(*a1, chat_id, bob.name, "read", 2);
    ASSERT_TRUE(push.has_value()) << "alice got no read receipt";
    EXPECT_EQ(int_field(*push, "pts"), 5);
    EXPECT_TRUE(is_receipt(obj_field(*push, "receipt"), chat_id, bob.name, "read", 2));
  }
  {
    auto push = wait_receipt(*b2, chat_id, bob.name, "read", 2);
    ASSERT_TRUE(push.has_value()) << "bob's other device got no read receipt";
    EXPECT_EQ(int_field(*push, "pts"), 4);
    EXPECT_TRUE(is_receipt(obj_field(*push, "receipt"), chat_id, bob.name, "read", 2));
  }

  // `with` instead of chat_id, no seq: up to the chat's last message.
  auto read_all = request_ok(*b2, {{"type", "mark_read"}, {"with", alice.name}});
  EXPECT_TRUE(is_mark_result(read_all, chat_id, "read", 3, true, 0));
  EXPECT_EQ(pts_of(read_all), 5);
  {
    auto push = wait_receipt(*a1, chat_id, bob.name, "read", 3);
    ASSERT_TRUE(push.has_value());
    EXPECT_EQ(int_field(*push, "pts"), 6);
    push = wait_receipt(*b1, chat_id, bob.name, "read", 3);
    ASSERT_TRUE(push.has_value()) << "bob's first device got no read receipt from the second";
    EXPECT_EQ(int_field(*push, "pts"), 5);
  }

  // Past the end: capped at the last seq, which is where bob is already.
  auto capped = request_ok(*b1, mark_frame("mark_read", chat_id, 99));
  EXPECT_TRUE(is_mark_result(capped, chat_id, "read", 3, false, 0));
  EXPECT_EQ(pts_of(capped), 0) << "nothing stored";

  // Bob answers: his own positions move silently (no receipt for it).
  auto reply = send_to_chat_ok(*b1, chat_id, "reply");
  ASSERT_FALSE(reply.empty());
  EXPECT_EQ(int_field(reply, "seq"), 4);
  EXPECT_EQ(int_field(reply, "pts"), 6);
  {
    auto push = wait_message(*a1, chat_id, 4);
    ASSERT_TRUE(push.has_value());
    EXPECT_EQ(int_field(*push, "pts"), 7);
  }
  auto a_read = request_ok(*a1, mark_frame("mark_read", chat_id, 4));
  EXPECT_TRUE(is_mark_result(a_read, chat_id, "read", 4, true, 0));
  EXPECT_EQ(pts_of(a_read), 8) << "bob's send put a receipt into alice's log";
  for (auto* dev : {b1.get(), b2.get()}) {
    auto push = wait_receipt(*dev, chat_id, alice.name, "read", 4);
    ASSERT_TRUE(push.has_value()) << "bob's device got no read receipt from alice";
    EXPECT_EQ(int_field(*push, "pts"), 7);
  }

  // No delivered receipt ever reached bob's own devices (it goes to the peer only).
  for (auto* dev : {b1.get(), b2.get()}) {
    dev->poll();
    EXPECT_TRUE(receipts_received(*dev, chat_id, bob.name, "delivered").empty());
  }

  // The logs: everything in pts order, gapless, receipts as {"kind":"read"|"delivered"}.
  {
    auto log = sync_all(*a1, 0);
    EXPECT_TRUE(gapless_pts(log, 1));
    EXPECT_EQ(kinds_of(log), (std::vector<std::string>{"message", "message", "message", "delivered",
                                                       "read", "read", "message", "read"}))
        << to_string(log);
    if (log.size() == 8) {
      EXPECT_TRUE(
          is_receipt(obj_field(log[3].as_object(), "receipt"), chat_id, bob.name, "delivered", 3));
      EXPECT_TRUE(
          is_receipt(obj_field(log[4].as_object(), "receipt"), chat_id, bob.name, "read", 2));
      EXPECT_TRUE(
          is_receipt(obj_field(log[5].as_object(), "receipt"), chat_id, bob.name, "read", 3));
      EXPECT_TRUE(
          is_receipt(obj_field(log[7].as_object(), "receipt"), chat_id, alice.name, "read", 4));
    }
  }
  {
    auto log = sync_all(*b2, 0);
    EXPECT_TRUE(gapless_pts(log, 1));
    EXPECT_EQ(kinds_of(log), (std::vector<std::string>{"message", "message", "message", "read",
                                                       "read", "message", "read"}))
        << to_string(log);
  }

  // `chats`: own positions and the peer's.
  for (auto& [c, who] :
       std::vector<std::pair<WsClient*, std::string>>{{a1.get(), "alice"}, {b2.get(), "bob"}}) {
    SCOPED_TRACE(who);
    auto chats = chats_of(*c);
    auto e = chat_entry(chats, chat_id);
    expect_own_state(e, 4, 4, 0);
    if (e.empty()) continue;
    EXPECT_EQ(int_field(e, "peer_read_seq"), 4) << to_string(e);
    EXPECT_EQ(int_field(e, "peer_delivered_seq"), 4) << to_string(e);
    expect_badge(chats, 0, 0);
  }
}

// Two devices of bob mark read concurrently with interleaved seqs (one climbing, one going
// down): the position only moves forward, every answer is consistent, and the result is the
// highest seq.
TEST_F(ReceiptsTest, ReadPositionsAreMonotonicUnderConcurrentDevices) {
  constexpr int kMessages = 40;
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  std::int64_t chat_id = 0;
  for (int i = 1; i <= kMessages; ++i) {
    auto ack = send_ok(*a1, bob.name, fmt::format("m{}", i));
    ASSERT_FALSE(ack.empty());
    chat_id = int_field(ack, "chat_id");
  }
  auto b1 = connect_authed(port(), bob.token);
  auto b2 = connect_new_device(port(), bob);
  const auto bob_pts = log_head(*b1);
  ASSERT_EQ(bob_pts, kMessages);

  struct Marker {
    WsClient* ws = nullptr;
    std::vector<std::int64_t> seqs;
    std::vector<std::pair<std::int64_t, json::object>> results;  // (requested seq, result)
    std::string error;
  };
  Marker up{b2.get(), {}, {}, {}};
  Marker down{b1.get(), {}, {}, {}};
  for (int s = 2; s <= kMessages; s += 2) up.seqs.push_back(s);
  for (int s = kMessages - 1; s >= 1; s -= 2) down.seqs.push_back(s);
  std::latch go(2);
  auto run = [&](Marker& m) {
    go.arrive_and_wait();
    try {
      // Pipelined: all requests of this device are in flight together.
      std::vector<std::int64_t> ids;
      for (auto s : m.seqs) ids.push_back(m.ws->send_request(mark_frame("mark_read", chat_id, s)));
      for (std::size_t i = 0; i < ids.size(); ++i) {
        auto res = m.ws->wait_response(ids[i]);
        if (!res) throw std::runtime_error("no response to a mark_read");
        if (!is_ok(*res)) throw std::runtime_error("mark_read failed: " + to_string(*res));
        m.results.emplace_back(m.seqs[i], obj_field(*res, "result"));
      }
    } catch (const std::exception& e) {
      m.error = e.what();
    }
  };
  std::thread t1([&] { run(up); });
  std::thread t2([&] { run(down); });
  t1.join();
  t2.join();
  ASSERT_TRUE(up.error.empty()) << up.error;
  ASSERT_TRUE(down.error.empty()) << down.error;

  // Every answer: never below what was asked; advanced ones stored exactly the request at a
  // log position, the others stored nothing and gave the current position.
  std::map<std::int64_t, std::int64_t> seq_by_pts;  // advanced answers
  for (const auto* m : {&up, &down}) {
    for (const auto& [asked, r] : m->results) {
      SCOPED_TRACE("mark_read " + std::to_string(asked) + " -> " + to_string(r));
      EXPECT_EQ(int_field(r, "chat_id"), chat_id);
      EXPECT_EQ(str_field(r, "kind"), "read");
      const auto seq = int_field(r, "seq");
      EXPECT_GE(seq, asked);
      EXPECT_EQ(int_field(r, "unread"), kMessages - seq);
      if (bool_field(r, "advanced")) {
        EXPECT_EQ(seq, asked);
        EXPECT_GT(int_field(r, "pts"), bob_pts);
        EXPECT_TRUE(seq_by_pts.emplace(int_field(r, "pts"), seq).second) << "pts used twice";
      } else {
        EXPECT_EQ(int_field(r, "pts"), 0);
      }
    }
  }
  ASSERT_FALSE(seq_by_pts.empty());
  {
    std::int64_t last = 0;
    for (const auto& [pts, seq] : seq_by_pts) {
      EXPECT_GT(seq, last) << "the read position went back at pts " << pts;
      last = seq;
    }
    EXPECT_EQ(last, kMessages) << "the highest request was not stored";
  }

  // Bob's log holds exactly the advanced positions, gapless and increasing.
  {
    auto log = sync_all(*b1, bob_pts);
    EXPECT_TRUE(gapless_pts(log, bob_pts + 1));
    ASSERT_EQ(log.size(), seq_by_pts.size()) << to_string(log);
    std::size_t i = 0;
    for (const auto& [pts, seq] : seq_by_pts) {
      const auto& u = log[i++].as_object();
      EXPECT_EQ(int_field(u, "pts"), pts);
      EXPECT_EQ(str_field(u, "kind"), "read");
      EXPECT_TRUE(is_receipt(obj_field(u, "receipt"), chat_id, bob.name, "read", seq));
    }
  }

  // Alice's pushes arrive in pts order with climbing seqs, ending at the highest.
  ASSERT_TRUE(wait_receipt(*a1, chat_id, bob.name, "read", kMessages).has_value());
  {
    auto pushes = receipts_received(*a1, chat_id, bob.name, "read");
    EXPECT_EQ(pushes.size(), seq_by_pts.size());
    std::int64_t last_seq = 0;
    std::int64_t last_pts = kMessages;
    for (const auto& p : pushes) {
      EXPECT_EQ(int_field(p, "pts"), last_pts + 1) << to_string(p);
      EXPECT_GT(int_field(obj_field(p, "receipt"), "seq"), last_seq) << to_string(p);
      last_pts = int_field(p, "pts");
      last_seq = int_field(obj_field(p, "receipt"), "seq");
    }
  }

  // A lower position now: nothing moves, the answer gives the current one.
  auto lower = request_ok(*b1, mark_frame("mark_read", chat_id, 5));
  EXPECT_TRUE(is_mark_result(lower, chat_id, "read", kMessages, false, 0));
  EXPECT_EQ(pts_of(lower), 0);
  // Reading implied delivered.
  auto lower_delivered = request_ok(*b2, mark_frame("mark_delivered", chat_id, 10));
  EXPECT_TRUE(is_mark_result(lower_delivered, chat_id, "delivered", kMessages, false, 0));
  EXPECT_EQ(pts_of(lower_delivered), 0);
  expect_log_unchanged(*b1, bob_pts + static_cast<std::int64_t>(seq_by_pts.size()), "bob");

  for (auto* dev : {b1.get(), b2.get()}) {
    auto chats = chats_of(*dev);
    expect_own_state(chat_entry(chats, chat_id), kMessages, kMessages, 0);
    expect_badge(chats, 0, 0);
  }
  auto e = chat_entry(chats_of(*a1), chat_id);
  if (!e.empty()) {
    EXPECT_EQ(int_field(e, "peer_read_seq"), kMessages);
    EXPECT_EQ(int_field(e, "peer_delivered_seq"), kMessages);
  }
}

// Alice is offline while bob marks her messages delivered and read: she finds the receipts
// in her log when she returns, right after her saved cursor.
TEST_F(ReceiptsTest, OfflineSenderGetsTheReceiptsThroughSync) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  std::int64_t chat_id = 0;
  std::int64_t cursor = 0;
  {
    auto a1 = connect_authed(port(), alice.token);
    send_ok(*a1, bob.name, "one");
    auto ack = send_ok(*a1, bob.name, "two");
    ASSERT_FALSE(ack.empty());
    chat_id = int_field(ack, "chat_id");
    cursor = int_field(ack, "pts");
    EXPECT_EQ(cursor, 2);
    a1->close();
  }

  auto b1 = connect_authed(port(), bob.token);
  EXPECT_TRUE(is_mark_result(request_ok(*b1, mark_frame("mark_delivered", chat_id, 2)), chat_id,
                             "delivered", 2, true, 2));
  EXPECT_TRUE(is_mark_result(request_ok(*b1, mark_frame("mark_read", chat_id, 1)), chat_id, "read",
                             1, true, 1));
  EXPECT_TRUE(is_mark_result(request_ok(*b1, mark_frame("mark_read", chat_id)), chat_id, "read", 2,
                             true, 0));

  WsClient a(port());
  auto auth = a.auth(alice.token);
  ASSERT_TRUE(is_ok(auth)) << to_string(auth);
  EXPECT_EQ(int_field(obj_field(auth, "result"), "pts"), cursor + 3);
  auto r = request_ok(a, {{"type", "sync"}, {"pts", cursor}});
  ASSERT_FALSE(r.empty());
  const auto& updates = arr_field(r, "updates");
  EXPECT_TRUE(gapless_pts(updates, cursor + 1));
  ASSERT_EQ(updates.size(), 3u) << to_string(r);
  EXPECT_EQ(kinds_of(updates), (std::vector<std::string>{"delivered", "read", "read"}));
  EXPECT_TRUE(
      is_receipt(obj_field(updates[0].as_object(), "receipt"), chat_id, bob.name, "delivered", 2));
  EXPECT_TRUE(
      is_receipt(obj_field(updates[1].as_object(), "receipt"), chat_id, bob.name, "read", 1));
  EXPECT_TRUE(
      is_receipt(obj_field(updates[2].as_object(), "receipt"), chat_id, bob.name, "read", 2));
  EXPECT_EQ(int_field(r, "pts"), cursor + 3);
  EXPECT_FALSE(bool_field(r, "has_more"));

  auto e = chat_entry(chats_of(a), chat_id);
  if (!e.empty()) {
    EXPECT_EQ(int_field(e, "peer_read_seq"), 2);
    EXPECT_EQ(int_field(e, "peer_delivered_seq"), 2);
    expect_own_state(e, 2, 2, 0);
  }
}

// Unread counts and the badge after direct and group sends, reads, a member added (it counts
// from its join event) and a member removed (its count stops at the removal); reading on one
// device clears the count on the other.
TEST_F(ReceiptsTest, UnreadCountsFollowSendsReadsAndMembershipChanges) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto dave = new_account(port(), "dave");
  auto a1 = connect_authed(port(), alice.token);
  auto a2 = connect_new_device(port(), alice);
  auto b1 = connect_authed(port(), bob.token);
  auto c1 = connect_authed(port(), carol.token);
  auto d1 = connect_authed(port(), dave.token);

  // carol -> alice: 3; bob -> alice: 2; bob's group with alice and carol: created + 2.
  std::int64_t with_carol = 0;
  for (int i = 0; i < 3; ++i)
    with_carol = int_field(send_ok(*c1, alice.name, "from carol"), "chat_id");
  std::int64_t with_bob = 0;
  for (int i = 0; i < 2; ++i) with_bob = int_field(send_ok(*b1, alice.name, "from bob"), "chat_id");
  auto g = create_group(*b1, "unread", {alice.name, carol.name});
  ASSERT_FALSE(g.empty());
  const auto group = chat_of(g);
  EXPECT_FALSE(bool_field(obj_field(g, "chat"), "large"));
  send_to_chat_ok(*b1, group, "g2");
  EXPECT_EQ(int_field(send_to_chat_ok(*b1, group, "g3"), "seq"), 3);
  EXPECT_TRUE(is_mark_result(request_ok(*c1, mark_frame("mark_read", group, 2)), group, "read", 2,
                             true, 1));
  {
    SCOPED_TRACE("alice before reading");
    auto chats = chats_of(*a1);
    expect_own_state(chat_entry(chats, with_carol), 0, 0, 3);
    EXPECT_EQ(int_field(chat_entry(chats, with_bob), "unread"), 2);
    EXPECT_EQ(int_field(chat_entry(chats, group), "unread"), 3) << "counts from the created event";
    expect_badge(chats, 8, 3);
  }

  // alice reads part of carol's chat and answers bob (which reads it for her).
  EXPECT_TRUE(is_mark_result(request_ok(*a1, mark_frame("mark_read", with_carol, 2)), with_carol,
                             "read", 2, true, 1));
  EXPECT_EQ(int_field(send_to_chat_ok(*a1, with_bob, "answer"), "seq"), 3);
  {
    SCOPED_TRACE("alice after reading and answering");
    auto chats = chats_of(*a1);
    EXPECT_EQ(int_field(chat_entry(chats, with_carol), "unread"), 1);
    expect_own_state(chat_entry(chats, with_bob), 3, 3, 0);
    EXPECT_EQ(int_field(chat_entry(chats, group), "unread"), 3);
    expect_badge(chats, 4, 2);
  }

  // dave joins at seq 4: his count starts at his join event.
  auto added = request_ok(
      *b1, {{"type", "group_add"}, {"chat_id", group}, {"users", users_array({dave.name})}});
  ASSERT_FALSE(added.empty());
  EXPECT_EQ(int_field(added, "seq"), 4);
  EXPECT_EQ(int_field(send_to_chat_ok(*b1, group, "g5"), "seq"), 5);
  {
    SCOPED_TRACE("dave after joining");
    auto chats = chats_of(*d1);
    EXPECT_EQ(int_field(chat_entry(chats, group), "unread"), 2) << "seq 4 (join) and 5";
    expect_badge(chats, 2, 1);
  }

  // carol is removed at seq 6: the group counts no more in her unread counts (findings of
  // 2026-12-05, defect 3: it showed unread 4, messages she may never see again in a chat).
  auto removed =
      request_ok(*b1, {{"type", "group_remove"}, {"chat_id", group}, {"user", carol.name}});
  ASSERT_FALSE(removed.empty());
  EXPECT_EQ(int_field(removed, "seq"), 6);
  EXPECT_EQ(int_field(send_to_chat_ok(*b1, group, "g7"), "seq"), 7);
  {
    SCOPED_TRACE("carol after her removal");
    auto chats = chats_of(*c1);
    auto e = chat_entry(chats, group);
    ASSERT_FALSE(e.empty());
    EXPECT_FALSE(bool_field(e, "member"));
    EXPECT_EQ(int_field(e, "last_seq"), 6);
    EXPECT_EQ(int_field(e, "read_seq"), 2);
    EXPECT_EQ(int_field(e, "unread"), 0) << "not a member: unread nowhere";
    EXPECT_EQ(int_field(chat_entry(chats, with_carol), "unread"), 0) << "she sent all of it";
    expect_badge(chats, 0, 0);
  }
  {
    SCOPED_TRACE("dave");
    auto chats = chats_of(*d1);
    EXPECT_EQ(int_field(chat_entry(chats, group), "unread"), 4);
    expect_badge(chats, 4, 1);
  }
  {
    SCOPED_TRACE("bob");
    auto chats = chats_of(*b1);
    expect_own_state(chat_entry(chats, group), 7, 7, 0);
    EXPECT_EQ(int_field(chat_entry(chats, with_bob), "unread"), 1) << "alice's answer";
    expect_badge(chats, 1, 1);
  }
  {
    SCOPED_TRACE("alice");
    auto chats = chats_of(*a2);
    EXPECT_EQ(int_field(chat_entry(chats, with_carol), "unread"), 1);
    EXPECT_EQ(int_field(chat_entry(chats, with_bob), "unread"), 0);
    auto e = chat_entry(chats, group);
    if (!e.empty()) {
      EXPECT_EQ(int_field(e, "unread"), 7);
      // `reads`: the other active members, not alice, not carol.
      EXPECT_EQ(users_in(arr_field(e, "reads")), (std::set<std::string>{bob.name, dave.name}))
          << to_string(e);
      auto br = user_entry(arr_field(e, "reads"), bob.name);
      if (!br.empty()) {
        EXPECT_EQ(int_field(br, "read_seq"), 7);
        EXPECT_EQ(int_field(br, "delivered_seq"), 7);
      }
    }
    expect_badge(chats, 8, 2);
  }

  // A former member may still mark what it could read, capped at its removal.
  EXPECT_TRUE(is_mark_result(request_ok(*c1, mark_frame("mark_read", group, 7)), group, "read", 6,
                             true, 0));
  expect_badge(chats_of(*c1), 0, 0);

  // alice reads the group on a1: a2 is told and its count clears.
  EXPECT_TRUE(
      is_mark_result(request_ok(*a1, mark_frame("mark_read", group)), group, "read", 7, true, 0));
  {
    auto push = wait_receipt(*a2, group, alice.name, "read", 7);
    ASSERT_TRUE(push.has_value()) << "alice's other device was not told of the read";
    EXPECT_TRUE(has_int(*push, "pts")) << to_string(*push);
    auto chats = chats_of(*a2);
    expect_own_state(chat_entry(chats, group), 7, 7, 0);
    expect_badge(chats, 1, 1);
  }
  EXPECT_TRUE(is_mark_result(request_ok(*a1, {{"type", "mark_read"}, {"with", carol.name}}),
                             with_carol, "read", 3, true, 0));
  {
    ASSERT_TRUE(wait_receipt(*a2, with_carol, alice.name, "read", 3).has_value());
    auto chats = chats_of(*a2);
    for (const auto& v : arr_field(chats, "chats"))
      EXPECT_EQ(int_field(v.as_object(), "unread"), 0) << to_string(v);
    expect_badge(chats, 0, 0);
  }
  // bob's group members learn of alice's read too.
  ASSERT_TRUE(wait_receipt(*b1, group, alice.name, "read", 7).has_value());
  ASSERT_TRUE(wait_receipt(*d1, group, alice.name, "read", 7).has_value());
}

// A group that is not large: receipts reach every active member through the logs; `chats`
// and `group_info` carry everyone's positions.
TEST_F(ReceiptsTest, SmallGroupReceiptsReachEveryActiveMember) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  auto b2 = connect_new_device(port(), bob);
  auto c1 = connect_authed(port(), carol.token);

  auto g = create_group(*a1, "receipts", {bob.name, carol.name});
  ASSERT_FALSE(g.empty());
  const auto group = chat_of(g);
  ASSERT_FALSE(bool_field(obj_field(g, "chat"), "large"));
  send_to_chat_ok(*a1, group, "two");
  EXPECT_EQ(int_field(send_to_chat_ok(*a1, group, "three"), "pts"), 3);
  for (auto* dev : {b1.get(), b2.get(), c1.get()}) ASSERT_TRUE(wait_message(*dev, group, 3));

  // carol: delivered goes to every active member but her.
  auto delivered = request_ok(*c1, mark_frame("mark_delivered", group, 3));
  EXPECT_TRUE(is_mark_result(delivered, group, "delivered", 3, true, 3));
  EXPECT_EQ(pts_of(delivered), 0);
  for (auto& [dev, pts] : std::vector<std::pair<WsClient*, std::int64_t>>{
           {a1.get(), 4}, {b1.get(), 4}, {b2.get(), 4}}) {
    auto push = wait_receipt(*dev, group, carol.name, "delivered", 3);
    ASSERT_TRUE(push.has_value()) << "a member got no delivered receipt";
    ASSERT_TRUE(has_int(*push, "pts")) << to_string(*push);
    EXPECT_EQ(int_field(*push, "pts"), pts);
    EXPECT_TRUE(is_receipt(obj_field(*push, "receipt"), group, carol.name, "delivered", 3));
  }

  // bob: read goes to every active member, bob included.
  auto read = request_ok(*b1, mark_frame("mark_read", group));
  EXPECT_TRUE(is_mark_result(read, group, "read", 3, true, 0));
  EXPECT_EQ(pts_of(read), 5);
  for (auto& [dev, pts] : std::vector<std::pair<WsClient*, std::int64_t>>{
           {a1.get(), 5}, {b2.get(), 5}, {c1.get(), 4}}) {
    auto push = wait_receipt(*dev, group, bob.name, "read", 3);
    ASSERT_TRUE(push.has_value()) << "a member got no read receipt";
    ASSERT_TRUE(has_int(*push, "pts")) << to_string(*push);
    EXPECT_EQ(int_field(*push, "pts"), pts);
  }
  c1->poll();
  EXPECT_TRUE(receipts_received(*c1, group, carol.name, "delivered").empty())
      << "carol's own delivered receipt reached her";

  // `chats`: the other members' positions.
  {
    auto e = chat_entry(chats_of(*a1), group);
    expect_own_state(e, 3, 3, 0);
    if (!e.empty()) {
      const auto& reads = arr_field(e, "reads");
      EXPECT_EQ(users_in(reads), (std::set<std::string>{bob.name, carol.name})) << to_string(e);
      auto br = user_entry(reads, bob.name);
      auto cr = user_entry(reads, carol.name);
      if (!br.empty()) {
        EXPECT_EQ(int_field(br, "read_seq"), 3);
        EXPECT_EQ(int_field(br, "delivered_seq"), 3);
      }
      if (!cr.empty()) {
        EXPECT_EQ(int_field(cr, "read_seq"), 0);
        EXPECT_EQ(int_field(cr, "delivered_seq"), 3);
      }
    }
  }
  {
    auto e = chat_entry(chats_of(*c1), group);
    expect_own_state(e, 0, 3, 3);
    if (!e.empty()) {
      EXPECT_EQ(users_in(arr_field(e, "reads")), (std::set<std::string>{alice.name, bob.name}));
    }
  }
  // `group_info`: every member's positions.
  {
    auto info = request_ok(*c1, {{"type", "group_info"}, {"chat_id", group}});
    ASSERT_FALSE(info.empty());
    const auto& members = arr_field(obj_field(info, "chat"), "members");
    for (auto& [who, read_seq, delivered_seq] :
         std::vector<std::tuple<std::string, std::int64_t, std::int64_t>>{
             {alice.name, 3, 3}, {bob.name, 3, 3}, {carol.name, 0, 3}}) {
      auto m = user_entry(members, who);
      if (m.empty()) continue;
      EXPECT_EQ(int_field(m, "read_seq"), read_seq) << to_string(m);
      EXPECT_EQ(int_field(m, "delivered_seq"), delivered_seq) << to_string(m);
    }
  }

  // After carol's removal her log gets no receipts of the group.
  auto removed =
      request_ok(*a1, {{"type", "group_remove"}, {"chat_id", group}, {"user", carol.name}});
  ASSERT_FALSE(removed.empty());
  const auto removed_seq = int_field(removed, "seq");
  ASSERT_TRUE(wait_message(*c1, group, removed_seq).has_value());
  const auto carol_pts = log_head(*c1);
  auto read2 = request_ok(*b2, mark_frame("mark_read", group));
  EXPECT_TRUE(is_mark_result(read2, group, "read", removed_seq, true, 0));
  ASSERT_TRUE(wait_receipt(*a1, group, bob.name, "read", removed_seq).has_value());
  ASSERT_TRUE(wait_receipt(*b1, group, bob.name, "read", removed_seq).has_value());
  pump(*c1, kQuiet);
  EXPECT_TRUE(std::none_of(c1->inbox().begin(), c1->inbox().end(), [&](const Frame& f) {
    return is_receipt_push(f) && int_field(f.at("receipt").as_object(), "seq") == removed_seq;
  })) << "a removed member got a receipt of the group";
  expect_log_unchanged(*c1, carol_pts, "carol");
}

// A large group: a read goes to the reader's own log; receipts reach the online members
// without pts; nobody else's log grows.
TEST_F(ReceiptsTest, LargeGroupReceiptsArePushedWithoutPts) {
  auto owner = new_account(port(), "owner");
  std::vector<Account> m;
  for (int i = 0; i < kLargeThreshold; ++i) m.push_back(new_account(port(), "lm"));
  auto o1 = connect_authed(port(), owner.token);
  std::vector<std::unique_ptr<WsClient>> dev;  // one per member
  for (const auto& a : m) dev.push_back(connect_authed(port(), a.token));
  auto m0b = connect_new_device(port(), m[0]);  // m[0]'s second device

  std::vector<std::string> names;
  for (const auto& a : m) names.push_back(a.name);
  auto g = create_group(*o1, "large receipts", names);
  ASSERT_FALSE(g.empty());
  const auto group = chat_of(g);
  ASSERT_TRUE(bool_field(obj_field(g, "chat"), "large"))
      << kLargeThreshold + 1 << " members is above the threshold";
  send_to_chat_ok(*o1, group, "hello all");
  for (auto& d : dev) ASSERT_TRUE(wait_message(*d, group, 2));
  ASSERT_TRUE(wait_message(*m0b, group, 2));
  const auto owner_pts = log_head(*o1);
  std::vector<std::int64_t> pts_before;
  for (auto& d : dev) pts_before.push_back(log_head(*d));

  // m0 reads: its own log; pushed without pts to the others.
  auto read = request_ok(*dev[0], mark_frame("mark_read", group, 2));
  EXPECT_TRUE(is_mark_result(read, group, "read", 2, true, 0));
  ASSERT_FALSE(read.empty());
  EXPECT_EQ(int_field(read, "pts"), pts_before[0] + 1) << "the read goes to the reader's log";
  for (auto* d : {o1.get(), dev[1].get(), dev[2].get(), dev[3].get()}) {
    auto push = wait_receipt(*d, group, m[0].name, "read", 2);
    ASSERT_TRUE(push.has_value()) << "an online member got no receipt";
    EXPECT_FALSE(push->contains("pts")) << to_string(*push);
    EXPECT_TRUE(is_receipt(obj_field(*push, "receipt"), group, m[0].name, "read", 2));
  }
  EXPECT_TRUE(wait_receipt(*m0b, group, m[0].name, "read", 2).has_value())
      << "the reader's other device was not told";

  // m1 marks delivered: no log; pushed without pts.
  auto delivered = request_ok(*dev[1], mark_frame("mark_delivered", group, 2));
  EXPECT_TRUE(is_mark_result(delivered, group, "delivered", 2, true, 2));
  EXPECT_EQ(pts_of(delivered), 0);
  for (auto* d : {o1.get(), dev[0].get(), dev[2].get(), dev[3].get()}) {
    auto push = wait_receipt(*d, group, m[1].name, "delivered", 2);
    ASSERT_TRUE(push.has_value()) << "an online member got no receipt";
    EXPECT_FALSE(push->contains("pts")) << to_string(*push);
  }

  // Logs: only the reader's grew, by its read.
  expect_log_unchanged(*o1, owner_pts, "owner");
  for (std::size_t i = 1; i < dev.size(); ++i)
    expect_log_unchanged(*dev[i], pts_before[i], m[i].name);
  {
    auto log = sync_all(*dev[0], pts_before[0]);
    ASSERT_EQ(log.size(), 1u) << to_string(log);
    EXPECT_EQ(str_field(log[0].as_object(), "kind"), "read");
    EXPECT_TRUE(is_receipt(obj_field(log[0].as_object(), "receipt"), group, m[0].name, "read", 2));
  }

  // Positions: own in `chats`, everyone's in `group_info`.
  {
    auto e = chat_entry(chats_of(*dev[0]), group);
    if (!e.empty()) {
      EXPECT_TRUE(bool_field(e, "large"));
    }
    expect_own_state(e, 2, 2, 0);
    expect_own_state(chat_entry(chats_of(*dev[1]), group), 0, 2, 2);
  }
  {
    auto info = request_ok(*dev[2], {{"type", "group_info"}, {"chat_id", group}});
    ASSERT_FALSE(info.empty());
    const auto& members = arr_field(obj_field(info, "chat"), "members");
    for (auto& [who, read_seq, delivered_seq] :
         std::vector<std::tuple<std::string, std::int64_t, std::int64_t>>{
             {owner.name, 2, 2}, {m[0].name, 2, 2}, {m[1].name, 0, 2}, {m[2].name, 0, 0}}) {
      auto e = user_entry(members, who);
      if (e.empty()) continue;
      EXPECT_EQ(int_field(e, "read_seq"), read_seq) << to_string(e);
      EXPECT_EQ(int_field(e, "delivered_seq"), delivered_seq) << to_string(e);
    }
  }
}

// Refused receipts change nothing: no position, no log, no push.
TEST_F(ReceiptsTest, BadReceiptRequestsAreRefusedAndChangeNothing) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  auto c1 = connect_authed(port(), carol.token);
  const auto ghost = unique_username("ghost");
  const auto bob_carol = int_field(send_ok(*b1, carol.name, "private"), "chat_id");
  const auto alice_bob = int_field(send_ok(*a1, bob.name, "hi"), "chat_id");
  ASSERT_TRUE(wait_message(*c1, bob_carol, 1).has_value());
  ASSERT_TRUE(wait_message(*b1, alice_bob, 1).has_value());

  auto chats_a = chats_of(*a1);
  auto chats_b = chats_of(*b1);
  auto chats_c = chats_of(*c1);

  for (const char* type : {"mark_read", "mark_delivered"}) {
    SCOPED_TRACE(type);
    // Someone else's chat.
    EXPECT_TRUE(refused(*a1, mark_frame(type, bob_carol, 1), "forbidden"));
    // No such chat / user.
    EXPECT_TRUE(refused(*a1, mark_frame(type, kNoSuchChat, 1), "not_found"));
    EXPECT_TRUE(refused(*a1, {{"type", type}, {"with", ghost}, {"seq", 1}}, "not_found"));
    // Malformed.
    EXPECT_TRUE(refused(*b1, mark_frame(type, alice_bob, 0), "bad_request"));
    EXPECT_TRUE(refused(*b1, mark_frame(type, alice_bob, -1), "bad_request"));
    EXPECT_TRUE(refused(*b1, {{"type", type}, {"seq", 1}}, "bad_request"));
    EXPECT_TRUE(refused(*b1, {{"type", type}, {"chat_id", std::to_string(alice_bob)}, {"seq", 1}},
                        "bad_request"));
    EXPECT_TRUE(
        refused(*b1, {{"type", type}, {"chat_id", alice_bob}, {"seq", "1"}}, "bad_request"));
  }
  EXPECT_TRUE(refused(*b1, {{"type", "mark_delivered"}, {"chat_id", alice_bob}}, "bad_request"))
      << "mark_delivered needs a seq";

  // Nothing changed: the chat lists (positions, unread, badge, pts) are as before, and no
  // receipt was pushed.
  pump(*a1, kQuiet);
  for (auto& [c, before] : std::vector<std::pair<WsClient*, json::object*>>{
           {a1.get(), &chats_a}, {b1.get(), &chats_b}, {c1.get(), &chats_c}}) {
    auto after = chats_of(*c);
    EXPECT_TRUE(after == *before) << "before: " << to_string(*before)
                                  << "\nafter:  " << to_string(after);
  }
  for (auto* c : {a1.get(), b1.get(), c1.get()}) {
    c->poll();
    for (const auto& f : c->received()) EXPECT_FALSE(is_receipt_push(f)) << to_string(f);
  }
  expect_server_healthy(port(), alice.token);
}

// ---------------------------------------------------------------------------------------------
// Typing (§3.12)

TEST_F(ReceiptsTest, TypingReachesThePeersAndOwnDevicesAndIsNeverStored) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto a1 = connect_authed(port(), alice.token);
  auto a2 = connect_new_device(port(), alice);
  auto b1 = connect_authed(port(), bob.token);
  auto b2 = connect_new_device(port(), bob);
  auto c1 = connect_authed(port(), carol.token);
  const auto direct = int_field(send_ok(*a1, bob.name, "hi"), "chat_id");
  // Done with that send before anyone types (see TypingStartedAfterASendIsNotStoppedByThatSend).
  ASSERT_TRUE(wait_message(*b1, direct, 1).has_value());
  auto g = create_group(*a1, "typing", {bob.name, carol.name});
  ASSERT_FALSE(g.empty());
  const auto group = chat_of(g);
  const auto alice_pts = log_head(*a1);
  const auto bob_pts = log_head(*b1);
  const auto carol_pts = log_head(*c1);

  // Two starts at once: one is passed on, the other only extends the expiry.
  {
    auto id1 = a1->send_request(typing_frame(direct, "start"));
    auto id2 = a1->send_request(typing_frame(direct, "start"));
    auto r1 = a1->wait_response(id1);
    auto r2 = a1->wait_response(id2);
    ASSERT_TRUE(r1 && r2);
    ASSERT_TRUE(is_ok(*r1) && is_ok(*r2)) << to_string(*r1) << " " << to_string(*r2);
    const bool f1 = bool_field(obj_field(*r1, "result"), "forwarded");
    const bool f2 = bool_field(obj_field(*r2, "result"), "forwarded");
    EXPECT_NE(f1, f2) << "exactly one of two starts within min_interval_ms is forwarded: "
                      << to_string(*r1) << " " << to_string(*r2);
  }
  for (auto* dev : {b1.get(), b2.get(), a2.get()}) {
    auto push = wait_typing(*dev, direct, alice.name, "start");
    ASSERT_TRUE(push.has_value()) << "a device got no typing start";
    EXPECT_EQ(int_field(*push, "expires_ms"), kLongTypingTtlMs) << to_string(*push);
    EXPECT_FALSE(push->contains("pts")) << "typing is not a log update";
  }
  pump(*b1, kQuiet);
  for (auto* dev : {b1.get(), b2.get(), a2.get()}) {
    dev->poll();
    EXPECT_EQ(typing_count(*dev, direct, alice.name, "start"), 1u) << "the second start was pushed";
  }

  // stop: passed on once; a repeated stop is not.
  EXPECT_TRUE(typing_ok(*a1, typing_frame(direct, "stop")));
  for (auto* dev : {b1.get(), b2.get(), a2.get()})
    ASSERT_TRUE(wait_typing(*dev, direct, alice.name, "stop").has_value());
  EXPECT_FALSE(typing_ok(*a1, typing_frame(direct, "stop")));
  pump(*b1, kQuiet);
  EXPECT_EQ(typing_count(*b1, direct, alice.name, "stop"), 1u) << "a repeated stop was pushed";

  // `with` instead of chat_id.
  std::this_thread::sleep_for(kPastMinInterval);
  EXPECT_TRUE(typing_ok(*a1, {{"type", "typing"}, {"with", bob.name}, {"state", "start"}}));
  ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "start").has_value());
  EXPECT_TRUE(typing_ok(*a1, {{"type", "typing"}, {"with", bob.name}, {"state", "stop"}}));
  ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "stop").has_value());

  // A group: every online member, and alice's other device.
  EXPECT_TRUE(typing_ok(*b2, typing_frame(group, "start")));
  for (auto* dev : {a1.get(), a2.get(), b1.get(), c1.get()}) {
    auto push = wait_typing(*dev, group, bob.name, "start");
    ASSERT_TRUE(push.has_value()) << "a member got no typing start";
    EXPECT_EQ(int_field(*push, "expires_ms"), kLongTypingTtlMs);
  }
  EXPECT_TRUE(typing_ok(*b2, typing_frame(group, "stop")));
  for (auto* dev : {a1.get(), a2.get(), b1.get(), c1.get()})
    ASSERT_TRUE(wait_typing(*dev, group, bob.name, "stop").has_value());

  // Refused: not a member, no such chat, bad or missing state, no chat.
  EXPECT_TRUE(refused(*c1, typing_frame(direct, "start"), "forbidden"));
  EXPECT_TRUE(refused(*c1, typing_frame(kNoSuchChat, "start"), "not_found"));
  EXPECT_TRUE(refused(*a1, typing_frame(direct, "typing"), "bad_request"));
  EXPECT_TRUE(refused(*a1, {{"type", "typing"}, {"chat_id", direct}}, "bad_request"));
  EXPECT_TRUE(refused(*a1, {{"type", "typing"}, {"state", "start"}}, "bad_request"));
  EXPECT_TRUE(
      refused(*a1, {{"type", "typing"}, {"chat_id", direct}, {"state", true}}, "bad_request"));

  // carol is not in the direct chat: she heard nothing of it.
  pump(*c1, kQuiet);
  EXPECT_EQ(typing_pushes_of_chat(*c1, direct), 0u);
  // Nothing was stored.
  expect_log_unchanged(*a2, alice_pts, "alice");
  expect_log_unchanged(*b2, bob_pts, "bob");
  expect_log_unchanged(*c1, carol_pts, "carol");
}

// The server stops typing by itself when the typist sends a message in the chat or its
// connection closes (the start here would hold for 30 s).
TEST_F(ReceiptsTest, TypingStopsWhenTheTypistSendsOrDisconnects) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  auto c1 = connect_authed(port(), carol.token);
  const auto direct = int_field(send_ok(*a1, bob.name, "hi"), "chat_id");
  // Done with that send before anyone types: only the send below may stop the start.
  ASSERT_TRUE(wait_message(*b1, direct, 1).has_value());
  auto g = create_group(*a1, "typing stops", {bob.name, carol.name});
  ASSERT_FALSE(g.empty());
  const auto group = chat_of(g);

  // Sending in a direct chat.
  EXPECT_TRUE(typing_ok(*a1, typing_frame(direct, "start")));
  ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "start").has_value());
  auto sent = send_to_chat_ok(*a1, direct, "done typing");
  ASSERT_TRUE(wait_message(*b1, direct, int_field(sent, "seq")).has_value());
  EXPECT_TRUE(wait_typing(*b1, direct, alice.name, "stop").has_value())
      << "sending a message did not stop typing";

  // Sending in a group.
  EXPECT_TRUE(typing_ok(*b1, typing_frame(group, "start")));
  for (auto* dev : {a1.get(), c1.get()})
    ASSERT_TRUE(wait_typing(*dev, group, bob.name, "start").has_value());
  send_to_chat_ok(*b1, group, "group message");
  for (auto* dev : {a1.get(), c1.get()})
    EXPECT_TRUE(wait_typing(*dev, group, bob.name, "stop").has_value())
        << "sending a group message did not stop typing";

  // Closing the typing connection.
  std::this_thread::sleep_for(kPastMinInterval);
  {
    auto a3 = connect_new_device(port(), alice);
    EXPECT_TRUE(typing_ok(*a3, typing_frame(direct, "start")));
    ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "start").has_value());
    a3->close();
  }
  EXPECT_TRUE(wait_typing(*b1, direct, alice.name, "stop").has_value())
      << "closing the typing connection did not stop typing";
  // The first connection of alice still types nothing and is still served.
  EXPECT_TRUE(is_ok(a1->request({{"type", "ping"}})));
}

// Only a message sent after a start stops it: a start sent once the send was acknowledged
// holds (the start would hold for 30 s; a stop within the window below can only come from
// the send that preceded it).
TEST_F(ReceiptsTest, TypingStartedAfterASendIsNotStoppedByThatSend) {
  constexpr int kRounds = 20;
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  const auto direct = int_field(send_ok(*a1, bob.name, "hi"), "chat_id");
  ASSERT_TRUE(wait_message(*b1, direct, 1).has_value());
  int early_stops = 0;
  std::string details;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    auto ack = send_to_chat_ok(*a1, direct, "before typing " + std::to_string(round));
    ASSERT_FALSE(ack.empty());
    b1->poll();
    const auto stops_before = typing_count(*b1, direct, alice.name, "stop");
    EXPECT_TRUE(typing_ok(*a1, typing_frame(direct, "start")));
    ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "start").has_value());
    pump(*b1, std::chrono::milliseconds(250));
    const bool stopped_early = typing_count(*b1, direct, alice.name, "stop") != stops_before;
    // Our own stop is forwarded only if the start was still active.
    const bool forwarded = typing_ok(*a1, typing_frame(direct, "stop"));
    if (stopped_early || !forwarded) {
      ++early_stops;
      details += " [round " + std::to_string(round) + " (after seq " +
                 std::to_string(int_field(ack, "seq")) +
                 "): " + (stopped_early ? "a stop was pushed" : "no stop pushed") +
                 ", our stop forwarded:" + (forwarded ? "true" : "false") + "]";
    }
    if (forwarded) {
      ASSERT_TRUE(wait_typing(*b1, direct, alice.name, "stop").has_value());
    }
  }
  EXPECT_EQ(early_stops, 0) << "a send acknowledged before a typing start stopped that start in "
                            << early_stops << " of " << kRounds << " rounds:" << details;
}

// A start that is not renewed is stopped by the server after typing.ttl_ms.
TEST(TypingExpiryTest, UnrenewedStartIsStoppedByTheServer) {
  ServerProcess server(TomlConfig::test_defaults()
                           .set("typing", "ttl_ms", std::to_string(kShortTypingTtlMs))
                           .set("typing", "min_interval_ms", std::to_string(kTypingMinIntervalMs)));
  const auto port = server.port();
  auto alice = new_account(port, "alice");
  auto bob = new_account(port, "bob");
  auto a1 = connect_authed(port, alice.token);
  auto a2 = connect_new_device(port, alice);
  auto b1 = connect_authed(port, bob.token);
  const auto direct = int_field(send_ok(*a1, bob.name, "hi"), "chat_id");
  // Bob has the message: the server has finished with that send (a send stops its sender's
  // typing; this test is about the expiry only).
  ASSERT_TRUE(wait_message(*b1, direct, 1).has_value());
  const auto bob_pts = log_head(*b1);

  for (int round = 0; round < 2; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    EXPECT_TRUE(typing_ok(*a1, typing_frame(direct, "start")));
    auto start = wait_typing(*b1, direct, alice.name, "start");
    ASSERT_TRUE(start.has_value());
    EXPECT_EQ(int_field(*start, "expires_ms"), kShortTypingTtlMs);
    // Not stopped right away...
    pump(*b1, std::chrono::milliseconds(150));
    EXPECT_EQ(typing_count(*b1, direct, alice.name, "stop"), static_cast<std::size_t>(round))
        << "stopped long before the ttl";
    // ...but eventually, to every device that was told of the start.
    for (auto* dev : {b1.get(), a2.get()})
      EXPECT_TRUE(wait_typing(*dev, direct, alice.name, "stop").has_value())
          << "the server did not stop an expired start";
  }
  expect_log_unchanged(*b1, bob_pts, "bob");
  EXPECT_TRUE(server.alive());
}

}  // namespace
}  // namespace parley::test
