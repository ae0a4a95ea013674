// Three parleyd nodes (two Redis servers; the store sharded over two PostgreSQL servers: the
// shared one and one of the suite's own) behind HAProxy with the configuration `make cluster`
// runs (tools/haproxy.cfg.in; docs/SCALING.md "Load balancer"): clients only know HAProxy's
// address. Direct and group messages, receipts, typing and presence cross whichever nodes
// clients land on, with accounts and chats on both shards; a client that reconnects lands on
// another node and syncs what it missed; a client whose node is killed reconnects to the same
// address, lands on a live node and syncs everything; the health check on /readyz takes a
// dead node out (no new connection refused meanwhile) and puts it back once it is ready again.
//
// Which node a connection landed on: the node id in the message_id of a message sent over it
// (PROTOCOL.md: ms ≪ 22 | node ≪ 12 | counter).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/postgres/pg_placement.h"
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
using store::pg::Placement;

constexpr size_t kNodes = 3;
// Every node lists the two PostgreSQL servers in this order (pg_placement.h).
constexpr Placement kShards{0, 2};

// The node id a message id was minted on.
int node_of_message_id(const std::string& message_id) {
  return static_cast<int>((std::stoull(message_id) >> 12) & 0x3ff);
}

// The node `c` is connected to: it sends `to` a message and reads the node from its id.
int node_of(WsClient& c, const std::string& to) {
  const auto ack = send_ok(c, to, "where am I");
  return ack.contains("message_id") ? node_of_message_id(str_field(ack, "message_id")) : -1;
}

bool is_str(const json::value* v, std::string_view s) {
  return v != nullptr && v->is_string() && v->as_string() == s;
}
bool is_int(const json::value* v, std::int64_t i) {
  return v != nullptr && v->is_int64() && v->as_int64() == i;
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
    pg2_ = std::make_unique<PostgresServer>();
    pg2_->create_database("parley_haproxy");
    for (int id = 1; id <= static_cast<int>(kNodes); ++id) {
      nodes_.push_back(std::make_unique<ServerProcess>(
          cluster_node_config(id, {redis_[0]->address(), redis_[1]->address()},
                              {PostgresServer::shared().conninfo("parley_haproxy"),
                               pg2_->conninfo("parley_haproxy")})));
      ports_.push_back(nodes_.back()->port());
    }
    // The template's leastconn; health checks every 200 ms, down after 2 failures, up after 1.
    haproxy_ = std::make_unique<HaproxyServer>(ports_);
  }
  static void TearDownTestSuite() {
    haproxy_.reset();
    nodes_.clear();
    redis_.clear();
    pg2_.reset();
  }

  void SetUp() override {
    ASSERT_EQ(nodes_.size(), kNodes) << "the nodes did not start";
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
  static inline std::unique_ptr<PostgresServer> pg2_;
  static inline std::vector<std::unique_ptr<ServerProcess>> nodes_;
  static inline std::vector<std::uint16_t> ports_;
  static inline std::unique_ptr<HaproxyServer> haproxy_;
};

// Two devices each of alice and bob, all through HAProxy (leastconn spreads them over the
// three nodes): every message reaches every other device, whichever node each is on.
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
  EXPECT_EQ(nodes_used, (std::set<int>{1, 2, 3})) << "leastconn did not use every node";
}

// Alice's two devices, bob's and carol's, each through HAProxy, spread over the three nodes
// (a connection that lands where it should not stays open while the next is made, so that
// leastconn sends that one elsewhere). Accounts and chats on both shards: alice's account
// and her direct chat with bob on the first PostgreSQL server, bob's and carol's accounts
// and bob's group on the second (pg_placement.h; the chat ids are checked to say so).
// Direct and group messages reach every member's devices, receipts reach the other members,
// typing and presence cross nodes, and bob, offline while messages arrive, reconnects to
// another node and syncs exactly what he missed.
TEST_F(ClusterHaproxyTest, UsersOnThreeNodesAndTwoShardsTalkTypeSeeReceiptsAndPresenceAndSync) {
  auto user_on = [](std::string_view prefix, uint32_t shard) {
    for (;;)
      if (auto u = unique_username(prefix); kShards.user_shard(u) == shard) return u;
  };
  const auto alice = user_on("alice", 0);
  std::string bob;
  do bob = user_on("bob", 1);
  while (kShards.pair_shard(alice, bob) != 0);
  const auto carol = user_on("carol", 1);
  const auto probe = unique_username("probe");
  for (const auto& u : {alice, bob, carol, probe}) register_user(lb(), u);
  const auto alice_token = login(lb(), alice).token;
  const auto alice_token2 = login(lb(), alice).token;  // her second device
  const auto bob_token = login(lb(), bob).token;
  const auto carol_token = login(lb(), carol).token;

  // Connects through HAProxy until the connection lands on a node outside `avoid`.
  std::vector<std::unique_ptr<WsClient>> spares;
  auto connect_outside = [&](const std::string& token, std::set<int> avoid) {
    for (int attempt = 0; attempt < 2 * static_cast<int>(kNodes); ++attempt) {
      auto c = connect_authed(lb(), token);
      const int node = node_of(*c, probe);
      if (!avoid.contains(node)) return std::make_pair(std::move(c), node);
      spares.push_back(std::move(c));
    }
    throw std::runtime_error("no connection landed outside the nodes to avoid");
  };
  auto [a1, node_a1] = connect_outside(alice_token, {});
  auto [a2, node_a2] = connect_outside(alice_token2, {node_a1});
  auto [b1, node_b1] = connect_outside(bob_token, {node_a1, node_a2});
  auto [c1, node_c1] = connect_outside(carol_token, {node_b1});
  spares.clear();  // carol's only connection is c1 (presence below)
  std::cerr << "alice on nodes " << node_a1 << " and " << node_a2 << ", bob on " << node_b1
            << ", carol on " << node_c1 << "\n";
  auto gets = [](WsClient& c, std::string_view body) {
    return c.wait_for([&](const Frame& f) { return is_message_push(f, body); }, 10s).has_value();
  };

  // Direct, both ways: the chat is on the first server, bob's log on the second.
  const auto direct = int_field(send_ok(*a1, bob, "direct 1"), "chat_id");
  EXPECT_EQ(kShards.chat_shard(static_cast<std::uint64_t>(direct)), 0u)
      << "the direct chat is not placed with the pair";
  EXPECT_TRUE(gets(*b1, "direct 1")) << "bob did not get alice's message from another node";
  EXPECT_TRUE(gets(*a2, "direct 1")) << "alice's other device did not get her own message";
  send_ok(*b1, alice, "direct 2");
  EXPECT_TRUE(gets(*a1, "direct 2"));
  EXPECT_TRUE(gets(*a2, "direct 2"));

  // A group of bob's (on the second server, with him), alice's log on the first.
  json::array members{json::value(alice), json::value(carol)};
  const auto group = int_field(
      obj_field(request_ok(
                    *b1, {{"type", "group_create"}, {"name", "three nodes"}, {"members", members}}),
                "chat"),
      "chat_id");
  EXPECT_EQ(kShards.chat_shard(static_cast<std::uint64_t>(group)), 1u)
      << "the group is not placed with its creator";
  send_to_chat_ok(*b1, group, "group 1");
  for (auto* c : {a1.get(), a2.get(), c1.get()})
    EXPECT_TRUE(gets(*c, "group 1")) << "a member's device did not get bob's group message";
  const auto group_2 = int_field(send_to_chat_ok(*a2, group, "group 2"), "seq");
  for (auto* c : {a1.get(), b1.get(), c1.get()})
    EXPECT_TRUE(gets(*c, "group 2")) << "a member's device did not get alice's group message";

  // Receipts. Direct: bob's delivered and read reach both of alice's devices. Group: carol's
  // read reaches every member, each on its own node.
  auto receipt = [](WsClient& c, std::int64_t chat, const std::string& user, std::string_view kind,
                    std::int64_t seq) {
    return c
        .wait_for(
            [&](const Frame& f) {
              if (!is_push(f) || !f.contains("receipt") || !f.at("receipt").is_object())
                return false;
              const auto& r = f.at("receipt").as_object();
              return int_field(r, "chat_id") == chat && str_field(r, "user") == user &&
                     str_field(r, "kind") == kind && int_field(r, "seq") == seq;
            },
            10s)
        .has_value();
  };
  const auto direct_3 = int_field(send_ok(*a1, bob, "direct 3"), "seq");
  EXPECT_TRUE(gets(*b1, "direct 3"));
  request_ok(*b1, {{"type", "mark_delivered"}, {"chat_id", direct}, {"seq", direct_3}});
  for (auto* c : {a1.get(), a2.get()})
    EXPECT_TRUE(receipt(*c, direct, bob, "delivered", direct_3)) << "no delivered receipt";
  request_ok(*b1, {{"type", "mark_read"}, {"chat_id", direct}, {"seq", direct_3}});
  for (auto* c : {a1.get(), a2.get()})
    EXPECT_TRUE(receipt(*c, direct, bob, "read", direct_3)) << "no read receipt";
  request_ok(*c1, {{"type", "mark_read"}, {"chat_id", group}, {"seq", group_2}});
  for (auto* c : {a1.get(), a2.get(), b1.get()})
    EXPECT_TRUE(receipt(*c, group, carol, "read", group_2)) << "no read receipt in the group";

  // Typing in the group reaches the other members and the typist's other device.
  request_ok(*a1, {{"type", "typing"}, {"chat_id", group}, {"state", "start"}});
  for (auto* c : {a2.get(), b1.get(), c1.get()})
    EXPECT_TRUE(c->wait_for(
        [&](const Frame& f) {
          return is_push(f) && is_str(f.if_contains("type"), "typing") &&
                 is_str(f.if_contains("user"), alice) && is_int(f.if_contains("chat_id"), group);
        },
        10s))
        << "alice's typing did not cross the nodes";

  // Presence: carol's only connection closes, bob (another node) sees her go offline; she
  // connects again (anywhere) and he sees her come back.
  auto presence = [&](bool online) {
    return b1->wait_for(
        [&](const Frame& f) {
          if (!is_push(f) || !f.contains("presence") || !f.at("presence").is_array()) return false;
          for (const auto& e : f.at("presence").as_array()) {
            const auto& o = e.as_object();
            const auto* on = o.if_contains("online");
            if (is_str(o.if_contains("user"), carol) && on && on->is_bool() &&
                on->as_bool() == online)
              return true;
          }
          return false;
        },
        15s);
  };
  request_ok(*b1, {{"type", "presence_subscribe"}, {"users", json::array{json::value(carol)}}});
  c1.reset();
  EXPECT_TRUE(presence(false)) << "bob did not see carol go offline on another node";
  auto c2 = connect_authed(lb(), carol_token);
  EXPECT_TRUE(presence(true)) << "bob did not see carol come back";

  // Bob goes offline (his log read up to its end first), alice sends to him and to the
  // group from both devices, bob reconnects through HAProxy to another node and syncs.
  std::int64_t bob_pts = 0;
  for (const auto& u : sync_all(*b1, 0)) bob_pts = int_field(u.as_object(), "pts");
  b1.reset();
  send_ok(*a1, bob, "offline 1");
  send_ok(*a2, bob, "offline 2");
  send_to_chat_ok(*a1, group, "offline 3");
  send_to_chat_ok(*c2, group, "offline 4");
  auto [b2, node_b2] = connect_outside(bob_token, {node_b1});
  spares.clear();
  std::vector<std::string> missed;
  for (const auto& u : sync_all(*b2, bob_pts)) {
    const auto* m = u.as_object().if_contains("message");
    if (m == nullptr || !m->is_object()) continue;
    const auto chat = int_field(m->as_object(), "chat_id");
    if (chat == direct || chat == group) missed.push_back(str_field(m->as_object(), "body"));
  }
  EXPECT_EQ(missed, (std::vector<std::string>{"offline 1", "offline 2", "offline 3", "offline 4"}))
      << "bob's sync on node " << node_b2 << " (he was on node " << node_b1
      << ") is not what he missed";
}

// Bob's node is killed (SIGKILL): his connection through HAProxy closes, he reconnects to the
// same address, lands on a live node and syncs. Every message alice got acknowledged
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
  ASSERT_TRUE(bob_node >= 1 && bob_node <= static_cast<int>(kNodes)) << bob_node;
  const size_t dead = static_cast<size_t>(bob_node - 1);

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
  EXPECT_NE(node_of(*b2, probe), bob_node) << "bob landed on the dead node?";

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
// live nodes. Restarted, the node is marked up after one good check and gets new connections.
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
  for (int i = 0; i < 8; ++i) open_one();
  EXPECT_EQ(refused, 0);
  // Every connection (also those opened before it was marked down) is on a live node.
  std::map<int, size_t> per_node;
  for (auto& c : conns) {
    const int node = node_of(*c, probe);
    EXPECT_NE(node, 1) << "a connection landed on the dead node";
    ++per_node[node];
  }
  std::cerr << "node 1 marked DOWN after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(down_after).count() << " ms; "
            << before_down << " connections opened meanwhile, none refused\n";

  nodes_[dead]->restart(ports_[dead]);
  ASSERT_TRUE(haproxy_->wait_for_status(dead, "UP")) << haproxy_->log();
  // leastconn: nodes 2 and 3 hold every open connection (at least 3 each: the 8 opened once
  // node 1 was down were balanced between them), so the next ones go to node 1.
  ASSERT_GE(std::min(per_node[2], per_node[3]), 3u) << "leastconn did not balance nodes 2 and 3";
  for (int i = 0; i < 3; ++i) {
    auto c = connect_authed(lb(), token);
    EXPECT_EQ(node_of(*c, probe), 1) << "a new connection did not go to the node that came back";
    conns.push_back(std::move(c));
  }
}

}  // namespace
}  // namespace parley::test
