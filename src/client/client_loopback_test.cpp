// libparley against FakeServer on a loopback port: HTTP helpers, auth, live delivery, gap
// healing, idempotent resend, reconnect with resume, fatal closes, clean stop.
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include "fake_server.h"
#include "parley/client.h"
#include "parley/cursor_file.h"
#include "parley/http_api.h"

namespace parley {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;

// Collects what the client reports, for waiting on it from the test thread.
class Recorder {
 public:
  void Hook(ClientOptions& o) {
    o.on_message = [this](const Message& m, int64_t pts) {
      std::lock_guard lock(mu_);
      messages_.push_back(m);
      pts_.push_back(pts);
      cv_.notify_all();
    };
    o.on_snapshot = [this](const SyncResult& r) {
      std::lock_guard lock(mu_);
      snapshots_.push_back(r);
      cv_.notify_all();
    };
    o.on_cursor = [this](int64_t pts) {
      std::lock_guard lock(mu_);
      cursor_ = pts;
      cv_.notify_all();
    };
    o.on_state = [this](const ConnectionEvent& e) {
      std::lock_guard lock(mu_);
      states_.push_back(e);
      cv_.notify_all();
    };
    o.on_error = [this](const Error& e) {
      std::lock_guard lock(mu_);
      errors_.push_back(e.code());
      cv_.notify_all();
    };
    o.on_receipt = [this](const Receipt& r, int64_t pts) {
      std::lock_guard lock(mu_);
      receipts_.push_back(r);
      receipt_pts_.push_back(pts);
      cv_.notify_all();
    };
    o.on_typing = [this](const TypingEvent& t) {
      std::lock_guard lock(mu_);
      typing_.push_back(t);
      cv_.notify_all();
    };
    o.on_presence = [this](const std::vector<PresenceStatus>& p) {
      std::lock_guard lock(mu_);
      presence_.push_back(p);
      cv_.notify_all();
    };
  }
  template <class Pred>
  bool WaitFor(Pred pred, std::chrono::milliseconds timeout = 5000ms) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return pred(*this); });
  }
  size_t message_count() {
    std::lock_guard lock(mu_);
    return messages_.size();
  }
  int Count(ConnectionState s) const {
    int n = 0;
    for (const auto& e : states_) n += e.state == s;
    return n;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Message> messages_;
  std::vector<int64_t> pts_;
  std::vector<SyncResult> snapshots_;
  std::vector<ConnectionEvent> states_;
  std::vector<std::string> errors_;
  std::optional<int64_t> cursor_;  // last on_cursor
  std::vector<Receipt> receipts_;
  std::vector<int64_t> receipt_pts_;
  std::vector<TypingEvent> typing_;
  std::vector<std::vector<PresenceStatus>> presence_;
};

ClientOptions Options(const FakeServer& server, const std::string& token) {
  ClientOptions o;
  o.server_url = server.url();
  o.token = token;
  o.request_timeout = 2000ms;
  o.send_timeout = 10000ms;
  o.backoff = BackoffPolicy{50ms, 200ms, 2.0, 0.5};
  return o;
}

// The request frames of `type` the server saw, parsed.
std::vector<boost::json::object> FramesOf(FakeServer& server, const std::string& type) {
  std::vector<boost::json::object> out;
  for (const std::string& f : server.Frames(type)) out.push_back(boost::json::parse(f).as_object());
  return out;
}

std::string ErrorCode(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.code();
  }
  return "no error";
}

TEST(HttpApiTest, RegisterLoginLogout) {
  FakeServer server;
  EXPECT_TRUE(Healthy(server.url()));
  EXPECT_EQ(Register(server.url(), "alice", "correct horse"), "alice");
  try {
    Register(server.url(), "alice", "correct horse");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "username_taken");
    EXPECT_EQ(e.http_status(), 409);
  }
  EXPECT_EQ(ErrorCode([&] { Register(server.url(), "bob", "short"); }), "weak_password");
  EXPECT_EQ(ErrorCode([&] { Login(server.url(), "alice", "wrong password"); }),
            "invalid_credentials");
  LoginResult login = Login(server.url(), "alice", "correct horse", "laptop");
  EXPECT_EQ(login.user, "alice");
  EXPECT_FALSE(login.token.empty());
  EXPECT_FALSE(login.device_id.empty());
  Logout(server.url(), login.token);
  EXPECT_EQ(ErrorCode([&] { Logout(server.url(), login.token); }), "unauthorized");
}

TEST(HttpApiTest, ConnectionAndUrlErrors) {
  uint16_t port;
  {
    FakeServer gone;
    port = gone.port();
  }
  std::string dead = "http://127.0.0.1:" + std::to_string(port);
  EXPECT_EQ(ErrorCode([&] { Login(dead, "a", "b"); }), errc::kConnectionFailed);
  EXPECT_FALSE(Healthy(dead));
  EXPECT_EQ(ErrorCode([&] { Login("https://127.0.0.1:1", "a", "b"); }), errc::kUnsupportedScheme);
  EXPECT_EQ(ErrorCode([&] { Login("127.0.0.1:1", "a", "b"); }), errc::kBadUrl);
}

TEST(ClientTest, NewDeviceGetsSnapshotThenLivePushes) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  server.Inject("alice", "bob", "before 1");
  server.Inject("alice", "bob", "before 2");

  Recorder rec;
  ClientOptions o = Options(server, "tb");
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return !r.snapshots_.empty(); }));
  ASSERT_EQ(rec.snapshots_[0].chats.size(), 1u);
  EXPECT_EQ(rec.snapshots_[0].chats[0].messages.size(), 2u);
  EXPECT_EQ(rec.snapshots_[0].chats[0].peer, "alice");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 2; }));
  EXPECT_EQ(client.cursor(), 2);
  EXPECT_EQ(rec.message_count(), 0u);  // snapshot messages are not repeated as updates

  server.Inject("alice", "bob", "live");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 3; }));
  EXPECT_EQ(rec.messages_[0].body, "live");
  EXPECT_EQ(rec.messages_[0].sender, "alice");
  EXPECT_EQ(rec.pts_[0], 3);
  EXPECT_EQ(client.cursor(), 3);
  EXPECT_EQ(client.state(), ConnectionState::kOnline);
  client.Stop();
  EXPECT_EQ(client.state(), ConnectionState::kClosed);
}

TEST(ClientTest, GapIsHealedBySyncInOrderExactlyOnce) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  o.sync_page_limit = 2;  // forces several pages
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));

  server.SetPushes(false);
  for (int i = 1; i <= 5; ++i) server.Inject("alice", "bob", "m" + std::to_string(i));
  server.SetPushes(true);
  server.Inject("alice", "bob", "m6");  // pts 6 arrives with 1..5 missing

  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() >= 6; }));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.messages_.size(), 6u);
  for (int i = 0; i < 6; ++i) {
    EXPECT_EQ(rec.messages_[i].body, "m" + std::to_string(i + 1));
    EXPECT_EQ(rec.pts_[i], i + 1);
  }
  EXPECT_GE(server.Requests("sync"), 3);  // pages of 2
}

TEST(ClientTest, SendAckAndOwnMessageWithoutExtraSync) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "ta");
  o.cursor = 0;
  rec.Hook(o);
  Client client(o);
  client.Start();
  SendAck ack = client.Send(Target::User("bob"), "hi bob").get();
  EXPECT_EQ(ack.chat_id, 12);
  EXPECT_EQ(ack.seq, 1);
  EXPECT_EQ(ack.pts, 1);
  EXPECT_FALSE(ack.duplicate);
  EXPECT_EQ(ack.client_msg_id.size(), 32u);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  EXPECT_EQ(rec.messages_[0].sender, "alice");
  EXPECT_EQ(rec.messages_[0].to, "bob");
  EXPECT_EQ(rec.messages_[0].body, "hi bob");
  SendAck by_chat = client.Send(Target::Chat(ack.chat_id), "again").get();
  EXPECT_EQ(by_chat.seq, 2);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 2; }));
  EXPECT_EQ(rec.messages_[1].to, "bob");
  EXPECT_EQ(client.cursor(), 2);
  EXPECT_EQ(server.Requests("sync"), 0);  // the acks carried the pts

  EXPECT_EQ(ErrorCode([&] { client.Send(Target::User("nobody"), "x").get(); }), "not_found");
  EXPECT_EQ(ErrorCode([&] { client.Send(Target::User("alice"), "x").get(); }), "bad_request");
  EXPECT_EQ(ErrorCode([&] { client.Send(Target::User("bob"), "").get(); }), errc::kInvalidArgument);
}

TEST(ClientTest, LostAnswerIsResentWithTheSameClientMsgId) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  ClientOptions o = Options(server, "ta");
  o.receive_updates = false;
  o.request_timeout = 300ms;
  Client client(o);
  client.Start();
  server.DropSendResponses(2);
  SendAck ack = client.Send(Target::User("bob"), "once", "my-key-1").get();
  EXPECT_TRUE(ack.duplicate);
  EXPECT_EQ(ack.client_msg_id, "my-key-1");
  EXPECT_EQ(server.SendRequests("my-key-1"), 3);
  EXPECT_EQ(server.ChatMessages("alice", "bob"), 1);
}

TEST(ClientTest, SendGivesUpAfterSendTimeout) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  ClientOptions o = Options(server, "ta");
  o.receive_updates = false;
  o.request_timeout = 200ms;
  o.send_timeout = 700ms;
  Client client(o);
  client.Start();
  server.DropSendResponses(1000);
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(ErrorCode([&] { client.Send(Target::User("bob"), "lost").get(); }), errc::kTimeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
  EXPECT_EQ(server.ChatMessages("alice", "bob"), 1);  // all retries hit the same message
}

TEST(ClientTest, ReconnectResumesFromCursorAndResendsQueuedSend) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  rec.Hook(o);
  Client client(o);
  client.Start();
  server.Inject("alice", "bob", "one");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));

  server.SetAccepting(false);
  server.KillConnections();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kWaiting) >= 2; }));
  server.Inject("alice", "bob", "two");  // missed while offline
  server.Inject("alice", "bob", "three");
  auto pending = client.Send(Target::User("alice"), "queued while offline");
  std::this_thread::sleep_for(300ms);
  server.SetAccepting(true);

  SendAck ack = pending.get();
  EXPECT_EQ(ack.seq, 4);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 4; }));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.messages_.size(), 4u);
  EXPECT_EQ(rec.messages_[0].body, "one");
  EXPECT_EQ(rec.messages_[1].body, "two");
  EXPECT_EQ(rec.messages_[2].body, "three");
  EXPECT_EQ(rec.messages_[3].body, "queued while offline");
  EXPECT_EQ(rec.pts_, (std::vector<int64_t>{1, 2, 3, 4}));
  const ConnectionEvent* waiting = nullptr;
  for (const auto& e : rec.states_) {
    if (e.state == ConnectionState::kWaiting) waiting = &e;
  }
  ASSERT_NE(waiting, nullptr);
  EXPECT_FALSE(waiting->code.empty());
  EXPECT_GE(waiting->retry_in, 25ms);  // min * (1 - jitter)
  EXPECT_LE(waiting->retry_in, 200ms);
}

TEST(ClientTest, ServerGoingAwayIsRetried) {
  FakeServer server;
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.CloseConnections(1001);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 2; }));
  EXPECT_EQ(server.Connections(), 2);
  std::lock_guard lock(rec.mu_);
  bool saw_1001 = false;
  for (const auto& e : rec.states_) saw_1001 |= e.close_code == 1001;
  EXPECT_TRUE(saw_1001);
}

TEST(ClientTest, BadTokenIsFinal) {
  FakeServer server;
  Recorder rec;
  ClientOptions o = Options(server, "wrong");
  rec.Hook(o);
  Client client(o);
  client.Start();
  auto send = client.Send(Target::User("bob"), "x");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kClosed) == 1; }));
  EXPECT_EQ(rec.states_.back().code, "unauthorized");
  EXPECT_EQ(ErrorCode([&] { send.get(); }), "unauthorized");
  EXPECT_EQ(ErrorCode([&] { client.Chats().get(); }), "unauthorized");  // after the fact too
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server.Connections(), 1);  // no reconnect
}

TEST(ClientTest, RevokedTokenIsFinal) {
  FakeServer server;
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.Revoke("tb");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kClosed) == 1; }));
  EXPECT_EQ(rec.states_.back().code, "token_revoked");
  EXPECT_EQ(rec.states_.back().close_code, 4003);
}

TEST(ClientTest, GarbageFramesAreReportedAndIgnored) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  rec.Hook(o);
  Client client(o);
  client.Start();
  EXPECT_GT(client.Ping().get(), 0);
  server.SendRaw("bob", "}{ not json");
  server.SendRaw("bob", R"({"type":"message","pts":"x"})");
  server.SendRaw("bob", R"({"type":"ok","id":999999,"result":{}})");  // unknown id
  server.SendRaw("bob", R"({"type":"presence","user":"alice"})");     // unknown push
  server.SendRaw("bob", R"({"type":"error","id":null,"code":"bad_request","message":"?"})");
  server.Inject("alice", "bob", "still works");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  EXPECT_GT(client.Ping().get(), 0);
  std::lock_guard lock(rec.mu_);
  EXPECT_GE(std::count(rec.errors_.begin(), rec.errors_.end(), errc::kBadResponse), 2);
  EXPECT_EQ(rec.Count(ConnectionState::kOnline), 1);
}

TEST(ClientTest, CursorFileResumesAcrossClients) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  char tmpl[] = "/tmp/parley_client_test_XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  std::string file = std::string(tmpl) + "/cursor";
  server.Inject("alice", "bob", "old");
  {
    Recorder rec;
    ClientOptions o = Options(server, "tb");
    o.cursor_file = file;
    rec.Hook(o);
    Client client(o);
    client.Start();
    ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.snapshots_.size() == 1; }));
    server.Inject("alice", "bob", "new 1");
    ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  }
  EXPECT_EQ(LoadCursorFile(file), 2);
  server.Inject("alice", "bob", "new 2");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor_file = file;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  EXPECT_EQ(rec.messages_[0].body, "new 2");
  EXPECT_TRUE(rec.snapshots_.empty());
  client.Stop();  // joins: the cursor write after on_message has happened
  EXPECT_EQ(LoadCursorFile(file), 3);
  std::string cmd = "rm -rf '" + std::string(tmpl) + "'";
  (void)std::system(cmd.c_str());
}

TEST(ClientTest, HistoryAndChats) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  for (int i = 1; i <= 5; ++i) server.Inject("alice", "bob", "h" + std::to_string(i));
  ClientOptions o = Options(server, "tb");
  o.receive_updates = false;
  Client client(o);
  client.Start();
  HistoryPage page = client.History(Target::User("alice"), std::nullopt, 2).get();
  EXPECT_EQ(page.chat_id, 12);
  ASSERT_EQ(page.messages.size(), 2u);
  EXPECT_EQ(page.messages[0].body, "h4");
  EXPECT_EQ(page.messages[1].body, "h5");
  EXPECT_TRUE(page.has_more);
  HistoryPage older = client.History(Target::Chat(12), 4, 10).get();
  ASSERT_EQ(older.messages.size(), 3u);
  EXPECT_EQ(older.messages[0].seq, 1);
  EXPECT_FALSE(older.has_more);
  EXPECT_EQ(ErrorCode([&] { client.History(Target::Chat(99), std::nullopt, 10).get(); }),
            "not_found");
  ChatList chats = client.Chats().get();
  ASSERT_EQ(chats.chats.size(), 1u);
  EXPECT_EQ(chats.chats[0].peer, "alice");
  EXPECT_EQ(chats.pts, 5);
  SyncResult raw = client.Sync(3).get();
  EXPECT_EQ(raw.updates.size(), 2u);
  EXPECT_EQ(client.cursor(), std::nullopt);  // raw sync leaves the client's cursor alone
}

TEST(ClientTest, LargeGroupMessagesBySeqWithGapAndReconnectFetches) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  SendAck first = server.Inject("alice", "bob", "small times");  // chat 12, pts 1
  server.MarkLarge(first.chat_id);
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 1;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  // After auth the client lists chats and tracks the large one from its last_seq (1).
  for (int i = 0; i < 100 && server.Requests("chats") == 0; ++i) std::this_thread::sleep_for(10ms);
  std::this_thread::sleep_for(100ms);

  server.Inject("alice", "bob", "big 2");  // pushed without pts
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  server.SetPushes(false);
  server.Inject("alice", "bob", "big 3");
  server.Inject("alice", "bob", "big 4");
  server.SetPushes(true);
  server.Inject("alice", "bob", "big 5");  // gap: 3 and 4 come by history after_seq 2
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 4; }));

  server.SetAccepting(false);
  server.KillConnections();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kWaiting) >= 1; }));
  server.Inject("alice", "bob", "big 6");  // nobody to push to
  server.SetAccepting(true);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 5; }));

  SendAck own = client.Send(Target::Chat(first.chat_id), "big 7 from bob").get();
  EXPECT_EQ(own.pts, 0);
  EXPECT_EQ(own.seq, 7);
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 6; }));
  std::this_thread::sleep_for(200ms);
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.messages_.size(), 6u);
  for (size_t i = 0; i < 6; ++i) {
    EXPECT_EQ(rec.messages_[i].seq, static_cast<int64_t>(i) + 2);
    EXPECT_EQ(rec.pts_[i], 0);
    EXPECT_EQ(rec.messages_[i].to, "");
  }
  EXPECT_EQ(rec.messages_[5].sender, "bob");
  EXPECT_EQ(rec.cursor_, std::nullopt);  // the update log did not move
  EXPECT_GE(server.Requests("history"), 2);
}

TEST(ClientTest, RawRequest) {
  FakeServer server;
  server.AddUser("bob", "tb");
  ClientOptions o = Options(server, "tb");
  o.receive_updates = false;
  Client client(o);
  client.Start();
  boost::json::value ping = client.Request("ping").get();
  EXPECT_TRUE(ping.as_object().contains("ts"));
  EXPECT_EQ(ErrorCode([&] { client.Request("frobnicate", {{"x", 1}}).get(); }), "unknown_type");
  EXPECT_EQ(server.Requests("frobnicate"), 1);  // sent once
}

TEST(ClientTest, StopClosesWith1000AndFailsPending) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "ta");
  rec.Hook(o);
  auto client = std::make_unique<Client>(o);
  client->Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.DropSendResponses(1000);
  auto pending = client->Send(Target::User("bob"), "never acked");
  std::this_thread::sleep_for(100ms);
  client->Stop();
  EXPECT_EQ(ErrorCode([&] { pending.get(); }), errc::kStopped);
  EXPECT_EQ(ErrorCode([&] { client->Ping().get(); }), errc::kStopped);
  client->Stop();  // idempotent
  client.reset();
  for (int i = 0; i < 50 && server.CloseCodesReceived().empty(); ++i) {
    std::this_thread::sleep_for(20ms);
  }
  EXPECT_EQ(server.CloseCodesReceived(), std::vector<int>{1000});
}

TEST(ClientTest, StopWhileServerUnreachable) {
  uint16_t port;
  {
    FakeServer gone;
    port = gone.port();
  }
  ClientOptions o;
  o.server_url = "http://127.0.0.1:" + std::to_string(port);
  o.token = "t";
  Recorder rec;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kWaiting) >= 1; }));
  EXPECT_EQ(rec.states_.back().code, errc::kConnectionFailed);
  auto start = std::chrono::steady_clock::now();
  client.Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 1s);
}

// ---------------------------------------------------------------- receipts (§3.11-3.14)

TEST(ReceiptClientTest, ReceiptPushesAdvanceTheCursorAndReachOnReceipt) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  SendAck sent = server.Inject("bob", "alice", "read me");  // from bob's other device: pts 1
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 1; }));
  server.Mark("alice", sent.chat_id, "read", 1);  // alice's read goes to bob's log: pts 2
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 2; }));
  server.Inject("bob", "alice", "after the receipt");  // pts 3
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 3; }));
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.receipts_.size(), 1u);
  const Receipt& r = rec.receipts_[0];
  EXPECT_EQ(r.chat_id, sent.chat_id);
  EXPECT_EQ(r.user, "alice");
  EXPECT_EQ(r.kind, "read");
  EXPECT_EQ(r.seq, 1);
  EXPECT_GT(r.ts, 0);
  EXPECT_EQ(rec.receipt_pts_[0], 2);
  ASSERT_EQ(rec.messages_.size(), 2u);  // the receipt is not a message
  EXPECT_EQ(rec.pts_, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(server.Requests("sync"), 0);  // no gap: the receipt's pts filled it
}

TEST(ReceiptClientTest, ReceiptUpdateInASyncPage) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  o.auto_delivered = false;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.SetPushes(false);
  SendAck first = server.Inject("bob", "alice", "one");  // pts 1
  server.Mark("alice", first.chat_id, "read", 1);        // pts 2
  server.Inject("bob", "alice", "two");                  // pts 3
  // A malformed receipt push is reported and ignored.
  server.SendRaw("bob", R"({"type":"receipt","pts":9,"receipt":"not an object"})");
  server.SetPushes(true);
  server.Mark("alice", first.chat_id, "read", 2);  // pts 4, pushed: the gap 1..3 is synced
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 4; }));
  std::this_thread::sleep_for(100ms);
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.messages_.size(), 2u);
  EXPECT_EQ(rec.pts_, (std::vector<int64_t>{1, 3}));
  ASSERT_EQ(rec.receipts_.size(), 2u);
  EXPECT_EQ(rec.receipt_pts_, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(rec.receipts_[0].seq, 1);
  EXPECT_EQ(rec.receipts_[1].seq, 2);
  EXPECT_GE(server.Requests("sync"), 1);
  EXPECT_GE(std::count(rec.errors_.begin(), rec.errors_.end(), errc::kBadResponse), 1);
}

TEST(ReceiptClientTest, LargeGroupReceiptsWithoutPtsOnlyWhenTheyMoveForward) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  SendAck first = server.Inject("alice", "bob", "small times");  // pts 1
  server.MarkLarge(first.chat_id);
  server.Inject("bob", "alice", "big 2");  // no pts
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 1;
  o.auto_delivered = false;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.Mark("alice", first.chat_id, "delivered", 2);  // pushed to bob without pts
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.receipts_.size() == 1; }));
  std::string again = R"({"type":"receipt","receipt":{"chat_id":)" + std::to_string(first.chat_id) +
                      R"(,"user":"alice","kind":"delivered","seq":)";
  server.SendRaw("bob", again + "2}}");  // not further: dropped
  server.SendRaw("bob", again + "1}}");  // behind: dropped
  server.SendRaw("bob", again + "3}}");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.receipts_.size() == 2; }));
  std::this_thread::sleep_for(100ms);
  std::lock_guard lock(rec.mu_);
  ASSERT_EQ(rec.receipts_.size(), 2u);
  EXPECT_EQ(rec.receipts_[0].seq, 2);
  EXPECT_EQ(rec.receipts_[1].seq, 3);
  EXPECT_EQ(rec.receipt_pts_, (std::vector<int64_t>{0, 0}));
  EXPECT_EQ(client.cursor(), 1);  // the update log did not move
}

TEST(ReceiptClientTest, TypingAndPresencePushesReachCallbacks) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  SendAck first = server.Inject("alice", "bob", "hi");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.receive_updates = false;  // typing and presence come anyway
  rec.Hook(o);
  Client bob(o);
  bob.Start();

  std::vector<PresenceStatus> now = bob.PresenceSubscribe({"alice", "nosuchuser"}).get();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].user, "alice");
  EXPECT_FALSE(now[0].online);
  EXPECT_FALSE(now[0].hidden);
  EXPECT_TRUE(now[1].hidden);

  ClientOptions ao = Options(server, "ta");
  ao.receive_updates = false;
  Client alice(ao);
  alice.Start();  // alice comes online: pushed to bob's subscription
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return !r.presence_.empty(); }));
  EXPECT_EQ(rec.presence_[0], (std::vector<PresenceStatus>{{"alice", true, 0, false}}));

  EXPECT_TRUE(alice.Typing(Target::User("bob"), TypingState::kStart).get());
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.typing_.size() == 1; }));
  EXPECT_EQ(rec.typing_[0], (TypingEvent{first.chat_id, "alice", TypingState::kStart, 6000}));
  server.SendRaw("bob", R"({"type":"typing","chat_id":12,"user":"alice","state":"stop"})");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.typing_.size() == 2; }));
  EXPECT_EQ(rec.typing_[1].state, TypingState::kStop);

  alice.Stop();  // offline, with last_seen
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.presence_.size() == 2; }));
  EXPECT_FALSE(rec.presence_[1][0].online);
  EXPECT_GT(rec.presence_[1][0].last_seen, 0);

  // Subscriptions belong to the connection: after a reconnect the client subscribes again and
  // reports the current state.
  server.KillConnections();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.presence_.size() == 3; }));
  {
    std::lock_guard lock(rec.mu_);
    ASSERT_EQ(rec.presence_[2].size(), 2u);
    EXPECT_EQ(rec.presence_[2][0].user, "alice");
    EXPECT_EQ(rec.presence_[2][1].user, "nosuchuser");
  }
  EXPECT_EQ(server.Requests("presence_subscribe"), 2);
  bob.PresenceUnsubscribeAll().get();
  server.KillConnections();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 3; }));
  EXPECT_GT(bob.Ping().get(), 0);
  EXPECT_EQ(server.Requests("presence_subscribe"), 2);  // nothing left to renew
}

TEST(ReceiptClientTest, AutoDeliveredSendsOnePerChatForTheHighestSeq) {
  FakeServer server;
  for (const char* u : {"alice", "bob", "carol", "dave"}) server.AddUser(u, std::string("t") + u);
  Recorder rec;
  ClientOptions o = Options(server, "tbob");
  o.cursor = 0;
  o.auto_delivered_delay = 300ms;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));

  // One sync page brings them all: chat 12 (alice, seq 1-3), 13 (carol, 1-2), 14 (dave 1, then
  // bob's own 2: skipped).
  server.SetPushes(false);
  for (int i = 0; i < 3; ++i) server.Inject("alice", "bob", "a");
  for (int i = 0; i < 2; ++i) server.Inject("carol", "bob", "c");
  server.Inject("dave", "bob", "d");
  server.Inject("bob", "dave", "mine");
  server.SetPushes(true);
  server.Inject("alice", "bob", "a4");  // the gap: sync
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 8; }));
  for (int i = 0; i < 100 && server.Requests("mark_delivered") < 2; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(400ms);
  auto marks = FramesOf(server, "mark_delivered");
  ASSERT_EQ(marks.size(), 2u);
  std::map<int64_t, int64_t> by_chat;
  for (auto& m : marks) by_chat[m["chat_id"].as_int64()] = m["seq"].as_int64();
  EXPECT_EQ(by_chat, (std::map<int64_t, int64_t>{{12, 4}, {13, 2}}));

  // Live pushes within the delay are batched too.
  server.Inject("alice", "bob", "a5");
  server.Inject("alice", "bob", "a6");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 10; }));
  for (int i = 0; i < 100 && server.Requests("mark_delivered") < 3; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(400ms);
  marks = FramesOf(server, "mark_delivered");
  ASSERT_EQ(marks.size(), 3u);
  EXPECT_EQ(marks[2]["chat_id"], 12);
  EXPECT_EQ(marks[2]["seq"], 6);

  // The positions reached the server: alice sees bob's delivered_seq in her chat list.
  ClientOptions ao = Options(server, "talice");
  ao.receive_updates = false;
  Client alice(ao);
  alice.Start();
  ChatList list = alice.Chats().get();
  ASSERT_EQ(list.chats.size(), 1u);
  EXPECT_EQ(list.chats[0].peer_delivered_seq, 6);
  EXPECT_EQ(list.chats[0].peer_read_seq, 0);
}

TEST(ReceiptClientTest, AutoDeliveredOffOwnMessagesAndStop) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  {
    ClientOptions o = Options(server, "tb");
    o.cursor = 0;
    o.auto_delivered = false;
    Recorder rec;
    rec.Hook(o);
    Client client(o);
    client.Start();
    ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
    server.Inject("alice", "bob", "x");
    ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
    client.Send(Target::User("alice"), "own").get();
    std::this_thread::sleep_for(300ms);
  }
  EXPECT_EQ(server.Requests("mark_delivered"), 0);

  // A long delay: Stop() sends what is pending before it closes.
  ClientOptions o = Options(server, "tb");
  o.cursor = 2;
  o.auto_delivered_delay = 60000ms;
  Recorder rec;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.Inject("alice", "bob", "y");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  EXPECT_EQ(server.Requests("mark_delivered"), 0);
  client.Stop();
  for (int i = 0; i < 100 && server.Requests("mark_delivered") == 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  auto marks = FramesOf(server, "mark_delivered");
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0]["seq"], 3);
}

TEST(ReceiptClientTest, AutoDeliveredGivesUpOnAServerWithoutReceipts) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  server.Disable("mark_delivered");  // an older server: unknown_type
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 0;
  o.auto_delivered_delay = 50ms;
  rec.Hook(o);
  Client client(o);
  client.Start();
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) == 1; }));
  server.Inject("alice", "bob", "1");
  for (int i = 0; i < 100 && server.Requests("mark_delivered") == 0; ++i) {
    std::this_thread::sleep_for(20ms);
  }
  std::this_thread::sleep_for(200ms);
  server.Inject("alice", "bob", "2");
  server.Inject("alice", "bob", "3");
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.messages_.size() == 3; }));
  std::this_thread::sleep_for(300ms);
  EXPECT_EQ(server.Requests("mark_delivered"), 1);
  std::lock_guard lock(rec.mu_);
  EXPECT_TRUE(rec.errors_.empty());
}

TEST(ReceiptClientTest, RequestsAndErrors) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  SendAck first = server.Inject("alice", "bob", "one");
  server.Inject("alice", "bob", "two");
  Recorder rec;
  ClientOptions o = Options(server, "tb");
  o.cursor = 2;
  o.auto_delivered = false;
  rec.Hook(o);
  Client client(o);
  client.Start();

  MarkResult read = client.MarkRead(Target::User("alice"), 1).get();
  EXPECT_EQ(read.chat_id, first.chat_id);
  EXPECT_EQ(read.kind, "read");
  EXPECT_EQ(read.seq, 1);
  EXPECT_TRUE(read.advanced);
  EXPECT_EQ(read.unread, 1);
  EXPECT_EQ(read.pts, 3);  // bob's own log
  // Our own receipt is in our log: the client fetches it (the server does not push it to the
  // connection that asked) and reports it like any other.
  ASSERT_TRUE(rec.WaitFor([](Recorder& r) { return r.cursor_ == 3; }));
  ASSERT_EQ(rec.receipts_.size(), 1u);
  EXPECT_EQ(rec.receipts_[0].user, "bob");
  EXPECT_EQ(rec.receipt_pts_[0], 3);

  MarkResult all = client.MarkRead(Target::Chat(first.chat_id)).get();  // up to the last
  EXPECT_EQ(all.seq, 2);
  EXPECT_EQ(all.unread, 0);
  MarkResult again = client.MarkRead(Target::Chat(first.chat_id), 1).get();
  EXPECT_FALSE(again.advanced);
  EXPECT_EQ(again.seq, 2);
  EXPECT_EQ(again.pts, 0);
  MarkResult delivered = client.MarkDelivered(Target::Chat(first.chat_id), 2).get();
  EXPECT_EQ(delivered.kind, "delivered");
  EXPECT_FALSE(delivered.advanced);  // reading implied it
  auto marks = FramesOf(server, "mark_read");
  ASSERT_EQ(marks.size(), 3u);
  EXPECT_EQ(marks[0]["with"], "alice");
  EXPECT_EQ(marks[0]["seq"], 1);
  EXPECT_FALSE(marks[1].contains("seq"));

  EXPECT_EQ(ErrorCode([&] { client.MarkRead(Target::Chat(99)).get(); }), "not_found");
  EXPECT_EQ(ErrorCode([&] { client.MarkRead(Target::User("carol")).get(); }), "not_found");
  EXPECT_EQ(ErrorCode([&] { client.MarkRead(Target::Chat(12), 0).get(); }), errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { client.MarkDelivered(Target::Chat(12), 0).get(); }),
            errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { client.MarkRead(Target::User("")).get(); }), errc::kInvalidArgument);

  EXPECT_TRUE(client.Typing(Target::Chat(first.chat_id), TypingState::kStop).get());
  EXPECT_EQ(ErrorCode([&] { client.Typing(Target::Chat(99), TypingState::kStart).get(); }),
            "not_found");
  EXPECT_EQ(FramesOf(server, "typing")[0]["state"], "stop");

  EXPECT_EQ(ErrorCode([&] { client.PresenceSubscribe({}).get(); }), errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { client.PresenceUnsubscribe({}).get(); }), errc::kInvalidArgument);
  client.PresenceUnsubscribe({"alice"}).get();

  EXPECT_EQ(client.Settings().get().presence, "everyone");
  EXPECT_EQ(client.Settings("nobody").get().presence, "nobody");
  EXPECT_EQ(client.Settings().get().presence, "nobody");
  EXPECT_EQ(ErrorCode([&] { client.Settings("sometimes").get(); }), "bad_request");
  EXPECT_FALSE(FramesOf(server, "settings")[0].contains("presence"));

  // alice may not see bob's presence now.
  ClientOptions ao = Options(server, "ta");
  ao.receive_updates = false;
  Client alice(ao);
  alice.Start();
  auto seen = alice.PresenceSubscribe({"bob", "alice"}).get();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].hidden);
  EXPECT_TRUE(seen[1].online);  // your own presence is always visible

  ChatList list = alice.Chats().get();
  ASSERT_EQ(list.chats.size(), 1u);
  EXPECT_EQ(list.chats[0].peer_read_seq, 2);
  EXPECT_EQ(list.chats[0].unread, 0);  // her own sends
  ChatList bobs = client.Chats().get();
  EXPECT_EQ(bobs.unread_total, 0);
  EXPECT_EQ(bobs.chats[0].read_seq, 2);
}

// ---------------------------------------------------------------- media (docs/MEDIA.md)

// A valid 8x8 RGB PNG.
const char kPngBytes[] =
    "\x89\x50\x4e\x47\x0d\x0a\x1a\x0a\x00\x00\x00\x0d\x49\x48\x44\x52\x00\x00\x00\x08\x00\x00"
    "\x00\x08\x08\x02\x00\x00\x00\x4b\x6d\x29\xdc\x00\x00\x00\x6c\x49\x44\x41\x54\x78\xda\x15"
    "\xcd\x41\x15\x00\x51\x08\x42\x51\xa3\x18\x85\x28\x46\x79\x51\x88\x42\x14\xa2\xcc\x1f\x97"
    "\x5c\x0e\xce\x0c\x3b\x68\xb8\x81\xc1\x43\x86\x0e\x33\xcb\x2e\x5a\x6e\x61\xf1\x92\xa5\xfb"
    "\x40\xac\x90\x38\x81\xb0\x88\xa8\x1e\x1c\x7b\xe8\xb8\x83\xc3\x47\x8e\xde\x83\x7f\xe0\x55"
    "\x5f\xf8\x9f\x21\xd0\xf7\x6e\xcc\x1a\x99\xf3\x1f\xdb\xc4\xd4\x0f\xc2\x06\x85\xcb\x5f\x76"
    "\x48\x68\x1e\x94\x2d\x2a\xd7\x7f\xc2\x25\xa5\xe5\x03\xc6\x7b\x58\x01\x57\x39\x36\xf2\x00"
    "\x00\x00\x00\x49\x45\x4e\x44\xae\x42\x60\x82";
const std::string kPng(kPngBytes, sizeof(kPngBytes) - 1);

// A temporary directory, removed with its files.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/parley_media_test_XXXXXX";
    if (mkdtemp(tmpl)) path_ = tmpl;
  }
  ~TempDir() {
    std::string cmd = "rm -rf '" + path_ + "'";
    (void)std::system(cmd.c_str());
  }
  std::string File(const std::string& name, const std::string& bytes) const {
    std::string p = path_ + "/" + name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }
  std::string Path(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

bool Exists(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0;
}

// Bytes that are not a PNG, an ELF or empty: the fake server stores them as text/plain.
std::string Pattern(size_t n) {
  std::string out(n, '\0');
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<char>('a' + (i * 7 + i / 1000) % 26);
  return out;
}

TEST(MediaHttpTest, UploadDownloadRoundTrip) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  TempDir dir;
  MediaInfo info = UploadMedia(server.url(), "ta", dir.File("cat.png", kPng));
  EXPECT_EQ(info.id.size(), 64u);
  EXPECT_TRUE(server.HasMedia(info.id));
  EXPECT_EQ(info.type, "image/png");
  EXPECT_EQ(info.kind, "image");
  EXPECT_EQ(info.size, static_cast<int64_t>(kPng.size()));
  EXPECT_EQ(info.width, 8);
  EXPECT_EQ(info.height, 8);
  ASSERT_TRUE(info.thumbnail);
  EXPECT_EQ(info.thumbnail->type, "image/jpeg");
  // The request: streamed with a Content-Length, 100-continue, no declared type.
  auto seen = server.HttpRequests();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].method, "POST");
  EXPECT_EQ(seen[0].target, "/v1/media");
  EXPECT_EQ(seen[0].content_length, std::to_string(kPng.size()));
  EXPECT_EQ(seen[0].expect, "100-continue");
  EXPECT_EQ(seen[0].content_type, "");
  EXPECT_EQ(seen[0].body_size, kPng.size());

  // Same bytes again: same id (dedupe); with a declared type that matches.
  EXPECT_EQ(UploadMedia(server.url(), "ta", dir.Path("cat.png"), "image/png").id, info.id);
  EXPECT_EQ(server.HttpRequests().back().content_type, "image/png");

  std::string out = dir.Path("copy.png");
  MediaDownload d = DownloadMedia(server.url(), "ta", info.id, out);
  EXPECT_EQ(d.path, out);
  EXPECT_EQ(d.size, kPng.size());
  EXPECT_EQ(d.received, kPng.size());
  EXPECT_EQ(d.content_type, "image/png");
  EXPECT_FALSE(d.resumed);
  EXPECT_EQ(ReadFile(out), kPng);
  EXPECT_FALSE(Exists(out + ".part"));
  struct stat st {};
  ASSERT_EQ(::stat(out.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // The thumbnail is an object too.
  EXPECT_GT(DownloadMedia(server.url(), "ta", info.thumbnail->id, dir.Path("thumb.jpg")).size, 0u);

  // Never over an existing file, unless asked.
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "ta", info.id, out); }), errc::kFileExists);
  MediaDownloadOptions overwrite;
  overwrite.overwrite = true;
  overwrite.name = "my cat.png";
  EXPECT_EQ(DownloadMedia(server.url(), "ta", info.id, out, overwrite).size, kPng.size());
  EXPECT_EQ(server.HttpRequests().back().target, "/v1/media/" + info.id + "?name=my%20cat.png");

  // bob is in no chat with a message of it: not_found, and no file is left behind.
  std::string bobs = dir.Path("bob.png");
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "tb", info.id, bobs); }), "not_found");
  EXPECT_FALSE(Exists(bobs));
  EXPECT_FALSE(Exists(bobs + ".part"));
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "ta", std::string(64, '0'), bobs); }),
            "not_found");
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "ta", "../account", bobs); }),
            errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "ta", "", bobs); }),
            errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "", info.id, bobs); }),
            errc::kInvalidArgument);
  EXPECT_FALSE(Exists(bobs + ".part"));
}

TEST(MediaHttpTest, UploadErrors) {
  FakeServer server;
  server.AddUser("alice", "ta");
  TempDir dir;
  try {
    UploadMedia(server.url(), "ta",
                dir.File("true", std::string("\x7f"
                                             "ELF\x02\x01\x01",
                                             7)));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "unsupported_type");
    EXPECT_EQ(e.http_status(), 415);
    EXPECT_NE(e.message().find("not allowed"), std::string::npos) << e.message();
  }
  // A declared type the bytes contradict.
  EXPECT_EQ(
      ErrorCode([&] { UploadMedia(server.url(), "ta", dir.File("a.txt", "hello"), "image/png"); }),
      "unsupported_type");
  // Over the limit: refused from the header, the body is never sent.
  server.SetMaxUpload(1000);
  size_t before = server.HttpRequests().size();
  try {
    UploadMedia(server.url(), "ta", dir.File("big.txt", Pattern(5000)));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), "too_large");
    EXPECT_EQ(e.http_status(), 413);
  }
  EXPECT_EQ(server.HttpRequests().size(), before);
  EXPECT_EQ(ErrorCode([&] { UploadMedia(server.url(), "bad-token", dir.Path("a.txt")); }),
            "unauthorized");
  EXPECT_EQ(server.HttpRequests().size(), before);
  // Local trouble, found before anything is sent.
  try {
    UploadMedia(server.url(), "ta", dir.Path("missing.png"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), errc::kIo);
    EXPECT_NE(e.message().find("missing.png: No such file or directory"), std::string::npos)
        << e.message();
  }
  EXPECT_EQ(ErrorCode([&] { UploadMedia(server.url(), "ta", dir.File("empty", "")); }),
            errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] { UploadMedia(server.url(), "ta", dir.Path("")); }),
            errc::kInvalidArgument);  // a directory
  EXPECT_EQ(ErrorCode([&] { UploadMedia(server.url(), "", dir.Path("a.txt")); }),
            errc::kInvalidArgument);
  EXPECT_EQ(
      ErrorCode([&] { UploadMedia(server.url(), "ta", dir.Path("a.txt"), "text/plain\r\nX: y"); }),
      errc::kInvalidArgument);
  EXPECT_EQ(server.HttpRequests().size(), before);
}

TEST(MediaHttpTest, LargeTransfersStreamWithProgress) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.SetMaxUpload(16 << 20);
  TempDir dir;
  std::string bytes = Pattern(3 << 20);
  std::vector<std::pair<uint64_t, uint64_t>> progress;
  HttpOptions http;
  http.on_progress = [&](uint64_t done, uint64_t total) { progress.emplace_back(done, total); };
  MediaInfo info = UploadMedia(server.url(), "ta", dir.File("big.txt", bytes), "", http);
  EXPECT_EQ(info.size, static_cast<int64_t>(bytes.size()));
  ASSERT_GT(progress.size(), 10u);
  for (size_t i = 1; i < progress.size(); ++i) {
    EXPECT_GE(progress[i].first, progress[i - 1].first);
    EXPECT_EQ(progress[i].second, bytes.size());
  }
  EXPECT_EQ(progress.back().first, bytes.size());

  progress.clear();
  MediaDownload d = DownloadMedia(server.url(), "ta", info.id, dir.Path("copy.txt"), {}, http);
  EXPECT_EQ(d.size, bytes.size());
  EXPECT_EQ(ReadFile(dir.Path("copy.txt")), bytes);
  ASSERT_GT(progress.size(), 10u);
  EXPECT_EQ(progress.back(), std::make_pair(uint64_t{bytes.size()}, uint64_t{bytes.size()}));
}

TEST(MediaHttpTest, UploadWithoutContinueFromTheServer) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.IgnoreExpect(true);  // the client sends the body after its short wait
  TempDir dir;
  auto start = std::chrono::steady_clock::now();
  MediaInfo info = UploadMedia(server.url(), "ta", dir.File("a.txt", "hello media"));
  EXPECT_EQ(info.size, 11);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_EQ(server.HttpRequests().back().body_size, 11u);
}

TEST(MediaHttpTest, BrokenDownloadLeavesNothingOrResumes) {
  FakeServer server;
  server.AddUser("alice", "ta");
  TempDir dir;
  std::string bytes = Pattern(200000);
  std::string id = server.AddMedia("alice", bytes);
  server.CutDownloads(true);
  std::string out = dir.Path("file.txt");
  std::string code = ErrorCode([&] { DownloadMedia(server.url(), "ta", id, out); });
  EXPECT_TRUE(code == errc::kConnectionFailed || code == errc::kBadResponse) << code;
  EXPECT_FALSE(Exists(out));
  EXPECT_FALSE(Exists(out + ".part"));

  // With resume the part file stays, and the next attempt asks for the rest.
  MediaDownloadOptions resume;
  resume.resume = true;
  code = ErrorCode([&] { DownloadMedia(server.url(), "ta", id, out, resume); });
  EXPECT_TRUE(code == errc::kConnectionFailed || code == errc::kBadResponse) << code;
  EXPECT_FALSE(Exists(out));
  ASSERT_TRUE(Exists(out + ".part"));
  size_t have = ReadFile(out + ".part").size();
  EXPECT_EQ(have, bytes.size() / 2);
  server.CutDownloads(false);
  MediaDownload d = DownloadMedia(server.url(), "ta", id, out, resume);
  EXPECT_TRUE(d.resumed);
  EXPECT_EQ(d.size, bytes.size());
  EXPECT_EQ(d.received, bytes.size() - have);
  EXPECT_EQ(server.HttpRequests().back().range, "bytes=" + std::to_string(have) + "-");
  EXPECT_EQ(ReadFile(out), bytes);
  EXPECT_FALSE(Exists(out + ".part"));

  // A part file that already holds everything: 416 with the size, and it is just renamed.
  std::string out2 = dir.Path("again.txt");
  dir.File("again.txt.part", bytes);
  d = DownloadMedia(server.url(), "ta", id, out2, resume);
  EXPECT_EQ(d.size, bytes.size());
  EXPECT_EQ(d.received, 0u);
  EXPECT_EQ(ReadFile(out2), bytes);

  // A part file of other bytes fails the check against the id and is removed.
  std::string out3 = dir.Path("bad.txt");
  dir.File("bad.txt.part", std::string(1000, 'x'));
  EXPECT_EQ(ErrorCode([&] { DownloadMedia(server.url(), "ta", id, out3, resume); }),
            errc::kBadResponse);
  EXPECT_FALSE(Exists(out3));
  EXPECT_FALSE(Exists(out3 + ".part"));
}

TEST(MediaHttpTest, SignedUrlAndAccountDeletion) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  TempDir dir;
  MediaInfo info = UploadMedia(server.url(), "ta", dir.File("a.txt", "signed bytes"));
  SignedMediaUrl url = SignMediaUrl(server.url(), "ta", info.id);
  EXPECT_EQ(url.url.rfind("/v1/media/" + info.id + "?exp=", 0), 0u) << url.url;
  EXPECT_GT(url.expires_at, 0);
  EXPECT_EQ(ErrorCode([&] { SignMediaUrl(server.url(), "tb", info.id); }), "not_found");
  // Anyone with the URL, no token: relative to the server, or absolute.
  EXPECT_EQ(DownloadMediaUrl(server.url(), url.url, dir.Path("s1.txt")).size, 12u);
  EXPECT_EQ(ReadFile(dir.Path("s1.txt")), "signed bytes");
  EXPECT_EQ(DownloadMediaUrl("http://127.0.0.1:1", server.url() + url.url, dir.Path("s2.txt")).size,
            12u);
  std::string tampered = url.url;
  tampered.back() = tampered.back() == '0' ? '1' : '0';
  EXPECT_EQ(ErrorCode([&] { DownloadMediaUrl(server.url(), tampered, dir.Path("s3.txt")); }),
            "forbidden");
  EXPECT_FALSE(Exists(dir.Path("s3.txt.part")));

  LoginResult login = Login(server.url(), "alice", "password");
  EXPECT_EQ(ErrorCode([&] { DeleteAccount(server.url(), login.token, "wrong"); }),
            "invalid_credentials");
  DeleteAccount(server.url(), login.token, "password");
  auto seen = server.HttpRequests();
  EXPECT_EQ(seen.back().method, "DELETE");
  EXPECT_EQ(seen.back().target, "/v1/account");
  EXPECT_EQ(ErrorCode([&] { Login(server.url(), "alice", "password"); }), "invalid_credentials");
  EXPECT_EQ(ErrorCode([&] { DeleteAccount(server.url(), login.token, "password"); }),
            "unauthorized");
  EXPECT_FALSE(server.HasMedia(info.id));  // only alice used it
}

TEST(MediaClientTest, SendMediaReachesThePeerWithTheServersDescriptor) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  TempDir dir;
  MediaInfo info = UploadMedia(server.url(), "ta", dir.File("cat.png", kPng));

  Recorder alice_rec;
  ClientOptions ao = Options(server, "ta");
  ao.cursor = 0;
  alice_rec.Hook(ao);
  Client alice(ao);
  alice.Start();
  Recorder bob_rec;
  ClientOptions bo = Options(server, "tb");
  bo.cursor = 0;
  bob_rec.Hook(bo);
  Client bob(bo);
  bob.Start();
  ASSERT_TRUE(bob_rec.WaitFor([](Recorder& r) { return r.Count(ConnectionState::kOnline) > 0; }));

  SendAck ack =
      alice.SendMedia(Target::User("bob"), MediaSend{info.id, "dir/cat.png", "our cat"}, "m-1")
          .get();
  EXPECT_EQ(ack.seq, 1);
  EXPECT_EQ(ack.client_msg_id, "m-1");
  auto frames = FramesOf(server, "send");
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_FALSE(frames[0].contains("body"));
  EXPECT_EQ(frames[0]["media"],
            boost::json::parse(R"({"id":")" + info.id +
                               R"(","name":"dir/cat.png","caption":"our cat"})"));

  auto check = [&](const Message& m) {
    EXPECT_EQ(m.kind, "media");
    EXPECT_EQ(m.sender, "alice");
    EXPECT_EQ(m.to, "bob");
    EXPECT_EQ(m.body, "");
    ASSERT_TRUE(m.media);
    EXPECT_EQ(m.media->id, info.id);
    EXPECT_EQ(m.media->type, "image/png");
    EXPECT_EQ(m.media->kind, "image");
    EXPECT_EQ(m.media->size, static_cast<int64_t>(kPng.size()));
    EXPECT_EQ(m.media->name, "cat.png");
    EXPECT_EQ(m.media->caption, "our cat");
    EXPECT_EQ(m.media->width, 8);
    ASSERT_TRUE(m.media->thumbnail);
    EXPECT_EQ(m.media->thumbnail->id, info.thumbnail->id);
  };
  ASSERT_TRUE(bob_rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  check(bob_rec.messages_[0]);
  // alice's own message: fetched by a sync (the descriptor is the server's), exactly once.
  ASSERT_TRUE(alice_rec.WaitFor([](Recorder& r) { return r.messages_.size() == 1; }));
  check(alice_rec.messages_[0]);
  EXPECT_EQ(alice_rec.pts_[0], ack.pts);
  ASSERT_TRUE(alice_rec.WaitFor([&](Recorder& r) { return r.cursor_ == ack.pts; }));

  // The message made the object readable for bob.
  MediaDownload d = DownloadMedia(server.url(), "tb", info.id, dir.Path("bobs.png"));
  EXPECT_EQ(ReadFile(dir.Path("bobs.png")), kPng);
  EXPECT_EQ(d.size, kPng.size());

  // Idempotent like text: the same key answers duplicate and stores nothing.
  SendAck again =
      alice.SendMedia(Target::User("bob"), MediaSend{info.id, "cat.png", "our cat"}, "m-1").get();
  EXPECT_TRUE(again.duplicate);
  EXPECT_EQ(again.seq, 1);
  EXPECT_EQ(server.ChatMessages("alice", "bob"), 1);

  // To the chat by id, a file without name or caption.
  std::string other = server.AddMedia("alice", "some text");
  SendAck by_chat = alice.SendMedia(Target::Chat(ack.chat_id), MediaSend{other, {}, {}}).get();
  EXPECT_EQ(by_chat.seq, 2);
  ASSERT_TRUE(bob_rec.WaitFor([](Recorder& r) { return r.messages_.size() == 2; }));
  ASSERT_TRUE(bob_rec.messages_[1].media);
  EXPECT_EQ(bob_rec.messages_[1].media->kind, "file");
  EXPECT_EQ(bob_rec.messages_[1].media->name, "");
  ASSERT_TRUE(alice_rec.WaitFor([](Recorder& r) { return r.messages_.size() == 2; }));

  EXPECT_EQ(ErrorCode([&] {
              alice.SendMedia(Target::User("bob"), MediaSend{std::string(64, 'f'), {}, {}}).get();
            }),
            "not_found");
  EXPECT_EQ(ErrorCode([&] { alice.SendMedia(Target::User("bob"), MediaSend{}).get(); }),
            errc::kInvalidArgument);
  EXPECT_EQ(ErrorCode([&] {
              alice.SendMedia(Target{}, MediaSend{info.id, {}, {}}).get();
            }),
            errc::kInvalidArgument);
  alice.Stop();
  bob.Stop();
}

TEST(MediaClientTest, SendMediaToALargeGroupIsFetchedByHistory) {
  FakeServer server;
  server.AddUser("alice", "ta");
  server.AddUser("bob", "tb");
  SendAck first = server.Inject("bob", "alice", "before");
  server.MarkLarge(first.chat_id);
  std::string id = server.AddMedia("alice", "large group file");
  Recorder rec;
  ClientOptions o = Options(server, "ta");
  o.cursor = server.Pts("alice");
  rec.Hook(o);
  Client client(o);
  client.Start();
  SendAck ack = client.SendMedia(Target::Chat(first.chat_id), MediaSend{id, "f.txt", {}}).get();
  EXPECT_EQ(ack.pts, 0);
  ASSERT_TRUE(rec.WaitFor([&](Recorder& r) {
    for (const Message& m : r.messages_) {
      if (m.seq == ack.seq) return true;
    }
    return false;
  }));
  const Message& m = rec.messages_.back();
  EXPECT_EQ(m.seq, ack.seq);
  ASSERT_TRUE(m.media);
  EXPECT_EQ(m.media->id, id);
  EXPECT_EQ(m.media->name, "f.txt");
  EXPECT_EQ(rec.pts_.back(), 0);
  client.Stop();
}

TEST(ClientTest, RejectsBadUrlAndEmptyToken) {
  ClientOptions o;
  o.token = "t";
  o.server_url = "wss://example.com";
  EXPECT_EQ(ErrorCode([&] { Client c(o); }), errc::kUnsupportedScheme);
  o.server_url = "http://127.0.0.1:1";
  o.token.clear();
  EXPECT_EQ(ErrorCode([&] { Client c(o); }), errc::kInvalidArgument);
}

TEST(ClientTest, NewClientMsgIdIsRandomHex) {
  std::string a = NewClientMsgId();
  std::string b = NewClientMsgId();
  EXPECT_EQ(a.size(), 32u);
  EXPECT_NE(a, b);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
}

}  // namespace
}  // namespace parley
