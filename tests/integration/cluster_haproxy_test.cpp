// Two parleyd nodes (two Redis servers, one PostgreSQL of the test's own) behind HAProxy with
// the configuration `make cluster` runs (tools/haproxy.cfg.in; docs/SCALING.md "Load
// balancer"): clients only know HAProxy's address. Messages cross whichever nodes clients
// land on; a client whose node is killed reconnects to the same address, lands on the live
// node and syncs everything; the health check on /readyz takes a dead node out (no new
// connection refused meanwhile) and puts it back once it is ready again.
//
// Which node a connection landed on: the node id in the message_id of a message sent over it
// (PROTOCOL.md: ms ≪ 22 | node ≪ 12 | counter).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/cluster_helpers.h"
#include "support/haproxy.h"
#include "support/json_util.h"
#include "support/postgres_server.h"
#include "support/redis_server.h"
#include "support/server_process.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
using Frame = WsClient::Frame;

// The node id a message id was minted on.
int node_of_message_id(const std::string& message_id) {
  return static_cast<int>((std::stoull(message_id) >> 12) & 0x3ff);
}

// The node `c` is connected to: it sends `to` a message and reads the node from its id.
int node_of(WsClient& c, const std::string& to) {
  const auto ack = send_ok(c, to, "where am I");
  return ack.contains("message_id") ? node_of_message_id(str_field(ack, "message_id")) : -1;
}

bool is_message_push(const Frame& f, std::string_view body) {
  if (!is_push(f)) return false;
  const auto* m = f.if_contains("message");
  if (m == nullptr || !m->is_object()) return false;
  const auto* b = m->as_object().if_contains("body");
  return b != nullptr && b->is_string() && b->as_string() == body;
}

class ClusterHaproxyTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    redis_.push_back(std::make_unique<RedisServer>());
    redis_.push_back(std::make_unique<RedisServer>());
    PostgresServer::shared().create_database("parley_haproxy");
    for (int id = 1; id <= 2; ++id) {
      nodes_.push_back(std::make_unique<ServerProcess>(
          cluster_node_config(id, {redis_[0]->address(), redis_[1]->address()},
                              {PostgresServer::shared().conninfo("parley_haproxy")})));
      ports_.push_back(nodes_.back()->port());
    }
    // The template's leastconn; health checks every 200 ms, down after 2 failures, up after 1.
    haproxy_ = std::make_unique<HaproxyServer>(ports_);
  }
  static void TearDownTestSuite() {
    haproxy_.reset();
    nodes_.clear();
    redis_.clear();
  }

  void SetUp() override {
    ASSERT_EQ(nodes_.size(), 2u) << "the nodes did not start";
    ASSERT_TRUE(haproxy_ && haproxy_->running()) << "haproxy is not running";
    for (size_t i = 0; i < nodes_.size(); ++i) {
      if (!nodes_[i]->alive()) nodes_[i]->restart(ports_[i]);  // a failed test left it down
      ASSERT_TRUE(haproxy_->wait_for_status(i, "UP"))
          << HaproxyServer::server_name(i) << " is not UP: " << haproxy_->log();
    }
  }
  void TearDown() override {
    for (auto& n : nodes_) EXPECT_TRUE(n->alive()) << "a node is down after the test";
    if (HasFailure()) std::cerr << "haproxy log:\n" << haproxy_->log() << "\n";
  }

  static std::uint16_t lb() { return haproxy_->port(); }

  // Connects through HAProxy like a client that retries: up to `timeout`. Counts attempts
  // that failed in `failures`.
  static std::unique_ptr<WsClient> reconnect(const std::string& token, int* failures = nullptr,
                                             std::chrono::milliseconds timeout = 15s) {
    const auto deadline = Clock::now() + timeout;
    while (true) {
      try {
        return connect_authed(lb(), token);
      } catch (const std::exception&) {
        if (failures) ++*failures;
        if (Clock::now() >= deadline) throw;
      }
      std::this_thread::sleep_for(100ms);
    }
  }

  // Sends until acknowledged with one client_msg_id, reconnecting through HAProxy whenever
  // the connection broke or the answer did not come (the client's retry, PROTOCOL.md G3).
  static json::object send_until_acked(std::unique_ptr<WsClient>& c, const std::string& token,
                                       const std::string& to, const std::string& body) {
    const auto cmid = next_client_msg_id();
    const auto deadline = Clock::now() + 30s;
    while (Clock::now() < deadline) {
      try {
        if (!c || c->closed()) c = connect_authed(lb(), token);
        const auto answer = c->request(send_frame(to, body, cmid), 5s);
        if (is_ok(answer)) return answer.at("result").as_object();
      } catch (const std::exception&) {
        c.reset();
      }
      std::this_thread::sleep_for(100ms);
    }
    ADD_FAILURE() << "`" << body << "` was never acknowledged";
    return {};
  }

  static inline std::vector<std::unique_ptr<RedisServer>> redis_;
  static inline std::vector<std::unique_ptr<ServerProcess>> nodes_;
  static inline std::vector<std::uint16_t> ports_;
  static inline std::unique_ptr<HaproxyServer> haproxy_;
};

// Two devices each of alice and bob, all through HAProxy (leastconn spreads them over both
// nodes): every message reaches every other device, whichever node each is on.
TEST_F(ClusterHaproxyTest, MessagesReachEveryDeviceWhicheverNodeEachLandedOn) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  register_user(lb(), alice);  // HTTP goes through HAProxy too
  register_user(lb(), bob);
  std::vector<std::unique_ptr<WsClient>> devices;
  devices.push_back(connect_authed(lb(), login(lb(), alice).token));
  devices.push_back(connect_authed(lb(), login(lb(), alice).token));
  devices.push_back(connect_authed(lb(), login(lb(), bob).token));
  devices.push_back(connect_authed(lb(), login(lb(), bob).token));

  std::set<int> nodes_used;
  for (size_t from = 0; from < devices.size(); ++from) {
    const std::string body = "from device " + std::to_string(from);
    const auto ack = send_ok(*devices[from], from < 2 ? bob : alice, body);
    ASSERT_TRUE(ack.contains("message_id"));
    nodes_used.insert(node_of_message_id(str_field(ack, "message_id")));
    for (size_t to = 0; to < devices.size(); ++to) {
      if (to == from) continue;
      EXPECT_TRUE(
          devices[to]->wait_for([&](const Frame& f) { return is_message_push(f, body); }, 10s))
          << "device " << to << " did not get `" << body << "`";
    }
  }
  EXPECT_EQ(nodes_used, (std::set<int>{1, 2})) << "leastconn did not use both nodes";
}

// Bob's node is killed (SIGKILL): his connection through HAProxy closes, he reconnects to the
// same address, lands on the other node and syncs. Every message alice got acknowledged
// before and during the outage (retrying through HAProxy herself) is there exactly once.
TEST_F(ClusterHaproxyTest, AClientOfAKilledNodeReconnectsThroughHaproxyAndSyncsEverything) {
  const auto alice = unique_username("alice");
  const auto bob = unique_username("bob");
  const auto probe = unique_username("probe");
  for (const auto& u : {alice, bob, probe}) register_user(lb(), u);
  const auto alice_token = login(lb(), alice).token;
  const auto bob_token = login(lb(), bob).token;

  auto b = connect_authed(lb(), bob_token);
  const int bob_node = node_of(*b, probe);
  ASSERT_TRUE(bob_node == 1 || bob_node == 2) << bob_node;
  const size_t dead = static_cast<size_t>(bob_node - 1);
  const int live_node = 3 - bob_node;

  std::unique_ptr<WsClient> a = connect_authed(lb(), alice_token);
  std::vector<json::object> acks;
  for (int i = 0; i < 5; ++i) acks.push_back(send_ok(*a, bob, "before " + std::to_string(i)));
  ASSERT_TRUE(b->wait_for([](const Frame& f) { return is_message_push(f, "before 4"); }, 10s));

  const auto killed_at = Clock::now();
  nodes_[dead]->kill();
  EXPECT_TRUE(b->wait_close(10s)) << "bob's connection through HAProxy stayed open";

  // The outage: alice keeps sending (her own connection may have been on that node too).
  for (int i = 0; i < 5; ++i)
    acks.push_back(send_until_acked(a, alice_token, bob, "during " + std::to_string(i)));

  int failed_attempts = 0;
  auto b2 = reconnect(bob_token, &failed_attempts);
  EXPECT_EQ(failed_attempts, 0) << "HAProxy refused reconnects (no redispatch?)";
  EXPECT_EQ(node_of(*b2, probe), live_node) << "bob landed on the dead node?";

  std::int64_t chat_id = 0;
  for (const auto& ack : acks)
    if (ack.contains("chat_id")) chat_id = int_field(ack, "chat_id");
  std::vector<std::pair<std::int64_t, std::string>> got;  // (seq, body) of alice's messages
  for (const auto& u : sync_all(*b2, 0)) {
    const auto* m = u.as_object().if_contains("message");
    if (m == nullptr || !m->is_object()) continue;
    const auto& msg = m->as_object();
    if (int_field(msg, "chat_id") == chat_id && str_field(msg, "sender") == alice)
      got.emplace_back(int_field(msg, "seq"), str_field(msg, "body"));
  }
  std::vector<std::pair<std::int64_t, std::string>> want;
  for (size_t i = 0; i < acks.size(); ++i)
    if (acks[i].contains("seq"))
      want.emplace_back(int_field(acks[i], "seq"),
                        (i < 5 ? "before " : "during ") + std::to_string(i % 5));
  EXPECT_EQ(want.size(), 10u);
  EXPECT_EQ(got, want) << "bob's sync after the reconnect is not every acknowledged message once";
  std::cerr
      << "node " << bob_node << " killed; outage sends and bob's resync took "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - killed_at).count()
      << " ms\n";

  nodes_[dead]->restart(ports_[dead]);
  EXPECT_TRUE(haproxy_->wait_for_status(dead, "UP")) << "the restarted node was not put back";
}

// The health check (/readyz every 200 ms, down after 2 failures) takes a killed node out:
// from the kill on, every new connection through HAProxy succeeds (a connection HAProxy
// tried on the dead node before it was marked down is redispatched), and all land on the
// live node. Restarted, the node is marked up after one good check and gets new connections.
TEST_F(ClusterHaproxyTest, AKilledNodeIsTakenOutByTheHealthCheckAndPutBackWhenReady) {
  const auto user = unique_username("carol");
  const auto probe = unique_username("probe");
  register_user(lb(), user);
  register_user(lb(), probe);
  const auto token = login(lb(), user).token;
  const size_t dead = 0;  // node 1

  std::vector<std::unique_ptr<WsClient>> conns;
  int refused = 0;
  auto open_one = [&] {
    try {
      conns.push_back(connect_authed(lb(), token));
    } catch (const std::exception& e) {
      ++refused;
      ADD_FAILURE() << "a connection through HAProxy failed: " << e.what();
    }
  };

  const auto killed_at = Clock::now();
  nodes_[dead]->kill();
  // Connect continuously until HAProxy has marked it down.
  bool down = false;
  while (Clock::now() - killed_at < 10s) {
    open_one();
    if (haproxy_->server_status()[HaproxyServer::server_name(dead)] == "DOWN") {
      down = true;
      break;
    }
  }
  const auto down_after = Clock::now() - killed_at;
  ASSERT_TRUE(down) << "node 1 was not marked DOWN within 10 s: " << haproxy_->log();
  EXPECT_LT(down_after, 5s) << "inter 200ms fall 2: a few hundred ms when idle";
  const size_t before_down = conns.size();
  for (int i = 0; i < 6; ++i) open_one();
  EXPECT_EQ(refused, 0);
  // Every connection (also those opened before it was marked down) is on node 2.
  for (auto& c : conns) EXPECT_EQ(node_of(*c, probe), 2);
  std::cerr << "node 1 marked DOWN after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(down_after).count() << " ms; "
            << before_down << " connections opened meanwhile, none refused\n";

  nodes_[dead]->restart(ports_[dead]);
  ASSERT_TRUE(haproxy_->wait_for_status(dead, "UP")) << haproxy_->log();
  // leastconn: node 2 holds every open connection, so the next ones go to node 1.
  for (int i = 0; i < 3; ++i) {
    auto c = connect_authed(lb(), token);
    EXPECT_EQ(node_of(*c, probe), 1) << "a new connection did not go to the node that came back";
    conns.push_back(std::move(c));
  }
}

}  // namespace
}  // namespace parley::test
