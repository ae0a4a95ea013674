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

#include "registry/node_ledger.h"
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
  void reassert(NodeId node, std::vector<SessionEntry> live) {
    std::promise<Status> p;
    registry_->reassert(node, std::move(live), [&](Status s) { p.set_value(s); });
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

TEST_P(RegistryConformance, ReassertWritesWhatIsMissingAndRemovesTheNodesStaleEntriesOnly) {
  attach("alice", "d1", 1);
  attach("alice", "d2", 1);  // closed, and its detach lost: stale
  attach("alice", "d4", 2);  // other nodes' entries, of the same user too
  attach("bob", "d3", 2);
  attach("erin", "d7", 1);  // stale: the user has no entry of node 1 left
  // carol and dave: the node holds them, the registry lost them (or never got them).
  reassert(1, {{"alice", "d1", 1}, {"carol", "d5", 1}, {"dave", "d6", 2}, {"dave", "d8", 0}});
  auto found = locate({"alice", "bob", "carol", "dave", "erin"});
  EXPECT_EQ(found[0].devices, (std::vector<DeviceLocation>{{"d1", 1}, {"d4", 2}}));
  EXPECT_EQ(found[1].devices, (std::vector<DeviceLocation>{{"d3", 2}}));
  EXPECT_EQ(found[2].devices, (std::vector<DeviceLocation>{{"d5", 1}}));
  EXPECT_EQ(found[3].devices, (std::vector<DeviceLocation>{{"d6", 1}}));  // 0 sessions: absent
  EXPECT_TRUE(found[4].devices.empty());
  // Nothing of node 1 left: every entry of the node goes, the other node's stay.
  reassert(1, {});
  found = locate({"alice", "bob", "carol", "dave"});
  EXPECT_EQ(found[0].devices, (std::vector<DeviceLocation>{{"d4", 2}}));
  EXPECT_EQ(found[1].devices, (std::vector<DeviceLocation>{{"d3", 2}}));
  EXPECT_TRUE(found[2].devices.empty());
  EXPECT_TRUE(found[3].devices.empty());
  // The node's later attaches and detaches count from what it reasserted.
  attach("carol", "d5", 1);
  detach("carol", "d5", 1);
  EXPECT_TRUE(devices("carol").empty());
}

TEST_P(RegistryConformance, ReassertSetsTheSessionCounts) {
  attach("alice", "d1", 1);
  attach("alice", "d1", 1);
  attach("alice", "d1", 1);  // three counted, one live: two detaches were lost
  reassert(1, {{"alice", "d1", 1}, {"bob", "d2", 2}});
  detach("alice", "d1", 1);
  EXPECT_TRUE(devices("alice").empty());
  detach("bob", "d2", 1);
  EXPECT_EQ(devices("bob"), (std::vector<DeviceLocation>{{"d2", 1}}));
  detach("bob", "d2", 1);
  EXPECT_TRUE(devices("bob").empty());
}

TEST_P(RegistryConformance, ReassertRenewsTheNodesEntries) {
  attach("alice", "d1", 1);
  attach("alice", "d2", 2);
  now_ += 40'000;
  reassert(1, {{"alice", "d1", 1}, {"bob", "d3", 1}});
  now_ += 40'000;  // node 2 stopped renewing
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 1}}));
  EXPECT_EQ(devices("bob"), (std::vector<DeviceLocation>{{"d3", 1}}));
  now_ += 21'000;
  EXPECT_TRUE(devices("alice").empty());
  EXPECT_TRUE(devices("bob").empty());
  // An entry that expired and is live after all is written again.
  reassert(1, {{"alice", "d1", 1}});
  EXPECT_EQ(devices("alice"), (std::vector<DeviceLocation>{{"d1", 1}}));
}

TEST_P(RegistryConformance, CallsApplyInTheOrderTheyWereMade) {
  // Made one after the other without waiting for completions: the attach after the reassert
  // that does not hold it stands, the detach after the one that holds it applies.
  std::vector<std::future<Status>> done;
  auto call = [&] {
    auto p = std::make_shared<std::promise<Status>>();
    done.push_back(p->get_future());
    return [p](Status s) { p->set_value(s); };
  };
  for (int i = 0; i < 20; ++i) {
    const std::string user = "u" + std::to_string(i);
    registry_->reassert(1, {}, call());
    registry_->attach(user, "d", 1, call());
    registry_->reassert(1, {{user, "d", 1}, {"x", "d", 1}}, call());
    registry_->detach("x", "d", 1, call());
  }
  for (auto& f : done) EXPECT_TRUE(f.get().ok());
  EXPECT_EQ(devices("u19"), (std::vector<DeviceLocation>{{"d", 1}}));
  EXPECT_TRUE(devices("u18").empty());
  EXPECT_TRUE(devices("x").empty());
}

// The race a node's reassert must survive: sessions come and go on many threads while the
// node reasserts what it holds. Through a NodeLedger nothing is lost or counted twice.
TEST_P(RegistryConformance, ALedgerReassertsWhileSessionsComeAndGo) {
  NodeLedger ledger(*registry_, 1);
  constexpr int kThreads = 4, kEach = 300;
  std::atomic<int> pending{0};
  auto counted = [&](Status s) {
    EXPECT_TRUE(s.ok());
    --pending;
  };
  std::atomic<bool> stop{false};
  std::thread reasserting([&] {
    while (!stop) {
      // One at a time, back to back, as a node's refresh runs them: issued every 200 us
      // regardless, they queued faster than a sanitized build drained them, and timed out.
      auto finished = std::make_shared<std::promise<void>>();
      auto reasserted = finished->get_future();
      ++pending;
      ledger.reassert([&counted, finished](Status s) {
        counted(s);
        finished->set_value();
      });
      reasserted.wait();
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      const std::string user = "user" + std::to_string(t);
      for (int i = 0; i < kEach; ++i) {
        const std::string device = "d" + std::to_string(i % 3);
        pending += 2;
        ledger.attach(user, device, 1, counted);
        ledger.attach(user, "phone", 1, counted);
        if (i % 2) std::this_thread::yield();
        pending += 2;
        ledger.detach(user, "phone", 1, counted);
        ledger.detach(user, device, 1, counted);
      }
      pending += 2;
      ledger.attach(user, "last", 1, counted);  // two sessions of one device stay
      ledger.attach(user, "last", 1, counted);
    });
  for (auto& t : threads) t.join();
  stop = true;
  reasserting.join();
  for (int i = 0; i < 500 && pending > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(pending.load(), 0);
  EXPECT_EQ(ledger.entries().size(), static_cast<size_t>(kThreads));
  for (int t = 0; t < kThreads; ++t) {
    const std::string user = "user" + std::to_string(t);
    EXPECT_EQ(devices(user), (std::vector<DeviceLocation>{{"last", 1}})) << user;
    // Counted once each: two detaches and the device is gone.
    detach(user, "last", 1);
    EXPECT_EQ(devices(user), (std::vector<DeviceLocation>{{"last", 1}})) << user;
    detach(user, "last", 1);
    EXPECT_TRUE(devices(user).empty()) << user;
  }
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
