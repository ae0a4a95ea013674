// Runs the Bus conformance suite against RedisBus: each node its own RedisBus on its own
// clients of two Redis servers of the tests' own (sharded), as separate processes would be;
// and checks that delivery resumes after Redis restarts.
#include "bus/redis_bus.h"

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "bus/bus_conformance.h"
#include "redis/redis_test_servers.h"

namespace parley::bus_test {
namespace {

using namespace std::chrono_literals;

using redis_test::fresh_prefix;
using redis_test::open_shards;
using redis_test::servers;

class RedisCluster final : public BusCluster {
 public:
  explicit RedisCluster(std::vector<std::string> addresses)
      : addresses_(std::move(addresses)), prefix_(fresh_prefix()) {}
  Bus& endpoint(NodeId node) override {
    auto& bus = buses_[node];
    if (!bus) {
      RedisBus::Options options;
      options.prefix = prefix_;
      bus = std::make_unique<RedisBus>(open_shards(addresses_), options);
    }
    return *bus;
  }
  void stop(NodeId node) override { buses_.erase(node); }

 private:
  std::vector<std::string> addresses_;
  std::string prefix_;
  std::map<NodeId, std::unique_ptr<RedisBus>> buses_;
};

INSTANTIATE_TEST_SUITE_P(Redis, BusConformance, ::testing::Values(BusClusterMaker([] {
                           return std::make_unique<RedisCluster>(std::vector<std::string>{
                               servers().one.address(), servers().two.address()});
                         })));

// Publishes delivery(n), n = 1, 2, ..., until `inbox` has one more envelope (Redis may still
// be subscribing again); returns the n that arrived.
uint64_t publish_until_received(Bus& from, NodeId to, Inbox& inbox, uint64_t& n) {
  const size_t had = inbox.got().size();
  for (int i = 0; i < 500; ++i) {
    from.publish(to, delivery(++n));
    if (inbox.wait(had + 1, 20ms)) break;
  }
  auto got = inbox.got();
  return got.size() > had ? got[had].recipients.at(0).pts : 0;
}

TEST(RedisBus, DeliveryResumesAfterRedisRestarts) {
  test::RedisServer one, two;
  RedisCluster cluster({one.address(), two.address()});
  Inbox a, b;
  cluster.endpoint(1).start(1, a.handler());
  cluster.endpoint(2).start(2, b.handler());
  cluster.endpoint(2).subscribe_chat(9, nullptr);
  uint64_t n = 0;
  cluster.endpoint(1).publish(2, delivery(++n));
  ASSERT_TRUE(b.wait(1));

  one.kill();
  two.kill();
  for (int i = 0; i < 300 && cluster.endpoint(2).health().ok; ++i)
    std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(cluster.endpoint(2).health().ok);
  cluster.endpoint(1).publish(2, delivery(++n));  // lost, not an error
  one.start();
  two.start();
  // Every connection is back, and node 2 subscribed again to everything it had.
  for (NodeId node : {1u, 2u}) {
    for (int i = 0; i < 500 && !cluster.endpoint(node).health().ok; ++i)
      std::this_thread::sleep_for(10ms);
    EXPECT_TRUE(cluster.endpoint(node).health().ok) << cluster.endpoint(node).health().detail;
  }
  const uint64_t first = publish_until_received(cluster.endpoint(1), 2, b, n);
  ASSERT_GT(first, 2u);
  // In order again from there on.
  for (int i = 0; i < 100; ++i) cluster.endpoint(1).publish(2, delivery(++n));
  ASSERT_TRUE(b.wait(2 + 100));
  auto got = b.got();
  for (size_t i = 2; i < got.size(); ++i)
    EXPECT_EQ(got[i].recipients.at(0).pts, got[i - 1].recipients.at(0).pts + 1);
  // The chat and publish_all channels too.
  Envelope chat;
  chat.kind = Envelope::Kind::broadcast;
  chat.chat_id = 9;
  chat.payload = "{}";
  size_t had = b.got().size();
  for (int i = 0; i < 500 && b.got().size() == had; ++i) {
    cluster.endpoint(1).publish_chat(9, chat);
    b.wait(had + 1, 20ms);
  }
  ASSERT_GT(b.got().size(), had);
  EXPECT_EQ(b.got()[had].chat_id, 9u);
  Envelope all;
  all.kind = Envelope::Kind::presence;
  all.user = "alice";
  had = a.got().size();
  cluster.endpoint(2).publish_all(all);
  ASSERT_TRUE(a.wait(had + 1));
  EXPECT_EQ(a.got()[had].user, "alice");
  EXPECT_EQ(a.got()[had].from, 2u);
}

// subscribe_chat() does not hold its caller (an I/O thread) while Redis is slow to confirm,
// as it did for up to subscribe_wait (500 ms); the confirmation comes when Redis answers, and
// from then on the chat's broadcasts arrive.
TEST(RedisBus, SubscribeChatReturnsAtOnceAndConfirmsWhenRedisAnswers) {
  test::RedisServer server;
  auto shards = open_shards({server.address()});
  RedisBus::Options options;
  options.prefix = fresh_prefix();
  RedisBus bus(shards, options);
  Inbox inbox;
  bus.start(1, inbox.handler());
  // Redis holds every client's commands (SUBSCRIBE too) for 600 ms.
  auto admin = open_shards({server.address()});
  std::promise<Result<redis::Reply>> paused;
  admin->at(0).command({"CLIENT", "PAUSE", "600", "ALL"},
                       [&](Result<redis::Reply> r) { paused.set_value(std::move(r)); });
  ASSERT_TRUE(redis::checked(paused.get_future().get()).ok());
  const auto start = std::chrono::steady_clock::now();
  std::promise<Status> confirmed;
  std::atomic<int64_t> confirmed_after_ms{-1};
  bus.subscribe_chat(5, [&](Status s) {
    confirmed_after_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::steady_clock::now() - start)
                             .count();
    confirmed.set_value(std::move(s));
  });
  const auto returned_after = std::chrono::steady_clock::now() - start;
  EXPECT_LT(returned_after, 100ms);
  auto f = confirmed.get_future();
  ASSERT_EQ(f.wait_for(5s), std::future_status::ready);
  EXPECT_TRUE(f.get().ok());
  EXPECT_GE(confirmed_after_ms.load(), 300);  // not before Redis answered
  Envelope chat;
  chat.kind = Envelope::Kind::broadcast;
  chat.chat_id = 5;
  chat.payload = "{}";
  bus.publish_chat(5, chat);
  ASSERT_TRUE(inbox.wait(1));
  EXPECT_EQ(inbox.got()[0].chat_id, 5u);
}

TEST(RedisBus, UndecodableMessagesAreDropped) {
  auto shards = open_shards({servers().one.address(), servers().two.address()});
  RedisBus::Options options;
  options.prefix = fresh_prefix();
  RedisBus bus(shards, options);
  Inbox inbox;
  bus.start(4, inbox.handler());
  // Someone else's garbage on the node's channel.
  std::promise<void> sent;
  shards->for_key("4").command({"PUBLISH", options.prefix + "node:4", "not an envelope"},
                               [&](Result<redis::Reply>) { sent.set_value(); });
  sent.get_future().wait();
  bus.publish(4, delivery(1));
  ASSERT_TRUE(inbox.wait(1));
  EXPECT_EQ(inbox.settle(), 1u);
  EXPECT_EQ(bus.undecodable(), 1u);
}

}  // namespace
}  // namespace parley::bus_test
