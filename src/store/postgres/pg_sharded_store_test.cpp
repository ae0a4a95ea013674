// ShardedPgStore on two real PostgreSQL servers of the test's own (tests/support/
// postgres_server.h), and what happens when one of them goes away (docs/SCALING.md,
// "Sharding the store", "Failure cases"):
//
// - one server stopped: what lives on the other goes on; what lives on the stopped one is
//   `unavailable` and stores nothing; the same store works again once it is back;
// - a member's server down: the send is acknowledged, and the member's log entry arrives
//   through the outbox replay, once, in seq order with the chat's later messages;
// - the sender's server down: the send is not acknowledged, and its retry returns the one
//   stored message as a duplicate with the sender's pts;
// - a node that dies between a commit and its fan-out, and two nodes replaying one outbox;
// - group operations whose members live on both servers (indexes, group counts, limits);
// - the servers' order: each records its place, and a node that lists them otherwise is
//   refused.
//
// Users and chats are picked by where pg_placement.h puts them.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_migrations.h"
#include "store/postgres/pg_placement.h"
#include "store/postgres/pg_sharded_store.h"
#include "store/postgres/pg_store.h"
#include "support/postgres_server.h"

namespace parley::store::pg {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// Where rows live with two servers.
const Placement kTwo{0, 2};

template <class T, class F>
Result<T> call(F&& start) {
  std::promise<Result<T>> p;
  auto f = p.get_future();
  start([&p](Result<T> r) { p.set_value(std::move(r)); });
  return f.get();
}

// Polls `ok` every 50 ms until it holds or `timeout` passes.
bool eventually(const std::function<bool()>& ok, Clock::duration timeout = 30s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (ok()) return true;
    std::this_thread::sleep_for(50ms);
  }
  return ok();
}

// The first name `prefix`0, `prefix`1, ... whose account lives on `shard`.
UserId user_on(uint32_t shard, const std::string& prefix) {
  for (int n = 0;; ++n) {
    UserId u = prefix + std::to_string(n);
    if (kTwo.user_shard(u) == shard) return u;
  }
}

// Two users, on shards `a` and `b`, whose direct chat lives on `chat`.
std::pair<UserId, UserId> pair_on(uint32_t a, uint32_t b, uint32_t chat, const std::string& pa,
                                  const std::string& pb) {
  for (int i = 0;; ++i) {
    UserId x = pa + std::to_string(i);
    if (kTwo.user_shard(x) != a) continue;
    for (int j = 0; j < 200; ++j) {
      UserId y = pb + std::to_string(j);
      if (kTwo.user_shard(y) == b && kTwo.pair_shard(x, y) == chat) return {x, y};
    }
  }
}

// Two users on server 1 whose direct chats with `u` live on server 1 and on server 0.
std::pair<UserId, UserId> peers_of(const UserId& u) {
  UserId near, far;
  for (int n = 0; near.empty() || far.empty(); ++n) {
    UserId p = "p" + std::to_string(n);
    if (kTwo.user_shard(p) != 1) continue;
    if (kTwo.pair_shard(u, p) == 1 && near.empty()) near = p;
    if (kTwo.pair_shard(u, p) == 0 && far.empty()) far = p;
  }
  return {near, far};
}

std::string fresh_name() {
  static std::atomic<int> counter{0};
  return "parley_s" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
}

class ShardedPgTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (auto& s : servers_) s = new test::PostgresServer();
  }
  static void TearDownTestSuite() {
    for (auto& s : servers_) {
      delete s;
      s = nullptr;
    }
  }
  void SetUp() override {
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_TRUE(servers_[i]) << "the test servers did not start";
      if (!servers_[i]->running()) servers_[i]->start();
      dbs_[i] = fresh_name();
      servers_[i]->create_database(dbs_[i]);
    }
  }
  void TearDown() override {
    stores_.clear();
    for (size_t i = 0; i < 2; ++i) {
      if (!servers_[i]) continue;
      // A test that failed half-way may have left a server down.
      if (!servers_[i]->running()) servers_[i]->start();
      for (const auto& db : extra_dbs_[i]) servers_[i]->drop_database(db);
      servers_[i]->drop_database(dbs_[i]);
    }
  }

  static PgConfig config(size_t server, const std::string& db) {
    PgConfig cfg;
    cfg.conninfo = servers_[server]->conninfo(db);
    cfg.pool_size = 3;
    cfg.max_batch = 32;
    cfg.connect_timeout_s = 2;
    cfg.reconnect_max_ms = 500;
    return cfg;
  }
  // The two servers in the deployment's order: server 0 first.
  std::vector<PgConfig> both() const { return {config(0, dbs_[0]), config(1, dbs_[1])}; }

  // A store on both servers (a node); kept until the test ends unless released.
  ShardedPgStore& open() {
    auto s = ShardedPgStore::open(both(), sync_);
    EXPECT_TRUE(s.ok()) << s.error().message;
    if (!s) throw std::runtime_error("open failed");
    stores_.push_back(std::move(s.value()));
    return *stores_.back();
  }
  // A direct connection to server `i`'s database, to look at rows.
  std::unique_ptr<PgConn> sql(size_t i) const {
    return std::make_unique<PgConn>(servers_[i]->conninfo(dbs_[i]), 5, 0);
  }
  int64_t count(size_t server, const std::string& query) const {
    return sql(server)->q(query).i64(0, 0);
  }
  int64_t outbox_rows(size_t server) const { return count(server, "SELECT count(*) FROM outbox"); }

  static void create_users(Store& s, const std::vector<UserId>& users) {
    for (const auto& u : users)
      ASSERT_TRUE(call<Unit>([&](auto cb) { s.create_user(UserRecord{u, "h", 1}, cb); }).ok()) << u;
  }
  Result<AppendResult> send(Store& s, const UserId& from, const UserId& to, ChatId chat,
                            const std::string& cmid) {
    AppendRequest req;
    req.sender = from;
    req.to_user = to;
    req.chat_id = chat;
    req.body = "body of " + cmid;
    req.client_msg_id = cmid;
    req.ts = 1000 + static_cast<int64_t>(next_id_);
    req.message_id = ++next_id_;
    return call<AppendResult>([&](auto cb) { s.append_message(req, cb); });
  }
  Result<GroupResult> group(Store& s, GroupOp op, const UserId& actor, ChatId chat,
                            std::vector<UserId> users, const std::string& name = "g") {
    GroupRequest req;
    req.op = op;
    req.actor = actor;
    req.chat_id = chat;
    req.users = std::move(users);
    req.name = name;
    req.ts = 1000 + static_cast<int64_t>(next_id_);
    req.message_id = ++next_id_;
    req.limits = limits_;
    return call<GroupResult>([&](auto cb) { s.group_op(req, cb); });
  }
  // The user's whole update log (unavailable while its server, or the server of a chat
  // whose message it holds, is down).
  static Result<UpdatesPage> log_of(Store& s, const UserId& u) {
    return call<UpdatesPage>([&](auto cb) { s.read_updates(u, 0, 100000, cb); });
  }
  // The seqs of the chat's message entries in the user's log, in log order; the log's pts
  // are checked to be gapless from 1.
  static std::vector<uint64_t> seqs_in_log(Store& s, const UserId& u, ChatId chat) {
    auto page = log_of(s, u);
    EXPECT_TRUE(page.ok()) << u << ": " << page.error().message;
    std::vector<uint64_t> out;
    if (!page) return out;
    for (size_t i = 0; i < page->updates.size(); ++i) {
      const Update& up = page->updates[i];
      EXPECT_EQ(up.pts, i + 1) << u << ": the log has a hole";
      if (up.kind == UpdateKind::message && up.message.chat_id == chat)
        out.push_back(up.message.seq);
    }
    return out;
  }
  static std::vector<uint64_t> range(uint64_t first, uint64_t last) {
    std::vector<uint64_t> out;
    for (uint64_t s = first; s <= last; ++s) out.push_back(s);
    return out;
  }
  static bool has(const std::vector<Delivery>& ds, const UserId& u) {
    for (const auto& d : ds)
      if (d.user == u) return true;
    return false;
  }
  // Waits until every handle reaches both servers again (its pools reconnected).
  static bool healthy(std::initializer_list<ShardedPgStore*> handles) {
    return eventually([&] {
      for (auto* h : handles)
        if (!h->health().ok) return false;
      return true;
    });
  }

  static test::PostgresServer* servers_[2];
  std::string dbs_[2];
  std::vector<std::string> extra_dbs_[2];
  SyncConfig sync_;
  GroupLimits limits_;
  std::vector<std::unique_ptr<ShardedPgStore>> stores_;
  uint64_t next_id_ = 0;
};
test::PostgresServer* ShardedPgTest::servers_[2] = {nullptr, nullptr};

// (a) Server 0 stopped: users, direct chats and groups that live on server 1 go on; sends to
// chats on server 0 are unavailable and store nothing; once it is back the same store serves
// everything again.
TEST_F(ShardedPgTest, OneServerDownTheOtherGoesOn) {
  auto [a0, b0] = pair_on(0, 0, 0, "a", "b");  // accounts and their direct chat on server 0
  auto [a1, b1] = pair_on(1, 1, 1, "a", "b");  // ... on server 1
  ShardedPgStore& s = open();
  create_users(s, {a0, b0, a1, b1});
  auto d0 = send(s, a0, b0, 0, "d0-1");
  auto d1 = send(s, a1, b1, 0, "d1-1");
  ASSERT_TRUE(d0.ok() && d1.ok());
  ASSERT_EQ(kTwo.chat_shard(d0->message.chat_id), 0u);
  ASSERT_EQ(kTwo.chat_shard(d1->message.chat_id), 1u);
  // A group on each server (a group lives with its creator), members of that server only;
  // and one on server 1 with a member on server 0.
  auto g0 = group(s, GroupOp::create, a0, 0, {b0}, "g0");
  auto g1 = group(s, GroupOp::create, a1, 0, {b1}, "g1");
  auto mixed = group(s, GroupOp::create, a1, 0, {a0}, "mixed");
  ASSERT_TRUE(g0.ok() && g1.ok() && mixed.ok());
  const ChatId c0 = d0->message.chat_id, c1 = d1->message.chat_id;
  const ChatId gc0 = g0->chat.chat_id, gc1 = g1->chat.chat_id, mc = mixed->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(gc0), 0u);
  ASSERT_EQ(kTwo.chat_shard(gc1), 1u);
  ASSERT_EQ(kTwo.chat_shard(mc), 1u);
  EXPECT_TRUE(s.health().ok);

  servers_[0]->stop();

  // Server 1's users, chats and groups go on.
  for (int i = 0; i < 5; ++i) {
    auto r = send(s, a1, b1, 0, "d1-down-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->message.seq, 2u + i);
    EXPECT_EQ(r->deliveries.size(), 2u);
    auto g = send(s, b1, "", gc1, "g1-down-" + std::to_string(i));
    ASSERT_TRUE(g.ok()) << g.error().message;
  }
  EXPECT_TRUE(call<UserRecord>([&](auto cb) { s.get_user(b1, cb); }).ok());
  EXPECT_EQ(seqs_in_log(s, b1, c1), range(1, 6));
  auto list = call<ChatList>([&](auto cb) { s.list_chats(b1, 10, {}, cb); });
  ASSERT_TRUE(list.ok()) << list.error().message;
  EXPECT_EQ(list->chats.size(), 2u);
  auto h = call<HistoryPage>([&](auto cb) { s.history({b1, c1, "", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.size(), 6u);
  ASSERT_TRUE(group(s, GroupOp::rename, a1, gc1, {}, "g1 renamed").ok());

  // What lives on server 0 is unavailable, and nothing of it is stored.
  for (int i = 0; i < 3; ++i) {
    const std::string n = std::to_string(i);
    auto r = send(s, a0, b0, 0, "d0-down-" + n);  // the pair's chat, named by its users
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
    r = send(s, b0, "", c0, "d0-down-id-" + n);  // by its id
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
    r = send(s, a0, "", gc0, "g0-down-" + n);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
  }
  auto u = call<UserRecord>([&](auto cb) { s.get_user(a0, cb); });
  ASSERT_FALSE(u.ok());
  EXPECT_EQ(u.error().code, Errc::unavailable);
  auto health = s.health();
  EXPECT_FALSE(health.ok);
  EXPECT_NE(health.detail.find("server 1"), std::string::npos) << health.detail;

  servers_[0]->start();
  // The same store, not reopened: server 0's chats work again.
  Result<AppendResult> back = Error{Errc::internal, "not tried"};
  ASSERT_TRUE(eventually([&] {
    back = send(s, a0, b0, 0, "d0-back-" + std::to_string(next_id_));
    return back.ok();
  })) << back.error().message;
  EXPECT_EQ(back->message.chat_id, c0);
  EXPECT_EQ(back->message.seq, 2u);  // nothing of the refused sends was stored
  EXPECT_EQ(back->deliveries.size(), 2u);
  auto g = send(s, a0, "", gc0, "g0-back");
  ASSERT_TRUE(g.ok()) << g.error().message;
  EXPECT_EQ(g->message.seq, 2u);  // the creation event, then this one
  EXPECT_EQ(seqs_in_log(s, b0, c0), range(1, 2));
  EXPECT_EQ(count(0, "SELECT count(*) FROM messages"), 4);  // d0 x2, g0's event and message
  // a0 (server 0) is in the mixed group on server 1: its log has the creation event.
  EXPECT_EQ(seqs_in_log(s, a0, mc), range(1, 1));
  ASSERT_TRUE(healthy({&s})) << s.health().detail;
  EXPECT_EQ(outbox_rows(0) + outbox_rows(1), 0);
}

// A user whose own server is up reads its update log up to the first entry whose message
// lives on a server that is down (has_more, pts of the last entry given); from there the read
// is unavailable until that server is back, then the whole log reads again.
TEST_F(ShardedPgTest, UpdateLogReadsUpToAServerThatIsDown) {
  UserId u = user_on(1, "u");
  const auto [near, far] = peers_of(u);  // their direct chats with u: on server 1, on server 0
  ShardedPgStore& s = open();
  create_users(s, {u, near, far});
  ASSERT_TRUE(send(s, near, u, 0, "n1").ok());
  ASSERT_TRUE(send(s, far, u, 0, "f1").ok());
  ASSERT_TRUE(send(s, near, u, 0, "n2").ok());
  auto all = log_of(s, u);
  ASSERT_TRUE(all.ok()) << all.error().message;
  ASSERT_EQ(all->updates.size(), 3u);
  ASSERT_EQ(kTwo.chat_shard(all->updates[1].message.chat_id), 0u);

  servers_[0]->stop();
  auto part = call<UpdatesPage>([&](auto cb) { s.read_updates(u, 0, 100, cb); });
  ASSERT_TRUE(part.ok()) << part.error().message;
  ASSERT_EQ(part->updates.size(), 1u);
  EXPECT_EQ(part->updates[0].message.body, "body of n1");
  EXPECT_EQ(part->pts, part->updates[0].pts);
  EXPECT_TRUE(part->has_more);
  auto stuck = call<UpdatesPage>([&](auto cb) { s.read_updates(u, part->pts, 100, cb); });
  ASSERT_FALSE(stuck.ok());
  EXPECT_EQ(stuck.error().code, Errc::unavailable);

  servers_[0]->start();
  ASSERT_TRUE(healthy({&s})) << s.health().detail;
  // (A pooled connection that has not noticed the restart yet fails one read.)
  Result<UpdatesPage> rest = Error{Errc::unavailable, "not read yet"};
  ASSERT_TRUE(eventually([&] {
    rest = call<UpdatesPage>([&](auto cb) { s.read_updates(u, part->pts, 100, cb); });
    return rest.ok();
  })) << rest.error().message;
  ASSERT_EQ(rest->updates.size(), 2u);
  EXPECT_EQ(rest->updates[0].message.body, "body of f1");
  EXPECT_EQ(rest->updates[1].message.body, "body of n2");
  EXPECT_FALSE(rest->has_more);
}

// The chat list and the login snapshot of a user whose own server is up leave out the chats
// that live on a server that is down and name them in `unavailable` (the unread counts are
// those of the chats given); a user whose own server is down gets `unavailable`; once the
// server is back both are whole again.
TEST_F(ShardedPgTest, ChatListAndSnapshotLeaveOutChatsOnAServerThatIsDown) {
  UserId u = user_on(1, "u");
  const auto [near, far] = peers_of(u);  // their direct chats with u: on server 1, on server 0
  const UserId gone = user_on(0, "z");   // its own server will be down
  ShardedPgStore& s = open();
  create_users(s, {u, near, far, gone});
  auto n1 = send(s, near, u, 0, "n1");
  auto f1 = send(s, far, u, 0, "f1");
  ASSERT_TRUE(n1.ok() && f1.ok());
  ASSERT_TRUE(send(s, near, u, 0, "n2").ok());
  ASSERT_TRUE(send(s, gone, u, 0, "z1").ok());
  const ChatId nc = n1->message.chat_id, fc = f1->message.chat_id;
  ASSERT_EQ(kTwo.chat_shard(nc), 1u);
  ASSERT_EQ(kTwo.chat_shard(fc), 0u);

  servers_[0]->stop();
  auto list = call<ChatList>([&](auto cb) { s.list_chats(u, 10, {}, cb); });
  ASSERT_TRUE(list.ok()) << list.error().message;
  std::vector<ChatId> listed;
  for (const auto& c : list->chats) listed.push_back(c.chat_id);
  EXPECT_EQ(std::count(listed.begin(), listed.end(), nc), 1);
  EXPECT_EQ(std::count(listed.begin(), listed.end(), fc), 0);
  EXPECT_EQ(std::count(list->unavailable.begin(), list->unavailable.end(), fc), 1);
  EXPECT_EQ(listed.size() + list->unavailable.size(), 3u);  // u's three chats, each once
  EXPECT_GE(list->unread_total, 2u);                        // n1, n2 (and z1 if its chat is up)
  for (const auto& c : list->chats) {
    if (c.chat_id == nc) {
      EXPECT_EQ(c.unread, 2u);
    }
  }

  auto snap = call<Snapshot>([&](auto cb) { s.snapshot(u, 10, 5, cb); });
  ASSERT_TRUE(snap.ok()) << snap.error().message;
  EXPECT_EQ(snap->unavailable, list->unavailable);
  ASSERT_EQ(snap->chats.size(), listed.size());
  for (const auto& w : snap->chats) {
    if (w.chat.chat_id == nc) {
      EXPECT_EQ(w.messages.size(), 2u);
    }
  }
  EXPECT_EQ(snap->pts, 4u);

  auto own_down = call<ChatList>([&](auto cb) { s.list_chats(gone, 10, {}, cb); });
  ASSERT_FALSE(own_down.ok());
  EXPECT_EQ(own_down.error().code, Errc::unavailable);
  auto own_snap = call<Snapshot>([&](auto cb) { s.snapshot(gone, 10, 5, cb); });
  ASSERT_FALSE(own_snap.ok());
  EXPECT_EQ(own_snap.error().code, Errc::unavailable);

  servers_[0]->start();
  ASSERT_TRUE(healthy({&s})) << s.health().detail;
  Result<Snapshot> whole = Error{Errc::unavailable, "not read yet"};
  ASSERT_TRUE(eventually([&] {
    whole = call<Snapshot>([&](auto cb) { s.snapshot(u, 10, 5, cb); });
    return whole.ok() && whole->unavailable.empty();
  }));
  EXPECT_EQ(whole->chats.size(), 3u);
  auto back = call<ChatList>([&](auto cb) { s.list_chats(u, 10, {}, cb); });
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->chats.size(), 3u);
  EXPECT_TRUE(back->unavailable.empty());
  EXPECT_EQ(back->unread_total, 4u);
}

// (b) A member's server down while the chat's and the sender's are up: each send is
// acknowledged (durable on the chat's server) without that member's delivery; the member's
// entries arrive by the replay once the server is back, each once and in seq order, also
// mixed with sends made right after it is back.
TEST_F(ShardedPgTest, MemberServerDownEntriesArriveByReplay) {
  const UserId owner = user_on(0, "o"), sender = user_on(0, "s"), local = user_on(0, "l");
  const UserId m1 = user_on(1, "m"), n1 = user_on(1, "n");
  ShardedPgStore& s = open();
  create_users(s, {owner, sender, local, m1, n1});
  auto g = group(s, GroupOp::create, owner, 0, {sender, local, m1, n1});
  ASSERT_TRUE(g.ok()) << g.error().message;
  const ChatId chat = g->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(chat), 0u);
  uint64_t last = 1;  // the creation event

  // Phase 1: sends while server 1 is down, then the replay alone (no more sends).
  servers_[1]->stop();
  for (int i = 0; i < 4; ++i) {
    auto r = send(s, sender, "", chat, "down-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->message.seq, ++last);
    EXPECT_GT(r->sender_pts, 0u);
    EXPECT_TRUE(has(r->deliveries, local));
    EXPECT_FALSE(has(r->deliveries, m1));
    EXPECT_FALSE(has(r->deliveries, n1));
  }
  // The rename's event owed to them waits the same way.
  ASSERT_TRUE(group(s, GroupOp::rename, owner, chat, {}, "renamed").ok());
  ++last;
  EXPECT_GT(outbox_rows(0), 0);
  EXPECT_FALSE(log_of(s, m1).ok());  // its server is down
  servers_[1]->start();
  // The store's own replay (once a second, rows older than 2 s) delivers them.
  ASSERT_TRUE(eventually([&] {
    auto p = log_of(s, m1);
    return p.ok() && p->updates.size() == last;
  })) << "m1's entries did not arrive";
  EXPECT_EQ(seqs_in_log(s, m1, chat), range(1, last));
  EXPECT_EQ(seqs_in_log(s, n1, chat), range(1, last));
  EXPECT_TRUE(eventually([&] { return outbox_rows(0) == 0; }));

  // Phase 2: down again, sends, back, and sends at once (their fan-out races the replay).
  servers_[1]->stop();
  for (int i = 0; i < 5; ++i) {
    auto r = send(s, sender, "", chat, "down2-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->message.seq, ++last);
  }
  servers_[1]->start();
  for (int i = 0; i < 5; ++i) {
    auto r = send(s, i % 2 ? sender : local, "", chat, "after-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(r->message.seq, ++last);
  }
  ASSERT_TRUE(eventually([&] {
    auto p = log_of(s, n1);
    return p.ok() && p->updates.size() == last && outbox_rows(0) == 0;
  })) << "the entries did not all arrive";
  for (const auto& u : {m1, n1, local}) EXPECT_EQ(seqs_in_log(s, u, chat), range(1, last)) << u;
  // Each entry once, on the member's server.
  EXPECT_EQ(count(1, "SELECT count(*) FROM updates"), static_cast<int64_t>(2 * last));
  EXPECT_EQ(count(1,
                  "SELECT count(*) FROM (SELECT DISTINCT user_id, chat_id, seq, kind FROM "
                  "updates) u"),
            static_cast<int64_t>(2 * last));
  // The bodies come from the chat's server.
  auto p = log_of(s, m1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->updates.back().message.body, "body of after-4");
}

// (c) The sender's own server down, the chat's up: the message is stored, but the send is
// not acknowledged (the sender's log entry cannot be written). The retry with the same
// client_msg_id, once the server is back, returns it as a duplicate with the sender's pts;
// it is stored once.
TEST_F(ShardedPgTest, SenderServerDownSendIsNotAcknowledged) {
  auto [s1, r0] = pair_on(1, 0, 0, "s", "r");  // sender on 1; recipient and chat on 0
  const UserId owner = user_on(0, "o");
  ShardedPgStore& s = open();
  create_users(s, {s1, r0, owner});
  auto first = send(s, s1, r0, 0, "first");
  ASSERT_TRUE(first.ok()) << first.error().message;
  const ChatId chat = first->message.chat_id;
  ASSERT_EQ(kTwo.chat_shard(chat), 0u);
  EXPECT_EQ(first->sender_pts, 1u);
  auto g = group(s, GroupOp::create, owner, 0, {s1, r0});
  ASSERT_TRUE(g.ok());
  const ChatId gchat = g->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(gchat), 0u);

  servers_[1]->stop();
  auto r = send(s, s1, r0, 0, "retry-me");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::unavailable);
  EXPECT_NE(r.error().message.find("stored"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("retry"), std::string::npos) << r.error().message;
  auto rg = send(s, s1, "", gchat, "retry-group");
  ASSERT_FALSE(rg.ok());
  EXPECT_EQ(rg.error().code, Errc::unavailable) << rg.error().message;
  // Stored on the chat's server: the recipient (on it) has it already.
  EXPECT_EQ(seqs_in_log(s, r0, chat), range(1, 2));
  // A retry while the server is still down is refused the same way, and stores nothing more.
  auto again = send(s, s1, r0, 0, "retry-me");
  ASSERT_FALSE(again.ok());
  EXPECT_EQ(again.error().code, Errc::unavailable);

  servers_[1]->start();
  Result<AppendResult> retried = Error{Errc::internal, "not tried"};
  ASSERT_TRUE(eventually([&] {
    retried = send(s, s1, r0, 0, "retry-me");
    return retried.ok();
  })) << retried.error().message;
  EXPECT_TRUE(retried->duplicate);
  EXPECT_EQ(retried->message.seq, 2u);
  EXPECT_EQ(retried->message.body, "body of retry-me");
  auto retried_g = send(s, s1, "", gchat, "retry-group");
  ASSERT_TRUE(retried_g.ok()) << retried_g.error().message;
  EXPECT_TRUE(retried_g->duplicate);
  EXPECT_EQ(retried_g->message.seq, 2u);
  // The pts returned are those of the sender's own entries, one each.
  auto log = log_of(s, s1);
  ASSERT_TRUE(log.ok()) << log.error().message;
  std::map<std::pair<ChatId, uint64_t>, std::vector<uint64_t>> pts;
  for (const auto& u : log->updates)
    if (u.kind == UpdateKind::message) pts[{u.message.chat_id, u.message.seq}].push_back(u.pts);
  EXPECT_EQ(pts[std::make_pair(chat, uint64_t{2})], std::vector<uint64_t>{retried->sender_pts});
  EXPECT_EQ(pts[std::make_pair(gchat, uint64_t{2})], std::vector<uint64_t>{retried_g->sender_pts});
  EXPECT_EQ(seqs_in_log(s, s1, chat), range(1, 2));
  EXPECT_EQ(seqs_in_log(s, s1, gchat), range(1, 2));
  // Stored once.
  auto h = call<HistoryPage>([&](auto cb) { s.history({r0, chat, "", 0, 50}, cb); });
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->messages.size(), 2u);
  EXPECT_EQ(count(0, "SELECT count(*) FROM messages WHERE client_msg_id = 'retry-me'"), 1);
  EXPECT_EQ(seqs_in_log(s, r0, chat), range(1, 2));
  // A further retry answers the same.
  auto third = send(s, s1, r0, 0, "retry-me");
  ASSERT_TRUE(third.ok());
  EXPECT_TRUE(third->duplicate);
  EXPECT_EQ(third->sender_pts, retried->sender_pts);
}

// (d) A node that dies between a commit and its fan-out: node A commits sends whose fan-out
// cannot finish (a member's server is down) and goes away with its outbox rows left; node
// B's replay delivers every entry once after the server is back.
TEST_F(ShardedPgTest, NodeGoneBeforeFanOutAnotherReplays) {
  const UserId owner = user_on(0, "o"), m1 = user_on(1, "m"), n1 = user_on(1, "n");
  auto a_store = ShardedPgStore::open(both(), sync_);
  ASSERT_TRUE(a_store.ok()) << a_store.error().message;
  auto a = std::move(a_store.value());
  ShardedPgStore& b = open();
  create_users(*a, {owner, m1, n1});
  auto g = group(*a, GroupOp::create, owner, 0, {m1, n1});
  ASSERT_TRUE(g.ok());
  const ChatId chat = g->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(chat), 0u);

  servers_[1]->stop();
  constexpr int kSends = 6;
  for (int i = 0; i < kSends; ++i) {
    auto r = send(*a, owner, "", chat, "a-" + std::to_string(i));
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_FALSE(has(r->deliveries, m1));
  }
  a->close();  // node A is gone: its rows stay in the outbox
  a.reset();
  EXPECT_GT(outbox_rows(0), 0);
  servers_[1]->start();
  ASSERT_TRUE(healthy({&b})) << b.health().detail;
  // B replays (its own loop does too).
  ASSERT_TRUE(eventually([&] {
    (void)call<uint32_t>([&](auto cb) { b.replay_outboxes(0, cb); });
    auto p = log_of(b, m1);
    return p.ok() && p->updates.size() == 1 + kSends && outbox_rows(0) == 0;
  })) << "B did not replay A's outbox";
  EXPECT_EQ(seqs_in_log(b, m1, chat), range(1, 1 + kSends));
  EXPECT_EQ(seqs_in_log(b, n1, chat), range(1, 1 + kSends));
  // More replays change nothing.
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(call<uint32_t>([&](auto cb) { b.replay_outboxes(0, cb); }).ok());
  EXPECT_EQ(seqs_in_log(b, m1, chat), range(1, 1 + kSends));
  EXPECT_EQ(count(1, "SELECT count(*) FROM updates"), 2 * (1 + kSends));
}

// (d) Two nodes replaying the same outboxes at once (and their own loops meanwhile): every
// entry once, in seq order, each member's pts gapless.
TEST_F(ShardedPgTest, TwoNodesReplayOneOutboxAtOnce) {
  const UserId owner = user_on(0, "o");
  std::vector<UserId> members = {user_on(1, "m"), user_on(1, "n"), user_on(1, "p")};
  ShardedPgStore& a = open();
  ShardedPgStore& b = open();
  create_users(a, {owner});
  create_users(a, members);
  std::vector<ChatId> chats;
  for (int i = 0; i < 3; ++i) {
    auto g = group(a, GroupOp::create, owner, 0, members, "g" + std::to_string(i));
    ASSERT_TRUE(g.ok());
    ASSERT_EQ(kTwo.chat_shard(g->chat.chat_id), 0u);
    chats.push_back(g->chat.chat_id);
  }
  servers_[1]->stop();
  constexpr int kSends = 12;
  for (int i = 0; i < kSends; ++i)
    for (ChatId c : chats) {
      auto r = send(i % 2 ? a : b, owner, "", c, fmt::format("m{}-{}", c, i));
      ASSERT_TRUE(r.ok()) << r.error().message;
    }
  EXPECT_GT(outbox_rows(0), 0);
  servers_[1]->start();
  ASSERT_TRUE(healthy({&a, &b})) << a.health().detail << " / " << b.health().detail;
  // Both nodes replay the same rows at once, several rounds, from two threads each.
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      ShardedPgStore& node = t % 2 ? a : b;
      for (int round = 0; round < 5; ++round)
        (void)call<uint32_t>([&](auto cb) { node.replay_outboxes(0, cb); });
    });
  go = true;
  for (auto& t : threads) t.join();
  ASSERT_TRUE(eventually([&] { return outbox_rows(0) == 0; }));
  const uint64_t per_chat = 1 + kSends;
  for (const auto& u : members)
    for (ChatId c : chats) EXPECT_EQ(seqs_in_log(a, u, c), range(1, per_chat)) << u << " " << c;
  const int64_t entries = static_cast<int64_t>(members.size() * chats.size() * per_chat);
  EXPECT_EQ(count(1, "SELECT count(*) FROM updates"), entries);
  EXPECT_EQ(count(1,
                  "SELECT count(*) FROM (SELECT DISTINCT user_id, chat_id, seq, kind FROM "
                  "updates) u"),
            entries);
  for (const auto& u : members)
    EXPECT_EQ(call<uint64_t>([&](auto cb) { b.current_pts(u, cb); }).value(),
              chats.size() * per_chat)
        << u;
}

// A long outage of one server does not hold up the others: with three shards (two databases
// on server 0, one on server 1), a chat on shard 0, its sender on shard 1 and a member on
// shard 2 (server 1, stopped), more sends than one fan-out reads at once (1000 outbox rows)
// are all acknowledged with the sender's pts: the rows the sender's server owes are applied
// and go, whatever waits for the stopped server. Once it is back, the member gets every
// entry once, in seq order.
TEST_F(ShardedPgTest, BacklogForADownServerDoesNotHoldUpTheOthers) {
  const Placement three{0, 3};
  auto on = [&](uint32_t shard, const std::string& prefix) {
    for (int n = 0;; ++n) {
      UserId u = prefix + std::to_string(n);
      if (three.user_shard(u) == shard) return u;
    }
  };
  const UserId owner = on(0, "o"), sender = on(1, "s"), m2 = on(2, "m");
  const std::string second = fresh_name();
  servers_[0]->create_database(second);
  extra_dbs_[0].push_back(second);
  auto opened =
      ShardedPgStore::open({config(0, dbs_[0]), config(0, second), config(1, dbs_[1])}, sync_);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  stores_.push_back(std::move(opened.value()));
  ShardedPgStore& s = *stores_.back();
  create_users(s, {owner, sender, m2});
  auto g = group(s, GroupOp::create, owner, 0, {sender, m2});
  ASSERT_TRUE(g.ok()) << g.error().message;
  const ChatId chat = g->chat.chat_id;
  ASSERT_EQ(three.chat_shard(chat), 0u);

  servers_[1]->stop();
  const auto t0 = Clock::now();
  constexpr int kSends = 1100;
  std::vector<std::promise<Result<AppendResult>>> done(kSends);
  for (int i = 0; i < kSends; ++i) {
    AppendRequest req;
    req.sender = sender;
    req.chat_id = chat;
    req.body = "b" + std::to_string(i);
    req.client_msg_id = "c" + std::to_string(i);
    req.ts = 2000 + i;
    req.message_id = 10000 + static_cast<uint64_t>(i);
    s.append_message(req, [&done, i](Result<AppendResult> r) { done[i].set_value(std::move(r)); });
  }
  int refused = 0;
  std::string why;
  for (int i = 0; i < kSends; ++i) {
    auto r = done[i].get_future().get();
    if (!r.ok()) {
      if (refused++ == 0) why = fmt::format("send {}: {}", i, r.error().message);
      continue;
    }
    EXPECT_GT(r->sender_pts, 0u) << i;
  }
  EXPECT_EQ(refused, 0) << "first: " << why;
  const auto t1 = Clock::now();
  // The sender's log (on shard 1, up) has every message once, in seq order.
  EXPECT_EQ(seqs_in_log(s, sender, chat), range(1, 1 + kSends));
  servers_[1]->start();
  ASSERT_TRUE(eventually(
      [&] {
        auto p = log_of(s, m2);
        return p.ok() && p->updates.size() == 1 + kSends;
      },
      120s))
      << "m2's entries did not all arrive";
  const auto t2 = Clock::now();
  auto ms = [](auto d) {
    return static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
  };
  std::printf("%d sends with a server down: %lld ms; its backlog applied: %lld ms\n", kSends,
              ms(t1 - t0), ms(t2 - t1));
  EXPECT_EQ(seqs_in_log(s, m2, chat), range(1, 1 + kSends));
  EXPECT_TRUE(eventually([&] { return outbox_rows(0) == 0; }));
}

// (e) Groups whose members live on both servers: each member's server indexes the group and
// counts it; add, remove and leave move both; the groups-per-user limit is checked against
// the count on the user's own server, whichever server the group lives on.
TEST_F(ShardedPgTest, GroupsAcrossServers) {
  const UserId o0 = user_on(0, "o"), p0 = user_on(0, "p"), q1 = user_on(1, "q"),
               r1 = user_on(1, "r"), t1 = user_on(1, "t");
  ShardedPgStore& s = open();
  create_users(s, {o0, p0, q1, r1, t1});
  auto group_count = [&](const UserId& u) {
    auto c = sql(kTwo.user_shard(u));
    auto r = c->q("SELECT group_count FROM user_logs WHERE user_id = $1", u);
    return r.empty() ? int64_t{-1} : r.i64(0, 0);
  };
  auto groups_of = [&](const UserId& u) {
    auto r = call<std::vector<ChatId>>([&](auto cb) { s.member_groups(u, false, cb); });
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r ? r.value() : std::vector<ChatId>{};
  };
  auto listed = [&](const UserId& u) {
    std::map<ChatId, bool> out;  // chat -> member
    auto l = call<ChatList>([&](auto cb) { s.list_chats(u, 50, {}, cb); });
    EXPECT_TRUE(l.ok()) << l.error().message;
    if (l)
      for (const auto& c : l->chats) out[c.chat_id] = c.member;
    return out;
  };

  auto ga = group(s, GroupOp::create, o0, 0, {p0, q1, r1}, "on0");
  ASSERT_TRUE(ga.ok()) << ga.error().message;
  auto gb = group(s, GroupOp::create, q1, 0, {o0, r1}, "on1");
  ASSERT_TRUE(gb.ok()) << gb.error().message;
  const ChatId a = ga->chat.chat_id, b = gb->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(a), 0u);
  ASSERT_EQ(kTwo.chat_shard(b), 1u);
  EXPECT_EQ(ga->event.deliveries.size(), 4u);  // everyone, on both servers
  EXPECT_EQ(groups_of(o0), (std::vector<ChatId>{std::min(a, b), std::max(a, b)}));
  EXPECT_EQ(groups_of(p0), std::vector<ChatId>{a});
  EXPECT_EQ(groups_of(q1), (std::vector<ChatId>{std::min(a, b), std::max(a, b)}));
  EXPECT_EQ(groups_of(t1), std::vector<ChatId>{});
  EXPECT_EQ(group_count(o0), 2);
  EXPECT_EQ(group_count(p0), 1);
  EXPECT_EQ(group_count(q1), 2);
  EXPECT_EQ(group_count(r1), 2);
  EXPECT_EQ(listed(r1), (std::map<ChatId, bool>{{a, true}, {b, true}}));

  // The limit: two groups each. o0 (server 0) cannot join a third group on server 1, nor
  // can q1 (server 1) one on server 0.
  limits_.max_groups_per_user = 2;
  auto third = group(s, GroupOp::create, t1, 0, {o0}, "third");
  ASSERT_FALSE(third.ok());
  EXPECT_EQ(third.error().code, Errc::too_large) << third.error().message;
  auto full = group(s, GroupOp::create, p0, 0, {q1}, "full");
  ASSERT_FALSE(full.ok());
  EXPECT_EQ(full.error().code, Errc::too_large) << full.error().message;
  auto solo = group(s, GroupOp::create, t1, 0, {}, "solo");
  ASSERT_TRUE(solo.ok()) << solo.error().message;
  const ChatId c = solo->chat.chat_id;
  ASSERT_EQ(kTwo.chat_shard(c), 1u);
  auto add_full = group(s, GroupOp::add, t1, c, {o0});  // group on 1, user on 0
  ASSERT_FALSE(add_full.ok());
  EXPECT_EQ(add_full.error().code, Errc::too_large);

  // q1 removes o0 from b (on server 1): o0's count (on server 0) goes down; o0 fits again.
  ASSERT_TRUE(group(s, GroupOp::remove, q1, b, {o0}).ok());
  EXPECT_EQ(group_count(o0), 1);
  EXPECT_EQ(groups_of(o0), std::vector<ChatId>{a});
  EXPECT_EQ(listed(o0), (std::map<ChatId, bool>{{a, true}, {b, false}}));
  ASSERT_TRUE(group(s, GroupOp::add, t1, c, {o0}).ok());
  EXPECT_EQ(group_count(o0), 2);
  EXPECT_EQ(groups_of(o0), (std::vector<ChatId>{std::min(a, c), std::max(a, c)}));
  // r1 leaves a (on server 0); p0 (server 0) is added to b (server 1).
  ASSERT_TRUE(group(s, GroupOp::leave, r1, a, {}).ok());
  EXPECT_EQ(group_count(r1), 1);
  EXPECT_EQ(listed(r1), (std::map<ChatId, bool>{{a, false}, {b, true}}));
  ASSERT_TRUE(group(s, GroupOp::add, q1, b, {p0}).ok());
  EXPECT_EQ(group_count(p0), 2);
  EXPECT_EQ(listed(p0), (std::map<ChatId, bool>{{a, true}, {b, true}}));
  // p0 is in two groups: adding it to a third is refused.
  EXPECT_EQ(group(s, GroupOp::add, t1, c, {p0}).error().code, Errc::too_large);

  // A user whose server is down cannot be added (its count cannot be read); nothing changes.
  servers_[0]->stop();
  auto down = group(s, GroupOp::add, q1, b, {o0});
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Errc::unavailable) << down.error().message;
  // A rename of b (on server 1) is acknowledged; its members on server 0 get it later.
  ASSERT_TRUE(group(s, GroupOp::rename, q1, b, {}, "renamed").ok());
  servers_[0]->start();
  ASSERT_TRUE(healthy({&s})) << s.health().detail;
  ASSERT_TRUE(eventually([&] { return outbox_rows(1) == 0 && outbox_rows(0) == 0; }));
  auto info = call<ChatInfo>([&](auto cb) { s.group_info(q1, b, cb); });
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->member_count, 3u);  // q1, r1, p0
  EXPECT_EQ(info->name, "renamed");
  EXPECT_EQ(groups_of(o0), (std::vector<ChatId>{std::min(a, c), std::max(a, c)}));
  // Replays apply nothing twice: the counts stay.
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(call<uint32_t>([&](auto cb) { s.replay_outboxes(0, cb); }).ok());
  EXPECT_EQ(group_count(o0), 2);
  EXPECT_EQ(group_count(p0), 2);
  EXPECT_EQ(group_count(q1), 2);
  EXPECT_EQ(group_count(r1), 1);
  EXPECT_EQ(group_count(t1), 1);
  EXPECT_EQ(groups_of(q1), (std::vector<ChatId>{std::min(a, b), std::max(a, b)}));
  // p0's log holds b's rename, received after its server came back.
  auto plog = log_of(s, p0);
  ASSERT_TRUE(plog.ok()) << plog.error().message;
  ASSERT_FALSE(plog->updates.empty());
  EXPECT_EQ(plog->updates.back().message.chat_id, b);
  EXPECT_NE(plog->updates.back().message.body.find("renamed"), std::string::npos)
      << plog->updates.back().message.body;
}

// The servers' order: every server records its place at the first open. A node that lists
// them in another order, or another number of them, is refused and changes nothing; a single
// server is place 0 of 1, fresh or already in use.
TEST_F(ShardedPgTest, RefusesServersInAnotherOrder) {
  {
    ShardedPgStore& s = open();  // A, B: A is shard 1 of 2, B shard 2 of 2
    create_users(s, {"alice", "bob"});
  }
  stores_.clear();
  const PgConfig A = config(0, dbs_[0]), B = config(1, dbs_[1]);

  auto swapped = ShardedPgStore::open({B, A}, sync_);
  ASSERT_FALSE(swapped.ok());
  EXPECT_EQ(swapped.error().code, Errc::unavailable);
  const std::string& why = swapped.error().message;
  EXPECT_NE(why.find("is shard 2 of 2, listed as shard 1:"), std::string::npos) << why;
  EXPECT_NE(why.find(std::to_string(servers_[1]->port())), std::string::npos) << why;
  EXPECT_NE(why.find(dbs_[1]), std::string::npos) << why;
  EXPECT_NE(why.find("every node must list cluster.postgres in the same order"), std::string::npos)
      << why;
  EXPECT_NE(why.find("docs/SCALING.md"), std::string::npos) << why;

  auto alone = PgStore::open(A, sync_);  // A alone is a list of one
  ASSERT_FALSE(alone.ok());
  EXPECT_EQ(alone.error().code, Errc::unavailable);
  EXPECT_NE(alone.error().message.find("is shard 1 of 2, listed as shard 1 of 1"),
            std::string::npos)
      << alone.error().message;
  auto alone_sharded = ShardedPgStore::open({A}, sync_);
  ASSERT_FALSE(alone_sharded.ok());
  EXPECT_EQ(alone_sharded.error().code, Errc::unavailable);
  auto b_alone = PgStore::open(B, sync_);
  ASSERT_FALSE(b_alone.ok());
  EXPECT_NE(b_alone.error().message.find("is shard 2 of 2, listed as shard 1 of 1"),
            std::string::npos)
      << b_alone.error().message;
  auto twice = ShardedPgStore::open({A, A}, sync_);
  ASSERT_FALSE(twice.ok());

  // A fresh server in a wrong list is refused before anything is recorded on it.
  const std::string fresh = fresh_name();
  servers_[1]->create_database(fresh);
  extra_dbs_[1].push_back(fresh);
  auto with_fresh = ShardedPgStore::open({config(1, fresh), A}, sync_);
  ASSERT_FALSE(with_fresh.ok());
  EXPECT_NE(with_fresh.error().message.find("is shard 1 of 2, listed as shard 2:"),
            std::string::npos)
      << with_fresh.error().message;
  {
    PgConn c(servers_[1]->conninfo(fresh), 5, 0);
    EXPECT_EQ(c.q("SELECT to_regclass('parley_shard') IS NULL").view(0, 0), "t");
  }

  // The right order still opens, with the data.
  auto right = ShardedPgStore::open({A, B}, sync_);
  ASSERT_TRUE(right.ok()) << right.error().message;
  EXPECT_TRUE(call<UserRecord>([&](auto cb) { right.value()->get_user("bob", cb); }).ok());
  right.value().reset();
  for (size_t i = 0; i < 2; ++i) {
    auto r = sql(i)->q("SELECT place, servers, count(*) OVER () FROM parley_shard");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.i64(0, 0), static_cast<int64_t>(i));
    EXPECT_EQ(r.i64(0, 1), 2);
  }

  // A single server: fresh, it opens (and records place 0 of 1), and opens again; listed as
  // one of two it is refused.
  auto single = PgStore::open(config(1, fresh), sync_);
  ASSERT_TRUE(single.ok()) << single.error().message;
  single.value().reset();
  auto single_again = PgStore::open(config(1, fresh), sync_);
  ASSERT_TRUE(single_again.ok()) << single_again.error().message;
  single_again.value().reset();
  auto one_of_one = ShardedPgStore::open({config(1, fresh)}, sync_);
  ASSERT_TRUE(one_of_one.ok()) << one_of_one.error().message;
  one_of_one.value().reset();
  {
    PgConn c(servers_[1]->conninfo(fresh), 5, 0);
    auto r = c.q("SELECT place, servers FROM parley_shard");
    ASSERT_EQ(r.rows(), 1);
    EXPECT_EQ(r.i64(0, 0), 0);
    EXPECT_EQ(r.i64(0, 1), 1);
  }
  auto grown = ShardedPgStore::open({config(1, fresh), B}, sync_);
  ASSERT_FALSE(grown.ok());
  EXPECT_NE(grown.error().message.find("is shard 1 of 1, listed as shard 1 of 2"),
            std::string::npos)
      << grown.error().message;
}

// A single-server database in use before this check existed (schema version 1, the last
// released one): it migrates, records place 0 of 1, and keeps its data.
TEST_F(ShardedPgTest, SingleServerAtVersionOneStillOpens) {
  {
    PgConn c(servers_[0]->conninfo(dbs_[0]), 5, 0);
    c.run(
        "CREATE TABLE parley_schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
        "applied_at timestamptz NOT NULL DEFAULT now())");
    c.run(migrations().at(0).sql);
    c.q("INSERT INTO parley_schema_migrations (version, name) VALUES (1, $1)",
        std::string(migrations().at(0).name));
    c.run("INSERT INTO users (id, password_hash, created_at) VALUES ('old', 'h', 1)");
    c.run("INSERT INTO user_logs (user_id) VALUES ('old')");
  }
  auto s = PgStore::open(config(0, dbs_[0]), sync_);
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_TRUE(call<UserRecord>([&](auto cb) { s.value()->get_user("old", cb); }).ok());
  s.value().reset();
  auto r = sql(0)->q("SELECT place, servers FROM parley_shard");
  ASSERT_EQ(r.rows(), 1);
  EXPECT_EQ(r.i64(0, 0), 0);
  EXPECT_EQ(r.i64(0, 1), 1);
  auto again = PgStore::open(config(0, dbs_[0]), sync_);
  ASSERT_TRUE(again.ok()) << again.error().message;
}

}  // namespace
}  // namespace parley::store::pg
