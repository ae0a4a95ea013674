// The Bus on Redis Pub/Sub, for the nodes of a cluster (bus.h, docs/SCALING.md). Each node
// has its own RedisBus on its own RedisShards (one command and one Pub/Sub connection per
// server); envelopes cross in their encoded form (bus/envelope.h).
//
// Channels (prefix "parley:" by default), each on one server chosen by RedisShards from the
// id in decimal:
//   node:<id>   publish(id): node <id> subscribes to it
//   chat:<id>   publish_chat(id): the nodes that subscribe_chat(id)
//   all         publish_all(): published on the publisher's server (by its node id), and
//               every node subscribes to it on every server, so each envelope arrives once
// Order: what one node publishes to one addressee from one thread goes through one channel
// on one connection, so it arrives in publish order (bus.h). There is no order between
// kinds (a node's publish(n) and its publish_all() travel on different servers' channels).
//
// Subscriptions: start() waits (up to subscribe_wait) until Redis confirmed its channels, so
// that what is published after it returns reaches this node; not when called on the Redis
// loop thread (from the handler), where it returns at once. subscribe_chat() never waits: it
// is called on I/O threads (the first member of a large group on this node connects) and on
// the loop thread. It sends SUBSCRIBE and returns; its callback runs on the loop thread when
// Redis confirmed (or with `unavailable` while the server is down). What is published to the
// chat before then does not reach this node: SessionHub reads it from the Store once
// confirmed. unsubscribe_chat() returns at once: what still arrives on the chat's channel is
// dropped.
// The Redis client subscribes again after a reconnect; envelopes published meanwhile are
// lost (bus.h: clients heal from the Store).
//
// The handler runs on the Redis loop thread of this bus's shards; the bus must not be
// destroyed from it. The bus sets the message handler of every client of `shards`: it must
// be their only Pub/Sub user.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bus/bus.h"
#include "redis/redis_client.h"

namespace parley {

class RedisBus final : public Bus {
 public:
  struct Options {
    std::string prefix = "parley:";  // of every channel (tests give each cluster its own)
    // How long start() waits for Redis to confirm (bounded: a subscription not confirmed in
    // time still applies later).
    std::chrono::milliseconds subscribe_wait{500};
    EnvelopeLimits limits;  // what decode() accepts
  };
  explicit RedisBus(std::shared_ptr<redis::RedisShards> shards)
      : RedisBus(std::move(shards), Options{}) {}
  RedisBus(std::shared_ptr<redis::RedisShards> shards, Options options);
  // Unsubscribes; the handler is not called once it returned.
  ~RedisBus() override;

  void start(NodeId self, Handler handler) override;
  void stop() override;
  void publish(NodeId node, Envelope env) override;
  void publish_chat(uint64_t chat_id, Envelope env) override;
  void publish_all(Envelope env) override;
  void subscribe_chat(uint64_t chat_id, Subscribed subscribed) override;
  void unsubscribe_chat(uint64_t chat_id) override;
  Health health() const override { return shards_->health(); }

  // Envelopes received that did not decode (dropped), for tests and metrics.
  uint64_t undecodable() const;

  struct Receiver;  // the handler's state, shared with the clients' message handlers

 private:
  std::string node_channel(NodeId node) const;
  std::string chat_channel(uint64_t chat_id) const;
  void send(redis::RedisClient& client, std::string channel, Envelope& env);
  // Subscriptions being confirmed: await() waits for them, up to subscribe_wait (at once on
  // the loop thread).
  struct Waiter;
  void await(Waiter& waiter) const;

  std::shared_ptr<redis::RedisShards> shards_;
  const Options options_;
  std::shared_ptr<Receiver> receiver_;
  NodeId self_ = 0;
  bool started_ = false;
  std::mutex chats_mu_;
  std::map<uint64_t, uint32_t> chats_;  // chat -> subscribe_chat count
};

}  // namespace parley
