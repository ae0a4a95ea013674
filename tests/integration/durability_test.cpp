// Restart and crash behaviour (PROTOCOL.md §5, DESIGN G1/G3/G4): SIGTERM drains and keeps
// data; SIGKILL right after acks loses no acknowledged message.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <deque>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/json_util.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;

TEST(DurabilityTest, SigtermClosesConnectionsWith1001AndExitsZero) {
  ServerProcess server;
  const auto alice = register_and_login(server.port(), "alice");
  const auto bob = register_and_login(server.port(), "bob");
  auto a = connect_authed(server.port(), alice.token);
  auto b = connect_authed(server.port(), bob.token);
  send_ok(*a, "bob", "before shutdown");

  server.terminate();
  EXPECT_EQ(a->wait_close(20s), std::optional<std::uint16_t>(1001));
  EXPECT_EQ(b->wait_close(20s), std::optional<std::uint16_t>(1001));
  auto status = server.wait(30s);
  ASSERT_TRUE(status.has_value()) << "parleyd did not exit after SIGTERM";
  EXPECT_TRUE(status->ok()) << status->describe();
}

TEST(DurabilityTest, RestartAfterSigtermKeepsUsersTokensAndHistory) {
  ServerProcess server;
  const auto alice = register_and_login(server.port(), "alice");
  const auto bob = register_and_login(server.port(), "bob");
  std::vector<json::object> acks;
  {
    auto a = connect_authed(server.port(), alice.token);
    for (int i = 1; i <= 10; ++i) {
      acks.push_back(send_ok(*a, "bob", "persist-" + std::to_string(i), "p-" + std::to_string(i)));
    }
  }
  const auto chat_id = int_field(acks.front(), "chat_id");

  auto status = server.stop();
  EXPECT_TRUE(status.ok()) << status.describe();
  server.restart();

  // Users, password hashes and device tokens survive.
  EXPECT_EQ(http_post_json(server.port(), "/v1/register",
                           json::object{{"username", "alice"}, {"password", kPassword}})
                .status,
            409u);
  EXPECT_FALSE(login(server.port(), "alice").token.empty());
  WsClient b(server.port());
  auto auth = b.auth(bob.token);
  ASSERT_TRUE(is_ok(auth)) << to_string(auth);
  EXPECT_EQ(int_field(obj_field(auth, "result"), "pts"), 10);

  auto history = full_history(b, chat_id);
  ASSERT_EQ(history.size(), 10u) << to_string(history);
  for (int i = 0; i < 10; ++i) {
    const auto& m = history[i].as_object();
    EXPECT_TRUE(is_message(m, chat_id, i + 1, "alice", "bob", "persist-" + std::to_string(i + 1)));
    EXPECT_EQ(str_field(m, "message_id"), str_field(acks[i], "message_id"));
  }
  auto updates = sync_all(b, 0);
  ASSERT_EQ(updates.size(), 10u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(int_field(updates[i].as_object(), "pts"), i + 1);

  // Sequences continue; idempotency records survive.
  auto a = connect_authed(server.port(), alice.token);
  auto dup = send_ok(*a, "bob", "persist-3", "p-3");
  EXPECT_TRUE(bool_field(dup, "duplicate"));
  EXPECT_EQ(int_field(dup, "seq"), 3);
  EXPECT_EQ(str_field(dup, "message_id"), str_field(acks[2], "message_id"));
  auto next = send_ok(*a, "bob", "after restart");
  EXPECT_EQ(int_field(next, "chat_id"), chat_id);
  EXPECT_EQ(int_field(next, "seq"), 11);
  EXPECT_EQ(int_field(next, "pts"), 11);
  for (const auto& ack : acks)
    EXPECT_NE(str_field(next, "message_id"), str_field(ack, "message_id"));
  auto push = b.next_push();
  ASSERT_TRUE(push.has_value());
  EXPECT_EQ(int_field(*push, "pts"), 11);

  // Clients that answer the server's close handshake let it exit at once.
  a.reset();
  b.close();
  auto final_status = server.stop();
  EXPECT_TRUE(final_status.ok()) << final_status.describe();
}

// G1: every acknowledged send survives `kill -9` right after its ack, exactly once.
TEST(DurabilityTest, SigkillRightAfterAcksLosesNoAcknowledgedMessage) {
  constexpr int kSenders = 2;
  constexpr int kPerSender = 150;
  constexpr int kWindow = 32;
  constexpr int kKillAfterAcks = 120;  // while more sends are still in flight

  ServerProcess server;
  const auto alice_token = register_and_login(server.port(), "alice").token;
  register_user(server.port(), "bob");
  const auto bob_token = login(server.port(), "bob").token;  // a device that is offline

  struct Sender {
    std::unique_ptr<WsClient> ws;
    std::vector<std::string> sent;              // client_msg_ids in send order
    std::map<std::string, json::object> acked;  // client_msg_id -> ack result
  };
  std::vector<Sender> senders(kSenders);
  for (int s = 0; s < kSenders; ++s) {
    senders[s].ws = connect_authed(server.port(), alice_token);
  }
  std::atomic<int> acks{0};
  std::atomic<bool> killed{false};
  const pid_t pid = server.pid();
  std::vector<std::thread> threads;
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] {
      Sender& me = senders[s];
      std::deque<std::pair<std::int64_t, std::string>> inflight;
      try {
        while (!me.ws->closed()) {
          while (static_cast<int>(me.sent.size()) < kPerSender &&
                 static_cast<int>(inflight.size()) < kWindow && !killed) {
            auto cmid = "k" + std::to_string(s) + "-" + std::to_string(me.sent.size());
            me.sent.push_back(cmid);
            inflight.emplace_back(
                me.ws->send_request(send_frame("bob", "crash body " + cmid, cmid)), cmid);
          }
          if (inflight.empty()) break;
          auto res = me.ws->wait_response(inflight.front().first, 20s);
          if (!res) break;  // the server is gone
          if (is_ok(*res)) {
            me.acked.emplace(inflight.front().second, obj_field(*res, "result"));
            if (++acks == kKillAfterAcks) {
              ::kill(pid, SIGKILL);  // at once, from the thread that saw the ack
              killed = true;
            }
          } else {
            ADD_FAILURE() << "send failed: " << to_string(*res);
          }
          inflight.pop_front();
        }
      } catch (const std::exception&) {
        // A write after the kill fails; what was acked is recorded.
      }
    });
  }
  for (auto& t : threads) t.join();
  ASSERT_TRUE(killed.load()) << "fewer than " << kKillAfterAcks << " acks";
  const auto status = server.kill();
  EXPECT_EQ(status.signal, SIGKILL) << status.describe();
  senders.front().ws.reset();
  senders.back().ws.reset();

  std::map<std::string, json::object> acked;
  std::vector<std::string> all_sent;
  for (auto& s : senders) {
    acked.insert(s.acked.begin(), s.acked.end());
    all_sent.insert(all_sent.end(), s.sent.begin(), s.sent.end());
  }
  ASSERT_GE(acked.size(), static_cast<std::size_t>(kKillAfterAcks));
  std::cout << "[ info ] killed after " << acked.size() << " acks of " << all_sent.size()
            << " sends\n";
  const auto chat_id = int_field(acked.begin()->second, "chat_id");

  server.restart();
  auto a = connect_authed(server.port(), alice_token);

  // Every acked message is there once, with its seq and message_id; seqs are gapless.
  auto history = full_history(*a, chat_id);
  std::map<std::string, json::object> stored;
  for (std::size_t i = 0; i < history.size(); ++i) {
    const auto& m = history[i].as_object();
    EXPECT_EQ(int_field(m, "seq"), static_cast<std::int64_t>(i) + 1) << "gap after the crash";
    const auto cmid = str_field(m, "client_msg_id");
    EXPECT_TRUE(stored.emplace(cmid, m).second) << "stored twice: " << cmid;
    EXPECT_EQ(str_field(m, "body"), "crash body " + cmid);
  }
  EXPECT_LE(history.size(), all_sent.size());
  for (const auto& [cmid, ack] : acked) {
    auto it = stored.find(cmid);
    ASSERT_NE(it, stored.end()) << "acknowledged message lost in the crash: " << cmid;
    EXPECT_EQ(int_field(it->second, "seq"), int_field(ack, "seq")) << cmid;
    EXPECT_EQ(str_field(it->second, "message_id"), str_field(ack, "message_id")) << cmid;
  }

  // Retrying every send: what was stored is a duplicate with the original result; what
  // was not is stored now. Afterwards each message is there exactly once.
  for (const auto& cmid : all_sent) {
    auto res = send_ok(*a, "bob", "crash body " + cmid, cmid);
    ASSERT_FALSE(res.empty());
    if (auto it = stored.find(cmid); it != stored.end()) {
      EXPECT_TRUE(bool_field(res, "duplicate")) << cmid;
      EXPECT_EQ(int_field(res, "seq"), int_field(it->second, "seq")) << cmid;
      EXPECT_EQ(str_field(res, "message_id"), str_field(it->second, "message_id")) << cmid;
    } else {
      EXPECT_FALSE(bool_field(res, "duplicate")) << cmid;
    }
  }
  const auto final_history = full_history(*a, chat_id);
  ASSERT_EQ(final_history.size(), all_sent.size());
  std::set<std::string> seen;
  for (std::size_t i = 0; i < final_history.size(); ++i) {
    const auto& m = final_history[i].as_object();
    EXPECT_EQ(int_field(m, "seq"), static_cast<std::int64_t>(i) + 1);
    EXPECT_TRUE(seen.insert(str_field(m, "client_msg_id")).second);
  }

  // Bob's offline device syncs from 0 and receives each message exactly once, in order.
  auto b = std::make_unique<WsClient>(server.port());
  auto auth = b->auth(bob_token);
  ASSERT_TRUE(is_ok(auth)) << to_string(auth);
  EXPECT_EQ(int_field(obj_field(auth, "result"), "pts"),
            static_cast<std::int64_t>(all_sent.size()));
  auto updates = sync_all(*b, 0, 100);
  ASSERT_EQ(updates.size(), all_sent.size());
  std::set<std::string> synced;
  for (std::size_t i = 0; i < updates.size(); ++i) {
    const auto& u = updates[i].as_object();
    EXPECT_EQ(int_field(u, "pts"), static_cast<std::int64_t>(i) + 1);
    const auto& m = obj_field(u, "message");
    EXPECT_EQ(int_field(m, "seq"), static_cast<std::int64_t>(i) + 1);
    EXPECT_TRUE(synced.insert(str_field(m, "client_msg_id")).second)
        << "synced twice: " << str_field(m, "client_msg_id");
  }
}

}  // namespace
}  // namespace parley::test
