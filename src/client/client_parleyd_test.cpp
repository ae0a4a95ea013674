// libparley against the real parleyd (PARLEYD_BIN, set by CTest): where a new device starts.
// Issue 15, item 1: a device that existed before the messages receives every one of them.
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "parley/client.h"
#include "parley/http_api.h"
#include "support/auth_helpers.h"
#include "support/server_process.h"

namespace parley {
namespace {

using namespace std::chrono_literals;

constexpr char kJwtSecret[] = "client-parleyd-test-secret";
constexpr char kPassword[] = "correct horse battery";

// What a Client delivered, for the test thread to wait on.
class Inbox {
 public:
  void Hook(ClientOptions& o) {
    o.on_message = [this](const Message& m, int64_t pts) {
      std::lock_guard lock(mu_);
      bodies_.push_back(m.body);
      pts_.push_back(pts);
      cv_.notify_all();
    };
    o.on_snapshot = [this](const SyncResult&) {
      std::lock_guard lock(mu_);
      ++snapshots_;
    };
  }
  bool WaitFor(size_t n, std::chrono::milliseconds timeout = 20s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return bodies_.size() >= n; });
  }
  std::vector<std::string> bodies() {
    std::lock_guard lock(mu_);
    return bodies_;
  }
  std::vector<int64_t> pts() {
    std::lock_guard lock(mu_);
    return pts_;
  }
  int snapshots() {
    std::lock_guard lock(mu_);
    return snapshots_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> bodies_;
  std::vector<int64_t> pts_;
  int snapshots_ = 0;
};

class ClientParleydTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = new test::ServerProcess(
        test::TomlConfig::test_defaults().set_string("auth", "jwt_hs256_secret", kJwtSecret));
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  static std::string Url() { return "http://127.0.0.1:" + std::to_string(server_->port()); }
  static test::ServerProcess* server_;
};
test::ServerProcess* ClientParleydTest::server_ = nullptr;

TEST_F(ClientParleydTest, ANewDeviceStartsAtItsLoginAndGetsEveryLaterMessage) {
  const auto alice = test::unique_username("alice");
  const auto bob = test::unique_username("bob");
  Register(Url(), alice, kPassword);
  Register(Url(), bob, kPassword);
  LoginResult a = Login(Url(), alice, kPassword);
  ClientOptions ao;
  ao.server_url = Url();
  ao.token = a.token;
  ao.receive_updates = false;
  Client sender(std::move(ao));
  sender.Start();
  sender.Send(Target::User(bob), "before bob's device").get();

  LoginResult b = Login(Url(), bob, kPassword);
  EXPECT_EQ(b.pts, 1);  // the message before the login is not the new device's
  for (int i = 1; i <= 50; ++i) sender.Send(Target::User(bob), "m" + std::to_string(i)).get();

  Inbox inbox;
  ClientOptions bo;
  bo.server_url = Url();
  bo.token = b.token;
  bo.cursor = b.pts;
  bo.sync_page_limit = 20;  // several pages
  inbox.Hook(bo);
  Client device(std::move(bo));
  device.Start();
  ASSERT_TRUE(inbox.WaitFor(50)) << inbox.bodies().size() << " of 50";
  auto bodies = inbox.bodies();
  ASSERT_EQ(bodies.size(), 50u);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(bodies[i], "m" + std::to_string(i + 1));
  auto pts = inbox.pts();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(pts[i], b.pts + 1 + i);
  EXPECT_EQ(inbox.snapshots(), 0);
  device.Stop();
  sender.Stop();
}

TEST_F(ClientParleydTest, AJwtDeviceStartsAtItsFirstAuthWhenAskedTo) {
  const auto carol = test::unique_username("carol");
  const auto dave = test::unique_username("dave");
  Register(Url(), dave, kPassword);
  LoginResult d = Login(Url(), dave, kPassword);
  ClientOptions dopt;
  dopt.server_url = Url();
  dopt.token = d.token;
  dopt.receive_updates = false;
  Client sender(std::move(dopt));
  sender.Start();

  // carol's first JWT device: nothing before its first auth to show, everything after it.
  Inbox inbox;
  ClientOptions co;
  co.server_url = Url();
  co.token = test::make_jwt(kJwtSecret, carol, std::chrono::system_clock::now() + 1h, "phone");
  co.start_at_first_auth = true;
  inbox.Hook(co);
  std::mutex mu;
  std::condition_variable cv;
  bool online = false;
  co.on_state = [&](const ConnectionEvent& e) {
    if (e.state != ConnectionState::kOnline) return;
    std::lock_guard lock(mu);
    online = true;
    cv.notify_all();
  };
  Client device(std::move(co));
  device.Start();
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 20s, [&] { return online; }));
  }
  sender.Send(Target::User(carol), "hello carol").get();
  ASSERT_TRUE(inbox.WaitFor(1));
  EXPECT_EQ(inbox.bodies(), std::vector<std::string>{"hello carol"});
  EXPECT_EQ(inbox.snapshots(), 0);
  // The cursor moves once the update is applied, just after on_message.
  for (int i = 0; i < 100 && device.cursor() != std::optional<int64_t>(1); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(device.cursor(), std::optional<int64_t>(1));
  device.Stop();
  sender.Stop();
}

TEST_F(ClientParleydTest, ChatsPageByCursor) {
  const auto erin = test::unique_username("erin");
  Register(Url(), erin, kPassword);
  for (int i = 0; i < 5; ++i) {
    const auto peer = test::unique_username("peer");
    Register(Url(), peer, kPassword);
    ClientOptions o;
    o.server_url = Url();
    o.token = Login(Url(), peer, kPassword).token;
    o.receive_updates = false;
    Client c(std::move(o));
    c.Start();
    c.Send(Target::User(erin), "hi").get();
    c.Stop();
  }
  ClientOptions o;
  o.server_url = Url();
  o.token = Login(Url(), erin, kPassword).token;
  o.receive_updates = false;
  Client c(std::move(o));
  c.Start();
  std::vector<int64_t> seen;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    ChatList list = c.Chats(2, cursor).get();
    for (const auto& chat : list.chats) seen.push_back(chat.chat_id);
    if (!list.has_more) break;
    ASSERT_FALSE(list.next_cursor.empty());
    cursor = list.next_cursor;
  }
  EXPECT_EQ(seen.size(), 5u);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::unique(seen.begin(), seen.end()), seen.end());
  c.Stop();
}

}  // namespace
}  // namespace parley
