// The Store conformance suite: the contract of store/store.h as tests. Every backend
// instantiates it once with a factory (INSTANTIATE_TEST_SUITE_P), against a real server.
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <future>
#include <memory>
#include <set>
#include <thread>

#include "common/clock.h"
#include "store/store.h"

namespace parley::store {

// Makes a fresh, empty store for one test, and reopens it on the same data.
class StoreFactory {
 public:
  virtual ~StoreFactory() = default;
  virtual std::unique_ptr<Store> create(const std::string& test_name, const SyncConfig& sync) = 0;
  virtual std::unique_ptr<Store> reopen(const SyncConfig& sync) = 0;
  virtual void destroy() = 0;
};
using StoreFactoryMaker = std::function<std::shared_ptr<StoreFactory>()>;

template <class T, class F>
Result<T> wait_for(F&& start) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

class StoreConformance : public ::testing::TestWithParam<StoreFactoryMaker> {
 protected:
  void SetUp() override {
    factory_ = GetParam()();
    store_ =
        factory_->create(::testing::UnitTest::GetInstance()->current_test_info()->name(), sync_);
    ASSERT_TRUE(store_);
    for (const char* u : {"alice", "bob", "carol"}) {
      auto r = wait_for<Unit>([&](auto cb) { store_->create_user(UserRecord{u, "h", 1}, cb); });
      ASSERT_TRUE(r.ok());
    }
  }
  void TearDown() override {
    store_.reset();
    factory_->destroy();
  }
  void reopen() {
    store_.reset();
    store_ = factory_->reopen(sync_);
    ASSERT_TRUE(store_);
  }

 protected:
  Result<AppendResult> send(const std::string& from, const std::string& to, const std::string& body,
                            const std::string& cmid) {
    AppendRequest req;
    req.sender = from;
    req.to_user = to;
    req.body = body;
    req.client_msg_id = cmid;
    req.ts = 1000;
    req.message_id = ++next_id_;
    return wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
  }

  std::shared_ptr<StoreFactory> factory_;
  SyncConfig sync_;
  std::unique_ptr<Store> store_;
  uint64_t next_id_ = 0;
};

TEST_P(StoreConformance, AppendAssignsGaplessSeqAndPts) {
  auto a = send("alice", "bob", "one", "c1");
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->message.seq, 1u);
  EXPECT_EQ(a->sender_pts, 1u);
  EXPECT_EQ(a->message.to, "bob");
  ASSERT_EQ(a->deliveries.size(), 2u);
  auto b = send("bob", "alice", "two", "c1");  // same cmid, other user: not a duplicate
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->message.chat_id, a->message.chat_id);
  EXPECT_EQ(b->message.seq, 2u);
  EXPECT_FALSE(b->duplicate);
  auto c = send("alice", "carol", "three", "c2");
  ASSERT_TRUE(c.ok());
  EXPECT_NE(c->message.chat_id, a->message.chat_id);
  EXPECT_EQ(c->message.seq, 1u);
  EXPECT_EQ(c->sender_pts, 3u);
}

TEST_P(StoreConformance, DuplicateClientMsgIdReturnsOriginal) {
  auto a = send("alice", "bob", "one", "same");
  auto b = send("alice", "bob", "different body", "same");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(b->duplicate);
  EXPECT_EQ(b->message.seq, a->message.seq);
  EXPECT_EQ(b->message.message_id, a->message.message_id);
  EXPECT_EQ(b->message.body, "one");
  EXPECT_TRUE(b->deliveries.empty());
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", 0, "alice", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.size(), 1u);
}

TEST_P(StoreConformance, ConcurrentDuplicatesInOneBatchStoreOnce) {
  std::vector<std::thread> threads;
  std::vector<Result<AppendResult>> results(8, Error{Errc::internal, ""});
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&, i] {
      AppendRequest req{"alice", "bob", 0, MessageKind::text, "x", "dup", 1, uint64_t(100 + i), {}};
      results[i] = wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
    });
  for (auto& t : threads) t.join();
  int originals = 0;
  for (auto& r : results) {
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->message.seq, 1u);
    originals += r->duplicate ? 0 : 1;
  }
  EXPECT_EQ(originals, 1);
}

TEST_P(StoreConformance, Errors) {
  auto r = send("alice", "nobody", "x", "e1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  r = send("alice", "alice", "x", "e2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::bad_request);
  auto a = send("alice", "bob", "x", "e3");
  ASSERT_TRUE(a.ok());
  AppendRequest req{"carol", "", a->message.chat_id, MessageKind::text, "x", "e4", 1, 99, {}};
  r = wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::forbidden);
  auto h = wait_for<HistoryPage>([&](auto cb) {
    store_->history({"carol", a->message.chat_id, "", 0, 50}, cb);
  });
  ASSERT_FALSE(h.ok());
  EXPECT_EQ(h.error().code, Errc::forbidden);
  h = wait_for<HistoryPage>([&](auto cb) { store_->history({"carol", 424242, "", 0, 50}, cb); });
  EXPECT_EQ(h.error().code, Errc::not_found);
  auto u = wait_for<Unit>([&](auto cb) { store_->create_user(UserRecord{"alice", "h", 1}, cb); });
  EXPECT_EQ(u.error().code, Errc::username_taken);
}

TEST_P(StoreConformance, ReadUpdatesPagesInOrder) {
  for (int i = 0; i < 25; ++i)
    ASSERT_TRUE(send("alice", "bob", "m" + std::to_string(i), "p" + std::to_string(i)).ok());
  uint64_t pts = 0;
  int seen = 0;
  for (;;) {
    auto page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates("bob", pts, 10, cb); });
    ASSERT_TRUE(page.ok());
    EXPECT_FALSE(page->limited);
    for (auto& u : page->updates) {
      EXPECT_EQ(u.pts, pts + 1);
      EXPECT_EQ(u.message.body, "m" + std::to_string(seen));
      pts = u.pts;
      ++seen;
    }
    EXPECT_EQ(page->pts, pts);
    if (!page->has_more) break;
  }
  EXPECT_EQ(seen, 25);
  auto cur = wait_for<uint64_t>([&](auto cb) { store_->current_pts("bob", cb); });
  EXPECT_EQ(cur.value(), 25u);
  auto future = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates("bob", 99, 10, cb); });
  EXPECT_TRUE(future->limited);
}

TEST_P(StoreConformance, TrimmedLogIsReportedLimited) {
  sync_.update_log_retention = 100;
  reopen();
  for (int i = 0; i < 1030; ++i)
    ASSERT_TRUE(send("alice", "bob", "m", "t" + std::to_string(i)).ok());
  auto page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates("bob", 0, 10, cb); });
  EXPECT_TRUE(page->limited);
  EXPECT_TRUE(page->updates.empty());
  page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates("bob", 1000, 10, cb); });
  EXPECT_FALSE(page->limited);
  EXPECT_EQ(page->updates.size(), 10u);
}

TEST_P(StoreConformance, HistorySnapshotAndChatList) {
  for (int i = 0; i < 30; ++i)
    ASSERT_TRUE(send("alice", "bob", "m" + std::to_string(i), "h" + std::to_string(i)).ok());
  ASSERT_TRUE(send("carol", "bob", "hey", "h-c").ok());
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", 0, "alice", 0, 10}, cb); });
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->messages.size(), 10u);
  EXPECT_EQ(h->messages.front().seq, 21u);
  EXPECT_EQ(h->messages.back().seq, 30u);
  EXPECT_TRUE(h->has_more);
  h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", h->chat_id, "", 5, 10}, cb); });
  ASSERT_EQ(h->messages.size(), 4u);
  EXPECT_FALSE(h->has_more);

  auto list = wait_for<ChatList>([&](auto cb) { store_->list_chats("bob", 10, {}, cb); });
  ASSERT_EQ(list->chats.size(), 2u);
  EXPECT_EQ(list->chats[0].peer, "carol");
  EXPECT_EQ(list->chats[1].peer, "alice");
  EXPECT_EQ(list->chats[1].last_seq, 30u);
  EXPECT_EQ(list->chats[1].last_message->body, "m29");
  EXPECT_EQ(list->pts, 31u);

  auto snap = wait_for<Snapshot>([&](auto cb) { store_->snapshot("bob", 10, 5, cb); });
  ASSERT_EQ(snap->chats.size(), 2u);
  EXPECT_EQ(snap->pts, 31u);
  EXPECT_EQ(snap->chats[1].messages.size(), 5u);
  EXPECT_TRUE(snap->chats[1].has_more);
  EXPECT_FALSE(snap->chats[0].has_more);
}

TEST_P(StoreConformance, SurvivesReopen) {
  auto a = send("alice", "bob", "one", "r1");
  ASSERT_TRUE(a.ok());
  reopen();
  auto b = send("alice", "bob", "two", "r2");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b->message.seq, 2u);
  EXPECT_EQ(b->sender_pts, 2u);
  auto c = send("alice", "carol", "x", "r3");
  EXPECT_NE(c->message.chat_id, a->message.chat_id);
  auto dup = send("alice", "bob", "one", "r1");
  EXPECT_TRUE(dup->duplicate);
}

TEST_P(StoreConformance, DevicesAndTokens) {
  DeviceRecord d{"alice", "d1", "laptop", "hash1", 5, false};
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->create_device(d, 0, cb); }).ok());
  auto found = wait_for<DeviceRecord>([&](auto cb) { store_->find_device_by_token("hash1", cb); });
  ASSERT_TRUE(found.ok());
  EXPECT_EQ(found->device_id, "d1");
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->revoke_device("alice", "d1", cb); }).ok());
  found = wait_for<DeviceRecord>([&](auto cb) { store_->find_device_by_token("hash1", cb); });
  EXPECT_EQ(found.error().code, Errc::unauthorized);
  store_->close();
  auto after = wait_for<Unit>([&](auto cb) { store_->create_device(d, 0, cb); });
  EXPECT_EQ(after.error().code, Errc::unavailable);
}

TEST_P(StoreConformance, DeviceListAndLimit) {
  auto create = [&](const std::string& user, const std::string& id, uint32_t max) {
    return wait_for<Unit>([&](auto cb) {
      store_->create_device(DeviceRecord{user, id, "name-" + id, "hash-" + user + id, 7, false},
                            max, cb);
    });
  };
  auto list = [&](const std::string& user) {
    auto r = wait_for<std::vector<DeviceRecord>>([&](auto cb) { store_->list_devices(user, cb); });
    EXPECT_TRUE(r.ok());
    std::vector<std::string> ids;
    if (r)
      for (const auto& d : r.value()) ids.push_back(d.device_id);
    return ids;
  };
  EXPECT_TRUE(list("alice").empty());
  ASSERT_TRUE(create("alice", "b", 2).ok());
  ASSERT_TRUE(create("alice", "a", 2).ok());
  ASSERT_TRUE(create("alicex", "z", 2).ok());  // a user whose id extends alice's is not hers
  auto third = create("alice", "c", 2);
  EXPECT_EQ(third.error().code, Errc::too_many_devices);
  EXPECT_EQ(list("alice"), (std::vector<std::string>{"a", "b"}));
  auto found =
      wait_for<DeviceRecord>([&](auto cb) { store_->find_device_by_token("hash-alicec", cb); });
  EXPECT_EQ(found.error().code, Errc::unauthorized);  // the refused device left nothing

  auto full =
      wait_for<std::vector<DeviceRecord>>([&](auto cb) { store_->list_devices("alice", cb); });
  ASSERT_TRUE(full.ok());
  EXPECT_EQ(full->at(0).name, "name-a");
  EXPECT_EQ(full->at(0).created_at, 7);

  // A revoked device no longer counts nor shows.
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->revoke_device("alice", "b", cb); }).ok());
  EXPECT_EQ(list("alice"), std::vector<std::string>{"a"});
  ASSERT_TRUE(create("alice", "c", 2).ok());
  EXPECT_EQ(list("alice"), (std::vector<std::string>{"a", "c"}));
  EXPECT_TRUE(create("alice", "d", 0).ok());  // 0: no limit
  reopen();
  EXPECT_EQ(list("alice"), (std::vector<std::string>{"a", "c", "d"}));
  EXPECT_EQ(list("alicex"), std::vector<std::string>{"z"});
}

// Groups ------------------------------------------------------------------------------

class GroupConformance : public StoreConformance {
 protected:
  void SetUp() override {
    StoreConformance::SetUp();
    for (const char* u : {"dave", "erin", "frank"})
      ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                    store_->create_user(UserRecord{u, "h", 1}, cb);
                  }).ok());
  }
  Result<GroupResult> op(GroupOp kind, const std::string& actor, ChatId chat,
                         std::vector<UserId> users = {}, std::string name = "") {
    GroupRequest req;
    req.op = kind;
    req.actor = actor;
    req.chat_id = chat;
    req.users = std::move(users);
    req.name = std::move(name);
    req.ts = ++ts_;
    req.message_id = ts_;
    req.limits = limits_;
    return wait_for<GroupResult>([&](auto cb) { store_->group_op(req, cb); });
  }
  Result<AppendResult> post(const std::string& from, ChatId chat, const std::string& body) {
    AppendRequest req;
    req.sender = from;
    req.chat_id = chat;
    req.body = body;
    req.client_msg_id = "g" + std::to_string(++ts_);
    req.ts = ts_;
    req.message_id = ts_;
    return wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
  }
  std::vector<uint64_t> seqs_in_log(const std::string& user, ChatId chat) {
    std::vector<uint64_t> out;
    auto page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates(user, 0, 1000, cb); });
    for (auto& u : page->updates)
      if (u.message.chat_id == chat) out.push_back(u.message.seq);
    return out;
  }
  GroupLimits limits_;
  int64_t ts_ = 100;
};

TEST_P(GroupConformance, CreateSendAndInfo) {
  auto g = op(GroupOp::create, "alice", 0, {"bob", "carol", "bob"}, "team");
  ASSERT_TRUE(g.ok()) << g.error().message;
  ChatId id = g->chat.chat_id;
  EXPECT_EQ(g->chat.member_count, 3u);
  EXPECT_EQ(g->event.message.seq, 1u);
  EXPECT_EQ(g->event.message.kind, MessageKind::event);
  EXPECT_EQ(g->event.deliveries.size(), 3u);
  auto m = post("bob", id, "hello team");
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->message.seq, 2u);
  EXPECT_EQ(m->deliveries.size(), 3u);
  EXPECT_FALSE(m->broadcast);
  EXPECT_EQ(seqs_in_log("carol", id), (std::vector<uint64_t>{1, 2}));
  EXPECT_EQ(post("dave", id, "let me in").error().code, Errc::forbidden);
  auto info = wait_for<ChatInfo>([&](auto cb) { store_->group_info("carol", id, cb); });
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->name, "team");
  EXPECT_EQ(info->members.size(), 3u);
  for (auto& mem : info->members)
    EXPECT_EQ(mem.role, mem.user == "alice" ? Role::owner : Role::member);
  EXPECT_EQ(wait_for<ChatInfo>([&](auto cb) { store_->group_info("dave", id, cb); }).error().code,
            Errc::forbidden);
  auto list = wait_for<ChatList>([&](auto cb) { store_->list_chats("bob", 10, {}, cb); });
  ASSERT_EQ(list->chats.size(), 1u);
  EXPECT_EQ(list->chats[0].kind, ChatKind::group);
  EXPECT_EQ(list->chats[0].name, "team");
  EXPECT_EQ(list->chats[0].last_message->body, "hello team");
}

TEST_P(GroupConformance, RemovedMemberSeesNothingAfterRemovalAndJoinerNothingBefore) {
  ChatId id = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "g")->chat.chat_id;
  ASSERT_TRUE(post("alice", id, "one").ok());           // seq 2
  auto rm = op(GroupOp::remove, "alice", id, {"bob"});  // seq 3
  ASSERT_TRUE(rm.ok()) << rm.error().message;
  EXPECT_EQ(rm->left, std::vector<UserId>{"bob"});
  ASSERT_TRUE(post("alice", id, "two").ok());                 // seq 4
  ASSERT_TRUE(op(GroupOp::add, "alice", id, {"dave"}).ok());  // seq 5
  ASSERT_TRUE(post("carol", id, "three").ok());               // seq 6
  EXPECT_EQ(seqs_in_log("bob", id), (std::vector<uint64_t>{1, 2, 3}));
  EXPECT_EQ(seqs_in_log("dave", id), (std::vector<uint64_t>{5, 6}));
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", id, "", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.back().seq, 3u);
  h = wait_for<HistoryPage>([&](auto cb) { store_->history({"dave", id, "", 0, 50}, cb); });
  EXPECT_EQ(h->messages.front().seq, 5u);
  EXPECT_FALSE(h->has_more);
  h = wait_for<HistoryPage>([&](auto cb) {
    store_->history({"dave", id, "", 0, 50, 5}, cb);
  });  // after 5
  ASSERT_EQ(h->messages.size(), 1u);
  EXPECT_EQ(h->messages[0].seq, 6u);
  auto from_start = wait_for<HistoryPage>([&](auto cb) {
    store_->history({"carol", id, "", 0, 2, 0}, cb);
  });
  ASSERT_EQ(from_start->messages.size(), 2u);  // after_seq 0: from the first seq, forwards
  EXPECT_EQ(from_start->messages[0].seq, 1u);
  EXPECT_TRUE(from_start->has_more);
  EXPECT_EQ(post("bob", id, "still here?").error().code, Errc::forbidden);
  // Opening history to new members lets dave read from seq 1.
  GroupRequest req;
  req.op = GroupOp::set_full_history;
  req.actor = "alice";
  req.chat_id = id;
  req.flag = true;
  req.message_id = 999;
  ASSERT_TRUE(wait_for<GroupResult>([&](auto cb) { store_->group_op(req, cb); }).ok());
  h = wait_for<HistoryPage>([&](auto cb) { store_->history({"dave", id, "", 0, 50}, cb); });
  EXPECT_EQ(h->messages.front().seq, 1u);
  auto list = wait_for<ChatList>([&](auto cb) { store_->list_chats("bob", 10, {}, cb); });
  ASSERT_EQ(list->chats.size(), 1u);
  EXPECT_FALSE(list->chats[0].member);
  EXPECT_EQ(list->chats[0].last_seq, 3u);
}

TEST_P(GroupConformance, RoleTable) {
  ChatId id = op(GroupOp::create, "alice", 0, {"bob", "carol", "dave"}, "g")->chat.chat_id;
  EXPECT_EQ(op(GroupOp::add, "bob", id, {"erin"}).error().code, Errc::forbidden);
  EXPECT_EQ(op(GroupOp::rename, "bob", id, {}, "mine").error().code, Errc::forbidden);
  EXPECT_EQ(op(GroupOp::promote, "bob", id, {"carol"}).error().code, Errc::forbidden);
  ASSERT_TRUE(op(GroupOp::promote, "alice", id, {"bob"}).ok());
  EXPECT_EQ(op(GroupOp::promote, "alice", id, {"bob"}).error().code, Errc::conflict);
  ASSERT_TRUE(op(GroupOp::promote, "alice", id, {"carol"}).ok());
  EXPECT_EQ(op(GroupOp::remove, "bob", id, {"carol"}).error().code,
            Errc::forbidden);  // admin vs admin
  EXPECT_EQ(op(GroupOp::remove, "bob", id, {"alice"}).error().code,
            Errc::forbidden);                                  // admin vs owner
  ASSERT_TRUE(op(GroupOp::remove, "bob", id, {"dave"}).ok());  // admin vs member
  ASSERT_TRUE(op(GroupOp::add, "bob", id, {"erin"}).ok());
  EXPECT_EQ(op(GroupOp::add, "bob", id, {"erin"}).error().code, Errc::conflict);
  EXPECT_EQ(op(GroupOp::add, "bob", id, {"nobody"}).error().code, Errc::not_found);
  ASSERT_TRUE(op(GroupOp::rename, "bob", id, {}, "renamed").ok());
  EXPECT_EQ(op(GroupOp::leave, "alice", id).error().code, Errc::forbidden);  // owner must hand over
  EXPECT_EQ(op(GroupOp::transfer, "bob", id, {"carol"}).error().code, Errc::forbidden);
  ASSERT_TRUE(op(GroupOp::transfer, "alice", id, {"carol"}).ok());
  ASSERT_TRUE(op(GroupOp::leave, "alice", id).ok());
  EXPECT_EQ(op(GroupOp::rename, "alice", id, {}, "x").error().code, Errc::forbidden);
  ASSERT_TRUE(op(GroupOp::demote, "carol", id, {"bob"}).ok());
  EXPECT_EQ(op(GroupOp::remove_group, "bob", id).error().code, Errc::forbidden);
  auto del = op(GroupOp::remove_group, "carol", id);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->left.size(), 3u);  // carol, bob, erin
  EXPECT_EQ(post("carol", id, "anyone?").error().code, Errc::not_found);
  EXPECT_EQ(op(GroupOp::rename, "carol", id, {}, "x").error().code, Errc::not_found);
  EXPECT_EQ(op(GroupOp::rename, "carol", 987654, {}, "x").error().code, Errc::not_found);
}

TEST_P(GroupConformance, Limits) {
  limits_.max_members = 3;
  limits_.max_groups_per_user = 2;
  EXPECT_EQ(op(GroupOp::create, "alice", 0, {"bob", "carol", "dave"}, "big").error().code,
            Errc::too_large);
  EXPECT_EQ(op(GroupOp::create, "alice", 0, {}, "").error().code, Errc::bad_request);
  EXPECT_EQ(op(GroupOp::create, "alice", 0, {}, std::string(200, 'n')).error().code,
            Errc::bad_request);
  ChatId id = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "g1")->chat.chat_id;
  EXPECT_EQ(op(GroupOp::add, "alice", id, {"dave"}).error().code, Errc::too_large);
  ASSERT_TRUE(op(GroupOp::create, "alice", 0, {}, "g2").ok());
  EXPECT_EQ(op(GroupOp::create, "alice", 0, {}, "g3").error().code, Errc::too_large);
  ASSERT_TRUE(op(GroupOp::remove, "alice", id, {"bob"}).ok());
  ASSERT_TRUE(op(GroupOp::leave, "carol", id).ok());
  ASSERT_TRUE(op(GroupOp::add, "alice", id, {"bob"}).ok());  // rejoin after removal
}

TEST_P(GroupConformance, LargeGroupsFanOutOnRead) {
  limits_.large_threshold = 3;
  ChatId small = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "small")->chat.chat_id;
  auto grow = op(GroupOp::add, "alice", small, {"dave", "erin"});  // 5 > 3: turns large
  ASSERT_TRUE(grow.ok());
  EXPECT_TRUE(grow->chat.large);
  EXPECT_NE(grow->event.message.body.find("\"large\":true"), std::string::npos);
  EXPECT_EQ(grow->event.deliveries.size(), 5u);  // everyone learns it turned large
  auto m = post("bob", small, "hi all");
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->broadcast);
  EXPECT_TRUE(m->deliveries.empty());
  auto add = op(GroupOp::add, "alice", small, {"frank"});
  ASSERT_TRUE(add.ok());
  ASSERT_EQ(add->event.deliveries.size(), 1u);  // only the joiner's log
  EXPECT_EQ(add->event.deliveries[0].user, "frank");
  EXPECT_EQ(seqs_in_log("carol", small), (std::vector<uint64_t>{1, 2}));
  auto h = wait_for<HistoryPage>([&](auto cb) {
    store_->history({"carol", small, "", 0, 50, 2}, cb);
  });
  ASSERT_EQ(h->messages.size(), 2u);  // seq 3 (message), 4 (frank added)
  EXPECT_EQ(h->messages[0].body, "hi all");
  auto big = op(GroupOp::create, "alice", 0, {"bob", "carol", "dave", "erin"}, "big");
  ASSERT_TRUE(big.ok());
  EXPECT_TRUE(big->chat.large);
  EXPECT_NE(big->event.message.body.find("\"large\":true"), std::string::npos);
  EXPECT_EQ(big->event.deliveries.size(), 5u);
  auto list = wait_for<ChatList>([&](auto cb) { store_->list_chats("erin", 10, {}, cb); });
  ASSERT_EQ(list->chats.size(), 2u);
  EXPECT_TRUE(list->chats[0].large && list->chats[1].large);
  auto del = op(GroupOp::remove_group, "alice", big->chat.chat_id);
  ASSERT_TRUE(del.ok());
  EXPECT_EQ(del->left.size(), 5u);
}

// Receipts, read state, presence settings -----------------------------------------------

class ReceiptConformance : public GroupConformance {
 protected:
  Result<ReceiptResult> mark(const std::string& user, ChatId chat, UpdateKind kind,
                             std::optional<uint64_t> seq, const std::string& with = "") {
    ReceiptRequest req;
    req.user = user;
    req.chat_id = chat;
    req.with = with;
    req.kind = kind;
    req.seq = seq;
    req.ts = ++ts_;
    return wait_for<ReceiptResult>([&](auto cb) { store_->mark(req, cb); });
  }
  Result<ChatList> chats(const std::string& user) {
    return wait_for<ChatList>([&](auto cb) { store_->list_chats(user, 100, {}, cb); });
  }
  static std::vector<UserId> users_of(const std::vector<Delivery>& ds) {
    std::vector<UserId> out;
    for (auto& d : ds) out.push_back(d.user);
    std::sort(out.begin(), out.end());
    return out;
  }
  std::vector<Receipt> receipts_in_log(const std::string& user) {
    std::vector<Receipt> out;
    auto page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates(user, 0, 1000, cb); });
    for (auto& u : page->updates)
      if (u.kind != UpdateKind::message) out.push_back(u.receipt);
    return out;
  }
};

TEST_P(ReceiptConformance, DirectReadAndDelivered) {
  ASSERT_TRUE(send("alice", "bob", "one", "r1").ok());
  auto two = send("alice", "bob", "two", "r2");
  ASSERT_TRUE(two.ok());
  ChatId chat = two->message.chat_id;
  auto bob = chats("bob");
  ASSERT_EQ(bob->chats.size(), 1u);
  EXPECT_EQ(bob->chats[0].unread, 2u);
  EXPECT_EQ(bob->unread_total, 2u);
  EXPECT_EQ(bob->unread_chats, 1u);
  auto alice = chats("alice");
  EXPECT_EQ(alice->chats[0].unread, 0u);  // your own messages are read
  EXPECT_EQ(alice->chats[0].read_seq, 2u);

  auto d = mark("bob", chat, UpdateKind::delivered, 2);
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_TRUE(d->advanced);
  EXPECT_EQ(d->receipt.seq, 2u);
  EXPECT_EQ(d->user_pts, 0u);
  EXPECT_EQ(users_of(d->deliveries), std::vector<UserId>{"alice"});
  EXPECT_EQ(d->unread, 2u);  // delivered is not read

  auto r = mark("bob", 0, UpdateKind::read, 1, "alice");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->advanced);
  EXPECT_EQ(r->receipt.chat_id, chat);
  EXPECT_EQ(r->unread, 1u);
  EXPECT_EQ(users_of(r->deliveries), (std::vector<UserId>{"alice", "bob"}));
  EXPECT_GT(r->user_pts, 0u);

  // Backwards or equal: nothing stored, the current position returned.
  auto again = mark("bob", chat, UpdateKind::read, 1);
  EXPECT_FALSE(again->advanced);
  EXPECT_TRUE(again->deliveries.empty());
  EXPECT_EQ(again->receipt.seq, 1u);
  auto back = mark("bob", chat, UpdateKind::delivered, 1);
  EXPECT_FALSE(back->advanced);
  EXPECT_EQ(back->receipt.seq, 2u);

  // No seq: everything; beyond the end: capped.
  auto all = mark("bob", chat, UpdateKind::read, std::nullopt);
  EXPECT_TRUE(all->advanced);
  EXPECT_EQ(all->receipt.seq, 2u);
  EXPECT_EQ(all->unread, 0u);
  auto beyond = mark("bob", chat, UpdateKind::read, 99);
  EXPECT_FALSE(beyond->advanced);
  EXPECT_EQ(beyond->receipt.seq, 2u);

  alice = chats("alice");
  ASSERT_EQ(alice->chats[0].reads.size(), 1u);
  EXPECT_EQ(alice->chats[0].reads[0].user, "bob");
  EXPECT_EQ(alice->chats[0].reads[0].read_seq, 2u);
  EXPECT_EQ(alice->chats[0].reads[0].delivered_seq, 2u);
  EXPECT_EQ(chats("bob")->unread_total, 0u);

  // The sender learns all of it from its log, in order.
  auto log = receipts_in_log("alice");
  ASSERT_EQ(log.size(), 3u);
  EXPECT_EQ(log[0].kind, UpdateKind::delivered);
  EXPECT_EQ(log[0].user, "bob");
  EXPECT_EQ(log[0].seq, 2u);
  EXPECT_EQ(log[1].kind, UpdateKind::read);
  EXPECT_EQ(log[1].seq, 1u);
  EXPECT_EQ(log[2].seq, 2u);
  EXPECT_EQ(receipts_in_log("bob").size(), 2u);  // its own reads, for its other devices

  EXPECT_EQ(mark("carol", chat, UpdateKind::read, 1).error().code, Errc::forbidden);
  EXPECT_EQ(mark("bob", 0, UpdateKind::read, 1, "carol").error().code, Errc::not_found);
  EXPECT_EQ(mark("bob", 9999, UpdateKind::read, 1).error().code, Errc::not_found);
}

TEST_P(ReceiptConformance, ConcurrentReadsOnlyMoveForward) {
  ChatId chat = 0;
  for (int i = 0; i < 50; ++i)
    chat = send("alice", "bob", "m", "c" + std::to_string(i))->message.chat_id;
  std::vector<std::thread> devices;
  for (int t = 0; t < 4; ++t)
    devices.emplace_back([&, t] {
      for (uint64_t seq = 1 + t; seq <= 50; seq += 4)
        ASSERT_TRUE(mark("bob", chat, UpdateKind::read, seq).ok());
    });
  for (auto& t : devices) t.join();
  auto bob = chats("bob");
  EXPECT_EQ(bob->chats[0].read_seq, 50u);
  EXPECT_EQ(bob->chats[0].unread, 0u);
  uint64_t last = 0;
  for (auto& r : receipts_in_log("alice")) {
    EXPECT_GT(r.seq, last);  // every logged receipt moved forward
    last = r.seq;
  }
}

TEST_P(ReceiptConformance, GroupReceiptsAndUnreadWithMembershipChanges) {
  auto g = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "team");  // seq 1
  ASSERT_TRUE(g.ok());
  ChatId id = g->chat.chat_id;
  ASSERT_TRUE(post("alice", id, "hello").ok());  // seq 2
  auto bob = chats("bob");
  EXPECT_EQ(bob->chats[0].unread, 2u);
  EXPECT_EQ(chats("alice")->chats[0].unread, 0u);

  auto r = mark("bob", id, UpdateKind::read, std::nullopt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(users_of(r->deliveries), (std::vector<UserId>{"alice", "bob", "carol"}));
  auto d = mark("carol", id, UpdateKind::delivered, 2);
  EXPECT_EQ(users_of(d->deliveries), (std::vector<UserId>{"alice", "bob"}));

  auto alice = chats("alice");
  ASSERT_EQ(alice->chats[0].reads.size(), 2u);
  for (auto& m : alice->chats[0].reads) {
    EXPECT_EQ(m.read_seq, m.user == "bob" ? 2u : 0u);
    EXPECT_EQ(m.delivered_seq, 2u);
  }
  auto info = wait_for<ChatInfo>([&](auto cb) { store_->group_info("alice", id, cb); });
  for (auto& m : info->members)
    if (m.user == "bob") {
      EXPECT_EQ(m.read_seq, 2u);
    }

  ASSERT_TRUE(op(GroupOp::add, "alice", id, {"dave"}).ok());  // seq 3
  auto dave = chats("dave");
  EXPECT_EQ(dave->chats[0].unread, 1u);  // the event that added it
  EXPECT_EQ(dave->chats[0].read_seq, 2u);
  EXPECT_EQ(chats("bob")->chats[0].unread, 1u);

  ASSERT_TRUE(op(GroupOp::remove, "alice", id, {"bob"}).ok());  // seq 4
  ASSERT_TRUE(post("alice", id, "after bob").ok());             // seq 5
  bob = chats("bob");
  // A chat one was removed from is unread nowhere (PROTOCOL.md §3.7): not in the chat, not in
  // the badge, although its messages up to the removal stay readable.
  EXPECT_FALSE(bob->chats[0].member);
  EXPECT_EQ(bob->chats[0].last_seq, 4u);
  EXPECT_EQ(bob->chats[0].unread, 0u);
  EXPECT_EQ(bob->unread_total, 0u);
  EXPECT_EQ(bob->unread_chats, 0u);
  auto late = mark("bob", id, UpdateKind::read, 5);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(late->receipt.seq, 4u);
  EXPECT_EQ(late->unread, 0u);
  EXPECT_EQ(users_of(late->deliveries), std::vector<UserId>{"bob"});  // nobody else hears
  EXPECT_EQ(mark("erin", id, UpdateKind::read, 1).error().code, Errc::forbidden);

  // The badge sums every chat.
  ASSERT_TRUE(send("erin", "dave", "psst", "e1").ok());
  dave = chats("dave");
  EXPECT_EQ(dave->unread_total, 4u);  // 3 in the group (seq 3 to 5), 1 from erin
  EXPECT_EQ(dave->unread_chats, 2u);
}

TEST_P(ReceiptConformance, LargeGroupReceiptsAreBroadcast) {
  limits_.large_threshold = 2;
  auto g = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "big");
  ASSERT_TRUE(g.ok());
  ASSERT_TRUE(g->chat.large);
  auto r = mark("bob", g->chat.chat_id, UpdateKind::read, 1);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->broadcast);
  EXPECT_EQ(users_of(r->deliveries), std::vector<UserId>{"bob"});
  auto d = mark("carol", g->chat.chat_id, UpdateKind::delivered, 1);
  EXPECT_TRUE(d->broadcast);
  EXPECT_TRUE(d->deliveries.empty());
  EXPECT_TRUE(chats("alice")->chats[0].reads.empty());
}

TEST_P(ReceiptConformance, SettingsLastSeenAndSharedChats) {
  auto s = wait_for<UserSettings>([&](auto cb) { store_->get_settings("alice", cb); });
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->presence, PresenceVisibility::everyone);
  EXPECT_EQ(s->last_seen, 0);
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->set_presence_visibility("alice", PresenceVisibility::contacts, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->set_last_seen("alice", 5000, cb); }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->set_last_seen("alice", 4000, cb); }).ok());
  EXPECT_EQ(wait_for<Unit>([&](auto cb) { store_->set_last_seen("nobody", 1, cb); }).error().code,
            Errc::not_found);
  EXPECT_EQ(
      wait_for<UserSettings>([&](auto cb) { store_->get_settings("nobody", cb); }).error().code,
      Errc::not_found);

  auto shares = [&](const char* a, const char* b) {
    return wait_for<bool>([&](auto cb) { store_->shares_chat(a, b, cb); }).value();
  };
  ASSERT_TRUE(send("alice", "bob", "hi", "s1").ok());
  auto g = op(GroupOp::create, "carol", 0, {"dave"}, "cd");
  ASSERT_TRUE(g.ok());
  EXPECT_TRUE(shares("alice", "bob"));
  EXPECT_TRUE(shares("bob", "alice"));
  EXPECT_TRUE(shares("dave", "carol"));
  EXPECT_FALSE(shares("alice", "carol"));
  EXPECT_FALSE(shares("erin", "frank"));
  ASSERT_TRUE(op(GroupOp::leave, "dave", g->chat.chat_id).ok());
  EXPECT_FALSE(shares("dave", "carol"));

  reopen();
  s = wait_for<UserSettings>([&](auto cb) { store_->get_settings("alice", cb); });
  EXPECT_EQ(s->presence, PresenceVisibility::contacts);
  EXPECT_EQ(s->last_seen, 5000);  // only moves forward
  EXPECT_EQ(chats("alice")->chats[0].read_seq, 1u);
}

TEST_P(ReceiptConformance, TypingAudience) {
  auto aud = [&](const char* user, ChatId chat, const char* with) {
    return wait_for<Audience>([&](auto cb) { store_->audience(user, chat, with, cb); });
  };
  auto none = aud("alice", 0, "bob");  // no chat yet
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->chat_id, 0u);
  EXPECT_EQ(none->members, (std::vector<UserId>{"alice", "bob"}));
  EXPECT_EQ(aud("alice", 0, "zed").error().code, Errc::not_found);
  EXPECT_EQ(aud("alice", 0, "alice").error().code, Errc::bad_request);
  ChatId direct = send("alice", "bob", "hi", "t1")->message.chat_id;
  EXPECT_EQ(aud("bob", 0, "alice")->chat_id, direct);
  EXPECT_EQ(aud("carol", direct, "").error().code, Errc::forbidden);
  auto g = op(GroupOp::create, "alice", 0, {"bob", "carol"}, "g");
  auto members = aud("bob", g->chat.chat_id, "")->members;
  std::sort(members.begin(), members.end());
  EXPECT_EQ(members, (std::vector<UserId>{"alice", "bob", "carol"}));
  EXPECT_EQ(aud("dave", g->chat.chat_id, "").error().code, Errc::forbidden);
  EXPECT_EQ(aud("dave", 4242, "").error().code, Errc::not_found);
}

// Media records, media messages, housekeeping and user deletion ---------------------------

class MediaConformance : public GroupConformance {
 protected:
  static MediaRecord record(const std::string& id, int64_t uploaded_at) {
    MediaRecord r;
    r.id = id;
    r.mime = "image/jpeg";
    r.kind = "image";
    r.size = 48213;
    r.width = 1024;
    r.height = 768;
    r.thumb_id = id + "-thumb";
    r.thumb_width = 320;
    r.thumb_height = 240;
    r.uploaded_at = uploaded_at;
    return r;
  }
  Status upload(const std::string& id, const std::string& user, int64_t at) {
    return wait_for<Unit>([&](auto cb) { store_->put_media(record(id, at), user, cb); });
  }
  Result<MediaRecord> record_of(const std::string& id) {
    return wait_for<MediaRecord>([&](auto cb) { store_->get_media(id, cb); });
  }
  bool can_read(const std::string& user, const std::string& id) {
    auto r = wait_for<bool>([&](auto cb) { store_->media_access(user, id, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() && r.value();
  }
  std::vector<std::string> sweep(int64_t before, uint32_t limit) {
    auto r = wait_for<std::vector<std::string>>(
        [&](auto cb) { store_->sweep_media(before, limit, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r) return {};
    std::sort(r->begin(), r->end());
    return r.value();
  }
  // A media message to `to` (a direct chat) or into `chat`.
  Result<AppendResult> send_media(const std::string& from, const std::string& to, ChatId chat,
                                  std::vector<std::string> ids, const std::string& cmid) {
    AppendRequest req;
    req.sender = from;
    req.to_user = to;
    req.chat_id = chat;
    req.kind = MessageKind::media;
    req.body = R"({"id":")" + (ids.empty() ? std::string() : ids[0]) + R"(","caption":"look"})";
    req.client_msg_id = cmid;
    req.ts = ++ts_;
    req.message_id = static_cast<uint64_t>(ts_);
    req.media_ids = std::move(ids);
    return wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
  }
  Result<DeleteUserResult> erase_user(const std::string& user) {
    return wait_for<DeleteUserResult>([&](auto cb) { store_->delete_user(user, cb); });
  }
};

TEST_P(MediaConformance, PutGetAndRefresh) {
  ASSERT_TRUE(upload("img", "alice", 1000).ok());
  auto r = record_of("img");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->id, "img");
  EXPECT_EQ(r->mime, "image/jpeg");
  EXPECT_EQ(r->kind, "image");
  EXPECT_EQ(r->size, 48213u);
  EXPECT_EQ(r->width, 1024);
  EXPECT_EQ(r->height, 768);
  EXPECT_EQ(r->thumb_id, "img-thumb");
  EXPECT_EQ(r->thumb_width, 320);
  EXPECT_EQ(r->thumb_height, 240);
  EXPECT_EQ(r->uploaded_at, 1000);
  EXPECT_FALSE(r->referenced);
  EXPECT_EQ(record_of("nope").error().code, Errc::not_found);

  // The same bytes again, by another user: only the upload time moves.
  MediaRecord again = record("img", 2000);
  again.mime = "text/plain";
  again.size = 1;
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->put_media(again, "bob", cb); }).ok());
  r = record_of("img");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uploaded_at, 2000);
  EXPECT_EQ(r->mime, "image/jpeg");
  EXPECT_EQ(r->size, 48213u);
  EXPECT_TRUE(can_read("alice", "img"));
  EXPECT_TRUE(can_read("bob", "img"));
  EXPECT_FALSE(can_read("carol", "img"));

  reopen();
  r = record_of("img");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->uploaded_at, 2000);
  EXPECT_EQ(r->thumb_id, "img-thumb");
  EXPECT_EQ(sweep(1500, 10), std::vector<std::string>{});  // refreshed: not old any more
  EXPECT_EQ(sweep(2001, 10), std::vector<std::string>{"img"});
}

TEST_P(MediaConformance, MediaMessageRefersToTheRecord) {
  ASSERT_TRUE(upload("img", "alice", 10).ok());
  ASSERT_TRUE(upload("img-thumb", "alice", 10).ok());
  auto m = send_media("alice", "bob", 0, {"img", "img-thumb"}, "m1");
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(m->message.kind, MessageKind::media);
  EXPECT_EQ(m->message.seq, 1u);
  EXPECT_EQ(m->deliveries.size(), 2u);
  EXPECT_TRUE(record_of("img")->referenced);
  EXPECT_TRUE(record_of("img-thumb")->referenced);
  auto dup = send_media("alice", "bob", 0, {"img"}, "m1");
  ASSERT_TRUE(dup.ok());
  EXPECT_TRUE(dup->duplicate);
  EXPECT_EQ(dup->message.seq, 1u);

  // Like text otherwise: logs, history, chat list, unread.
  auto page = wait_for<UpdatesPage>([&](auto cb) { store_->read_updates("bob", 0, 10, cb); });
  ASSERT_EQ(page->updates.size(), 1u);
  EXPECT_EQ(page->updates[0].message.kind, MessageKind::media);
  auto list = wait_for<ChatList>([&](auto cb) { store_->list_chats("bob", 10, {}, cb); });
  ASSERT_EQ(list->chats.size(), 1u);
  EXPECT_EQ(list->chats[0].unread, 1u);
  EXPECT_EQ(list->chats[0].last_message->kind, MessageKind::media);
  reopen();
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", 0, "alice", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->messages.size(), 1u);
  EXPECT_EQ(h->messages[0].kind, MessageKind::media);
  EXPECT_EQ(h->messages[0].body, m->message.body);
  EXPECT_TRUE(record_of("img")->referenced);
}

TEST_P(MediaConformance, UnknownMediaFailsTheAppendAndStoresNothing) {
  ASSERT_TRUE(upload("img", "alice", 10).ok());
  // No new direct chat either.
  auto r = send_media("alice", "carol", 0, {"img", "missing"}, "x1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_NE(r.error().message.find("missing"), std::string::npos);
  EXPECT_TRUE(
      wait_for<ChatList>([&](auto cb) { store_->list_chats("alice", 10, {}, cb); })->chats.empty());

  auto first = send("alice", "bob", "hi", "t1");
  ASSERT_TRUE(first.ok());
  ChatId chat = first->message.chat_id;
  r = send_media("alice", "", chat, {"img", "missing"}, "x2");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::not_found);
  EXPECT_FALSE(record_of("img")->referenced);
  EXPECT_EQ(wait_for<uint64_t>([&](auto cb) { store_->current_pts("bob", cb); }).value(), 1u);
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", chat, "", 0, 50}, cb); });
  ASSERT_EQ(h->messages.size(), 1u);

  // No idempotency record: the retry under the same client_msg_id is a new message.
  auto retry = send_media("alice", "", chat, {"img"}, "x2");
  ASSERT_TRUE(retry.ok()) << retry.error().message;
  EXPECT_FALSE(retry->duplicate);
  EXPECT_EQ(retry->message.seq, 2u);
  EXPECT_TRUE(record_of("img")->referenced);
}

TEST_P(MediaConformance, AccessForOwnersAndActiveChatMembers) {
  ASSERT_TRUE(upload("a", "alice", 10).ok());
  EXPECT_TRUE(can_read("alice", "a"));
  EXPECT_FALSE(can_read("bob", "a"));
  EXPECT_FALSE(can_read("alice", "absent"));
  ASSERT_TRUE(send_media("alice", "bob", 0, {"a"}, "d1").ok());
  EXPECT_TRUE(can_read("bob", "a"));
  EXPECT_FALSE(can_read("carol", "a"));
  ASSERT_TRUE(send_media("bob", "erin", 0, {"a"}, "d2").ok());  // forwarded
  EXPECT_TRUE(can_read("erin", "a"));

  auto g = op(GroupOp::create, "alice", 0, {"carol", "dave"}, "g");
  ASSERT_TRUE(g.ok());
  ChatId id = g->chat.chat_id;
  ASSERT_TRUE(upload("b", "carol", 10).ok());
  ASSERT_TRUE(send_media("carol", "", id, {"b"}, "g1").ok());
  EXPECT_TRUE(can_read("alice", "b"));
  EXPECT_TRUE(can_read("dave", "b"));
  EXPECT_FALSE(can_read("erin", "b"));
  ASSERT_TRUE(op(GroupOp::remove, "alice", id, {"dave"}).ok());
  EXPECT_FALSE(can_read("dave", "b"));  // an ex-member
  EXPECT_TRUE(can_read("carol", "b"));
}

TEST_P(MediaConformance, SweepRemovesOnlyOldUnreferencedRecords) {
  ASSERT_TRUE(upload("a", "alice", 100).ok());
  ASSERT_TRUE(upload("b", "alice", 200).ok());
  ASSERT_TRUE(upload("c", "bob", 300).ok());
  ASSERT_TRUE(upload("kept", "alice", 50).ok());
  ASSERT_TRUE(send_media("alice", "bob", 0, {"kept"}, "k1").ok());
  EXPECT_EQ(sweep(250, 0), std::vector<std::string>{});
  EXPECT_EQ(sweep(250, 1), std::vector<std::string>{"a"});  // the oldest first
  EXPECT_EQ(sweep(250, 10), std::vector<std::string>{"b"});
  EXPECT_EQ(sweep(250, 10), std::vector<std::string>{});
  EXPECT_TRUE(record_of("c").ok());
  EXPECT_EQ(sweep(1000, 10), std::vector<std::string>{"c"});
  EXPECT_EQ(sweep(1000, 10), std::vector<std::string>{});
  EXPECT_TRUE(record_of("kept").ok());  // referenced: never swept
  EXPECT_TRUE(can_read("bob", "kept"));
  EXPECT_EQ(record_of("a").error().code, Errc::not_found);
  EXPECT_FALSE(can_read("alice", "a"));
  EXPECT_FALSE(can_read("bob", "c"));

  auto late = send_media("alice", "bob", 0, {"a"}, "k2");
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::not_found);
  // Uploaded again: a new record, pending again.
  ASSERT_TRUE(upload("a", "alice", 400).ok());
  ASSERT_TRUE(send_media("alice", "bob", 0, {"a"}, "k2").ok());
  EXPECT_EQ(sweep(1000, 10), std::vector<std::string>{});
}

TEST_P(MediaConformance, SweepAndAppendsAreOrdered) {
  // Either the appends commit first and the record stays, or the sweep does and every
  // append after it fails; never a message that refers to a removed record.
  for (int round = 0; round < 20; ++round) {
    std::string id = "r" + std::to_string(round);
    ASSERT_TRUE(upload(id, "alice", 10).ok());
    std::vector<Result<AppendResult>> sent(4, Error{Errc::internal, ""});
    std::vector<std::thread> threads;
    for (size_t i = 0; i < sent.size(); ++i)
      threads.emplace_back([&, i] {
        AppendRequest req{
            "alice", "bob", 0, MessageKind::media, "{}", id + "-" + std::to_string(i), 1, 1, {id}};
        sent[i] = wait_for<AppendResult>([&](auto cb) { store_->append_message(req, cb); });
      });
    auto removed = sweep(100, 10);
    for (auto& t : threads) t.join();
    size_t ok = 0;
    for (auto& r : sent) ok += r.ok() ? 1 : 0;
    if (removed.empty()) {
      EXPECT_EQ(ok, sent.size());
      EXPECT_TRUE(record_of(id)->referenced);
    } else {
      EXPECT_EQ(removed, std::vector<std::string>{id});
      EXPECT_EQ(ok, 0u);
      EXPECT_EQ(record_of(id).error().code, Errc::not_found);
    }
  }
}

TEST_P(MediaConformance, DeleteUser) {
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->create_device(DeviceRecord{"alice", "d1", "phone", "h1", 1, false}, 0, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->create_device(DeviceRecord{"alice", "d2", "old", "h2", 1, false}, 0, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->create_device(DeviceRecord{"alice", "d3", "laptop", "h3", 1, false}, 0, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->revoke_device("alice", "d2", cb); }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->create_device(DeviceRecord{"bob", "b1", "phone", "hb", 1, false}, 0, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->set_presence_visibility("alice", PresenceVisibility::nobody, cb);
              }).ok());

  ASSERT_TRUE(upload("sent", "alice", 10).ok());  // only alice: uploaded and sent it
  ASSERT_TRUE(send_media("alice", "bob", 0, {"sent"}, "a1").ok());
  ASSERT_TRUE(upload("kept", "alice", 10).ok());  // bob uploaded the same bytes
  ASSERT_TRUE(upload("kept", "bob", 10).ok());
  ASSERT_TRUE(upload("fwd", "alice", 10).ok());  // bob forwarded it to carol
  ASSERT_TRUE(send_media("bob", "carol", 0, {"fwd"}, "b1").ok());
  ASSERT_TRUE(upload("bobs", "bob", 10).ok());  // bob's, only alice sent it (to carol)
  ASSERT_TRUE(send_media("alice", "carol", 0, {"bobs"}, "a2").ok());
  ASSERT_TRUE(upload("unsent", "alice", 10).ok());
  ASSERT_TRUE(upload("other", "carol", 10).ok());  // not alice's at all

  auto r = erase_user("alice");
  ASSERT_TRUE(r.ok()) << r.error().message;
  auto devices = r->devices;
  std::sort(devices.begin(), devices.end());
  EXPECT_EQ(devices, (std::vector<std::string>{"d1", "d3"}));
  auto removed = r->removed_media;
  std::sort(removed.begin(), removed.end());
  EXPECT_EQ(removed, (std::vector<std::string>{"sent", "unsent"}));

  // Logins fail; the name stays taken.
  for (const char* h : {"h1", "h2", "h3"})
    EXPECT_EQ(
        wait_for<DeviceRecord>([&](auto cb) { store_->find_device_by_token(h, cb); }).error().code,
        Errc::unauthorized);
  EXPECT_TRUE(
      wait_for<DeviceRecord>([&](auto cb) { store_->find_device_by_token("hb", cb); }).ok());
  EXPECT_EQ(wait_for<UserRecord>([&](auto cb) { store_->get_user("alice", cb); }).error().code,
            Errc::not_found);
  EXPECT_EQ(wait_for<Unit>([&](auto cb) { store_->ensure_user("alice", cb); }).error().code,
            Errc::forbidden);
  EXPECT_EQ(wait_for<Unit>([&](auto cb) {
              store_->create_user(UserRecord{"alice", "h", 1}, cb);
            })
                .error()
                .code,
            Errc::username_taken);
  EXPECT_EQ(erase_user("alice").error().code, Errc::not_found);
  EXPECT_EQ(erase_user("nobody").error().code, Errc::not_found);
  // Presence settings are gone and do not come back.
  EXPECT_EQ(
      wait_for<UserSettings>([&](auto cb) { store_->get_settings("alice", cb); }).error().code,
      Errc::not_found);
  EXPECT_EQ(wait_for<Unit>([&](auto cb) { store_->set_last_seen("alice", 5, cb); }).error().code,
            Errc::not_found);
  EXPECT_EQ(send("dave", "alice", "hello?", "d1").error().code, Errc::not_found);

  // Media: what only alice held is gone; what someone else holds stays.
  EXPECT_EQ(record_of("sent").error().code, Errc::not_found);
  EXPECT_FALSE(can_read("bob", "sent"));
  EXPECT_EQ(record_of("unsent").error().code, Errc::not_found);
  EXPECT_TRUE(record_of("kept").ok());
  EXPECT_TRUE(can_read("bob", "kept"));
  EXPECT_FALSE(can_read("alice", "kept"));
  EXPECT_TRUE(record_of("fwd")->referenced);
  EXPECT_TRUE(can_read("carol", "fwd"));
  EXPECT_FALSE(can_read("alice", "fwd"));
  auto bobs = record_of("bobs");
  ASSERT_TRUE(bobs.ok());
  EXPECT_FALSE(bobs->referenced);  // alice's message was its only reference
  EXPECT_TRUE(can_read("bob", "bobs"));
  EXPECT_FALSE(can_read("carol", "bobs"));
  EXPECT_TRUE(record_of("other").ok());
  // Unreferenced now, so housekeeping takes it when it is old.
  EXPECT_EQ(sweep(100, 10), (std::vector<std::string>{"bobs", "kept", "other"}));
  EXPECT_TRUE(record_of("fwd").ok());

  // Alice's messages stay in their chats.
  auto h = wait_for<HistoryPage>([&](auto cb) { store_->history({"bob", 0, "alice", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->messages.size(), 1u);
  EXPECT_EQ(h->messages[0].sender, "alice");
  EXPECT_EQ(h->messages[0].kind, MessageKind::media);

  reopen();
  EXPECT_EQ(wait_for<UserRecord>([&](auto cb) { store_->get_user("alice", cb); }).error().code,
            Errc::not_found);
  EXPECT_EQ(wait_for<Unit>([&](auto cb) { store_->ensure_user("alice", cb); }).error().code,
            Errc::forbidden);
  EXPECT_EQ(erase_user("alice").error().code, Errc::not_found);
}

// Push notifications: targets, mutes, do-not-disturb, the durable job queue --------------

class PushConformance : public GroupConformance {
 protected:
  Status device(const std::string& user, const std::string& id) {
    return wait_for<Unit>([&](auto cb) {
      store_->create_device(DeviceRecord{user, id, "phone", "hash-" + user + "-" + id, 1, false}, 0,
                            cb);
    });
  }
  Status target(const std::string& user, const std::string& dev, const std::string& token,
                PushProvider provider = PushProvider::fcm, const std::string& app_id = "") {
    return wait_for<Unit>([&](auto cb) {
      store_->set_push_target(PushTarget{user, dev, provider, token, app_id, 7}, cb);
    });
  }
  // A device with a target whose token is "tok-<dev>".
  void registered(const std::string& user, const std::string& dev) {
    ASSERT_TRUE(device(user, dev).ok());
    ASSERT_TRUE(target(user, dev, "tok-" + dev).ok());
  }
  Status remove_target(const std::string& user, const std::string& dev, const std::string& token) {
    return wait_for<Unit>([&](auto cb) { store_->remove_push_target(user, dev, token, cb); });
  }
  std::vector<PushTarget> targets(const std::string& user) {
    auto r = wait_for<std::vector<PushTarget>>([&](auto cb) { store_->push_targets(user, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    if (!r) return {};
    std::sort(r->begin(), r->end(),
              [](const PushTarget& a, const PushTarget& b) { return a.device_id < b.device_id; });
    return r.value();
  }
  std::vector<std::string> target_devices(const std::string& user) {
    std::vector<std::string> out;
    for (const auto& t : targets(user)) out.push_back(t.device_id);
    return out;
  }
  static PushEnqueue item(const std::string& user, ChatId chat, uint64_t seq, int64_t due_at,
                          std::vector<std::string> connected = {},
                          const std::string& sender = "zed") {
    return PushEnqueue{user, std::move(connected), chat, seq, sender, due_at};
  }
  uint32_t enqueue(std::vector<PushEnqueue> items, int64_t now) {
    auto r = wait_for<uint32_t>([&](auto cb) { store_->enqueue_push(std::move(items), now, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : 0;
  }
  std::vector<PushJob> claim(int64_t now, uint32_t limit = 100, int64_t lease_until = 0) {
    if (lease_until == 0) lease_until = now + 30000;
    auto r = wait_for<std::vector<PushJob>>(
        [&](auto cb) { store_->claim_push_jobs(now, limit, lease_until, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : std::vector<PushJob>{};
  }
  Status finish(const PushJob& job, PushOutcome outcome, int64_t retry_at = 0,
                const std::string& error = "") {
    return wait_for<Unit>(
        [&](auto cb) { store_->finish_push_job(job, outcome, retry_at, error, cb); });
  }
  PushQueueStats stats() {
    auto r = wait_for<PushQueueStats>([&](auto cb) { store_->push_queue_stats(cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r.value() : PushQueueStats{};
  }
  Status mute(const std::string& user, ChatId chat, int64_t until) {
    return wait_for<Unit>([&](auto cb) { store_->set_chat_mute(user, chat, until, cb); });
  }
  Status push_settings(const std::string& user, int64_t dnd_until, bool preview) {
    return wait_for<Unit>(
        [&](auto cb) { store_->set_push_settings(user, dnd_until, preview, cb); });
  }
  // "user/device/chat" of each job, in the order given.
  static std::vector<std::string> names(const std::vector<PushJob>& jobs) {
    std::vector<std::string> out;
    for (const auto& j : jobs)
      out.push_back(j.user + "/" + j.device_id + "/" + std::to_string(j.chat_id));
    return out;
  }
  static constexpr int64_t kLater = INT64_MAX / 2;  // after any lease a test takes
};

TEST_P(PushConformance, TargetsSetReplaceListRemove) {
  ASSERT_TRUE(device("alice", "p1").ok());
  ASSERT_TRUE(device("alice", "p2").ok());
  ASSERT_TRUE(device("alice", "old").ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->revoke_device("alice", "old", cb); }).ok());
  EXPECT_TRUE(targets("alice").empty());

  ASSERT_TRUE(target("alice", "p1", "t1", PushProvider::apns, "com.example.chat").ok());
  ASSERT_TRUE(target("alice", "p2", "t2").ok());
  auto t = targets("alice");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].user, "alice");
  EXPECT_EQ(t[0].device_id, "p1");
  EXPECT_EQ(t[0].provider, PushProvider::apns);
  EXPECT_EQ(t[0].token, "t1");
  EXPECT_EQ(t[0].app_id, "com.example.chat");
  EXPECT_EQ(t[0].created_at, 7);
  EXPECT_EQ(t[1].device_id, "p2");
  EXPECT_EQ(t[1].provider, PushProvider::fcm);
  EXPECT_EQ(t[1].token, "t2");
  EXPECT_TRUE(targets("bob").empty());

  // Registering again replaces the device's target.
  ASSERT_TRUE(target("alice", "p1", "t1b", PushProvider::webhook, "hook").ok());
  t = targets("alice");
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].provider, PushProvider::webhook);
  EXPECT_EQ(t[0].token, "t1b");
  EXPECT_EQ(t[0].app_id, "hook");

  // Validation.
  EXPECT_EQ(target("nobody", "p1", "x").error().code, Errc::not_found);
  EXPECT_EQ(target("alice", "nodev", "x").error().code, Errc::not_found);
  EXPECT_EQ(target("alice", "old", "x").error().code, Errc::not_found);  // revoked
  EXPECT_EQ(target("bob", "p1", "x").error().code, Errc::not_found);     // alice's device
  EXPECT_EQ(target("alice", "p1", "").error().code, Errc::bad_request);
  EXPECT_EQ(target("alice", "p1", std::string(4097, 'a')).error().code, Errc::bad_request);
  EXPECT_EQ(target("alice", "p1", "x", PushProvider::apns, std::string(256, 'a')).error().code,
            Errc::bad_request);
  EXPECT_EQ(targets("alice")[0].token, "t1b");  // failed registrations change nothing
  ASSERT_TRUE(
      target("alice", "p2", std::string(4096, 'a'), PushProvider::apns, std::string(255, 'b'))
          .ok());
  EXPECT_EQ(targets("alice")[1].token.size(), 4096u);
  ASSERT_TRUE(target("alice", "p2", "t2").ok());

  reopen();
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p1", "p2"}));

  // Removing with a token only removes that registration.
  ASSERT_TRUE(remove_target("alice", "p2", "stale").ok());
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p1", "p2"}));
  ASSERT_TRUE(remove_target("alice", "p2", "t2").ok());
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p1"}));
  ASSERT_TRUE(remove_target("alice", "p1", "").ok());  // any token
  EXPECT_TRUE(targets("alice").empty());
  EXPECT_TRUE(remove_target("alice", "p1", "").ok());  // nothing left: still ok
}

TEST_P(PushConformance, RevokeAndDeleteUserDropTargetsAndJobs) {
  registered("alice", "p1");
  registered("alice", "p2");
  registered("bob", "b1");
  EXPECT_EQ(enqueue({item("alice", 1, 1, 100), item("bob", 1, 1, 100)}, 10), 3u);
  EXPECT_EQ(stats().depth, 3u);

  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->revoke_device("alice", "p1", cb); }).ok());
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p2"}));
  EXPECT_EQ(stats().depth, 2u);

  auto r = wait_for<DeleteUserResult>([&](auto cb) { store_->delete_user("alice", cb); });
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(targets("alice").empty());
  EXPECT_EQ(stats().depth, 1u);
  EXPECT_EQ(names(claim(kLater)), (std::vector<std::string>{"bob/b1/1"}));
  EXPECT_EQ(target_devices("bob"), (std::vector<std::string>{"b1"}));
  // A deleted user gets no new jobs and no new targets.
  EXPECT_EQ(enqueue({item("alice", 1, 2, 100)}, 10), 0u);
  EXPECT_EQ(target("alice", "p2", "t").error().code, Errc::not_found);
}

TEST_P(PushConformance, EnqueueSkipsConnectedUntargetedMutedAndDnd) {
  registered("alice", "p1");
  registered("alice", "p2");
  ASSERT_TRUE(device("alice", "p3").ok());  // no target
  registered("bob", "b1");
  auto sent = send("bob", "alice", "hi", "m1");
  ASSERT_TRUE(sent.ok());
  ChatId chat = sent->message.chat_id;

  // Only targets of devices that are not connected.
  EXPECT_EQ(enqueue({item("alice", chat, 1, 100, {"p1"})}, 50), 1u);
  EXPECT_EQ(names(claim(100)), (std::vector<std::string>{"alice/p2/" + std::to_string(chat)}));
  EXPECT_EQ(enqueue({item("alice", chat, 2, 100, {"p1", "p2"})}, 50), 0u);
  EXPECT_EQ(enqueue({item("carol", chat, 2, 100)}, 50), 0u);  // no targets at all
  EXPECT_EQ(stats().depth, 1u);

  // A muted chat: until the time, forever, then unmuted. Only the muting user is skipped.
  ASSERT_TRUE(mute("alice", chat, 1000).ok());
  EXPECT_EQ(enqueue({item("alice", chat, 3, 100), item("bob", chat, 3, 100)}, 999), 1u);
  EXPECT_EQ(enqueue({item("alice", chat, 3, 100, {"p2"})}, 1000), 1u);  // mute over
  ASSERT_TRUE(mute("alice", chat, -1).ok());
  EXPECT_EQ(enqueue({item("alice", chat, 4, 100)}, INT64_MAX - 1), 0u);
  ASSERT_TRUE(mute("alice", chat, 0).ok());
  EXPECT_EQ(enqueue({item("alice", chat, 4, 100, {"p2"})}, 50), 1u);
  EXPECT_EQ(enqueue({item("alice", chat + 1, 1, 100, {"p2"})}, 50), 1u);  // other chats never

  // Mutes need an active membership.
  EXPECT_EQ(mute("carol", chat, 1000).error().code, Errc::forbidden);
  EXPECT_EQ(mute("alice", 424242, 1000).error().code, Errc::not_found);
  EXPECT_EQ(mute("nobody", chat, 1000).error().code, Errc::not_found);
  EXPECT_EQ(mute("alice", chat, -2).error().code, Errc::bad_request);
  auto g = op(GroupOp::create, "carol", 0, {"alice", "dave"}, "g");
  ASSERT_TRUE(g.ok());
  ChatId group = g->chat.chat_id;
  EXPECT_TRUE(mute("alice", group, -1).ok());
  EXPECT_EQ(mute("erin", group, -1).error().code, Errc::forbidden);
  ASSERT_TRUE(op(GroupOp::remove, "carol", group, {"dave"}).ok());
  EXPECT_EQ(mute("dave", group, -1).error().code, Errc::forbidden);  // an ex-member
  EXPECT_EQ(enqueue({item("alice", group, 2, 100)}, 50), 0u);

  // Do not disturb, until a time.
  ASSERT_TRUE(push_settings("alice", 2000, false).ok());
  EXPECT_EQ(enqueue({item("alice", chat, 5, 100, {"p2"}), item("bob", chat, 5, 100)}, 1999), 1u);
  reopen();  // mutes and settings are durable
  EXPECT_EQ(enqueue({item("alice", group, 3, 100)}, 50), 0u);
  EXPECT_EQ(enqueue({item("alice", chat, 5, 100, {"p2"})}, 1999), 0u);
  EXPECT_EQ(enqueue({item("alice", chat, 5, 100, {"p2"})}, 2000), 1u);  // over
  ASSERT_TRUE(push_settings("alice", 0, false).ok());
  EXPECT_EQ(enqueue({item("alice", chat, 6, 100, {"p2"})}, 50), 1u);
}

TEST_P(PushConformance, CollapseCountsAndKeepsDue) {
  registered("alice", "p1");
  EXPECT_EQ(enqueue({item("alice", 9, 1, 1000, {}, "bob")}, 100), 1u);
  EXPECT_EQ(enqueue({item("alice", 9, 2, 5000, {}, "carol")}, 110), 1u);
  EXPECT_EQ(enqueue({item("alice", 9, 3, 6000, {}, "bob")}, 120), 1u);
  auto s = stats();
  EXPECT_EQ(s.depth, 1u);
  EXPECT_EQ(s.oldest_created_at, 100);

  EXPECT_TRUE(claim(999).empty());  // still due at the first item's time
  auto jobs = claim(1000, 10, 4000);
  ASSERT_EQ(jobs.size(), 1u);
  const PushJob& j = jobs[0];
  EXPECT_EQ(j.user, "alice");
  EXPECT_EQ(j.device_id, "p1");
  EXPECT_EQ(j.chat_id, 9u);
  EXPECT_EQ(j.count, 3u);
  EXPECT_EQ(j.last_seq, 3u);
  EXPECT_EQ(j.last_sender, "bob");
  EXPECT_EQ(j.created_at, 100);
  EXPECT_EQ(j.due_at, 1000);
  EXPECT_EQ(j.attempts, 0u);
  EXPECT_EQ(j.version, 3u);
  EXPECT_EQ(j.lease_until, 4000);
  EXPECT_EQ(j.target.user, "alice");
  EXPECT_EQ(j.target.device_id, "p1");
  EXPECT_EQ(j.target.token, "tok-p1");
  EXPECT_EQ(j.target.provider, PushProvider::fcm);

  // Another chat is another job; items of one call collapse into each other.
  EXPECT_EQ(enqueue({item("alice", 10, 1, 1000), item("alice", 10, 2, 1000)}, 130), 2u);
  EXPECT_EQ(stats().depth, 2u);
  jobs = claim(1000);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].chat_id, 10u);
  EXPECT_EQ(jobs[0].count, 2u);
  EXPECT_EQ(jobs[0].last_seq, 2u);
  EXPECT_EQ(jobs[0].version, 2u);
}

TEST_P(PushConformance, ClaimInDueOrderWithLimitAndLease) {
  registered("alice", "p1");
  registered("bob", "b1");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 300), item("bob", 1, 1, 100), item("alice", 2, 1, 200),
                     item("bob", 2, 1, 5000)},
                    0),
            4u);
  EXPECT_TRUE(claim(50).empty());
  auto first = claim(300, 2, 1000);
  EXPECT_EQ(names(first), (std::vector<std::string>{"bob/b1/1", "alice/p1/2"}));
  for (const auto& j : first) EXPECT_EQ(j.lease_until, 1000);
  EXPECT_EQ(names(claim(400, 10, 1000)), (std::vector<std::string>{"alice/p1/1"}));
  EXPECT_TRUE(claim(999, 10, 2000).empty());  // all leased; bob/2 not due
  EXPECT_TRUE(claim(300, 0, 2000).empty());
  // The leases ran out: claimed again, still in due order.
  EXPECT_EQ(names(claim(1000, 10, 3000)),
            (std::vector<std::string>{"bob/b1/1", "alice/p1/2", "alice/p1/1"}));
  EXPECT_EQ(names(claim(INT64_MAX, 10, INT64_MAX)),
            (std::vector<std::string>{"bob/b1/1", "alice/p1/2", "alice/p1/1", "bob/b1/2"}));
  EXPECT_TRUE(claim(INT64_MAX - 1, 10, INT64_MAX).empty());

  // Registering again keeps the device's jobs: they go to the new token.
  registered("carol", "c1");
  ASSERT_EQ(enqueue({item("carol", 1, 1, 100)}, 0), 1u);
  EXPECT_EQ(stats().depth, 5u);
  ASSERT_TRUE(target("carol", "c1", "tok-new").ok());
  auto carol = claim(100);
  EXPECT_EQ(names(carol), (std::vector<std::string>{"carol/c1/1"}));
  ASSERT_EQ(carol.size(), 1u);
  EXPECT_EQ(carol[0].target.token, "tok-new");
}

TEST_P(PushConformance, ConcurrentClaimsNeverShareAJob) {
  registered("alice", "p1");
  std::vector<PushEnqueue> items;
  for (ChatId chat = 1; chat <= 60; ++chat) items.push_back(item("alice", chat, 1, 100));
  ASSERT_EQ(enqueue(items, 0), 60u);
  std::vector<std::vector<PushJob>> got(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < got.size(); ++i)
    threads.emplace_back([&, i] {
      for (int round = 0; round < 100; ++round) {  // bounded: 60 jobs need 20 claims at most
        auto r = wait_for<std::vector<PushJob>>(
            [&](auto cb) { store_->claim_push_jobs(100, 3, 10000, cb); });
        if (!r.ok() || r->empty()) break;
        got[i].insert(got[i].end(), r->begin(), r->end());
      }
    });
  for (auto& t : threads) t.join();
  std::set<ChatId> seen;
  size_t total = 0;
  for (const auto& jobs : got)
    for (const auto& j : jobs) {
      seen.insert(j.chat_id);
      ++total;
    }
  EXPECT_EQ(total, 60u);
  EXPECT_EQ(seen.size(), 60u);
}

TEST_P(PushConformance, FinishSentAndCollapsedWhileSending) {
  registered("alice", "p1");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 100)}, 10), 1u);
  auto jobs = claim(100);
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_TRUE(finish(jobs[0], PushOutcome::sent).ok());
  EXPECT_EQ(stats().depth, 0u);
  EXPECT_TRUE(claim(kLater).empty());
  ASSERT_TRUE(finish(jobs[0], PushOutcome::sent).ok());  // gone already: ok

  // Two more messages while the first notification was being sent: the job stays for them.
  ASSERT_EQ(enqueue({item("alice", 2, 1, 100)}, 10), 1u);
  jobs = claim(100);
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_EQ(enqueue({item("alice", 2, 2, 100), item("alice", 2, 3, 100)}, 150), 2u);
  int64_t before = now_ms();
  ASSERT_TRUE(finish(jobs[0], PushOutcome::sent).ok());
  EXPECT_EQ(stats().depth, 1u);
  EXPECT_TRUE(claim(before - 1).empty());  // due now, not at its old time
  auto again = claim(kLater);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].count, 2u);
  EXPECT_EQ(again[0].last_seq, 3u);
  EXPECT_EQ(again[0].version, 3u);
  EXPECT_EQ(again[0].attempts, 0u);
  EXPECT_EQ(again[0].created_at, 10);
  EXPECT_GE(again[0].due_at, before);
  EXPECT_LE(again[0].due_at, now_ms());
  ASSERT_TRUE(finish(again[0], PushOutcome::sent).ok());
  EXPECT_EQ(stats().depth, 0u);

  // A job removed and queued anew since the claim is another job: left alone.
  ASSERT_EQ(enqueue({item("alice", 3, 1, 100)}, 10), 1u);
  jobs = claim(100);
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->drop_device_pushes("alice", "p1", cb); }).ok());
  ASSERT_EQ(enqueue({item("alice", 3, 2, 100)}, 20), 1u);
  ASSERT_TRUE(finish(jobs[0], PushOutcome::sent).ok());
  auto fresh = claim(100);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_EQ(fresh[0].last_seq, 2u);
  EXPECT_EQ(fresh[0].created_at, 20);
}

TEST_P(PushConformance, FinishRetryAndDead) {
  registered("alice", "p1");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 100)}, 10), 1u);
  auto jobs = claim(100, 10, 500);
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_TRUE(finish(jobs[0], PushOutcome::retry, 700, "HTTP 503").ok());
  EXPECT_TRUE(claim(699).empty());
  ASSERT_EQ(enqueue({item("alice", 1, 2, 100)}, 650), 1u);  // stays in the count
  jobs = claim(700, 10, 800);
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].attempts, 1u);
  EXPECT_EQ(jobs[0].due_at, 700);
  EXPECT_EQ(jobs[0].count, 2u);
  EXPECT_EQ(jobs[0].lease_until, 800);
  ASSERT_TRUE(finish(jobs[0], PushOutcome::retry, 750).ok());
  jobs = claim(750);  // due again before its lease (800) ran out: the lease was cleared
  ASSERT_EQ(jobs.size(), 1u);
  EXPECT_EQ(jobs[0].attempts, 2u);
  EXPECT_EQ(jobs[0].created_at, 10);

  // Dead: a dead letter, the job gone, the target kept.
  ASSERT_TRUE(finish(jobs[0], PushOutcome::dead, 0, "HTTP 400 BadDeviceToken").ok());
  auto s = stats();
  EXPECT_EQ(s.depth, 0u);
  EXPECT_EQ(s.dead_letters, 1u);
  EXPECT_EQ(s.oldest_created_at, 0);
  EXPECT_TRUE(claim(kLater).empty());
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p1"}));
  ASSERT_TRUE(finish(jobs[0], PushOutcome::dead, 0, "again").ok());  // gone: nothing
  EXPECT_EQ(stats().dead_letters, 1u);

  ASSERT_EQ(enqueue({item("alice", 2, 1, 100)}, 10), 1u);
  jobs = claim(100);
  ASSERT_EQ(jobs.size(), 1u);
  ASSERT_TRUE(finish(jobs[0], PushOutcome::dead, 0, "HTTP 403").ok());
  reopen();
  s = stats();
  EXPECT_EQ(s.depth, 0u);
  EXPECT_EQ(s.dead_letters, 2u);
}

TEST_P(PushConformance, TokenGoneRemovesTargetAndJobs) {
  registered("alice", "p1");
  registered("alice", "p2");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 100), item("alice", 2, 1, 100)}, 10), 4u);
  auto jobs = claim(100, 10, 1000);
  ASSERT_EQ(jobs.size(), 4u);
  auto of = [&](const std::string& dev, ChatId chat) {
    for (const auto& j : jobs)
      if (j.device_id == dev && j.chat_id == chat) return j;
    ADD_FAILURE() << "no job " << dev << "/" << chat;
    return PushJob{};
  };
  ASSERT_TRUE(finish(of("p1", 1), PushOutcome::token_gone, 0, "410 Unregistered").ok());
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p2"}));
  EXPECT_EQ(stats().depth, 2u);  // p1's other job went too
  EXPECT_EQ(names(claim(1000)), (std::vector<std::string>{"alice/p2/1", "alice/p2/2"}));

  // The device registered a new token since the claim: the target stays and the job goes
  // out again, to the new token.
  jobs = claim(kLater, 10, kLater + 1000);
  ASSERT_EQ(jobs.size(), 2u);
  ASSERT_TRUE(target("alice", "p2", "fresh").ok());
  ASSERT_TRUE(finish(of("p2", 1), PushOutcome::token_gone).ok());
  EXPECT_EQ(targets("alice").at(0).token, "fresh");
  auto again = claim(kLater);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].chat_id, 1u);
  EXPECT_EQ(again[0].target.token, "fresh");
  EXPECT_EQ(stats().depth, 2u);
}

TEST_P(PushConformance, DropDevicePushesAndRemoveTarget) {
  registered("alice", "p1");
  registered("alice", "p2");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 100), item("alice", 2, 1, 100)}, 10), 4u);
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->drop_device_pushes("alice", "p1", cb); }).ok());
  EXPECT_EQ(stats().depth, 2u);
  EXPECT_EQ(target_devices("alice"), (std::vector<std::string>{"p1", "p2"}));  // kept
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->drop_device_pushes("alice", "p1", cb); }).ok());
  ASSERT_TRUE(remove_target("alice", "p2", "wrong").ok());
  EXPECT_EQ(stats().depth, 2u);
  ASSERT_TRUE(remove_target("alice", "p2", "tok-p2").ok());
  EXPECT_EQ(stats().depth, 0u);
  EXPECT_TRUE(claim(kLater).empty());
  EXPECT_EQ(enqueue({item("alice", 1, 2, 100)}, 10), 1u);  // p1 still has its target
  EXPECT_EQ(names(claim(100)), (std::vector<std::string>{"alice/p1/1"}));
}

TEST_P(PushConformance, QueueStats) {
  auto s = stats();
  EXPECT_EQ(s.depth, 0u);
  EXPECT_EQ(s.oldest_created_at, 0);
  EXPECT_EQ(s.dead_letters, 0u);
  registered("alice", "p1");
  ASSERT_EQ(enqueue({item("alice", 1, 1, 100)}, 300), 1u);
  ASSERT_EQ(enqueue({item("alice", 2, 1, 100)}, 200), 1u);
  ASSERT_EQ(enqueue({item("alice", 3, 1, 100)}, 400), 1u);
  ASSERT_EQ(enqueue({item("alice", 2, 2, 100)}, 500), 1u);  // a collapse: still the oldest
  s = stats();
  EXPECT_EQ(s.depth, 3u);
  EXPECT_EQ(s.oldest_created_at, 200);
  auto jobs = claim(100);
  ASSERT_EQ(jobs.size(), 3u);
  for (const auto& j : jobs) {
    if (j.chat_id == 2) {
      ASSERT_TRUE(finish(j, PushOutcome::sent).ok());
    }
  }
  reopen();
  s = stats();
  EXPECT_EQ(s.depth, 2u);
  EXPECT_EQ(s.oldest_created_at, 300);
}

TEST_P(PushConformance, PushSettingsRoundTrip) {
  auto get = [&](const char* user) {
    return wait_for<UserSettings>([&](auto cb) { store_->get_settings(user, cb); });
  };
  auto s = get("alice");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->dnd_until, 0);
  EXPECT_FALSE(s->push_preview);
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->set_presence_visibility("alice", PresenceVisibility::nobody, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->set_last_seen("alice", 5000, cb); }).ok());
  ASSERT_TRUE(push_settings("alice", 9000, true).ok());
  s = get("alice");
  EXPECT_EQ(s->presence, PresenceVisibility::nobody);
  EXPECT_EQ(s->last_seen, 5000);
  EXPECT_EQ(s->dnd_until, 9000);
  EXPECT_TRUE(s->push_preview);
  // The presence writes keep the push settings, and the other way round.
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store_->set_presence_visibility("alice", PresenceVisibility::contacts, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) { store_->set_last_seen("alice", 6000, cb); }).ok());
  reopen();
  s = get("alice");
  EXPECT_EQ(s->presence, PresenceVisibility::contacts);
  EXPECT_EQ(s->last_seen, 6000);
  EXPECT_EQ(s->dnd_until, 9000);
  EXPECT_TRUE(s->push_preview);
  ASSERT_TRUE(push_settings("alice", 0, false).ok());
  s = get("alice");
  EXPECT_EQ(s->presence, PresenceVisibility::contacts);
  EXPECT_EQ(s->last_seen, 6000);
  EXPECT_EQ(s->dnd_until, 0);
  EXPECT_FALSE(s->push_preview);
  EXPECT_EQ(get("bob")->dnd_until, 0);
  EXPECT_EQ(push_settings("nobody", 1, true).error().code, Errc::not_found);
}

}  // namespace parley::store
