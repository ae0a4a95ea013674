// Runs the Registry conformance suite against RedisRegistry on two Redis servers of the
// tests' own (sharded), and checks what happens when a server goes down and comes back.
#include "registry/redis_registry.h"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <future>
#include <iostream>
#include <optional>
#include <thread>

#include "redis/redis_test_servers.h"
#include "registry/node_ledger.h"
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

// A Redis server that restarts empty (or is flushed) loses the entries on it; the node's next
// reassert writes back what it holds, so other nodes find its devices again.
TEST(RedisRegistry, ANodesReassertBringsBackWhatARestartedServerLost) {
  test::RedisServer one, two;
  auto shards = open_shards({one.address(), two.address()});
  RedisRegistry registry(shards, 60s);
  NodeLedger node1(registry, 1), node2(registry, 2);
  std::vector<std::string> users;
  for (int i = 0; i < 40; ++i) users.push_back("user" + std::to_string(i));
  for (const auto& u : users) {
    ASSERT_TRUE(wait([&](auto done) { node1.attach(u, "phone", 1, done); }).ok());
    ASSERT_TRUE(wait([&](auto done) { node1.attach(u, "phone", 1, done); }).ok());  // 2 sessions
    ASSERT_TRUE(wait([&](auto done) { node2.attach(u, "laptop", 2, done); }).ok());
  }
  ASSERT_TRUE(wait([&](auto done) { node1.attach("gone", "phone", 1, done); }).ok());
  ASSERT_TRUE(wait([&](auto done) { node1.detach("gone", "phone", 1, done); }).ok());

  two.kill();
  two.start();  // empty
  ASSERT_TRUE(shards->wait_ready(5s)) << shards->health().detail;
  std::promise<void> flushed;  // and server one flushed by an operator
  shards->at(0).command({"FLUSHALL"}, [&](Result<redis::Reply>) { flushed.set_value(); });
  flushed.get_future().wait();
  auto lost = wait_locate(registry, users);
  ASSERT_TRUE(lost.ok());
  for (const auto& l : lost.value()) EXPECT_TRUE(l.devices.empty()) << l.user;

  ASSERT_TRUE(wait([&](auto done) { node1.reassert(done); }).ok());
  auto back = wait_locate(registry, users);
  ASSERT_TRUE(back.ok());
  for (const auto& l : back.value())  // node 2 has not reasserted yet
    EXPECT_EQ(l.devices, (std::vector<DeviceLocation>{{"phone", 1}})) << l.user;
  ASSERT_TRUE(wait([&](auto done) { node2.reassert(done); }).ok());
  back = wait_locate(registry, users);
  ASSERT_TRUE(back.ok());
  for (const auto& l : back.value())
    EXPECT_EQ(l.devices, (std::vector<DeviceLocation>{{"laptop", 2}, {"phone", 1}})) << l.user;
  // Counts came back too: two sessions of each phone.
  for (const auto& u : users)
    ASSERT_TRUE(wait([&](auto done) { node1.detach(u, "phone", 1, done); }).ok());
  back = wait_locate(registry, {users[0], "gone"});
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back.value()[0].devices, (std::vector<DeviceLocation>{{"laptop", 2}, {"phone", 1}}));
  EXPECT_TRUE(back.value()[1].devices.empty());
}

// What a reassert costs: 10,000 sessions of one node (2 devices for a quarter of the users)
// on two servers of its own; written from nothing (a server restarted empty), then again over
// entries that are all there (the periodic case), then with a tenth of them gone. Printed for
// docs/SCALING.md: the time until the reassert completed, and what the servers spent in its
// scripts (INFO commandstats): in all, and the longest one (the latency monitor, whole ms),
// which is how long that server served nobody else.
TEST(RedisRegistry, ReassertOfTenThousandSessions) {
  test::RedisServer one, two;
  auto shards = open_shards({one.address(), two.address()});
  RedisRegistry registry(shards, 60s);
  auto on_each = [&](std::vector<std::string> command) {
    std::vector<redis::Reply> replies;
    for (size_t s = 0; s < shards->size(); ++s) {
      std::promise<Result<redis::Reply>> p;
      shards->at(s).command(command, [&](Result<redis::Reply> r) { p.set_value(std::move(r)); });
      auto r = redis::checked(p.get_future().get());
      EXPECT_TRUE(r.ok());
      replies.push_back(r ? r.value() : redis::Reply{});
    }
    return replies;
  };
  on_each({"CONFIG", "SET", "latency-monitor-threshold", "1"});
  std::vector<SessionEntry> live;
  for (int i = 0; live.size() < 10'000; ++i) {
    const std::string user = "user" + std::to_string(i);
    live.push_back({user, "phone", 1});
    if (i % 4 == 0) live.push_back({user, "laptop", 1});
  }
  // "cmdstat_evalsha:calls=9,usec=61234,..." -> calls, usec
  auto stat = [](const std::string& info, const std::string& name) {
    std::pair<int64_t, int64_t> out{0, 0};
    auto at = info.find("cmdstat_" + name + ":calls=");
    if (at == std::string::npos) return out;
    std::sscanf(info.c_str() + at, ("cmdstat_" + name + ":calls=%ld,usec=%ld").c_str(), &out.first,
                &out.second);
    return out;
  };
  auto timed = [&](const char* what, std::optional<std::vector<SessionEntry>> entries) {
    on_each({"CONFIG", "RESETSTAT"});
    on_each({"LATENCY", "RESET"});
    const auto start = std::chrono::steady_clock::now();
    EXPECT_TRUE(wait([&](auto done) {
                  if (entries)
                    registry.reassert(9, std::move(*entries), done);
                  else
                    registry.refresh(9, done);  // for comparison: what it replaces
                }).ok());
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    int64_t total_us = 0, longest_ms = 0, scripts = 0;
    for (const auto& info : on_each({"INFO", "commandstats"}))
      for (const char* name : {"eval", "evalsha"}) {
        auto [calls, usec] = stat(info.str, name);
        scripts += calls;
        total_us += usec;
      }
    // [["command", at, latest ms, max ms], ...]: the longest command (a script here).
    for (const auto& latest : on_each({"LATENCY", "LATEST"}))
      for (const auto& event : latest.elements)
        if (event.elements.size() >= 4 && event.elements[0].str == "command")
          longest_ms = std::max(longest_ms, event.elements[3].integer);
    std::cout << (entries ? "reassert" : "refresh") << " of " << live.size() << " sessions " << what
              << ": " << ms << " ms until done; the servers ran " << scripts << " scripts for "
              << total_us / 1000.0 << " ms in all, the longest " << longest_ms << " ms\n";
    return std::make_pair(ms, scripts);
  };
  timed("into empty servers", live);
  const auto [steady, scripts] = timed("over existing entries", live);
  EXPECT_GT(scripts, 4);  // chunked: 10,000 sessions are not one script per server
  timed("(what it replaces)", std::nullopt);
  live.resize(9'000);  // a tenth of them closed without their detach arriving
  timed("removing 1,000 stale ones", live);
  auto found = wait_locate(registry, {"user0", "user7999"});
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found.value()[0].devices, (std::vector<DeviceLocation>{{"laptop", 9}, {"phone", 9}}));
  EXPECT_TRUE(found.value()[1].devices.empty());
  EXPECT_LT(steady, 5000.0);
}

}  // namespace
}  // namespace parley::registry_test
