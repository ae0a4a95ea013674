// Runs the Store conformance suites and the shared-store suite against PgStore on a real
// PostgreSQL, plus the backend's own failure cases (a server that goes away and comes back,
// a schema newer than the code, two nodes migrating at once).
//
// The server: the tests' own (tests/support/postgres_server.h, initdb in a temporary
// directory, on loopback), shared by the whole binary; each test gets a database of its own,
// dropped at its end. Set PARLEY_TEST_POSTGRES to a libpq keyword/value connection string
// (e.g. "host=127.0.0.1 port=5432 user=parley dbname=postgres") to use an external server
// instead: its user must be allowed to CREATE DATABASE, and the tests that stop the server
// are skipped.
#include "store/postgres/pg_store.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <thread>

#include "store/postgres/pg_connection.h"
#include "store/postgres/pg_sharded_store.h"
#include "store/shared_store_conformance.h"
#include "store/store_conformance.h"
#include "support/postgres_server.h"

namespace parley::store::pg {
namespace {

const char* external_server() {
  const char* v = std::getenv("PARLEY_TEST_POSTGRES");
  return v && *v ? v : nullptr;
}

// The server the tests use: an external one, or the binary's own.
std::string admin_conninfo() {
  if (const char* ext = external_server()) return ext;
  return test::PostgresServer::shared().conninfo("postgres");
}

std::string conninfo_for(const std::string& db) {
  if (const char* ext = external_server()) return std::string(ext) + " dbname=" + db;
  return test::PostgresServer::shared().conninfo(db);
}

void admin(const std::string& sql) {
  PgConn c(admin_conninfo(), 5, 0);
  c.run(sql);
}

std::string fresh_database() {
  static std::atomic<int> counter{0};
  std::string name = "parley_t" + std::to_string(::getpid()) + "_" + std::to_string(++counter);
  admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
  admin("CREATE DATABASE " + name);
  return name;
}

PgConfig config_for(const std::string& db) {
  PgConfig cfg;
  cfg.conninfo = conninfo_for(db);
  cfg.pool_size = 4;
  cfg.max_batch = 32;
  cfg.connect_timeout_s = 2;
  return cfg;
}

std::unique_ptr<PgStore> open_store(const PgConfig& cfg, const SyncConfig& sync) {
  auto s = PgStore::open(cfg, sync);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (!s) return nullptr;
  return std::move(s.value());
}

std::unique_ptr<ShardedPgStore> open_sharded(const std::vector<std::string>& dbs,
                                             const SyncConfig& sync) {
  std::vector<PgConfig> servers;
  for (const auto& db : dbs) servers.push_back(config_for(db));
  auto s = ShardedPgStore::open(servers, sync);
  EXPECT_TRUE(s.ok()) << s.error().message;
  if (!s) return nullptr;
  return std::move(s.value());
}

// One database per shard. Two shards are two databases of one server: each a store of its
// own with its own connections (no transaction spans them), as on two servers.
class PgFactory final : public SharedStoreFactory {
 public:
  explicit PgFactory(size_t shards) : shards_(shards) {}
  std::unique_ptr<Store> create(const std::string&, const SyncConfig& sync) override {
    for (size_t i = 0; i < shards_; ++i) dbs_.push_back(fresh_database());
    return open(sync);
  }
  std::unique_ptr<Store> reopen(const SyncConfig& sync) override { return open(sync); }
  std::unique_ptr<Store> open_another(const SyncConfig& sync) override { return open(sync); }
  void destroy() override {
    for (const auto& db : dbs_) admin("DROP DATABASE IF EXISTS " + db + " WITH (FORCE)");
    dbs_.clear();
  }

 private:
  std::unique_ptr<Store> open(const SyncConfig& sync) {
    if (shards_ == 1) return open_store(config_for(dbs_[0]), sync);
    return open_sharded(dbs_, sync);
  }
  size_t shards_;
  std::vector<std::string> dbs_;
};

StoreFactoryMaker maker(size_t shards) {
  return [shards] { return std::make_shared<PgFactory>(shards); };
}
SharedStoreFactoryMaker shared_maker(size_t shards) {
  return [shards] { return std::make_shared<PgFactory>(shards); };
}

INSTANTIATE_TEST_SUITE_P(PostgreSQL, StoreConformance, ::testing::Values(maker(1)));
INSTANTIATE_TEST_SUITE_P(PostgreSQL, GroupConformance, ::testing::Values(maker(1)));
INSTANTIATE_TEST_SUITE_P(PostgreSQL, ReceiptConformance, ::testing::Values(maker(1)));
INSTANTIATE_TEST_SUITE_P(PostgreSQL, MediaConformance, ::testing::Values(maker(1)));
INSTANTIATE_TEST_SUITE_P(PostgreSQL, PushConformance, ::testing::Values(maker(1)));
INSTANTIATE_TEST_SUITE_P(PostgreSQL, SharedStoreConformance, ::testing::Values(shared_maker(1)));

INSTANTIATE_TEST_SUITE_P(TwoShards, StoreConformance, ::testing::Values(maker(2)));
INSTANTIATE_TEST_SUITE_P(TwoShards, GroupConformance, ::testing::Values(maker(2)));
INSTANTIATE_TEST_SUITE_P(TwoShards, ReceiptConformance, ::testing::Values(maker(2)));
INSTANTIATE_TEST_SUITE_P(TwoShards, MediaConformance, ::testing::Values(maker(2)));
INSTANTIATE_TEST_SUITE_P(TwoShards, PushConformance, ::testing::Values(maker(2)));
INSTANTIATE_TEST_SUITE_P(TwoShards, SharedStoreConformance, ::testing::Values(shared_maker(2)));

class PgStoreTest : public ::testing::Test {
 protected:
  void SetUp() override { db_ = fresh_database(); }
  void TearDown() override {
    // A test that failed half-way may have left the server down.
    if (!external_server() && !test::PostgresServer::shared().running())
      test::PostgresServer::shared().start();
    admin("DROP DATABASE IF EXISTS " + db_ + " WITH (FORCE)");
  }
  std::string db_;
  SyncConfig sync_;
};

// The server stops (or is killed): ops complete with unavailable and health says why. It
// starts again: the same store works again, without being reopened.
class PgOutageTest : public PgStoreTest, public ::testing::WithParamInterface<bool> {};

TEST_P(PgOutageTest, ServerGoesAwayAndComesBack) {
  if (external_server()) GTEST_SKIP() << "an external server is not ours to stop";
  auto& server = test::PostgresServer::shared();
  const bool crash = GetParam();
  auto store = open_store(config_for(db_), sync_);
  ASSERT_TRUE(store);
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store->create_user(UserRecord{"alice", "h", 1}, cb);
              }).ok());
  ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                store->create_user(UserRecord{"bob", "h", 1}, cb);
              }).ok());
  EXPECT_TRUE(store->health().ok);

  if (crash) {
    // SIGKILL: no goodbye to the clients; the restart recovers from the WAL. Its backends
    // may serve for a moment until they notice that the postmaster is gone: wait for that.
    server.kill();
    auto gone = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < gone &&
           wait_for<UserRecord>([&](auto cb) { store->get_user("alice", cb); }).ok())
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
  } else {
    server.stop();
  }
  // Every op now fails, writes and reads alike, with unavailable (never hangs).
  for (int i = 0; i < 8; ++i) {
    AppendRequest req{
        "alice", "bob",           0, MessageKind::text, "x", "down" + std::to_string(i),
        1,       uint64_t(i + 1), {}};
    auto r = wait_for<AppendResult>([&](auto cb) { store->append_message(req, cb); });
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, Errc::unavailable) << r.error().message;
    auto u = wait_for<UserRecord>([&](auto cb) { store->get_user("alice", cb); });
    ASSERT_FALSE(u.ok());
    EXPECT_EQ(u.error().code, Errc::unavailable) << u.error().message;
  }
  auto h = store->health();
  EXPECT_FALSE(h.ok);
  EXPECT_NE(h.detail.find("postgres"), std::string::npos) << h.detail;

  server.start();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  Result<AppendResult> sent = Error{Errc::internal, "not tried"};
  int n = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    AppendRequest req{"alice", "bob", 0, MessageKind::text, "back", "up" + std::to_string(n++),
                      1,       100,   {}};
    sent = wait_for<AppendResult>([&](auto cb) { store->append_message(req, cb); });
    if (sent.ok()) break;
    EXPECT_EQ(sent.error().code, Errc::unavailable) << sent.error().message;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(sent->message.seq, 1u);  // nothing of the failed appends was stored
  // Every worker finds its way back: many ops in a row succeed.
  for (int i = 0; i < 20; ++i)
    ASSERT_TRUE(wait_for<UserRecord>([&](auto cb) { store->get_user("bob", cb); }).ok()) << i;
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (!store->health().ok && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(store->health().ok) << store->health().detail;
}
INSTANTIATE_TEST_SUITE_P(PostgreSQL, PgOutageTest, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "Killed" : "Stopped"; });

// Bodies are stored byte for byte (NUL included); other text values with a NUL byte are
// refused as bad requests instead of being cut short.
TEST_F(PgStoreTest, BodiesKeepEveryByte) {
  auto store = open_store(config_for(db_), sync_);
  ASSERT_TRUE(store);
  for (const char* u : {"alice", "bob"})
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                  store->create_user(UserRecord{u, "h", 1}, cb);
                }).ok());
  std::string body("a\0b\xff\x01\\x41", 8);
  AppendRequest req{"alice", "bob", 0, MessageKind::text, body, "nul", 1, 1, {}};
  auto sent = wait_for<AppendResult>([&](auto cb) { store->append_message(req, cb); });
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  auto h = wait_for<HistoryPage>([&](auto cb) { store->history({"bob", 0, "alice", 0, 10}, cb); });
  ASSERT_TRUE(h.ok());
  ASSERT_EQ(h->messages.size(), 1u);
  EXPECT_EQ(h->messages[0].body, body);
  auto page = wait_for<UpdatesPage>([&](auto cb) { store->read_updates("bob", 0, 10, cb); });
  ASSERT_EQ(page->updates.size(), 1u);
  EXPECT_EQ(page->updates[0].message.body, body);
  AppendRequest bad{"alice", "bob", 0, MessageKind::text, "x", std::string("c\0d", 3), 1, 2, {}};
  auto refused = wait_for<AppendResult>([&](auto cb) { store->append_message(bad, cb); });
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().code, Errc::bad_request) << refused.error().message;
}

// Sends queued one after the other into one chat take their seq in that order, although four
// workers commit batches at once (Op::order_key): a sender's pipelined messages keep their
// order. Two conversations interleave: the other keeps going meanwhile.
TEST_F(PgStoreTest, PipelinedAppendsToAChatKeepTheirOrder) {
  auto store = open_store(config_for(db_), sync_);
  ASSERT_TRUE(store);
  for (const char* u : {"alice", "bob", "carol"})
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                  store->create_user(UserRecord{u, "h", 1}, cb);
                }).ok());
  constexpr int kSends = 300;
  std::mutex mu;
  std::map<std::string, std::vector<std::pair<int, uint64_t>>> seqs;  // by receiver
  std::atomic<int> done{0};
  for (int i = 0; i < kSends; ++i) {
    const std::string to = i % 3 == 0 ? "carol" : "bob";
    AppendRequest req{"alice", to,
                      0,       MessageKind::text,
                      "m",     "p" + std::to_string(i),
                      1,       static_cast<uint64_t>(i + 1),
                      {}};
    store->append_message(req, [&, i, to](Result<AppendResult> r) {
      EXPECT_TRUE(r.ok()) << r.error().message;
      if (r) {
        std::lock_guard lock(mu);
        seqs[to].emplace_back(i, r->message.seq);
      }
      ++done;
    });
  }
  for (int i = 0; i < 1000 && done.load() < kSends; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_EQ(done.load(), kSends);
  for (auto& [to, got] : seqs) {
    std::sort(got.begin(), got.end());  // in sending order
    for (size_t k = 0; k < got.size(); ++k)
      ASSERT_EQ(got[k].second, k + 1) << "to " << to << ": send " << got[k].first;
  }
}

// A group commit where some ops fail (a refused send, a bad value that makes PostgreSQL raise
// an error): each failing op rolls back alone, the others commit, seqs stay gapless.
TEST_F(PgStoreTest, FailingOpsInAGroupCommitRollBackAlone) {
  PgConfig cfg = config_for(db_);
  cfg.pool_size = 1;  // one worker: queued writes go in batches
  cfg.max_batch = 64;
  auto store = open_store(cfg, sync_);
  ASSERT_TRUE(store);
  for (const char* u : {"alice", "bob", "carol"})
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) {
                  store->create_user(UserRecord{u, "h", 1}, cb);
                }).ok());
  auto first = wait_for<AppendResult>([&](auto cb) {
    store->append_message(AppendRequest{"alice", "bob", 0, MessageKind::text, "hi", "c0", 1, 1, {}},
                          cb);
  });
  ASSERT_TRUE(first.ok());
  const ChatId chat = first->message.chat_id;
  constexpr int kOps = 60;
  std::vector<std::promise<Result<AppendResult>>> done(kOps);
  for (int i = 0; i < kOps; ++i) {
    AppendRequest req{
        "alice",         "", chat, MessageKind::text, "m", "c" + std::to_string(i + 1), 1,
        uint64_t(i + 2), {}};
    if (i % 3 == 1) req.sender = "carol";                           // forbidden
    if (i % 3 == 2) req.client_msg_id = std::string("bad\0id", 6);  // PostgreSQL refuses it
    store->append_message(req, [&done, i](Result<AppendResult> r) { done[i].set_value(r); });
  }
  std::vector<uint64_t> seqs;
  for (int i = 0; i < kOps; ++i) {
    auto r = done[i].get_future().get();
    if (i % 3 == 0) {
      ASSERT_TRUE(r.ok()) << i << ": " << r.error().message;
      seqs.push_back(r->message.seq);
    } else {
      ASSERT_FALSE(r.ok()) << i;
      EXPECT_EQ(r.error().code, i % 3 == 1 ? Errc::forbidden : Errc::bad_request) << i;
    }
  }
  EXPECT_GT(store->largest_batch(), 1u);  // the ops did share transactions
  std::sort(seqs.begin(), seqs.end());
  for (size_t i = 0; i < seqs.size(); ++i) EXPECT_EQ(seqs[i], i + 2);
  auto h = wait_for<HistoryPage>([&](auto cb) { store->history({"bob", chat, "", 0, 100}, cb); });
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->messages.size(), seqs.size() + 1);
  EXPECT_EQ(wait_for<uint64_t>([&](auto cb) { store->current_pts("bob", cb); }).value(),
            seqs.size() + 1);
}

// Mixed writes (sends, receipts, group changes) from two nodes on one chat at once: every op
// succeeds (deadlocks and serialization failures, if any, are retried inside), and the
// chat's seq and each member's pts stay gapless.
TEST_F(PgStoreTest, MixedWritesFromTwoNodesAllSucceed) {
  auto a = open_store(config_for(db_), sync_);
  auto b = open_store(config_for(db_), sync_);
  ASSERT_TRUE(a && b);
  const std::vector<std::string> users = {"alice", "bob", "carol", "dave"};
  for (const auto& u : users)
    ASSERT_TRUE(wait_for<Unit>([&](auto cb) { a->create_user(UserRecord{u, "h", 1}, cb); }).ok());
  GroupRequest create;
  create.op = GroupOp::create;
  create.actor = "alice";
  create.users = {"bob", "carol", "dave"};
  create.name = "g";
  auto g = wait_for<GroupResult>([&](auto cb) { a->group_op(create, cb); });
  ASSERT_TRUE(g.ok());
  const ChatId chat = g->chat.chat_id;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (size_t t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      PgStore& s = t % 2 ? *b : *a;
      const std::string& me = users[t % users.size()];
      for (int i = 0; i < 60; ++i) {
        Status st = ok_status();
        if (i % 3 == 0) {
          ReceiptRequest req;
          req.user = me;
          req.chat_id = chat;
          req.kind = i % 2 ? UpdateKind::read : UpdateKind::delivered;
          auto r = wait_for<ReceiptResult>([&](auto cb) { s.mark(req, cb); });
          if (!r) st = r.error();
        } else if (i % 10 == 5 && me == "alice") {
          GroupRequest req;
          req.op = GroupOp::rename;
          req.actor = me;
          req.chat_id = chat;
          req.name = "g" + std::to_string(i);
          auto r = wait_for<GroupResult>([&](auto cb) { s.group_op(req, cb); });
          if (!r) st = r.error();
        } else {
          AppendRequest req{me,   "",
                            chat, MessageKind::text,
                            "m",  "t" + std::to_string(t) + "-" + std::to_string(i),
                            1,    1,
                            {}};
          if (i % 3 == 2) {
            req.chat_id = 0;
            req.to_user = users[(t + 1) % users.size()];
          }
          auto r = wait_for<AppendResult>([&](auto cb) { s.append_message(req, cb); });
          if (!r) st = r.error();
        }
        if (!st.ok()) {
          ++failures;
          ADD_FAILURE() << me << " op " << i << ": " << st.error().message;
        }
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  for (const auto& u : users) {
    auto page = wait_for<UpdatesPage>([&](auto cb) { b->read_updates(u, 0, 100000, cb); });
    ASSERT_TRUE(page.ok());
    for (size_t i = 0; i < page->updates.size(); ++i) ASSERT_EQ(page->updates[i].pts, i + 1) << u;
  }
  auto h = wait_for<HistoryPage>([&](auto cb) { a->history({"bob", chat, "", 0, 1000}, cb); });
  ASSERT_TRUE(h.ok());
  for (size_t i = 0; i < h->messages.size(); ++i) ASSERT_EQ(h->messages[i].seq, i + 1);
  std::printf("transactions retried: %llu + %llu\n",
              static_cast<unsigned long long>(a->retried_transactions()),
              static_cast<unsigned long long>(b->retried_transactions()));
}

// An idle store notices that its server went away: health() turns without any op.
TEST_F(PgStoreTest, IdleStoreNoticesServerGone) {
  if (external_server()) GTEST_SKIP() << "an external server is not ours to stop";
  auto& server = test::PostgresServer::shared();
  auto store = open_store(config_for(db_), sync_);
  ASSERT_TRUE(store);
  EXPECT_TRUE(store->health().ok);
  server.stop();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (store->health().ok && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(store->health().ok);
  server.start();
  deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (!store->health().ok && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_TRUE(store->health().ok) << store->health().detail;
}

// A store that cannot reach its server does not open.
TEST_F(PgStoreTest, UnreachableServerDoesNotOpen) {
  PgConfig cfg = config_for(db_);
  cfg.conninfo = "host=127.0.0.1 port=1 user=parley dbname=" + db_;
  auto s = PgStore::open(cfg, sync_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unavailable);
}

// A database whose schema is newer than this code is refused, and left as it is.
TEST_F(PgStoreTest, RefusesNewerSchema) {
  {
    auto store = open_store(config_for(db_), sync_);
    ASSERT_TRUE(store);
  }
  PgConn c(conninfo_for(db_), 5, 0);
  c.run("INSERT INTO parley_schema_migrations (version, name) VALUES (9999, 'from the future')");
  auto s = PgStore::open(config_for(db_), sync_);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, Errc::unavailable);
  EXPECT_NE(s.error().message.find("9999"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("newer"), std::string::npos) << s.error().message;
  auto v = c.q("SELECT max(version) FROM parley_schema_migrations");
  EXPECT_EQ(v.i64(0, 0), 9999);
}

// Statements queued with later() go with the next awaited one in a single round trip, run in
// order (a read after them sees their writes), and the first error among them is thrown
// there; the connection stays usable, and a statement whose Prepare failed is prepared again.
TEST_F(PgStoreTest, QueuedStatementsGoWithTheNextOne) {
  PgConn c(conninfo_for(db_), 5, 0);
  c.run("CREATE TABLE t (k integer PRIMARY KEY, v text NOT NULL)");
  const uint64_t before = c.round_trips();
  c.later("BEGIN");
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{1}, "one");
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{2}, "two");
  auto r = c.q("SELECT count(*) FROM t");
  EXPECT_EQ(r.i64(0, 0), 2);
  EXPECT_EQ(c.round_trips() - before, 1u);  // BEGIN, both inserts (and their Prepare), the read
  c.run("COMMIT");

  // A failing queued statement: its error comes out of the next awaited one, which did not
  // run (nor did anything after the failure).
  c.later("BEGIN");
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{3}, "three");
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{1}, "again");  // duplicate key
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{4}, "four");
  try {
    c.q("SELECT count(*) FROM t");
    ADD_FAILURE() << "the duplicate key was not reported";
  } catch (const PgError& e) {
    EXPECT_EQ(e.sqlstate(), kUniqueViolation) << e.what();
    EXPECT_FALSE(e.connection_lost());
  }
  c.run("ROLLBACK");
  EXPECT_EQ(c.q("SELECT count(*) FROM t").i64(0, 0), 2);

  // A queued statement that does not prepare (a typo): reported, and the connection goes on.
  c.later_q("INSERT INTO nowhere (k) VALUES ($1)", int64_t{5});
  EXPECT_THROW(c.flush(), PgError);
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{5}, "five");
  c.flush();
  EXPECT_EQ(c.q("SELECT v FROM t WHERE k = $1", int64_t{5}).str(0, 0), "five");

  // A text value with a NUL is refused when queued, and nothing is sent.
  EXPECT_THROW(
      c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{6}, std::string("a\0b", 3)),
      PgError);
  c.flush();
  EXPECT_EQ(c.q("SELECT count(*) FROM t").i64(0, 0), 3);
  // A long queue goes out in pieces of at most kMaxQueued statements, in order.
  const uint64_t long_from = c.round_trips();
  for (int64_t k = 100; k < 100 + 600; ++k)
    c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", k, "many");
  c.flush();
  EXPECT_EQ(c.round_trips() - long_from, 3u);  // 256 + 256 + 88
  EXPECT_EQ(c.q("SELECT count(*) FROM t WHERE v = 'many'").i64(0, 0), 600);
  c.run("DELETE FROM t WHERE v = 'many'");
  // Several statements in one run() while some are queued: the queue goes first.
  c.later_q("INSERT INTO t (k, v) VALUES ($1, $2)", int64_t{7}, "seven");
  c.run("BEGIN; DELETE FROM t WHERE k = 7; COMMIT");
  EXPECT_EQ(c.q("SELECT count(*) FROM t").i64(0, 0), 3);
}

// Nodes that start at once on an empty database: the migrations run once, every node opens.
TEST_F(PgStoreTest, ConcurrentOpensMigrateOnce) {
  std::vector<std::unique_ptr<PgStore>> stores(4);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < stores.size(); ++i)
    threads.emplace_back([&, i] {
      auto s = PgStore::open(config_for(db_), sync_);
      if (s) stores[i] = std::move(s.value());
    });
  for (auto& t : threads) t.join();
  for (auto& s : stores) EXPECT_TRUE(s);
  PgConn c(conninfo_for(db_), 5, 0);
  auto v = c.q("SELECT count(*), max(version) FROM parley_schema_migrations");
  EXPECT_EQ(v.i64(0, 0), v.i64(0, 1));  // each version once
}

// Past max_queue, calls complete at once with unavailable instead of queueing.
TEST_F(PgStoreTest, BoundedQueue) {
  PgConfig cfg = config_for(db_);
  cfg.pool_size = 1;
  cfg.max_queue = 4;
  auto store = open_store(cfg, sync_);
  ASSERT_TRUE(store);
  std::atomic<int> ok{0}, refused{0}, other{0};
  for (int i = 0; i < 200; ++i)
    store->create_user(UserRecord{"u" + std::to_string(i), "h", 1}, [&](Status s) {
      if (s.ok())
        ++ok;
      else if (s.error().code == Errc::unavailable)
        ++refused;
      else
        ++other;
    });
  store->close();
  EXPECT_EQ(ok + refused, 200);
  EXPECT_EQ(other, 0);
  EXPECT_GT(refused, 0);
  EXPECT_GT(ok, 0);
}

}  // namespace
}  // namespace parley::store::pg
