// Two and three nodes in one process (in_process_cluster.h), users and devices spread over
// them: every guarantee that holds on one node holds across nodes (issue 16, "Done when").
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "multinode/delivery_checker.h"
#include "multinode/in_process_cluster.h"
#include "support/auth_helpers.h"
#include "support/chat_helpers.h"
#include "support/http_client.h"
#include "support/http_receiver.h"
#include "support/json_util.h"
#include "support/reordering_store.h"
#include "support/ws_client.h"

namespace parley::test {
namespace {

namespace json = boost::json;

// A user with a device (its own login) on each of the given nodes.
struct User {
  std::string name;
  std::vector<std::unique_ptr<WsClient>> devices;
};

User user_on(InProcessCluster& cluster, std::string_view prefix, std::vector<int> nodes) {
  User u;
  u.name = unique_username(prefix);
  register_user(cluster.port(0), u.name);
  for (int n : nodes)
    u.devices.push_back(connect_authed(cluster.port(n), login(cluster.port(n), u.name).token));
  return u;
}

// `owner` creates a group with the other users; the `result` of the request.
json::object create_group(WsClient& owner, std::string_view name,
                          std::initializer_list<const User*> members) {
  json::array names;
  for (const auto* u : members) names.emplace_back(u->name);
  return request_ok(owner, {{"type", "group_create"}, {"name", name}, {"members", names}});
}

std::int64_t chat_of(const json::object& group_result) {
  return int_field(obj_field(group_result, "chat"), "chat_id");
}

// The seqs of the next `count` large-group pushes (no pts) the device receives; fewer if they
// do not come.
std::vector<std::int64_t> large_group_seqs(WsClient& device, size_t count) {
  std::vector<std::int64_t> seqs;
  while (seqs.size() < count) {
    auto f = device.wait_for([](const WsClient::Frame& frame) {
      return str_field(frame, "type") == "message" && !frame.contains("pts");
    });
    if (!f) break;
    seqs.push_back(int_field(obj_field(*f, "message"), "seq"));
  }
  return seqs;
}

void expect_consecutive(const std::vector<std::int64_t>& seqs, std::string_view what) {
  for (size_t i = 1; i < seqs.size(); ++i)
    EXPECT_EQ(seqs[i], seqs[i - 1] + 1) << what << " " << seqs[i] << " after " << seqs[i - 1];
}

// Each sender, on its own thread, pipelines `per_sender` sends to the chat (no waiting for
// answers), then collects the answers; the `result`s of those that were acknowledged.
std::vector<json::object> pipelined_sends(const std::vector<WsClient*>& from, std::int64_t chat,
                                          int per_sender) {
  std::vector<std::vector<json::object>> acks(from.size());
  std::vector<std::thread> senders;
  for (size_t s = 0; s < from.size(); ++s)
    senders.emplace_back([&, s] {  // WsClient is single-threaded: one connection per thread
      std::vector<std::int64_t> ids;
      for (int i = 0; i < per_sender; ++i)
        ids.push_back(from[s]->send_request(send_to_chat_frame(
            chat, "s" + std::to_string(s) + "-" + std::to_string(i), next_client_msg_id())));
      for (auto id : ids) {
        auto r = from[s]->wait_response(id);
        if (r && str_field(*r, "type") == "ok") acks[s].push_back(obj_field(*r, "result"));
      }
    });
  for (auto& t : senders) t.join();
  std::vector<json::object> all;
  for (auto& a : acks) all.insert(all.end(), a.begin(), a.end());
  return all;
}

// Puts the cluster's store behind a ReorderingStore (each write's completion held a random
// 0-4 ms, so that writes committed close together complete shuffled, as on a pool of
// database connections), kept in `out`.
InProcessCluster::StoreWrapper reorder_into(std::shared_ptr<ReorderingStore>& out) {
  return [&out](std::shared_ptr<store::Store> inner) {
    out = std::make_shared<ReorderingStore>(std::move(inner), std::chrono::microseconds(4000));
    return out;
  };
}

TEST(InProcessCluster, DirectMessagesReachEveryDeviceOnEveryNodeInOrder) {
  InProcessCluster cluster(3);
  User alice = user_on(cluster, "alice", {0, 1});  // sends from node 1, reads on node 2
  User bob = user_on(cluster, "bob", {1, 2, 2});   // devices on nodes 2 and 3 (two on 3)
  DeliveryChecker check;
  for (auto* d :
       {alice.devices[1].get(), bob.devices[0].get(), bob.devices[1].get(), bob.devices[2].get()})
    check.watch(*d);
  for (int i = 1; i <= 20; ++i)
    check.acked(send_ok(*alice.devices[0], bob.name, "m" + std::to_string(i)));
  // Every device but the sending connection got each message once, in seq and pts order.
  check.expect_all_delivered();
  EXPECT_EQ(check.count(*bob.devices[2]), 20u);
  EXPECT_FALSE(alice.devices[0]->next_push(std::chrono::milliseconds(100)).has_value())
      << "the sending connection gets no push of its own message";
}

TEST(InProcessCluster, ConcurrentSendersOnDifferentNodesGiveEveryDeviceOneGaplessOrder) {
  InProcessCluster cluster(3);
  User alice = user_on(cluster, "alice", {0});
  User bob = user_on(cluster, "bob", {1});
  User carol = user_on(cluster, "carol", {2});
  const std::int64_t chat = chat_of(create_group(*alice.devices[0], "spread", {&bob, &carol}));
  // Each member watches on a second device, on another node than the one it sends from.
  auto alice2 = connect_authed(cluster.port(2), login(cluster.port(2), alice.name).token);
  auto bob2 = connect_authed(cluster.port(0), login(cluster.port(0), bob.name).token);
  auto carol2 = connect_authed(cluster.port(1), login(cluster.port(1), carol.name).token);
  DeliveryChecker check;
  for (auto* d : {alice2.get(), bob2.get(), carol2.get()}) check.watch(*d);
  std::vector<std::thread> senders;
  std::vector<std::vector<json::object>> acks(3);
  WsClient* from[] = {alice.devices[0].get(), bob.devices[0].get(), carol.devices[0].get()};
  // WsClient is single-threaded: each thread sends on its own connection only.
  for (int s = 0; s < 3; ++s)
    senders.emplace_back([&, s] {
      for (int i = 0; i < 15; ++i)
        acks[s].push_back(
            send_to_chat_ok(*from[s], chat, "s" + std::to_string(s) + "-" + std::to_string(i)));
    });
  for (auto& t : senders) t.join();
  for (const auto& a : acks)
    for (const auto& ack : a) check.acked(ack);
  check.expect_all_delivered();  // 45 messages + seq gapless, on each of the three devices
  EXPECT_EQ(check.count(*bob2), 45u);
}

TEST(InProcessCluster, LargeGroupsReachTheirSubscribersOnEveryNode) {
  InProcessCluster cluster(2, [](Config& c) { c.groups.large_threshold = 2; });
  User alice = user_on(cluster, "alice", {0});
  User bob = user_on(cluster, "bob", {1});
  User carol = user_on(cluster, "carol", {1});
  auto group = create_group(*alice.devices[0], "big", {&bob, &carol});
  EXPECT_TRUE(bool_field(obj_field(group, "chat"), "large"));
  const std::int64_t chat = chat_of(group);
  // The members who were connected when it turned large, and a device that connects later.
  auto bob_late = connect_authed(cluster.port(0), login(cluster.port(0), bob.name).token);
  for (int i = 1; i <= 5; ++i) send_to_chat_ok(*alice.devices[0], chat, "b" + std::to_string(i));
  for (WsClient* d : {bob.devices[0].get(), carol.devices[0].get(), bob_late.get()}) {
    auto seqs = large_group_seqs(*d, 5);
    ASSERT_EQ(seqs.size(), 5u);
    expect_consecutive(seqs, "seq");
  }
}

TEST(InProcessCluster, ReceiptsTypingAndPresenceCrossNodes) {
  InProcessCluster cluster(2);
  User alice = user_on(cluster, "alice", {0});
  User bob = user_on(cluster, "bob", {1});
  auto ack = send_ok(*alice.devices[0], bob.name, "read me");
  const std::int64_t chat = int_field(ack, "chat_id");
  ASSERT_TRUE(bob.devices[0]->next_push().has_value());  // the message

  // A read on node 2 reaches the sender on node 1.
  request_ok(*bob.devices[0], {{"type", "mark_read"}, {"chat_id", chat}});
  auto receipt = alice.devices[0]->wait_for(
      [](const WsClient::Frame& f) { return str_field(f, "type") == "receipt"; });
  ASSERT_TRUE(receipt.has_value());
  EXPECT_EQ(str_field(obj_field(*receipt, "receipt"), "user"), bob.name);
  EXPECT_EQ(str_field(obj_field(*receipt, "receipt"), "kind"), "read");

  // Typing on node 1 reaches node 2.
  request_ok(*alice.devices[0], {{"type", "typing"}, {"chat_id", chat}, {"state", "start"}});
  auto typing = bob.devices[0]->wait_for(
      [](const WsClient::Frame& f) { return str_field(f, "type") == "typing"; });
  ASSERT_TRUE(typing.has_value());
  EXPECT_EQ(str_field(*typing, "user"), alice.name);

  // Presence: alice (node 1) watches carol, who comes and goes on node 2.
  const auto carol = unique_username("carol");
  register_user(cluster.port(0), carol);
  auto watched = request_ok(*alice.devices[0], {{"type", "presence_subscribe"},
                                                {"users", json::array{json::value(carol)}}});
  EXPECT_FALSE(bool_field(arr_field(watched, "presence")[0].as_object(), "online"));
  {
    auto c = connect_authed(cluster.port(1), login(cluster.port(1), carol).token);
    auto online = alice.devices[0]->wait_for(
        [](const WsClient::Frame& f) { return str_field(f, "type") == "presence"; });
    ASSERT_TRUE(online.has_value());
    EXPECT_TRUE(bool_field(arr_field(*online, "presence")[0].as_object(), "online"));
  }
  auto offline = alice.devices[0]->wait_for(
      [](const WsClient::Frame& f) { return str_field(f, "type") == "presence"; });
  ASSERT_TRUE(offline.has_value());
  EXPECT_FALSE(bool_field(arr_field(*offline, "presence")[0].as_object(), "online"));
}

TEST(InProcessCluster, LogoutOnOneNodeClosesTheDeviceOnAnother) {
  InProcessCluster cluster(2);
  const auto bob = unique_username("bob");
  register_user(cluster.port(0), bob);
  auto device = login(cluster.port(0), bob);
  auto ws = connect_authed(cluster.port(1), device.token);                    // connected to node 2
  auto res = http_post_raw(cluster.port(0), "/v1/logout", "", device.token);  // logout on node 1
  ASSERT_EQ(res.status, 200u) << res.body;
  EXPECT_EQ(ws->wait_close(), std::optional<std::uint16_t>(4003));
}

TEST(InProcessCluster, AStoppedNodeLeavesTheOthersServingAndItsDevicesSync) {
  InProcessCluster cluster(2);
  User alice = user_on(cluster, "alice", {0});
  const auto bob = unique_username("bob");
  register_user(cluster.port(0), bob);
  auto bob_device = login(cluster.port(1), bob);
  {
    auto b = connect_authed(cluster.port(1), bob_device.token);
    send_ok(*alice.devices[0], bob, "before");
    ASSERT_TRUE(b->next_push().has_value());
    cluster.stop(1);
    EXPECT_EQ(b->wait_close(), std::optional<std::uint16_t>(1001));
  }
  // Node 2 is gone: what is sent meanwhile waits in the store, and bob's device, back on
  // node 1, gets it by syncing from its cursor.
  send_ok(*alice.devices[0], bob, "while away");
  auto b = connect_authed(cluster.port(0), bob_device.token);
  auto updates = sync_all(*b, bob_device.pts + 1);
  ASSERT_EQ(updates.size(), 1u);
  EXPECT_EQ(str_field(obj_field(updates[0].as_object(), "message"), "body"), "while away");
  expect_server_healthy(cluster.port(0), bob_device.token);
}

// A device connected to any node got the message live: no push for it. Once it is offline on
// every node, it gets one.
TEST(InProcessCluster, PushGoesOnlyToDevicesOfflineOnEveryNode) {
  HttpReceiver receiver;
  InProcessCluster cluster(2, [&](Config& c) {
    c.push.webhook_url = receiver.url("/push");
    c.push.webhook_secret = "cluster-push-secret";
    c.push.collapse_ms = 200;
    c.push.poll_ms = 50;
  });
  User alice = user_on(cluster, "alice", {0});
  const auto bob = unique_username("bob");
  register_user(cluster.port(0), bob);
  auto device = login(cluster.port(1), bob);
  auto b = connect_authed(cluster.port(1), device.token);  // online on node 2 only
  request_ok(*b, {{"type", "push_register"}, {"provider", "webhook"}, {"token", "hook-" + bob}});
  send_ok(*alice.devices[0], bob, "while online elsewhere");  // sent through node 1
  ASSERT_TRUE(b->next_push().has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  EXPECT_TRUE(receiver.received().empty()) << "a push for a device online on another node";

  b->close();
  b.reset();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // its session is gone everywhere
  send_ok(*alice.devices[0], bob, "now offline");
  auto got = receiver.wait_for(1, std::chrono::seconds(10));
  ASSERT_EQ(got.size(), 1u);
  auto body = json::parse(got[0].body).as_object();
  EXPECT_EQ(str_field(body, "user"), bob);
  EXPECT_EQ(int_field(body, "count"), 1);
}

// The pts of every update a device saw, pushes and the answers to its own writes alike, in
// the order they arrived.
std::vector<std::int64_t> pts_seen(const WsClient& device) {
  std::vector<std::int64_t> out;
  for (const auto& f : device.received()) {
    const auto type = str_field(f, "type");
    if ((type == "message" || type == "receipt") && f.contains("pts"))
      out.push_back(int_field(f, "pts"));
    else if (type == "ok" && f.at("result").is_object() &&
             f.at("result").as_object().contains("pts") &&
             f.at("result").as_object().contains("seq"))
      out.push_back(int_field(obj_field(f, "result"), "pts"));
  }
  return out;
}

TEST(InProcessCluster, WritesCompletingOutOfOrderNeverReorderWhatADeviceSees) {
  std::shared_ptr<ReorderingStore> reordering;
  InProcessCluster cluster(2, nullptr, reorder_into(reordering));
  User alice = user_on(cluster, "alice", {0, 1});
  User bob = user_on(cluster, "bob", {1, 0});
  User carol = user_on(cluster, "carol", {1});
  const std::int64_t chat = chat_of(create_group(*alice.devices[0], "shuffled", {&bob, &carol}));
  DeliveryChecker check;
  for (auto* d : {alice.devices[1].get(), bob.devices[1].get(), carol.devices[0].get()})
    check.watch(*d);
  // Two senders pipeline their sends, on different nodes at once.
  constexpr int kPerSender = 60;
  std::vector<WsClient*> from{alice.devices[0].get(), bob.devices[0].get()};
  auto acks = pipelined_sends(from, chat, kPerSender);
  ASSERT_EQ(acks.size(), 2u * kPerSender);
  for (const auto& ack : acks) check.acked(ack);
  check.expect_all_delivered();  // every watcher: each message once, seq and pts gapless
  EXPECT_GT(reordering->reordered(), 0u) << "the store never completed out of order";

  // The senders' own streams too: their answers and the other's pushes, one pts order.
  for (WsClient* sender : from) {
    sender->wait_for([](const WsClient::Frame&) { return false; }, std::chrono::milliseconds(300));
    auto seen = pts_seen(*sender);
    ASSERT_FALSE(seen.empty());
    expect_consecutive(seen, "a sender's pts");
  }
}

TEST(InProcessCluster, ANodeIdInUseIsRefusedAndFreedWhenItsNodeStops) {
  InProcessCluster cluster(2);
  auto twin = cluster.start_node(cluster.node_id(1));  // another installation, same id
  ASSERT_FALSE(twin.ok());
  EXPECT_EQ(twin.error().code, Errc::conflict);
  EXPECT_NE(twin.error().message.find("node_id 2"), std::string::npos) << twin.error().message;
  auto third = cluster.start_node(3);  // a free id
  ASSERT_TRUE(third.ok()) << third.error().message;
  third.value()->stop();
  cluster.stop(1);  // a node that stops gives its id up
  auto replacement = cluster.start_node(cluster.node_id(1));
  ASSERT_TRUE(replacement.ok()) << replacement.error().message;
}

TEST(InProcessCluster, LargeGroupMessagesCompletingOutOfOrderReachEveryNodeInSeqOrder) {
  std::shared_ptr<ReorderingStore> reordering;
  InProcessCluster cluster(
      2, [](Config& c) { c.groups.large_threshold = 2; }, reorder_into(reordering));
  User alice = user_on(cluster, "alice", {0});
  User bob = user_on(cluster, "bob", {1});
  User carol = user_on(cluster, "carol", {1});
  auto group = create_group(*alice.devices[0], "big and shuffled", {&bob, &carol});
  ASSERT_TRUE(bool_field(obj_field(group, "chat"), "large"));
  const std::int64_t chat = chat_of(group);
  // Watchers on both nodes, subscribed from their auth on.
  auto carol0 = connect_authed(cluster.port(0), login(cluster.port(0), carol.name).token);
  auto alice1 = connect_authed(cluster.port(1), login(cluster.port(1), alice.name).token);
  // Let the subscriptions' positions be read before the first message.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  constexpr size_t kPerSender = 40;
  auto acks = pipelined_sends({alice.devices[0].get(), bob.devices[0].get()}, chat, kPerSender);
  ASSERT_EQ(acks.size(), 2 * kPerSender);
  EXPECT_GT(reordering->reordered(), 0u) << "the store never completed out of order";
  // Every watcher: each of the 80 messages once, in seq order, on either node.
  for (WsClient* d : {carol0.get(), alice1.get(), carol.devices[0].get()}) {
    auto seqs = large_group_seqs(*d, 2 * kPerSender);
    ASSERT_EQ(seqs.size(), 2 * kPerSender);
    expect_consecutive(seqs, "seq");
  }
}

}  // namespace
}  // namespace parley::test
