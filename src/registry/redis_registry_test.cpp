// Runs the Registry conformance suite against RedisRegistry on two Redis servers of the
// tests' own (sharded), and checks what happens when a server goes down and comes back.
#include "registry/redis_registry.h"

#include <atomic>
#include <future>
#include <thread>

#include "redis/redis_test_servers.h"
#include "registry/registry_conformance.h"

namespace parley::registry_test {
namespace {

using namespace std::chrono_literals;

using redis_test::fresh_prefix;
using redis_test::open_shards;
using redis_test::servers;

INSTANTIATE_TEST_SUITE_P(
    Redis, RegistryConformance,
    ::testing::Values(RegistryMaker([](std::chrono::milliseconds ttl, Clock clock) {
      auto shards = open_shards({servers().one.address(), servers().two.address()});
      return std::make_unique<RedisRegistry>(shards, ttl, std::move(clock), fresh_prefix());
    })));

Status wait(const std::function<void(Registry::Done)>& call) {
  std::promise<Status> p;
  call([&](Status s) { p.set_value(std::move(s)); });
  return p.get_future().get();
}

Result<std::vector<UserLocation>> wait_locate(Registry& r, std::vector<std::string> users) {
  std::promise<Result<std::vector<UserLocation>>> p;
  r.locate(std::move(users),
           [&](Result<std::vector<UserLocation>> l) { p.set_value(std::move(l)); });
  return p.get_future().get();
}

TEST(RedisRegistry, SpansProcessesAndSharesEntriesBetweenInstances) {
  auto a = std::make_unique<RedisRegistry>(
      open_shards({servers().one.address(), servers().two.address()}), 60s, nullptr, "shared:");
  auto b = std::make_unique<RedisRegistry>(
      open_shards({servers().one.address(), servers().two.address()}), 60s, nullptr, "shared:");
  EXPECT_TRUE(a->spans_processes());
  // Users on both servers, attached through one node's registry, located through another's.
  std::vector<std::string> users;
  for (int i = 0; i < 20; ++i) users.push_back("u" + std::to_string(i));
  for (const auto& u : users)
    ASSERT_TRUE(wait([&](auto done) { a->attach(u, "phone", 7, done); }).ok());
  auto found = wait_locate(*b, users);
  ASSERT_TRUE(found.ok());
  for (size_t i = 0; i < users.size(); ++i) {
    EXPECT_EQ(found.value()[i].user, users[i]);
    EXPECT_EQ(found.value()[i].devices, (std::vector<DeviceLocation>{{"phone", 7}}));
  }
  ASSERT_TRUE(wait([&](auto done) { b->clear_node(7, done); }).ok());
  found = wait_locate(*a, users);
  ASSERT_TRUE(found.ok());
  for (const auto& l : found.value()) EXPECT_TRUE(l.devices.empty()) << l.user;
}

TEST(RedisRegistry, ExpiredEntriesAreRemovedOnceLocateSawThem) {
  auto shards = open_shards({servers().one.address(), servers().two.address()});
  std::atomic<int64_t> now{1'700'000'000'000};
  const std::string prefix = fresh_prefix();
  RedisRegistry registry(
      shards, 60s, [&] { return now.load(); }, prefix);
  ASSERT_TRUE(wait([&](auto done) { registry.attach("alice", "d1", 1, done); }).ok());
  ASSERT_TRUE(wait([&](auto done) { registry.attach("alice", "d2", 2, done); }).ok());
  auto hlen = [&] {
    std::promise<int64_t> p;
    shards->for_key("alice").command({"HLEN", prefix + "reg:alice"}, [&](Result<redis::Reply> r) {
      p.set_value(r ? r->integer : -1);
    });
    return p.get_future().get();
  };
  EXPECT_EQ(hlen(), 2);
  now += 30'000;
  ASSERT_TRUE(wait([&](auto done) { registry.refresh(2, done); }).ok());
  now += 31'000;  // d1 expired, d2 lives
  auto found = wait_locate(registry, {"alice"});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found.value()[0].devices, (std::vector<DeviceLocation>{{"d2", 2}}));
  // The clean-up went out on the same connection before locate answered.
  EXPECT_EQ(hlen(), 1);
}

TEST(RedisRegistry, ARedisServerDownFailsItsCallsUntilItIsBack) {
  test::RedisServer one, two;
  auto shards = open_shards({one.address(), two.address()});
  RedisRegistry registry(shards, 60s);
  // A user on each server.
  std::string on_one, on_two;
  for (int i = 0; on_one.empty() || on_two.empty(); ++i) {
    std::string u = "user" + std::to_string(i);
    (shards->shard_of(u) == 0 ? on_one : on_two) = u;
  }
  ASSERT_TRUE(wait([&](auto done) { registry.attach(on_one, "d", 1, done); }).ok());
  ASSERT_TRUE(wait([&](auto done) { registry.attach(on_two, "d", 1, done); }).ok());
  EXPECT_TRUE(registry.health().ok);

  two.kill();
  for (int i = 0; i < 300 && registry.health().ok; ++i) std::this_thread::sleep_for(10ms);
  EXPECT_FALSE(registry.health().ok);
  EXPECT_NE(registry.health().detail.find(two.address()), std::string::npos)
      << registry.health().detail;
  auto down = wait([&](auto done) { registry.attach(on_two, "d2", 1, done); });
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Errc::unavailable);
  auto gone = wait_locate(registry, {on_one, on_two});
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::unavailable);
  EXPECT_FALSE(wait([&](auto done) { registry.refresh(1, done); }).ok());
  // The other server's users carry on.
  EXPECT_TRUE(wait([&](auto done) { registry.attach(on_one, "d2", 1, done); }).ok());
  auto one_only = wait_locate(registry, {on_one});
  ASSERT_TRUE(one_only.ok());
  EXPECT_EQ(one_only.value()[0].devices.size(), 2u);

  two.start();  // empty: it lost its entries
  ASSERT_TRUE(shards->wait_ready(5s)) << shards->health().detail;
  EXPECT_TRUE(registry.health().ok);
  EXPECT_TRUE(wait([&](auto done) { registry.attach(on_two, "d2", 1, done); }).ok());
  auto back = wait_locate(registry, {on_one, on_two});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value()[1].devices, (std::vector<DeviceLocation>{{"d2", 1}}));
  EXPECT_TRUE(wait([&](auto done) { registry.refresh(1, done); }).ok());
}

}  // namespace
}  // namespace parley::registry_test
