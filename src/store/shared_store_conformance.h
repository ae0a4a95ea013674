// The shared-store conformance suite: what a Store that several nodes share (one database,
// several Store handles) keeps on top of store_conformance.h. Every shared backend
// instantiates it with a factory whose open_another() opens a second handle on the same data,
// as a second node would.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store_conformance.h"

namespace parley::store {

class SharedStoreFactory : public StoreFactory {
 public:
  // Another handle on the data of the store that create() made (another node).
  virtual std::unique_ptr<Store> open_another(const SyncConfig& sync) = 0;
};
using SharedStoreFactoryMaker = std::function<std::shared_ptr<SharedStoreFactory>()>;

class SharedStoreConformance : public ::testing::TestWithParam<SharedStoreFactoryMaker> {
 protected:
  void SetUp() override {
    factory_ = GetParam()();
    a_ = factory_->create(::testing::UnitTest::GetInstance()->current_test_info()->name(), sync_);
    ASSERT_TRUE(a_);
    b_ = factory_->open_another(sync_);
    ASSERT_TRUE(b_);
    for (const char* u : {"alice", "bob", "carol", "dave"})
      ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                    a_->create_user(UserRecord{u, "h", 1}, cb);
                  }).ok());
  }
  void TearDown() override {
    b_.reset();
    a_.reset();
    if (factory_) factory_->destroy();
  }
  Store& handle(size_t i) { return i % 2 == 0 ? *a_ : *b_; }

  std::shared_ptr<SharedStoreFactory> factory_;
  SyncConfig sync_;
  std::unique_ptr<Store> a_, b_;
};

// Writers on two handles append to one group and to direct chats at once: every chat's seq
// and every member's pts stay gapless, and each member's log holds each message once, in
// seq order per chat.
TEST_P(SharedStoreConformance, ConcurrentWritersKeepSeqAndPtsGapless) {
  GroupRequest create;
  create.op = GroupOp::create;
  create.actor = "alice";
  create.users = {"bob", "carol", "dave"};
  create.name = "shared";
  create.ts = 1;
  create.message_id = 1;
  auto g = wait_for<GroupResult>([&](auto cb) { a_->group_op(create, cb); });
  ASSERT_TRUE(g.ok()) << g.error().message;
  const ChatId group = g->chat.chat_id;

  const std::vector<std::string> senders = {"alice", "bob", "carol", "dave"};
  constexpr int kPerThread = 40;
  std::vector<std::vector<AppendResult>> results(8);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < results.size(); ++t)
    threads.emplace_back([&, t] {
      const std::string& sender = senders[t % senders.size()];
      for (int i = 0; i < kPerThread; ++i) {
        AppendRequest req;
        req.sender = sender;
        if (i % 4 == 3)  // some direct messages too, crossing the group's users' logs
          req.to_user = senders[(t + 1) % senders.size()];
        else
          req.chat_id = group;
        req.body = "m";
        req.client_msg_id = "t" + std::to_string(t) + "-" + std::to_string(i);
        req.ts = 10 + i;
        req.message_id = t * 1000 + i + 10;
        auto r = wait_for<AppendResult>([&](auto cb) { handle(t).append_message(req, cb); });
        ASSERT_TRUE(r.ok()) << r.error().message;
        EXPECT_FALSE(r->duplicate);
        results[t].push_back(std::move(r.value()));
      }
    });
  for (auto& th : threads) th.join();

  std::map<ChatId, std::vector<uint64_t>> seqs;
  std::map<UserId, std::vector<uint64_t>> pts;
  seqs[group].push_back(1);
  for (const auto& d : g->event.deliveries) pts[d.user].push_back(d.pts);
  for (const auto& rs : results)
    for (const auto& r : rs) {
      seqs[r.message.chat_id].push_back(r.message.seq);
      for (const auto& d : r.deliveries) pts[d.user].push_back(d.pts);
    }
  for (auto& [chat, s] : seqs) {
    std::sort(s.begin(), s.end());
    for (size_t i = 0; i < s.size(); ++i) ASSERT_EQ(s[i], i + 1) << "chat " << chat;
  }
  for (auto& [user, p] : pts) {
    std::sort(p.begin(), p.end());
    for (size_t i = 0; i < p.size(); ++i) ASSERT_EQ(p[i], i + 1) << "user " << user;
    // The log, read through the other handle, holds exactly these, each chat in seq order.
    auto page = wait_for<UpdatesPage>([&](auto cb) { b_->read_updates(user, 0, 100000, cb); });
    ASSERT_TRUE(page.ok());
    ASSERT_EQ(page->updates.size(), p.size()) << user;
    std::map<ChatId, uint64_t> last;
    for (size_t i = 0; i < page->updates.size(); ++i) {
      const auto& u = page->updates[i];
      EXPECT_EQ(u.pts, i + 1);
      EXPECT_GT(u.message.seq, last[u.message.chat_id]) << user << " chat " << u.message.chat_id;
      last[u.message.chat_id] = u.message.seq;
    }
    auto cur = wait_for<uint64_t>([&](auto cb) { a_->current_pts(user, cb); });
    EXPECT_EQ(cur.value(), p.size());
  }
}

// One (sender, client_msg_id) sent through both handles at once is stored once; every
// other send returns the first one's result, flagged duplicate.
TEST_P(SharedStoreConformance, SameClientMsgIdThroughBothHandlesStoresOnce) {
  for (int round = 0; round < 10; ++round) {
    const std::string cmid = "dup-" + std::to_string(round);
    std::vector<Result<AppendResult>> results(8, Error{Errc::internal, ""});
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i)
      threads.emplace_back([&, i] {
        AppendRequest req{"alice", "bob", 0, MessageKind::text, "x", cmid, 1, 100 + i, {}};
        results[i] = wait_for<AppendResult>([&](auto cb) { handle(i).append_message(req, cb); });
      });
    for (auto& t : threads) t.join();
    int originals = 0;
    std::set<uint64_t> seqs, ids;
    for (auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.error().message;
      seqs.insert(r->message.seq);
      ids.insert(r->message.message_id);
      originals += r->duplicate ? 0 : 1;
    }
    EXPECT_EQ(originals, 1);
    EXPECT_EQ(seqs, std::set<uint64_t>{uint64_t(round + 1)});
    EXPECT_EQ(ids.size(), 1u);
  }
  auto h = wait_for<HistoryPage>([&](auto cb) { b_->history({"bob", 0, "alice", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.size(), 10u);
  EXPECT_EQ(wait_for<uint64_t>([&](auto cb) { a_->current_pts("bob", cb); }).value(), 10u);
}

// Two users write to each other for the first time through two handles at once: one direct
// chat, whichever handle creates it; every message in it once, seqs gapless.
TEST_P(SharedStoreConformance, FirstMessagesFromBothSidesMakeOneDirectChat) {
  for (int round = 0; round < 5; ++round) {
    const std::string x = "x" + std::to_string(round), y = "y" + std::to_string(round);
    for (const auto& u : {x, y})
      ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                    a_->create_user(UserRecord{u, "h", 1}, cb);
                  }).ok());
    std::vector<Result<AppendResult>> results(6, Error{Errc::internal, ""});
    std::vector<std::thread> threads;
    for (size_t i = 0; i < results.size(); ++i)
      threads.emplace_back([&, i] {
        bool from_x = i % 2 == 0;
        AppendRequest req{from_x ? x : y,
                          from_x ? y : x,
                          0,
                          MessageKind::text,
                          "hi",
                          "first-" + std::to_string(i),
                          1,
                          1 + i,
                          {}};
        results[i] = wait_for<AppendResult>([&](auto cb) { handle(i).append_message(req, cb); });
      });
    for (auto& t : threads) t.join();
    std::set<ChatId> chats;
    std::set<uint64_t> seqs;
    for (auto& r : results) {
      ASSERT_TRUE(r.ok()) << r.error().message;
      chats.insert(r->message.chat_id);
      seqs.insert(r->message.seq);
    }
    EXPECT_EQ(chats.size(), 1u);
    EXPECT_EQ(seqs, (std::set<uint64_t>{1, 2, 3, 4, 5, 6}));
    auto list = wait_for<ChatList>([&](auto cb) { b_->list_chats(x, 10, {}, cb); });
    ASSERT_TRUE(list.ok());
    ASSERT_EQ(list->chats.size(), 1u);
    EXPECT_EQ(list->chats[0].peer, y);
  }
}

// Read receipts for one chat through both handles at once: the position only moves forward,
// and the peer's log holds the receipts in increasing order.
TEST_P(SharedStoreConformance, ConcurrentReceiptsOnlyMoveForward) {
  ChatId chat = 0;
  for (int i = 0; i < 40; ++i) {
    AppendRequest req{"alice", "bob",           0, MessageKind::text, "m", "r" + std::to_string(i),
                      1,       uint64_t(i + 1), {}};
    auto r = wait_for<AppendResult>([&](auto cb) { a_->append_message(req, cb); });
    ASSERT_TRUE(r.ok());
    chat = r->message.chat_id;
  }
  std::vector<std::thread> devices;
  for (size_t t = 0; t < 4; ++t)
    devices.emplace_back([&, t] {
      for (uint64_t seq = 1 + t; seq <= 40; seq += 4) {
        ReceiptRequest req;
        req.user = "bob";
        req.chat_id = chat;
        req.kind = UpdateKind::read;
        req.seq = seq;
        req.ts = 1;
        auto r = wait_for<ReceiptResult>([&](auto cb) { handle(t).mark(req, cb); });
        ASSERT_TRUE(r.ok()) << r.error().message;
      }
    });
  for (auto& t : devices) t.join();
  auto list = wait_for<ChatList>([&](auto cb) { b_->list_chats("bob", 10, {}, cb); });
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->chats.size(), 1u);
  EXPECT_EQ(list->chats[0].read_seq, 40u);
  auto page = wait_for<UpdatesPage>([&](auto cb) { a_->read_updates("alice", 0, 1000, cb); });
  ASSERT_TRUE(page.ok());
  uint64_t last = 0;
  for (const auto& u : page->updates) {
    if (u.kind != UpdateKind::read) continue;
    EXPECT_GT(u.receipt.seq, last);
    last = u.receipt.seq;
  }
  EXPECT_EQ(last, 40u);
}

// Workers on two handles claim from one queue at once: no job is handed to both.
TEST_P(SharedStoreConformance, PushClaimsAreNeverShared) {
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                a_->create_device(DeviceRecord{"alice", "p1", "phone", "hash-p1", 1, false}, 0, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                b_->set_push_target(PushTarget{"alice", "p1", PushProvider::fcm, "tok", "", 1}, cb);
              }).ok());
  std::vector<PushEnqueue> items;
  for (ChatId chat = 1; chat <= 120; ++chat)
    items.push_back(PushEnqueue{"alice", {}, chat, 1, "bob", 100});
  auto queued = wait_for<uint32_t>([&](auto cb) { a_->enqueue_push(items, 0, cb); });
  ASSERT_TRUE(queued.ok());
  ASSERT_EQ(queued.value(), 120u);
  std::vector<std::vector<PushJob>> got(6);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      for (int round = 0; round < 200; ++round) {
        auto r = wait_for<std::vector<PushJob>>(
            [&](auto cb) { handle(i).claim_push_jobs(100, 3, 100000, cb); });
        ASSERT_TRUE(r.ok()) << r.error().message;
        if (r->empty()) break;
        got[i].insert(got[i].end(), r->begin(), r->end());
      }
    });
  for (auto& t : threads) t.join();
  std::multiset<ChatId> seen;
  for (const auto& jobs : got)
    for (const auto& j : jobs) seen.insert(j.chat_id);
  EXPECT_EQ(seen.size(), 120u);
  EXPECT_EQ(std::set<ChatId>(seen.begin(), seen.end()).size(), 120u);
  // All leased: neither handle hands any out again before the lease ends.
  EXPECT_TRUE(wait_for<std::vector<PushJob>>([&](auto cb) {
                b_->claim_push_jobs(100, 10, 200000, cb);
              })->empty());
}

}  // namespace parley::store
