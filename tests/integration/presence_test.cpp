// Presence and privacy settings end to end over real sockets (PROTOCOL.md §3.13, §3.14;
// issue 5 "Tests it must have": online/offline transitions including a silently dropped
// connection (no close frame); privacy settings honoured; a user who may not see someone's
// presence gets nothing about it).
#include <gtest/gtest.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http/field.hpp>
#include <boost/beast/websocket.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using Frame = WsClient::Frame;

constexpr int kBatchMs = 200;
constexpr int kMaxSubscriptions = 4;
// Long enough for any batch of the main server to have gone out: "nothing was pushed".
constexpr auto kQuiet = std::chrono::milliseconds(3 * kBatchMs + 200);
// Clock slack when comparing `last_seen` with the test's clock (same machine).
constexpr std::int64_t kSlackMs = 2000;

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

std::unique_ptr<WsClient> connect_new_device(std::uint16_t port, const Account& a) {
  return connect_authed(port, login(port, a.name).token);
}

bool is_str(const json::value* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->as_string() == s;
}
bool is_true(const json::value* v) { return v != nullptr && v->is_bool() && v->as_bool(); }
bool is_false(const json::value* v) { return v != nullptr && v->is_bool() && !v->as_bool(); }

json::array users_array(const std::vector<std::string>& users) {
  json::array out;
  for (const auto& u : users) out.emplace_back(u);
  return out;
}

// Sends `request` and expects an error with `code`.
::testing::AssertionResult refused(WsClient& c, json::object request, std::string_view code) {
  const auto text = json::serialize(request);
  auto f = c.request(std::move(request));
  auto r = is_error(f, code);
  if (!r) r << " (request " << text << ")";
  return r;
}

// Presence entries.
bool online(const json::object& e) { return is_true(e.if_contains("online")); }
bool offline(const json::object& e) { return is_false(e.if_contains("online")); }
bool hidden(const json::object& e) { return is_true(e.if_contains("hidden")); }
// Says something beyond "hidden": an online state or a last_seen.
bool reveals(const json::object& e) {
  return e.contains("online") || e.contains("last_seen") || !hidden(e);
}

// A hidden entry is exactly {"user":...,"hidden":true}: nothing else leaks.
::testing::AssertionResult is_hidden_entry(const json::object& e, const std::string& user) {
  if (e.size() == 2 && is_str(e.if_contains("user"), user) && hidden(e))
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "expected {\"user\":\"" << user << "\",\"hidden\":true}, got " << to_string(e);
}

bool is_presence_push(const Frame& f) {
  const auto* p = f.if_contains("presence");
  return is_push(f) && is_str(f.if_contains("type"), "presence") && p != nullptr && p->is_array();
}

// A position in the connection's received frames, to look at what came after it.
std::size_t mark(WsClient& c) {
  c.poll();
  return c.received().size();
}

// The presence pushes received at or after `from`.
std::vector<json::object> presence_pushes(const WsClient& c, std::size_t from) {
  std::vector<json::object> out;
  const auto& all = c.received();
  for (std::size_t i = from; i < all.size(); ++i)
    if (is_presence_push(all[i])) out.push_back(all[i]);
  return out;
}

// The entries about `user` in a presence push.
std::vector<json::object> entries_in(const json::object& push, const std::string& user) {
  std::vector<json::object> out;
  for (const auto& v : arr_field(push, "presence")) {
    if (v.is_object() && is_str(v.as_object().if_contains("user"), user))
      out.push_back(v.as_object());
  }
  return out;
}

// The entries about `user` in the presence pushes received at or after `from`.
std::vector<json::object> entries_about(const WsClient& c, const std::string& user,
                                        std::size_t from) {
  std::vector<json::object> out;
  for (const auto& p : presence_pushes(c, from))
    for (auto& e : entries_in(p, user)) out.push_back(std::move(e));
  return out;
}
// The presence pushes received at or after `from` that mention `user`.
std::vector<json::object> pushes_about(const WsClient& c, const std::string& user,
                                       std::size_t from) {
  std::vector<json::object> out;
  for (const auto& p : presence_pushes(c, from))
    if (!entries_in(p, user).empty()) out.push_back(p);
  return out;
}

// Waits until a presence push received at or after `from` holds an entry about `user` that
// satisfies `pred`; returns that entry.
std::optional<json::object> wait_entry(WsClient& c, const std::string& user,
                                       const std::function<bool(const json::object&)>& pred,
                                       std::size_t from, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = WsClient::Clock::now() + timeout;
  for (;;) {
    for (const auto& e : entries_about(c, user, from))
      if (pred(e)) return e;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - WsClient::Clock::now());
    if (left.count() <= 0) return std::nullopt;
    // Drives the connection; the frames stay in received().
    if (!c.wait_for(is_presence_push, left)) {
      for (const auto& e : entries_about(c, user, from))
        if (pred(e)) return e;
      return std::nullopt;
    }
  }
}

// Runs the connection for `d`: answers pings and collects whatever arrives.
void pump(WsClient& c, std::chrono::milliseconds d) {
  c.wait_for([](const Frame&) { return false; }, d);
}

// presence_subscribe; returns the entries by user (adds a failure unless ok).
std::map<std::string, json::object> subscribe(WsClient& c, const std::vector<std::string>& users) {
  std::map<std::string, json::object> out;
  auto r = request_ok(c, {{"type", "presence_subscribe"}, {"users", users_array(users)}});
  if (r.empty()) return out;
  const auto& entries = arr_field(r, "presence");
  EXPECT_EQ(entries.size(), users.size()) << to_string(r);
  for (const auto& v : entries) out[str_field(v.as_object(), "user")] = v.as_object();
  for (const auto& u : users) EXPECT_TRUE(out.count(u)) << u << " missing in " << to_string(r);
  return out;
}

json::object settings(WsClient& c, std::optional<std::string> presence = std::nullopt) {
  json::object req{{"type", "settings"}};
  if (presence) req["presence"] = *presence;
  return request_ok(c, std::move(req));
}

std::string presence_setting(WsClient& c) {
  auto r = settings(c);
  return r.empty() ? std::string() : str_field(r, "presence");
}

// A parley.v1 connection that can end its TCP connection without a WebSocket close frame.
class RawConnection {
 public:
  RawConnection(std::uint16_t port, const std::string& token) : ws_(ioc_) {
    auto& stream = beast::get_lowest_layer(ws_);
    stream.expires_after(std::chrono::seconds(10));
    stream.connect(asio::ip::tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    ws_.set_option(websocket::stream_base::decorator([](websocket::request_type& req) {
      req.set(beast::http::field::sec_websocket_protocol, "parley.v1");
    }));
    ws_.handshake("127.0.0.1:" + std::to_string(port), "/v1/ws");
    ws_.text(true);
    ws_.write(
        asio::buffer(json::serialize(json::object{{"type", "auth"}, {"id", 1}, {"token", token}})));
    beast::flat_buffer buffer;
    ws_.read(buffer);
    auto answer = json::parse(beast::buffers_to_string(buffer.data()));
    if (!answer.is_object() || !is_ok(answer.as_object()))
      throw std::runtime_error("raw auth failed: " + json::serialize(answer));
    stream.expires_never();
  }
  // Ends the TCP connection without a close frame: with a RST if `reset`, else a FIN.
  void drop(bool reset) {
    auto& socket = beast::get_lowest_layer(ws_).socket();
    beast::error_code ignored;
    if (reset) socket.set_option(asio::socket_base::linger(true, 0), ignored);
    socket.close(ignored);
  }

 private:
  asio::io_context ioc_;
  websocket::stream<beast::tcp_stream> ws_;
};

class PresenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<ServerProcess>(
        TomlConfig::test_defaults()
            .set("presence", "batch_ms", std::to_string(kBatchMs))
            .set("presence", "max_subscriptions", std::to_string(kMaxSubscriptions)));
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

// ---------------------------------------------------------------------------------------------
// Online / offline

TEST_F(PresenceTest, SubscribeAnswersCurrentStatesAndOfflineWaitsForTheLastDevice) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  const auto ghost = unique_username("ghost");  // never registered
  auto a1 = connect_authed(port(), alice.token);
  auto c1 = connect_authed(port(), carol.token);

  auto states = subscribe(*a1, {bob.name, carol.name, ghost, alice.name});
  EXPECT_TRUE(offline(states[bob.name])) << to_string(states[bob.name]);
  EXPECT_FALSE(hidden(states[bob.name]));
  EXPECT_TRUE(online(states[carol.name])) << to_string(states[carol.name]);
  EXPECT_TRUE(is_hidden_entry(states[ghost], ghost)) << "an unknown user looks hidden";
  EXPECT_TRUE(online(states[alice.name])) << "your own presence is visible to you";

  // carol leaves: offline, with the time she was last online.
  auto m = mark(*a1);
  const auto t0 = now_ms();
  c1->close();
  auto carol_off = wait_entry(*a1, carol.name, offline, m);
  ASSERT_TRUE(carol_off.has_value()) << "no offline push for carol";
  ASSERT_TRUE(has_int(*carol_off, "last_seen")) << to_string(*carol_off);
  EXPECT_GE(int_field(*carol_off, "last_seen"), t0 - kSlackMs);
  EXPECT_LE(int_field(*carol_off, "last_seen"), now_ms() + kSlackMs);

  // bob comes online on two devices: one push, online.
  m = mark(*a1);
  const auto t1 = now_ms();
  auto b1 = connect_authed(port(), bob.token);
  auto b2 = connect_new_device(port(), bob);
  auto bob_on = wait_entry(*a1, bob.name, online, m);
  ASSERT_TRUE(bob_on.has_value()) << "no online push for bob";
  pump(*a1, kQuiet);
  EXPECT_EQ(pushes_about(*a1, bob.name, m).size(), 1u)
      << "bob's second device changed nothing: "
      << to_string(json::value_from(presence_pushes(*a1, m)));
  EXPECT_EQ(entries_about(*a1, bob.name, m).size(), 1u);

  // One device leaves: bob is still online, nothing is pushed.
  m = mark(*a1);
  b1->close();
  pump(*a1, kQuiet);
  EXPECT_TRUE(entries_about(*a1, bob.name, m).empty())
      << "pushed while bob still had a device: "
      << to_string(json::value_from(entries_about(*a1, bob.name, m)));

  // The last one leaves: offline, with last_seen.
  const auto t2 = now_ms();
  b2->close();
  auto bob_off = wait_entry(*a1, bob.name, offline, m);
  ASSERT_TRUE(bob_off.has_value()) << "no offline push for bob";
  ASSERT_TRUE(has_int(*bob_off, "last_seen")) << to_string(*bob_off);
  EXPECT_GE(int_field(*bob_off, "last_seen"), std::max(t1, t2) - kSlackMs);
  EXPECT_LE(int_field(*bob_off, "last_seen"), now_ms() + kSlackMs);
  EXPECT_EQ(entries_about(*a1, bob.name, m).size(), 1u);

  // A new subscription sees the same.
  auto a2 = connect_new_device(port(), alice);
  auto again = subscribe(*a2, {bob.name, carol.name});
  EXPECT_TRUE(offline(again[bob.name]));
  EXPECT_EQ(again[bob.name].if_contains("last_seen") ? int_field(again[bob.name], "last_seen") : 0,
            int_field(*bob_off, "last_seen"));
  EXPECT_TRUE(offline(again[carol.name]));
  EXPECT_EQ(
      again[carol.name].if_contains("last_seen") ? int_field(again[carol.name], "last_seen") : 0,
      int_field(*carol_off, "last_seen"));
}

// A connection that ends without a close frame (RST, then FIN) takes its user offline.
TEST_F(PresenceTest, ConnectionEndingWithoutCloseFrameGoesOffline) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  auto states = subscribe(*a1, {bob.name});
  EXPECT_TRUE(offline(states[bob.name]));

  for (bool reset : {true, false}) {
    SCOPED_TRACE(reset ? "RST" : "FIN");
    auto m = mark(*a1);
    RawConnection raw(port(), bob.token);
    ASSERT_TRUE(wait_entry(*a1, bob.name, online, m).has_value()) << "no online push";
    m = mark(*a1);
    const auto t = now_ms();
    raw.drop(reset);
    auto off = wait_entry(*a1, bob.name, offline, m);
    ASSERT_TRUE(off.has_value()) << "bob stayed online after his connection ended";
    ASSERT_TRUE(has_int(*off, "last_seen"));
    EXPECT_GE(int_field(*off, "last_seen"), t - kSlackMs);
  }
  EXPECT_TRUE(is_ok(a1->request({{"type", "ping"}})));
}

// ---------------------------------------------------------------------------------------------
// Privacy (§3.13 "Privacy", §3.14)

TEST_F(PresenceTest, NobodyHidesPresenceFromEveryoneButYourself) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  EXPECT_TRUE(offline(subscribe(*a1, {bob.name})[bob.name]));
  auto m = mark(*a1);
  auto b1 = connect_authed(port(), bob.token);
  ASSERT_TRUE(wait_entry(*a1, bob.name, online, m).has_value());

  EXPECT_EQ(presence_setting(*b1), "everyone") << "the default";
  m = mark(*a1);
  auto set = settings(*b1, "nobody");
  EXPECT_EQ(set.empty() ? "" : str_field(set, "presence"), "nobody") << to_string(set);
  EXPECT_EQ(presence_setting(*b1), "nobody");
  // The subscriber loses sight: "hidden" is pushed, and nothing else.
  {
    auto e = wait_entry(*a1, bob.name, hidden, m);
    ASSERT_TRUE(e.has_value()) << "no hidden push after presence=nobody";
    EXPECT_TRUE(is_hidden_entry(*e, bob.name));
  }
  // bob sees himself.
  auto b2 = connect_new_device(port(), bob);
  EXPECT_TRUE(online(subscribe(*b2, {bob.name})[bob.name]))
      << "your own presence is always visible to you";

  // bob goes offline and comes back: alice hears nothing.
  m = mark(*a1);
  b1->close();
  b2->close();
  auto a2 = connect_new_device(port(), alice);
  EXPECT_TRUE(is_hidden_entry(subscribe(*a2, {bob.name})[bob.name], bob.name));
  auto b3 = connect_new_device(port(), bob);
  EXPECT_EQ(presence_setting(*b3), "nobody") << "the setting is the user's, not the connection's";
  pump(*a1, kQuiet);
  for (const auto& e : entries_about(*a1, bob.name, m))
    ADD_FAILURE() << "alice was told about bob while hidden: " << to_string(e);

  // Revealing pushes the current state to every subscriber.
  auto m1 = mark(*a1);
  auto m2 = mark(*a2);
  EXPECT_EQ(str_field(settings(*b3, "everyone"), "presence"), "everyone");
  EXPECT_TRUE(wait_entry(*a1, bob.name, online, m1).has_value()) << "a1 was not shown bob again";
  EXPECT_TRUE(wait_entry(*a2, bob.name, online, m2).has_value()) << "a2 was not shown bob again";
}

TEST_F(PresenceTest, ContactsSeePresenceAndStrangersDoNot) {
  auto carol = new_account(port(), "carol");  // the user who chooses
  auto alice = new_account(port(), "alice");  // has a direct chat with carol
  auto eve = new_account(port(), "eve");      // in a group with carol, then leaves it
  auto dave = new_account(port(), "dave");    // a stranger
  auto frank = new_account(port(), "frank");  // a stranger, subscribed before the change
  auto c0 = connect_authed(port(), carol.token);
  auto a1 = connect_authed(port(), alice.token);
  auto e1 = connect_authed(port(), eve.token);
  auto d1 = connect_authed(port(), dave.token);
  auto f1 = connect_authed(port(), frank.token);
  send_ok(*a1, carol.name, "hi carol");
  auto g = request_ok(
      *c0,
      {{"type", "group_create"}, {"name", "carol and eve"}, {"members", users_array({eve.name})}});
  ASSERT_FALSE(g.empty());
  const auto group = int_field(obj_field(g, "chat"), "chat_id");

  EXPECT_TRUE(online(subscribe(*f1, {carol.name})[carol.name]));
  EXPECT_TRUE(online(subscribe(*a1, {carol.name})[carol.name]));
  auto mf = mark(*f1);
  auto ma = mark(*a1);
  EXPECT_EQ(str_field(settings(*c0, "contacts"), "presence"), "contacts");
  // frank loses sight: "hidden" is pushed. alice keeps it: nothing changes for her.
  {
    auto e = wait_entry(*f1, carol.name, hidden, mf);
    ASSERT_TRUE(e.has_value()) << "no hidden push for a stranger";
    EXPECT_TRUE(is_hidden_entry(*e, carol.name));
  }
  pump(*a1, kQuiet);
  EXPECT_TRUE(entries_about(*a1, carol.name, ma).empty())
      << "a contact was pushed although its view did not change: "
      << to_string(json::value_from(entries_about(*a1, carol.name, ma)));

  // A direct chat or a shared group is a contact; a stranger is answered hidden.
  EXPECT_TRUE(online(subscribe(*e1, {carol.name})[carol.name])) << "shares a group";
  EXPECT_TRUE(is_hidden_entry(subscribe(*d1, {carol.name})[carol.name], carol.name));

  // eve leaves the group: no longer a contact.
  request_ok(*e1, {{"type", "group_leave"}, {"chat_id", group}});
  EXPECT_TRUE(is_hidden_entry(subscribe(*connect_new_device(port(), eve), {carol.name})[carol.name],
                              carol.name))
      << "a former group member is no contact (new connection)";
  EXPECT_TRUE(is_hidden_entry(subscribe(*e1, {carol.name})[carol.name], carol.name))
      << "a former group member is no contact (connection subscribed while it was one)";

  // carol goes offline: her contact is told; nobody else learns anything.
  ma = mark(*a1);
  auto md = mark(*d1);
  auto me = mark(*e1);
  mf = mark(*f1);
  c0->close();
  EXPECT_TRUE(wait_entry(*a1, carol.name, offline, ma).has_value()) << "a contact was not told";
  pump(*d1, kQuiet);
  e1->poll();
  f1->poll();
  for (auto& [c, from, who] : std::vector<std::tuple<WsClient*, std::size_t, std::string>>{
           {d1.get(), md, "dave"}, {e1.get(), me, "eve"}, {f1.get(), mf, "frank"}}) {
    for (const auto& e : entries_about(*c, carol.name, from))
      EXPECT_FALSE(reveals(e)) << who << " may not see carol but got " << to_string(e);
  }

  // carol comes back and reveals herself: the strangers get her current state.
  ma = mark(*a1);
  auto c1 = connect_new_device(port(), carol);
  EXPECT_TRUE(wait_entry(*a1, carol.name, online, ma).has_value());
  md = mark(*d1);
  me = mark(*e1);
  mf = mark(*f1);
  EXPECT_EQ(str_field(settings(*c1, "everyone"), "presence"), "everyone");
  EXPECT_TRUE(wait_entry(*d1, carol.name, online, md).has_value()) << "dave";
  EXPECT_TRUE(wait_entry(*e1, carol.name, online, me).has_value()) << "eve";
  EXPECT_TRUE(wait_entry(*f1, carol.name, online, mf).has_value()) << "frank";
}

TEST_F(PresenceTest, SettingsWithABadValueAreRefusedAndChangeNothing) {
  auto alice = new_account(port(), "alice");
  auto bob = new_account(port(), "bob");
  auto a1 = connect_authed(port(), alice.token);
  auto b1 = connect_authed(port(), bob.token);
  send_ok(*a1, bob.name, "we are contacts");
  EXPECT_EQ(str_field(settings(*b1, "contacts"), "presence"), "contacts");
  EXPECT_TRUE(online(subscribe(*a1, {bob.name})[bob.name]));

  auto m = mark(*a1);
  EXPECT_TRUE(refused(*b1, {{"type", "settings"}, {"presence", "friends"}}, "bad_request"));
  EXPECT_TRUE(refused(*b1, {{"type", "settings"}, {"presence", "NOBODY"}}, "bad_request"));
  EXPECT_TRUE(refused(*b1, {{"type", "settings"}, {"presence", 0}}, "bad_request"));
  EXPECT_TRUE(refused(*b1, {{"type", "settings"}, {"presence", true}}, "bad_request"));
  EXPECT_TRUE(
      refused(*b1, {{"type", "settings"}, {"presence", json::array{"nobody"}}}, "bad_request"));
  EXPECT_EQ(presence_setting(*b1), "contacts") << "a refused change changed the setting";
  pump(*a1, kQuiet);
  EXPECT_TRUE(entries_about(*a1, bob.name, m).empty());
  EXPECT_TRUE(online(subscribe(*connect_new_device(port(), alice), {bob.name})[bob.name]));
}

// ---------------------------------------------------------------------------------------------
// Limits and unsubscribing

TEST_F(PresenceTest, SubscriptionLimitAndUnsubscribe) {
  auto alice = new_account(port(), "alice");
  std::vector<Account> u;
  for (int i = 0; i < kMaxSubscriptions + 1; ++i) u.push_back(new_account(port(), "u"));
  auto a1 = connect_authed(port(), alice.token);
  auto a2 = connect_new_device(port(), alice);

  subscribe(*a1, {u[0].name, u[1].name, u[2].name});
  subscribe(*a1, {u[2].name, u[3].name});  // u2 again: 4 users
  EXPECT_TRUE(refused(*a1, {{"type", "presence_subscribe"}, {"users", users_array({u[4].name})}},
                      "too_large"))
      << "a fifth user";
  std::vector<std::string> all;
  for (const auto& a : u) all.push_back(a.name);
  EXPECT_TRUE(
      refused(*a2, {{"type", "presence_subscribe"}, {"users", users_array(all)}}, "too_large"));
  EXPECT_TRUE(refused(*a2, {{"type", "presence_subscribe"}}, "bad_request"));
  EXPECT_TRUE(refused(*a2, {{"type", "presence_subscribe"}, {"users", u[0].name}}, "bad_request"));

  // The refused subscriptions did not happen.
  auto m1 = mark(*a1);
  auto m2 = mark(*a2);
  auto u0 = connect_authed(port(), u[0].token);
  auto u4 = connect_authed(port(), u[4].token);
  ASSERT_TRUE(wait_entry(*a1, u[0].name, online, m1).has_value());
  pump(*a1, kQuiet);
  EXPECT_TRUE(entries_about(*a1, u[4].name, m1).empty()) << "u4 was subscribed after all";
  a2->poll();
  EXPECT_TRUE(presence_pushes(*a2, m2).empty())
      << "a refused subscription pushed: " << to_string(json::value_from(presence_pushes(*a2, m2)));

  // Unsubscribing some users stops their pushes and frees room.
  request_ok(*a1, {{"type", "presence_unsubscribe"}, {"users", users_array({u[0].name})}});
  m1 = mark(*a1);
  u0->close();
  auto u1 = connect_authed(port(), u[1].token);
  ASSERT_TRUE(wait_entry(*a1, u[1].name, online, m1).has_value());
  pump(*a1, kQuiet);
  EXPECT_TRUE(entries_about(*a1, u[0].name, m1).empty()) << "pushed after unsubscribing";
  EXPECT_TRUE(online(subscribe(*a1, {u[4].name})[u[4].name])) << "room for one more";

  // all:true stops every push and frees all the room.
  request_ok(*a1, {{"type", "presence_unsubscribe"}, {"all", true}});
  m1 = mark(*a1);
  u1->close();
  u4->close();
  auto u3 = connect_authed(port(), u[3].token);
  pump(*a1, kQuiet);
  EXPECT_TRUE(presence_pushes(*a1, m1).empty())
      << "pushed after unsubscribing all: "
      << to_string(json::value_from(presence_pushes(*a1, m1)));
  auto states = subscribe(*a1, {u[0].name, u[1].name, u[2].name, u[3].name});
  EXPECT_TRUE(online(states[u[3].name]));
  EXPECT_TRUE(offline(states[u[1].name]));
  EXPECT_TRUE(offline(states[u[2].name]));
}

// ---------------------------------------------------------------------------------------------
// Batching: a server with presence.batch_ms = 1000. Each step starts right after a push: a
// window has just gone out whatever the server aligns its windows to, so the changes made at
// once afterwards fall into a single next window.

class PresenceBatchingTest : public ::testing::Test {
 protected:
  static constexpr int kWindowMs = 1000;
  static void SetUpTestSuite() {
    server_ = std::make_unique<ServerProcess>(
        TomlConfig::test_defaults().set("presence", "batch_ms", std::to_string(kWindowMs)));
  }
  static void TearDownTestSuite() { server_.reset(); }
  void SetUp() override { ASSERT_NE(server_, nullptr) << "parleyd did not start"; }
  void TearDown() override { EXPECT_TRUE(server_->alive()) << "parleyd died during the test"; }
  static std::uint16_t port() { return server_->port(); }

  static inline std::unique_ptr<ServerProcess> server_;
};

TEST_F(PresenceBatchingTest, ChangesInOneWindowArriveAsOneFrameAndFlapsAreNotSent) {
  auto alice = new_account(port(), "alice");
  auto pacer = new_account(port(), "pacer");
  auto bob = new_account(port(), "bob");
  auto carol = new_account(port(), "carol");
  auto dave = new_account(port(), "dave");
  const auto carol_token2 = login(port(), carol.name).token;
  auto a1 = connect_authed(port(), alice.token);
  for (const auto& [user, e] : subscribe(*a1, {pacer.name, bob.name, carol.name, dave.name}))
    EXPECT_TRUE(offline(e)) << to_string(e);

  auto m = mark(*a1);
  auto p1 = connect_authed(port(), pacer.token);
  ASSERT_TRUE(wait_entry(*a1, pacer.name, online, m).has_value());

  // Three users come online, carol even twice (online, offline, online): one frame, one
  // entry per user with the latest state.
  m = mark(*a1);
  auto b1 = connect_authed(port(), bob.token);
  auto c1 = connect_authed(port(), carol.token);
  c1->close();
  auto c2 = connect_authed(port(), carol_token2);
  auto d1 = connect_authed(port(), dave.token);
  for (const auto& who : {bob.name, carol.name, dave.name})
    ASSERT_TRUE(wait_entry(*a1, who, online, m).has_value()) << who << " never shown online";
  pump(*a1, std::chrono::milliseconds(2 * kWindowMs + 200));
  {
    auto pushes = presence_pushes(*a1, m);
    ASSERT_EQ(pushes.size(), 1u) << "expected one batched frame: "
                                 << to_string(json::value_from(pushes));
    const auto& p = pushes[0];
    for (const auto& who : {bob.name, carol.name, dave.name}) {
      auto es = entries_in(p, who);
      ASSERT_EQ(es.size(), 1u) << who << " in " << to_string(p);
      EXPECT_TRUE(online(es[0])) << to_string(p);
    }
    EXPECT_TRUE(entries_in(p, pacer.name).empty()) << to_string(p);
  }

  // bob goes offline and comes back within one window: not sent.
  m = mark(*a1);
  p1->close();
  ASSERT_TRUE(wait_entry(*a1, pacer.name, offline, m).has_value());
  m = mark(*a1);
  b1->close();
  b1 = connect_new_device(port(), bob);
  pump(*a1, std::chrono::milliseconds(2 * kWindowMs + 500));
  EXPECT_TRUE(entries_about(*a1, bob.name, m).empty())
      << "a flap inside one window was sent: "
      << to_string(json::value_from(entries_about(*a1, bob.name, m)));
  // Later changes still arrive.
  d1->close();
  EXPECT_TRUE(wait_entry(*a1, dave.name, offline, m).has_value());
  EXPECT_TRUE(entries_about(*a1, bob.name, m).empty());
}

// ---------------------------------------------------------------------------------------------
// A connection that goes silent (never answers a ping, never closes) is dropped after
// ws.idle_timeout_s and its user goes offline.

TEST(PresenceSilentDropTest, ConnectionThatStopsAnsweringGoesOffline) {
  ServerProcess server(TomlConfig::test_defaults()
                           .set("ws", "idle_timeout_s", "2")
                           .set("presence", "batch_ms", std::to_string(kBatchMs)));
  const auto port = server.port();
  auto alice = new_account(port, "alice");
  auto bob = new_account(port, "bob");
  auto a1 = connect_authed(port, alice.token);
  EXPECT_TRUE(offline(subscribe(*a1, {bob.name})[bob.name]));
  auto m = mark(*a1);
  auto b1 = connect_authed(port, bob.token);
  ASSERT_TRUE(wait_entry(*a1, bob.name, online, m).has_value());

  // From here on b1 is never read: its pings go unanswered. alice keeps reading (and so
  // answering pings) while she waits.
  m = mark(*a1);
  const auto t = now_ms();
  auto off = wait_entry(*a1, bob.name, offline, m, std::chrono::seconds(30));
  ASSERT_TRUE(off.has_value()) << "a silent connection kept bob online";
  ASSERT_TRUE(has_int(*off, "last_seen")) << to_string(*off);
  EXPECT_GE(int_field(*off, "last_seen"), t - kSlackMs);
  EXPECT_LE(int_field(*off, "last_seen"), now_ms() + kSlackMs);
  EXPECT_TRUE(b1->wait_close(std::chrono::seconds(10)).has_value())
      << "the server did not drop the silent connection";
  EXPECT_FALSE(a1->closed()) << "the reading connection was dropped too";
  EXPECT_TRUE(is_ok(a1->request({{"type", "ping"}})));
  EXPECT_TRUE(server.alive());
}

}  // namespace
}  // namespace parley::test
