// Routes what happens in a chat to the live sessions it concerns, wherever they are: the
// Registry says which nodes hold sessions of which users, the Bus carries one envelope per
// node there (bus/envelope.h), and that node's SessionHub builds and queues the frames.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bus/bus.h"
#include "registry/registry.h"

namespace parley::core {

class Router {
 public:
  Router(Registry& registry, Bus& bus, NodeId self) : registry_(registry), bus_(bus), self_(self) {}

  NodeId self() const { return self_; }
  // An update (a message or receipt, as JSON, or a whole frame) for each recipient, at the
  // pts it has in that recipient's log: one envelope per node that holds any of their
  // sessions, except the session `except_conn` of this node (the sender's own connection).
  void deliver(Envelope::Payload kind, std::string payload, std::vector<Recipient> recipients,
               uint64_t except_conn);
  // Closes every session of the device, on every node (logout, revocation).
  void close_device(const std::string& user, const std::string& device_id, uint16_t code);
  // A whole frame to every session subscribed to the chat (large groups), on every node.
  // `seq`: the message's seq in the chat, by which receiving nodes order it (0: not a message).
  void broadcast(uint64_t chat_id, std::string frame, uint64_t except_conn, uint64_t seq = 0);
  // The user's live sessions start or stop receiving the chat's broadcasts.
  void subscribe(const std::string& user, uint64_t chat_id, bool on);
  // The devices of each user that have a live session anywhere (push: who was reached).
  void connected_devices(std::vector<std::string> users,
                         std::function<void(std::vector<UserLocation>)> done);

 private:
  // The nodes holding sessions of `users`, each with the users it holds.
  void by_node(std::vector<std::string> users,
               std::function<void(std::vector<std::pair<NodeId, std::vector<size_t>>>)> done);

  Registry& registry_;
  Bus& bus_;
  const NodeId self_;
};

}  // namespace parley::core
