// The Bus between nodes of one process: one node in production (a single parleyd), or
// several in one test process, each with its own LocalBus endpoint on a shared LocalBusHub.
// Delivery is synchronous: publish() calls the addressee's handler before it returns, so
// order per (publisher, addressee) is publish order.
#pragma once

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <unordered_map>

#include "bus/bus.h"

namespace parley {

class LocalBusHub {
 public:
  struct Options {
    // Pass every envelope through the codec (encode, decode, deliver the decoded copy), as a
    // Bus between processes does: for tests, which thereby prove that everything the nodes
    // say to each other survives the wire form.
    bool encode = false;
  };
  LocalBusHub() = default;
  explicit LocalBusHub(Options options) : options_(options) {}

  // Fault injection (tests): while a node is cut off, envelopes to and from it are lost.
  void set_cut_off(NodeId node, bool cut);
  // Envelopes lost so far (cut off, no such node, undecodable).
  uint64_t lost() const { return lost_.load(); }

 private:
  friend class LocalBus;
  // A node's handler and the deliveries running it: detach() waits for them to end.
  struct Endpoint {
    explicit Endpoint(Bus::Handler h) : handler(std::move(h)) {}
    const Bus::Handler handler;
    std::atomic<bool> attached{true};
    std::atomic<uint32_t> running{0};
    std::mutex mu;  // for the wait on `ended`
    std::condition_variable ended;
  };
  void attach(NodeId node, Bus::Handler handler);
  // Once it returns the node's handler is not called again.
  void detach(NodeId node);
  void send(NodeId from, NodeId to, const Envelope& env);
  void send_chat(NodeId from, uint64_t chat_id, const Envelope& env);
  void send_all(NodeId from, const Envelope& env);
  void subscribe_chat(NodeId node, uint64_t chat_id, int delta);
  bool cut(NodeId from, NodeId to) const;  // under mu_
  // Calls the endpoint's handler (null or detached: the envelope is lost) with `env`, or
  // with its decoded wire form.
  void deliver(NodeId from, const std::shared_ptr<Endpoint>& endpoint, NodeId to,
               const Envelope& env);

  const Options options_;
  mutable std::mutex mu_;
  std::unordered_map<NodeId, std::shared_ptr<Endpoint>> endpoints_;
  std::unordered_map<uint64_t, std::map<NodeId, uint32_t>> chats_;  // chat -> node -> count
  std::set<NodeId> cut_off_;
  std::atomic<uint64_t> lost_{0};
};

class LocalBus final : public Bus {
 public:
  // A bus of its own (one node), or an endpoint on a hub shared with other nodes.
  explicit LocalBus(std::shared_ptr<LocalBusHub> hub = std::make_shared<LocalBusHub>())
      : hub_(std::move(hub)) {}
  ~LocalBus() override;

  void start(NodeId self, Handler handler) override;
  void stop() override;
  void publish(NodeId node, Envelope env) override;
  void publish_chat(uint64_t chat_id, Envelope env) override;
  void publish_all(Envelope env) override;
  void subscribe_chat(uint64_t chat_id, Subscribed subscribed) override;  // confirms inline
  void unsubscribe_chat(uint64_t chat_id) override;
  Health health() const override { return {}; }

 private:
  std::shared_ptr<LocalBusHub> hub_;
  NodeId self_ = 0;
  bool started_ = false;
};

}  // namespace parley
