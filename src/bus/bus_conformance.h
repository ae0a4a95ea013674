// The Bus conformance suite: the contract of bus/bus.h as tests. Every backend instantiates
// it once (INSTANTIATE_TEST_SUITE_P) with a factory of clusters: several Bus endpoints that
// reach each other (one process's LocalBusHub, or one Redis deployment).
#pragma once

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "bus/bus.h"

namespace parley::bus_test {

// Bus endpoints of one cluster. endpoint(n) is node n's Bus, created on first use.
class BusCluster {
 public:
  virtual ~BusCluster() = default;
  virtual Bus& endpoint(NodeId node) = 0;
  // Ends node's endpoint (the node stops).
  virtual void stop(NodeId node) = 0;
};
using BusClusterMaker = std::function<std::unique_ptr<BusCluster>()>;

// What one node's handler received, in order.
class Inbox {
 public:
  Bus::Handler handler() {
    return [this](const Envelope& env) {
      std::lock_guard lock(mu_);
      got_.push_back(env);
      cv_.notify_all();
    };
  }
  // Waits until `n` envelopes arrived (false on timeout).
  bool wait(size_t n, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return got_.size() >= n; });
  }
  // Nothing more arrives within `quiet` (for "not delivered" checks).
  size_t settle(std::chrono::milliseconds quiet = std::chrono::milliseconds(200)) {
    std::this_thread::sleep_for(quiet);
    std::lock_guard lock(mu_);
    return got_.size();
  }
  std::vector<Envelope> got() {
    std::lock_guard lock(mu_);
    return got_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Envelope> got_;
};

inline Envelope delivery(uint64_t n) {
  Envelope e;
  e.kind = Envelope::Kind::deliver;
  e.except = SessionRef{3, 77};
  e.recipients = {Recipient{"alice", n}, Recipient{"bob", n + 1}};
  e.payload_kind = Envelope::Payload::message;
  e.payload = R"({"chat_id":1,"seq":)" + std::to_string(n) + "}";
  return e;
}

class BusConformance : public ::testing::TestWithParam<BusClusterMaker> {
 protected:
  void SetUp() override { cluster_ = GetParam()(); }
  void TearDown() override { cluster_.reset(); }
  Bus& node(NodeId n) { return cluster_->endpoint(n); }
  // Subscribes node n to the chat; the future is its confirmation.
  std::future<Status> subscribe(NodeId n, uint64_t chat) {
    auto p = std::make_shared<std::promise<Status>>();
    auto f = p->get_future();
    node(n).subscribe_chat(chat, [p](Status s) { p->set_value(std::move(s)); });
    return f;
  }
  static void confirmed(std::future<Status> f) {
    ASSERT_EQ(f.wait_for(std::chrono::seconds(10)), std::future_status::ready);
    Status s = f.get();
    ASSERT_TRUE(s.ok()) << s.error().message;
  }
  std::unique_ptr<BusCluster> cluster_;
};

TEST_P(BusConformance, PublishReachesTheAddresseeOnlyIntact) {
  Inbox a, b, c;
  node(1).start(1, a.handler());
  node(2).start(2, b.handler());
  node(3).start(3, c.handler());
  Envelope sent = delivery(5);
  node(1).publish(2, sent);
  ASSERT_TRUE(b.wait(1));
  auto got = b.got();
  ASSERT_EQ(got.size(), 1u);
  sent.from = 1;  // the Bus stamps the publisher
  EXPECT_EQ(got[0], sent);
  // To itself too.
  node(2).publish(2, delivery(6));
  ASSERT_TRUE(b.wait(2));
  EXPECT_EQ(b.got()[1].from, 2u);
  EXPECT_EQ(a.settle(), 0u);
  EXPECT_EQ(c.settle(), 0u);
}

TEST_P(BusConformance, OrderIsKeptPerPublisherAndAddressee) {
  Inbox a, b;
  node(1).start(1, a.handler());
  node(2).start(2, b.handler());
  Inbox sink;
  node(3).start(3, sink.handler());
  constexpr uint64_t kEach = 2000;
  // Two publishers at once, each in its own thread: each one's order survives.
  std::thread t1([&] {
    for (uint64_t i = 1; i <= kEach; ++i) node(1).publish(3, delivery(i));
  });
  std::thread t2([&] {
    for (uint64_t i = 1; i <= kEach; ++i) node(2).publish(3, delivery(i));
  });
  t1.join();
  t2.join();
  ASSERT_TRUE(sink.wait(2 * kEach));
  std::map<NodeId, uint64_t> last;
  for (const auto& e : sink.got()) {
    uint64_t n = e.recipients.at(0).pts;
    EXPECT_EQ(n, last[e.from] + 1) << "from node " << e.from;
    last[e.from] = n;
  }
  EXPECT_EQ(last[1], kEach);
  EXPECT_EQ(last[2], kEach);
}

TEST_P(BusConformance, ChatBroadcastsReachSubscribedNodesOnly) {
  Inbox a, b, c;
  node(1).start(1, a.handler());
  node(2).start(2, b.handler());
  node(3).start(3, c.handler());
  confirmed(subscribe(2, 42));
  confirmed(subscribe(3, 42));
  node(3).subscribe_chat(42, nullptr);  // counted (no confirmation wanted)
  node(3).unsubscribe_chat(42);
  Envelope e;
  e.kind = Envelope::Kind::broadcast;
  e.chat_id = 42;
  e.payload = R"({"type":"message","message":{}})";
  node(1).publish_chat(42, e);
  ASSERT_TRUE(b.wait(1));
  ASSERT_TRUE(c.wait(1));
  EXPECT_EQ(b.got()[0].payload, e.payload);
  node(3).unsubscribe_chat(42);  // now gone
  node(1).publish_chat(42, e);
  ASSERT_TRUE(b.wait(2));
  EXPECT_EQ(c.settle(), 1u);
  EXPECT_EQ(a.settle(), 0u);
  node(1).publish_chat(43, e);  // nobody
  EXPECT_EQ(b.settle(), 2u);
}

// subscribe_chat() returns without waiting; its confirmation says from when on the chat's
// broadcasts reach the node. A second subscription of the chat is confirmed too, no earlier
// than the first.
TEST_P(BusConformance, ASubscriptionIsConfirmedOnceBroadcastsReachTheNode) {
  Inbox a, b;
  node(1).start(1, a.handler());
  node(2).start(2, b.handler());
  Envelope e;
  e.kind = Envelope::Kind::broadcast;
  e.chat_id = 77;
  e.seq = 1;
  e.payload = "first";
  // Published from the confirmation itself: the earliest moment it is promised to arrive.
  auto published = std::make_shared<std::promise<void>>();
  auto first_confirmed = std::make_shared<std::atomic<bool>>(false);
  node(2).subscribe_chat(77, [&, published, first_confirmed](Status s) {
    EXPECT_TRUE(s.ok());
    *first_confirmed = true;
    node(1).publish_chat(77, e);
    published->set_value();
  });
  auto second = std::make_shared<std::promise<bool>>();
  node(2).subscribe_chat(77, [second, first_confirmed](Status s) {
    second->set_value(s.ok() && first_confirmed->load());
  });
  ASSERT_EQ(published->get_future().wait_for(std::chrono::seconds(10)), std::future_status::ready);
  auto second_done = second->get_future();
  ASSERT_EQ(second_done.wait_for(std::chrono::seconds(10)), std::future_status::ready);
  EXPECT_TRUE(second_done.get());
  ASSERT_TRUE(b.wait(1));
  EXPECT_EQ(b.got()[0].payload, "first");
  node(2).unsubscribe_chat(77);  // one of two: still subscribed
  e.payload = "second";
  node(1).publish_chat(77, e);
  ASSERT_TRUE(b.wait(2));
  EXPECT_EQ(b.got()[1].payload, "second");
  EXPECT_EQ(a.settle(), 0u);
}

TEST_P(BusConformance, PublishAllReachesEveryNodeAndAStoppedNodeNothing) {
  Inbox a, b, c;
  node(1).start(1, a.handler());
  node(2).start(2, b.handler());
  node(3).start(3, c.handler());
  Envelope e;
  e.kind = Envelope::Kind::presence;
  e.user = "alice";
  e.online = false;
  e.last_seen = 1700000000000;
  node(2).publish_all(e);
  ASSERT_TRUE(a.wait(1));
  ASSERT_TRUE(b.wait(1));
  ASSERT_TRUE(c.wait(1));
  EXPECT_EQ(a.got()[0].last_seen, e.last_seen);
  cluster_->stop(3);
  node(1).publish_all(e);
  node(1).publish(3, delivery(1));  // to a node that is gone: lost, not an error
  ASSERT_TRUE(a.wait(2));
  ASSERT_TRUE(b.wait(2));
  EXPECT_EQ(c.settle(), 1u);
}

// What the handler refers to may go once stop() returned (a node's SessionHub): no call
// starts after it, and one that was running has ended.
TEST_P(BusConformance, StopWaitsForTheHandlerAndEndsItsCalls) {
  Inbox a;
  node(1).start(1, a.handler());
  std::atomic<bool> stopped{false};
  std::atomic<int> calls{0}, late{0};
  node(2).start(2, [&](const Envelope&) {
    if (stopped) ++late;
    ++calls;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    if (stopped) ++late;
  });
  std::atomic<bool> done{false};
  std::thread publisher([&] {
    for (uint64_t n = 1; !done; ++n) {
      node(1).publish(2, delivery(n));
      node(1).publish_all(delivery(n));
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  for (int i = 0; i < 1000 && calls < 5; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_GE(calls.load(), 5);
  node(2).stop();
  stopped = true;
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  done = true;
  publisher.join();
  EXPECT_EQ(late.load(), 0);
  node(2).stop();          // again: nothing to do
  EXPECT_TRUE(a.wait(2));  // the others go on
  node(1).stop();          // what is still on its way to `a` (a Redis backlog) does not reach it
}

TEST_P(BusConformance, ReportsItsHealth) {
  Inbox a;
  node(1).start(1, a.handler());
  EXPECT_TRUE(node(1).health().ok) << node(1).health().detail;
}

}  // namespace parley::bus_test
