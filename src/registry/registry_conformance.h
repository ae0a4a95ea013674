// The Registry conformance suite: the contract of registry/registry.h as tests. Every backend
// instantiates it once (INSTANTIATE_TEST_SUITE_P) with a factory that makes a fresh, empty
// registry reading time from the given clock (ms), so that TTLs are tested without waiting.
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "registry/registry.h"

namespace parley::registry_test {

using Clock = std::function<int64_t()>;
// A fresh registry with entries living `ttl`.
using RegistryMaker =
    std::function<std::unique_ptr<Registry>(std::chrono::milliseconds ttl, Clock clock)>;

class RegistryConformance : public ::testing::TestWithParam<RegistryMaker> {
 protected:
  void SetUp() override {
    registry_ = GetParam()(std::chrono::seconds(60), [this] { return now_.load(); });
  }
  void attach(const std::string& user, const std::string& device, NodeId node) {
    std::promise<Status> p;
    registry_->attach(user, device, node, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  void detach(const std::string& user, const std::string& device, NodeId node) {
    std::promise<Status> p;
    registry_->detach(user, device, node, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  void refresh(NodeId node) {
    std::promise<Status> p;
    registry_->refresh(node, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  void clear(NodeId node) {
    std::promise<Status> p;
    registry_->clear_node(node, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  Status claim(NodeId node, const std::string& instance) {
    std::promise<Status> p;
    registry_->claim_node(node, instance, [&](Status s) { p.set_value(s); });
    return p.get_future().get();
  }
  void release(NodeId node, const std::string& instance) {
    std::promise<Status> p;
    registry_->release_node(node, instance, [&](Status s) { p.set_value(s); });
    ASSERT_TRUE(p.get_future().get().ok());
  }
  std::vector<UserLocation> locate(std::vector<std::string> users) {
    std::promise<Result<std::vector<UserLocation>>> p;
    registry_->locate(std::move(users),
                      [&](Result<std::vector<UserLocation>> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.ok());
    return r ? r.value() : std::vector<UserLocation>{};
  }
  std::vector<DeviceLocation> devices(const std::string& user) {
    auto l = locate({user});
    return l.empty() ? std::vector<DeviceLocation>{} : l[0].devices;
  }

  std::atomic<int64_t> now_{1'700'000'000'000};
  std::unique_ptr<Registry> registry_;
};

TEST_P(RegistryConformance, LocatesDevicesOnTheirNodesInTheOrderAsked) {
  attach("alice", "d1", 1);
  attach("alice", "d2", 2);
  attach("bob", "d9", 1);
  auto found = locate({"bob", "carol", "alice"});
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0], (UserLocation{"bob", {{"d9", 1}}}));
  EXPECT_EQ(found[1], (UserLocation{"carol", {}}));
  EXPECT_EQ(found[2], (UserLocation{"alice", {{"d1", 1}, {"d2", 2}}}));
  EXPECT_TRUE(locate({}).empty());
}

TEST_P(RegistryConformance, SessionsAreCountedPerDeviceAndNode) {
  attach("alice", "d1", 1);
  attach("alice", "d1", 1);  // a second connection of the same device on the same node
  attach("alice", "d1", 2);  // and one on another node
  detach("alice", "d1", 1);
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 1}, {"d1", 2}}));
  detach("alice", "d1", 1);
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 2}}));
  detach("alice", "d1", 2);
  EXPECT_TRUE(devices("alice").empty());
  detach("alice", "d1", 2);  // one too many: harmless
  detach("nobody", "dx", 7);
  attach("alice", "d1", 1);
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 1}}));
}

TEST_P(RegistryConformance, EntriesOfANodeThatStopsRefreshingExpire) {
  attach("alice", "d1", 1);
  attach("alice", "d2", 2);
  now_ += 40'000;
  refresh(1);  // node 1 lives on; node 2 died without detaching
  now_ += 40'000;
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 1}}));
  now_ += 61'000;  // node 1 stopped refreshing as well
  EXPECT_TRUE(devices("alice").empty());
  // A node that comes back attaches afresh: the old count is gone with its entry.
  attach("alice", "d2", 2);
  detach("alice", "d2", 2);
  EXPECT_TRUE(devices("alice").empty());
}

TEST_P(RegistryConformance, ClearingANodeForgetsItsEntriesOnly) {
  attach("alice", "d1", 1);
  attach("alice", "d2", 2);
  attach("bob", "d3", 2);
  clear(2);
  auto found = locate({"alice", "bob"});
  EXPECT_EQ(found[0].devices, (std::vector<DeviceLocation>{{"d1", 1}}));
  EXPECT_TRUE(found[1].devices.empty());
}

TEST_P(RegistryConformance, ConcurrentAttachAndDetachBalance) {
  constexpr int kThreads = 4, kEach = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        registry_->attach("alice", "d" + std::to_string(i % 5), static_cast<NodeId>(t), nullptr);
        registry_->detach("alice", "d" + std::to_string(i % 5), static_cast<NodeId>(t), nullptr);
      }
      registry_->attach("alice", "last", static_cast<NodeId>(t), nullptr);
    });
  for (auto& t : threads) t.join();
  // Completions may come later than the calls (a remote backend): wait for the last ones.
  for (int i = 0; i < 100 && devices("alice").size() < kThreads; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  auto found = devices("alice");
  ASSERT_EQ(found.size(), static_cast<size_t>(kThreads));
  for (const auto& d : found) EXPECT_EQ(d.device_id, "last");
}

TEST_P(RegistryConformance, ANodeIdIsHeldByOneInstanceAtATime) {
  EXPECT_TRUE(claim(3, "host-a").ok());
  EXPECT_TRUE(claim(3, "host-a").ok());  // a renewal, or the same installation restarting
  auto taken = claim(3, "host-b");
  ASSERT_FALSE(taken.ok());
  EXPECT_EQ(taken.error().code, Errc::conflict);
  EXPECT_TRUE(claim(4, "host-b").ok());  // other ids are free
  now_ += 40'000;
  EXPECT_TRUE(claim(3, "host-a").ok());  // renewed: lives another TTL from now
  now_ += 40'000;
  EXPECT_FALSE(claim(3, "host-b").ok());
  refresh(3);  // sessions' refresh does not keep a claim alive
  now_ += 21'000;
  EXPECT_TRUE(claim(3, "host-b").ok());  // host-a stopped renewing: the id is free
  EXPECT_FALSE(claim(3, "host-a").ok());
}

TEST_P(RegistryConformance, AReleasedNodeIdIsFreeAtOnceButOnlyItsHolderReleasesIt) {
  ASSERT_TRUE(claim(5, "host-a").ok());
  release(5, "host-b");  // not its claim: nothing happens
  EXPECT_FALSE(claim(5, "host-b").ok());
  release(5, "host-a");
  EXPECT_TRUE(claim(5, "host-b").ok());
}

TEST_P(RegistryConformance, ReportsItsHealth) { EXPECT_TRUE(registry_->health().ok); }

}  // namespace parley::registry_test
