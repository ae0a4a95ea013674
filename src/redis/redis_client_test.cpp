// RedisClient and RedisShards against real Redis servers of the tests' own: commands,
// pipelines, error replies, scripts, Pub/Sub, reconnecting after the server dies (and the
// reconnect handlers), command timeouts and the sharding hash.
#include "redis/redis_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "support/redis_server.h"

namespace parley::redis {
namespace {

using namespace std::chrono_literals;

RedisOptions options_for(const test::RedisServer& server) {
  auto o = parse_address(server.address());
  EXPECT_TRUE(o.ok());
  RedisOptions out = o.value();
  out.reconnect_min = 20ms;
  out.reconnect_max = 200ms;
  out.connect_timeout = 1000ms;
  return out;
}

Result<Reply> run(RedisClient& client, std::vector<std::string> args) {
  std::promise<Result<Reply>> p;
  client.command(std::move(args), [&](Result<Reply> r) { p.set_value(std::move(r)); });
  return p.get_future().get();
}

Reply ok_reply(RedisClient& client, std::vector<std::string> args) {
  auto r = run(client, std::move(args));
  EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message);
  return r ? r.value() : Reply{};
}

Status wait_status(const std::function<void(RedisClient::StatusCallback)>& call) {
  std::promise<Status> p;
  call([&](Status s) { p.set_value(std::move(s)); });
  return p.get_future().get();
}

// Pub/Sub messages as they come.
class Messages {
 public:
  RedisClient::MessageHandler handler() {
    return
        [this](const std::string& channel, const std::string& pattern, const std::string& payload) {
          std::lock_guard lock(mu_);
          got_.push_back({channel, pattern, payload});
          cv_.notify_all();
        };
  }
  bool wait(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  std::vector<std::vector<std::string>> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::vector<std::string>> got_;
};

// Calls of a reconnect handler as they come: how many, and with which shard.
class Reconnects {
 public:
  void add(size_t shard = 0) {
    std::lock_guard lock(mu_);
    got_.push_back(shard);
    cv_.notify_all();
  }
  bool wait(size_t n, std::chrono::milliseconds timeout = 5s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  std::vector<size_t> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<size_t> got_;
};

TEST(Fnv1a64, KnownVectors) {
  EXPECT_EQ(fnv1a64(""), 0xcbf29ce484222325ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(RedisScript, NamedByTheSha1OfItsSource) {
  EXPECT_EQ(RedisScript("return 1").sha1(), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
}

TEST(ParseAddress, HostPortDefaultsAndErrors) {
  RedisOptions base;
  base.password = "secret";
  auto a = parse_address("10.0.0.5:7000", base);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "10.0.0.5");
  EXPECT_EQ(a->port, 7000);
  EXPECT_EQ(a->password, "secret");
  auto b = parse_address("redis.internal");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->port, 6379);
  auto c = parse_address("[::1]:6380");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->host, "::1");
  EXPECT_EQ(c->port, 6380);
  for (const char* bad : {"", ":6379", "host:", "host:0", "host:70000", "host:12x", "::1:6379"}) {
    auto r = parse_address(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, Errc::bad_request);
  }
  EXPECT_FALSE(RedisShards::open({}).ok());
  EXPECT_FALSE(RedisShards::open({"127.0.0.1:1", "x:y"}).ok());
}

class RedisClientTest : public ::testing::Test {
 protected:
  test::RedisServer server_;
};

TEST_F(RedisClientTest, CommandsRepliesAndErrors) {
  RedisClient client(options_for(server_));
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  EXPECT_TRUE(client.health().ok);
  EXPECT_EQ(client.address(), server_.address());

  EXPECT_EQ(ok_reply(client, {"SET", "k", std::string("a\0b", 3)}).describe(), "OK");
  auto got = ok_reply(client, {"GET", "k"});
  EXPECT_EQ(got.type, Reply::Type::string);
  EXPECT_EQ(got.str, std::string("a\0b", 3));  // binary-safe
  EXPECT_TRUE(ok_reply(client, {"GET", "missing"}).is_nil());
  auto n = ok_reply(client, {"INCRBY", "n", "5"});
  EXPECT_EQ(n.type, Reply::Type::integer);
  EXPECT_EQ(n.integer, 5);
  ok_reply(client, {"RPUSH", "list", "x", "y"});
  auto list = ok_reply(client, {"LRANGE", "list", "0", "-1"});
  EXPECT_EQ(list.describe(), "[\"x\", \"y\"]");

  // An error reply is a Reply; checked() makes it an Error.
  auto wrong = run(client, {"INCR", "list"});
  ASSERT_TRUE(wrong.ok());
  EXPECT_TRUE(wrong->is_error());
  EXPECT_TRUE(wrong->str.starts_with("WRONGTYPE")) << wrong->str;
  auto as_error = checked(wrong, client.address());
  ASSERT_FALSE(as_error.ok());
  EXPECT_EQ(as_error.error().code, Errc::internal);
  EXPECT_NE(as_error.error().message.find(server_.address()), std::string::npos);
  EXPECT_TRUE(checked(run(client, {"PING"})).ok());
}

TEST_F(RedisClientTest, CallsFromOneThreadRunInOrderAndCallbacksOnTheLoop) {
  RedisClient client(options_for(server_));
  ASSERT_TRUE(client.wait_ready(5s));
  constexpr int kCount = 2000;
  std::mutex mu;
  std::vector<int64_t> values;
  std::promise<void> all;
  std::atomic<bool> inline_call{false};
  std::thread::id caller = std::this_thread::get_id();
  for (int i = 0; i < kCount; ++i) {
    client.command({"INCR", "counter"}, [&](Result<Reply> r) {
      if (std::this_thread::get_id() == caller) inline_call = true;
      std::lock_guard lock(mu);
      values.push_back(r ? r->integer : -1);
      if (values.size() == kCount) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(inline_call);
  for (int i = 0; i < kCount; ++i) ASSERT_EQ(values[static_cast<size_t>(i)], i + 1);
}

TEST_F(RedisClientTest, PipelinesAnswerEveryCommandInOrder) {
  RedisClient client(options_for(server_));
  std::vector<std::vector<std::string>> commands;
  for (int i = 0; i < 100; ++i) commands.push_back({"INCR", "p"});
  commands.push_back({"HSET", "p", "f", "v"});  // WRONGTYPE: its reply, not a failure
  commands.push_back({"GET", "p"});
  std::promise<Result<std::vector<Reply>>> p;
  client.pipeline(commands, [&](Result<std::vector<Reply>> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  ASSERT_EQ(r->size(), 102u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(r.value()[static_cast<size_t>(i)].integer, i + 1);
  EXPECT_TRUE(r.value()[100].is_error());
  EXPECT_EQ(r.value()[101].str, "100");

  std::promise<Result<std::vector<Reply>>> empty;
  client.pipeline({}, [&](Result<std::vector<Reply>> e) { empty.set_value(std::move(e)); });
  auto e = empty.get_future().get();
  ASSERT_TRUE(e.ok());
  EXPECT_TRUE(e->empty());
}

TEST_F(RedisClientTest, ScriptsRunByShaAndAreLoadedAgainAfterAFlush) {
  RedisClient client(options_for(server_));
  RedisScript script(
      "redis.call('SET', KEYS[1], ARGV[1]) return {KEYS[1], ARGV[1], redis.call('INCR', "
      "KEYS[2])}");
  auto eval = [&](const std::string& value) {
    std::promise<Result<Reply>> p;
    client.eval(script, {"sk", "sc"}, {value}, [&](Result<Reply> r) { p.set_value(std::move(r)); });
    return p.get_future().get();
  };
  auto first = eval("one");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->describe(), "[\"sk\", \"one\", (integer) 1]");
  EXPECT_EQ(ok_reply(client, {"SCRIPT", "EXISTS", script.sha1()}).describe(), "[(integer) 1]");
  EXPECT_EQ(eval("two")->elements.at(2).integer, 2);  // EVALSHA
  ok_reply(client, {"SCRIPT", "FLUSH"});
  auto after = eval("three");  // NOSCRIPT, then EVAL
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->describe(), "[\"sk\", \"three\", (integer) 3]");
  EXPECT_EQ(ok_reply(client, {"GET", "sk"}).str, "three");

  RedisScript broken("return redis.call('NOSUCHCOMMAND')");
  std::promise<Result<Reply>> p;
  client.eval(broken, {}, {}, [&](Result<Reply> r) { p.set_value(std::move(r)); });
  auto r = p.get_future().get();
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->is_error()) << r->describe();
}

TEST_F(RedisClientTest, PubSubChannelsAndPatterns) {
  RedisClient client(options_for(server_));
  Messages messages;
  client.set_message_handler(messages.handler());
  EXPECT_TRUE(wait_status([&](auto done) { client.subscribe({"ch:a", "ch:b"}, done); }).ok());
  EXPECT_TRUE(wait_status([&](auto done) { client.psubscribe({"pat:*"}, done); }).ok());
  EXPECT_TRUE(wait_status([&](auto done) { client.subscribe({"ch:a"}, done); }).ok());  // again
  EXPECT_TRUE(client.health().ok) << client.health().detail;

  EXPECT_EQ(ok_reply(client, {"PUBLISH", "ch:a", "1"}).integer, 1);  // subscribed once
  ok_reply(client, {"PUBLISH", "ch:b", std::string("2\0x", 3)});
  ok_reply(client, {"PUBLISH", "pat:x", "3"});
  ok_reply(client, {"PUBLISH", "other", "4"});
  ASSERT_TRUE(messages.wait(3));
  auto got = messages.got();
  EXPECT_EQ(got[0], (std::vector<std::string>{"ch:a", "", "1"}));
  EXPECT_EQ(got[1], (std::vector<std::string>{"ch:b", "", std::string("2\0x", 3)}));
  EXPECT_EQ(got[2], (std::vector<std::string>{"pat:x", "pat:*", "3"}));

  EXPECT_TRUE(wait_status([&](auto done) { client.unsubscribe({"ch:a"}, done); }).ok());
  EXPECT_TRUE(wait_status([&](auto done) { client.punsubscribe({"pat:*"}, done); }).ok());
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "ch:a", "5"}).integer, 0);
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "pat:y", "6"}).integer, 0);
  ok_reply(client, {"PUBLISH", "ch:b", "7"});
  ASSERT_TRUE(messages.wait(4));
  EXPECT_EQ(messages.got()[3], (std::vector<std::string>{"ch:b", "", "7"}));
}

TEST_F(RedisClientTest, SubscribingWithoutCallbacksAndTwice) {
  RedisClient client(options_for(server_));
  Messages messages;
  client.set_message_handler(messages.handler());
  client.subscribe({"one"});  // connects the Pub/Sub connection
  client.subscribe({"one"});  // nothing new
  client.subscribe({"two"});
  client.unsubscribe({"nothing"});
  // Done after everything sent before it is confirmed.
  EXPECT_TRUE(wait_status([&](auto done) { client.subscribe({"two"}, done); }).ok());
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "one", "1"}).integer, 1);
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "two", "2"}).integer, 1);
  ASSERT_TRUE(messages.wait(2));
  client.unsubscribe({"one"});
  EXPECT_TRUE(wait_status([&](auto done) { client.unsubscribe({"one"}, done); }).ok());
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "one", "3"}).integer, 0);
}

TEST_F(RedisClientTest, ReconnectsAfterTheServerDiesAndSubscribesAgain) {
  RedisClient client(options_for(server_));
  Messages messages;
  client.set_message_handler(messages.handler());
  ASSERT_TRUE(wait_status([&](auto done) { client.subscribe({"news"}, done); }).ok());
  ok_reply(client, {"SET", "k", "v"});

  server_.kill();
  // Down: commands fail at once with unavailable, health says why.
  Result<Reply> r = Reply{};
  for (int i = 0; i < 200; ++i) {
    r = run(client, {"GET", "k"});
    if (!r.ok() && !client.health().ok) break;
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find(server_.address()), std::string::npos) << r.error().message;
  EXPECT_FALSE(client.health().ok);
  EXPECT_NE(client.health().detail.find("connecting"), std::string::npos)  // re-, again
      << client.health().detail;
  auto t0 = std::chrono::steady_clock::now();
  auto down = run(client, {"GET", "k"});
  EXPECT_FALSE(down.ok());
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 500ms);  // never queued
  // Subscribing while down: kept, unavailable for now.
  auto sub = wait_status([&](auto done) { client.subscribe({"more"}, done); });
  EXPECT_FALSE(sub.ok());

  server_.start();  // empty: no persistence
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  EXPECT_TRUE(ok_reply(client, {"GET", "k"}).is_nil());
  // Both channels are subscribed again, once.
  Reply receivers;
  for (int i = 0; i < 200; ++i) {
    receivers = ok_reply(client, {"PUBLISH", "more", "m"});
    if (receivers.integer == 1) break;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_EQ(receivers.integer, 1);
  EXPECT_EQ(ok_reply(client, {"PUBLISH", "news", "n"}).integer, 1);
  ASSERT_TRUE(messages.wait(2));
  auto got = messages.got();
  EXPECT_EQ(got.back(), (std::vector<std::string>{"news", "", "n"}));
}

TEST_F(RedisClientTest, AClientStartedWhileTheServerIsDownConnectsWhenItComesUp) {
  server_.stop();
  RedisOptions o = options_for(server_);
  RedisClient client(o);
  EXPECT_FALSE(client.wait_ready(300ms));
  auto r = run(client, {"PING"});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  server_.start();
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  EXPECT_EQ(ok_reply(client, {"PING"}).str, "PONG");
}

TEST_F(RedisClientTest, TheReconnectHandlerRunsWhenTheServerIsBackNotAtTheFirstConnect) {
  RedisClient client(options_for(server_));
  Reconnects reconnects;
  std::atomic<bool> on_loop{false};
  client.set_reconnect_handler([&] {
    on_loop = client.on_loop_thread();
    // What the server lost is written again from the handler, on the new connection.
    client.command({"SET", "k", "again"}, [](Result<Reply>) {});
    reconnects.add();
  });
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  ok_reply(client, {"SET", "k", "v"});  // its reply comes after the first PONG's handling
  EXPECT_TRUE(reconnects.got().empty()) << "the handler ran at the first connect";

  server_.kill();
  for (int i = 0; i < 200 && client.health().ok; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(client.health().ok);
  server_.start();  // empty: no persistence
  ASSERT_TRUE(reconnects.wait(1)) << client.health().detail;
  EXPECT_TRUE(on_loop);
  // The handler ran once the connection was up, before commands sent after it answered.
  EXPECT_EQ(ok_reply(client, {"GET", "k"}).str, "again");
  EXPECT_EQ(reconnects.got().size(), 1u);

  // Again, after a clean stop (SIGTERM).
  server_.stop();
  for (int i = 0; i < 200 && client.health().ok; ++i) std::this_thread::sleep_for(10ms);
  ASSERT_FALSE(client.health().ok);
  server_.start();
  ASSERT_TRUE(reconnects.wait(2)) << client.health().detail;
  ok_reply(client, {"PING"});
  EXPECT_EQ(reconnects.got().size(), 2u);
}

TEST_F(RedisClientTest, TheReconnectHandlerRunsWhenAServerDownAtTheStartComesUp) {
  server_.stop();
  RedisClient client(options_for(server_));
  Reconnects reconnects;
  client.set_reconnect_handler([&] { reconnects.add(); });
  EXPECT_FALSE(client.wait_ready(300ms));
  // Commands failed meanwhile: what they were to write is written from the handler.
  EXPECT_TRUE(reconnects.got().empty());
  server_.start();
  ASSERT_TRUE(reconnects.wait(1)) << client.health().detail;
  EXPECT_EQ(ok_reply(client, {"PING"}).str, "PONG");
  EXPECT_EQ(reconnects.got().size(), 1u);
}

TEST_F(RedisClientTest, ACommandWithoutAReplyInTimeTakesTheConnectionDown) {
  RedisOptions o = options_for(server_);
  o.command_timeout = 300ms;
  RedisClient client(o);
  ASSERT_TRUE(client.wait_ready(5s));
  auto t0 = std::chrono::steady_clock::now();
  std::promise<Result<Reply>> blocked, behind;
  client.command({"BLPOP", "nothing", "5"}, [&](Result<Reply> r) { blocked.set_value(r); });
  client.command({"PING"}, [&](Result<Reply> r) { behind.set_value(r); });
  auto b = blocked.get_future().get();
  auto elapsed = std::chrono::steady_clock::now() - t0;
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Errc::unavailable);
  EXPECT_NE(b.error().message.find("timed out"), std::string::npos) << b.error().message;
  EXPECT_GE(elapsed, 300ms);
  EXPECT_LT(elapsed, 2s);
  auto p = behind.get_future().get();  // behind it on the same connection
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.error().code, Errc::unavailable);
  // It reconnects by itself.
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  EXPECT_EQ(ok_reply(client, {"PING"}).str, "PONG");
}

TEST_F(RedisClientTest, AServerThatStopsAnsweringIsNoticedByTheHeartbeat) {
  RedisOptions o = options_for(server_);
  o.heartbeat = 100ms;
  o.command_timeout = 300ms;
  o.connect_timeout = 300ms;
  RedisClient client(o);
  Messages messages;
  client.set_message_handler(messages.handler());
  ASSERT_TRUE(wait_status([&](auto done) { client.subscribe({"x"}, done); }).ok());
  ASSERT_TRUE(client.wait_ready(5s));
  std::this_thread::sleep_for(300ms);  // idle: heartbeats answered, still up
  EXPECT_TRUE(client.health().ok) << client.health().detail;

  // Another client keeps the server busy for 1.5 s (a script that waits on its clock).
  RedisOptions patient = options_for(server_);
  patient.command_timeout = 5s;
  RedisClient admin(patient);
  ASSERT_TRUE(admin.wait_ready(5s));
  RedisScript busy(R"lua(
local t0 = redis.call('TIME')
local start = t0[1] * 1000000 + t0[2]
while true do
  local t = redis.call('TIME')
  if t[1] * 1000000 + t[2] - start > tonumber(ARGV[1]) then break end
end
return 1)lua");
  std::promise<Result<Reply>> done;
  admin.eval(busy, {}, {"1500000"}, [&](Result<Reply> r) { done.set_value(r); });
  bool noticed = false;
  for (int i = 0; i < 120 && !noticed; ++i) {
    noticed = !client.health().ok;
    std::this_thread::sleep_for(10ms);
  }
  EXPECT_TRUE(noticed);
  EXPECT_NE(client.health().detail.find("timed out"), std::string::npos) << client.health().detail;
  auto r = done.get_future().get();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->integer, 1);
  // Answering again: both connections come back, the subscription with them.
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  for (int i = 0; i < 200 && ok_reply(admin, {"PUBLISH", "x", "back"}).integer == 0; ++i)
    std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(messages.wait(1));
  EXPECT_EQ(messages.got()[0][2], "back");
}

TEST_F(RedisClientTest, DestroyingTheClientCompletesWhatIsPending) {
  std::promise<Result<Reply>> p;
  {
    RedisClient client(options_for(server_));
    ASSERT_TRUE(client.wait_ready(5s));
    client.command({"BLPOP", "nothing", "5"}, [&](Result<Reply> r) { p.set_value(r); });
    std::this_thread::sleep_for(50ms);
  }
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  auto r = f.get();
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
}

TEST_F(RedisClientTest, ClosingCompletesWhatIsPendingAndRefusesWhatComesAfter) {
  RedisClient client(options_for(server_));
  ASSERT_TRUE(client.wait_ready(5s));
  std::promise<Result<Reply>> pending;
  client.command({"BLPOP", "nothing", "5"}, [&](Result<Reply> r) { pending.set_value(r); });
  std::this_thread::sleep_for(50ms);
  client.close();
  auto f = pending.get_future();
  ASSERT_EQ(f.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(f.get().error().code, Errc::unavailable);
  // Closed for good: a command now fails at once, and the client does not connect again.
  std::promise<Result<Reply>> later;
  client.command({"PING"}, [&](Result<Reply> r) { later.set_value(r); });
  auto g = later.get_future();
  ASSERT_EQ(g.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(g.get().error().code, Errc::unavailable);
  EXPECT_FALSE(client.wait_ready(300ms));
  client.close();  // twice, then the destructor: nothing more happens
}

TEST_F(RedisClientTest, AuthenticatesAndSelectsItsDatabase) {
  RedisClient admin(options_for(server_));
  ok_reply(admin, {"CONFIG", "SET", "requirepass", "s3cret"});
  RedisOptions o = options_for(server_);
  o.password = "s3cret";
  o.db = 3;
  RedisClient client(o);
  ASSERT_TRUE(client.wait_ready(5s)) << client.health().detail;
  ok_reply(client, {"SET", "in3", "x"});
  EXPECT_EQ(ok_reply(client, {"DBSIZE"}).integer, 1);
  RedisOptions zero = o;
  zero.db = 0;
  RedisClient other(zero);
  ASSERT_TRUE(other.wait_ready(5s));
  EXPECT_TRUE(ok_reply(other, {"GET", "in3"}).is_nil());
  // A wrong password: the handshake fails, the client never counts as up and says why.
  RedisOptions bad = o;
  bad.password = "wrong";
  RedisClient refused(bad);
  EXPECT_FALSE(refused.wait_ready(300ms));
  EXPECT_NE(refused.health().detail.find("handshake failed"), std::string::npos)
      << refused.health().detail;
  auto r = run(refused, {"PING"});
  EXPECT_FALSE(r.ok());
}

TEST_F(RedisClientTest, NoServerAtTheAddressIsReportedAndRetried) {
  // A port where nothing listens: refused, reconnecting.
  RedisOptions o;
  o.port = test::free_loopback_port();
  o.reconnect_min = 20ms;
  o.reconnect_max = 50ms;
  RedisClient client(o);
  EXPECT_FALSE(client.wait_ready(200ms));
  EXPECT_NE(client.health().detail.find("127.0.0.1:" + std::to_string(o.port)), std::string::npos)
      << client.health().detail;
}

TEST(RedisShards, KeysSpreadOverTheServersStably) {
  test::RedisServer one, two;
  RedisOptions base;
  base.reconnect_min = 20ms;
  auto opened = RedisShards::open({one.address(), two.address()}, base);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto shards = opened.value();
  ASSERT_EQ(shards->size(), 2u);
  ASSERT_TRUE(shards->wait_ready(5s)) << shards->health().detail;
  EXPECT_TRUE(shards->health().ok);
  EXPECT_EQ(shards->at(0).address(), one.address());
  EXPECT_EQ(shards->at(1).address(), two.address());
  // The layout is a function of the key alone.
  EXPECT_EQ(shards->shard_of("alice"), fnv1a64("alice") % 2);
  EXPECT_EQ(shards->shard_of("42"), fnv1a64("42") % 2);

  constexpr int kKeys = 200;
  std::atomic<int> left{kKeys};
  std::promise<void> all;
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "user" + std::to_string(i);
    shards->for_key(key).command({"SET", key, "1"}, [&](Result<Reply> r) {
      EXPECT_TRUE(r.ok());
      if (--left == 0) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(10s), std::future_status::ready);
  int64_t on0 = ok_reply(shards->at(0), {"DBSIZE"}).integer;
  int64_t on1 = ok_reply(shards->at(1), {"DBSIZE"}).integer;
  EXPECT_EQ(on0 + on1, kKeys);
  EXPECT_GT(on0, kKeys / 4);
  EXPECT_GT(on1, kKeys / 4);
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "user" + std::to_string(i);
    size_t s = shards->shard_of(key);
    EXPECT_EQ(ok_reply(shards->at(s), {"EXISTS", key}).integer, 1) << key;
  }

  two.kill();
  for (int i = 0; i < 200 && shards->health().ok; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(shards->health().ok);
  EXPECT_NE(shards->health().detail.find(two.address()), std::string::npos);
  EXPECT_EQ(shards->health().detail.find(one.address()), std::string::npos);
}

TEST(RedisShards, OnReconnectedNamesTheServerThatCameBackUntilReset) {
  test::RedisServer one, two;
  RedisOptions base;
  base.reconnect_min = 20ms;
  base.reconnect_max = 200ms;
  auto opened = RedisShards::open({one.address(), two.address()}, base);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  auto shards = opened.value();
  Reconnects first, second;
  auto sub1 = shards->on_reconnected([&](size_t shard) { first.add(shard); });
  auto sub2 = shards->on_reconnected([&](size_t shard) { second.add(shard); });
  ASSERT_TRUE(shards->wait_ready(5s)) << shards->health().detail;
  for (size_t s = 0; s < shards->size(); ++s) ok_reply(shards->at(s), {"PING"});
  EXPECT_TRUE(first.got().empty()) << "a handler ran at the first connect";

  auto restart = [&](test::RedisServer& server, size_t shard) {
    server.kill();
    for (int i = 0; i < 200 && shards->at(shard).health().ok; ++i)
      std::this_thread::sleep_for(10ms);
    ASSERT_FALSE(shards->at(shard).health().ok);
    server.start();
  };
  restart(two, 1);
  ASSERT_TRUE(first.wait(1));
  ASSERT_TRUE(second.wait(1));
  EXPECT_EQ(first.got(), std::vector<size_t>{1});
  EXPECT_EQ(second.got(), std::vector<size_t>{1});

  // A reset subscription is not called again; the others are.
  sub2.reset();
  restart(one, 0);
  ASSERT_TRUE(first.wait(2));
  ASSERT_TRUE(shards->wait_ready(5s)) << shards->health().detail;
  ok_reply(shards->at(0), {"PING"});
  EXPECT_EQ(first.got(), (std::vector<size_t>{1, 0}));
  EXPECT_EQ(second.got(), std::vector<size_t>{1});

  // Moved, it stays one subscription; it may outlive the shards.
  RedisShards::Subscription moved = std::move(sub1);
  sub1.reset();  // the moved-from one holds nothing
  restart(two, 1);
  ASSERT_TRUE(first.wait(3));
  EXPECT_EQ(first.got(), (std::vector<size_t>{1, 0, 1}));
  shards.reset();
  moved.reset();
}

}  // namespace
}  // namespace parley::redis
