// SessionHub and the Bus's subscriptions: a large group's message published after the node
// asked for the chat's broadcasts but before the Bus confirmed the subscription never arrives
// on the Bus; the hub reads it from the store once confirmed (session_hub.h).
#include "session/session_hub.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <mutex>
#include <set>

namespace parley::session {
namespace {

using namespace std::chrono_literals;

class FakeTransport final : public net::Transport {
 public:
  FakeTransport(boost::asio::any_io_executor ex, uint64_t id) : ex_(std::move(ex)), id_(id) {}
  using net::Transport::send;
  void send(std::shared_ptr<const std::string> frame, net::FrameKind) override {
    std::lock_guard lock(mu_);
    sent_.push_back(*frame);
  }
  void close(uint16_t, std::string) override {}
  void set_batching(bool) override {}
  uint64_t id() const override { return id_; }
  boost::asio::any_io_executor executor() const override { return ex_; }
  std::vector<std::string> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

 private:
  boost::asio::any_io_executor ex_;
  uint64_t id_;
  std::mutex mu_;
  std::vector<std::string> sent_;
};

// A Bus whose chat subscriptions take effect when the test confirms them: what is published
// to a chat before then is lost, as on Redis before the SUBSCRIBE is answered.
class SlowBus final : public Bus {
 public:
  void start(NodeId, Handler handler) override { handler_ = std::move(handler); }
  void stop() override { handler_ = nullptr; }
  void publish(NodeId, Envelope) override {}
  void publish_chat(uint64_t chat_id, Envelope env) override {
    if (subscribed_.contains(chat_id)) handler_(env);
  }
  void publish_all(Envelope) override {}
  void subscribe_chat(uint64_t chat_id, Subscribed subscribed) override {
    asked_.emplace_back(chat_id, std::move(subscribed));
  }
  void unsubscribe_chat(uint64_t chat_id) override { subscribed_.erase(chat_id); }
  Health health() const override { return {}; }

  size_t asked() const { return asked_.size(); }
  // Confirms what was asked: in effect when ok, not (Redis down) otherwise.
  void confirm(Status s = ok_status()) {
    auto asked = std::move(asked_);
    asked_.clear();
    for (auto& [chat, done] : asked) {
      if (s) subscribed_.insert(chat);
      if (done) done(s);
    }
  }

 private:
  Handler handler_;
  std::vector<std::pair<uint64_t, Subscribed>> asked_;
  std::set<uint64_t> subscribed_;
};

class SessionHubTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kChat = 31;

  SessionHubTest() : hub_(1, &bus_) {
    bus_.start(1, [this](const Envelope& env) { hub_.handle(env); });
    // The store: chat 31's committed messages, "m<seq>". Reads complete inline.
    hub_.order_chats(
        ioc_.get_executor(), StreamOptions{10ms, 2, 100},
        [this](const std::string&, uint64_t, uint64_t after, uint32_t limit,
               std::function<void(Result<CatchUpPage>)> done) {
          ++reads_;
          CatchUpPage page;
          for (uint64_t seq = after + 1; seq <= committed_ && seq - after <= limit; ++seq)
            page.updates.push_back(
                PtsFrame{seq, std::make_shared<const std::string>("m" + std::to_string(seq)), ""});
          done(std::move(page));
        },
        [this](const std::string&, uint64_t, std::function<void(Result<uint64_t>)> done) {
          if (!hold_positions_) return done(committed_);
          held_positions_.push_back(std::move(done));
        });
  }
  // Commits the chat's next message and broadcasts it, as ChatService does.
  void commit() {
    ++committed_;
    Envelope env;
    env.kind = Envelope::Kind::broadcast;
    env.chat_id = kChat;
    env.seq = committed_;
    env.payload = "m" + std::to_string(committed_);
    bus_.publish_chat(kChat, std::move(env));
  }
  void run() {
    for (int i = 0; i < 5; ++i) {
      ioc_.restart();
      ioc_.run_for(5ms);
    }
  }

  boost::asio::io_context ioc_;
  SlowBus bus_;
  SessionHub hub_;
  uint64_t committed_ = 5;
  int reads_ = 0;
  bool hold_positions_ = false;  // position reads wait for the test
  std::vector<std::function<void(Result<uint64_t>)>> held_positions_;
};

using Sent = std::vector<std::string>;

TEST_F(SessionHubTest, AMessagePublishedBeforeTheBusConfirmedIsReadOnceItDid) {
  auto alice = std::make_shared<FakeTransport>(ioc_.get_executor(), 7);
  auto bob = std::make_shared<FakeTransport>(ioc_.get_executor(), 8);
  hub_.subscribe(kChat, "alice", alice);  // the node's first subscriber: the stream is at 5
  hub_.subscribe(kChat, "bob", bob);
  EXPECT_EQ(bus_.asked(), 1u);  // one subscription per node and chat
  commit();                     // 6: published before the subscription took effect: lost
  run();
  EXPECT_TRUE(alice->sent().empty());
  EXPECT_EQ(reads_, 0);
  bus_.confirm();  // the hub reads up to the chat's position now, without waiting for a 7
  run();
  EXPECT_EQ(alice->sent(), (Sent{"m6"}));
  EXPECT_EQ(bob->sent(), (Sent{"m6"}));
  commit();  // 7: live
  run();
  EXPECT_EQ(alice->sent(), (Sent{"m6", "m7"}));
  EXPECT_EQ(bob->sent(), (Sent{"m6", "m7"}));
  EXPECT_EQ(reads_, 1);
}

// A session is ready (its auth answer may go, and the device sync) once the chat's stream on
// this node knows its position: what the device's read then misses is pushed to it.
TEST_F(SessionHubTest, ASubscriberIsReadyOnceTheChatsStreamKnowsItsPosition) {
  hold_positions_ = true;
  auto alice = std::make_shared<FakeTransport>(ioc_.get_executor(), 7);
  auto bob = std::make_shared<FakeTransport>(ioc_.get_executor(), 8);
  auto carol = std::make_shared<FakeTransport>(ioc_.get_executor(), 9);
  std::vector<std::string> ready;
  hub_.subscribe(kChat, "alice", alice, [&] { ready.push_back("alice"); });
  hub_.subscribe(kChat, "bob", bob, [&] { ready.push_back("bob"); });
  hub_.subscribe(kChat, "alice", alice, [&] { ready.push_back("alice again"); });
  EXPECT_TRUE(ready.empty());
  ASSERT_EQ(held_positions_.size(), 1u);
  commit();  // 6, before the position is read: the devices' reads get it
  bus_.confirm();
  held_positions_[0](committed_);
  EXPECT_EQ(ready, (std::vector<std::string>{"alice", "bob", "alice again"}));
  hub_.subscribe(kChat, "carol", carol, [&] { ready.push_back("carol"); });  // at once
  EXPECT_EQ(ready.back(), "carol");
  commit();  // 7: pushed to all three
  run();
  EXPECT_EQ(alice->sent(), (Sent{"m7"}));
  EXPECT_EQ(carol->sent(), (Sent{"m7"}));
  // A chat whose subscribers all left before its position came: nobody waits for it.
  bool other_ready = false;
  hub_.subscribe(kChat + 1, "alice", alice, [&] { other_ready = true; });
  hub_.remove("alice", alice->id());
  EXPECT_TRUE(other_ready);
}

TEST_F(SessionHubTest, WhatIsPublishedWhileTheBusCannotSubscribeIsReadToo) {
  auto alice = std::make_shared<FakeTransport>(ioc_.get_executor(), 7);
  hub_.subscribe(kChat, "alice", alice);
  commit();
  commit();
  bus_.confirm(Error{Errc::unavailable, "redis down"});
  run();
  EXPECT_EQ(alice->sent(), (Sent{"m6", "m7"}));
}

TEST_F(SessionHubTest, ASubscriptionConfirmedAfterItsLastSubscriberLeftReadsNothing) {
  auto alice = std::make_shared<FakeTransport>(ioc_.get_executor(), 7);
  hub_.subscribe(kChat, "alice", alice);
  commit();
  hub_.remove("alice", alice->id());
  bus_.confirm();
  run();
  EXPECT_TRUE(alice->sent().empty());
  EXPECT_EQ(reads_, 0);
}

}  // namespace
}  // namespace parley::session
