// The Registry on Redis, for the nodes of a cluster (registry.h, docs/SCALING.md): every node
// shares one view of where each user's devices are connected, spread over the Redis servers
// by a stable hash of the user id (RedisShards).
//
// Keys (prefix "parley:" by default):
//   reg:<user>        hash on the user's server: "<device>|<node>" -> "<sessions>:<expires ms>"
//   regnode:<node>    set, on every server: the users of that server with entries of the node
//   regnode:<node>:reassert  set, on every server: the users a reassert() has written so far
//   node:<id>         string on the server of "<id>": "<expires ms>|<instance>" (the claim)
// Expiry is in the entries (ms from the registry's clock), so that a node's refresh() renews
// only its own entries of a user; locate() ignores expired entries and removes them
// afterwards. The keys themselves also get a Redis TTL (PEXPIRE, renewed by every write and
// refresh) so that nothing is left behind by nodes that died.
//
// Every change is one Lua script on one server (attach, detach: the user's; refresh,
// clear_node: one per server, over the node's set), so concurrent nodes never lose counts;
// reassert() is a few scripts per server, sent back to back (one per 500 users, then one that
// removes what is no longer live), so that a node with many sessions never holds a server
// for long. A node's calls to one server apply in call order (one connection per server).
// locate() is one pipeline of HGETALL per server involved. The scripts touch keys they are
// not given in KEYS (a user's hash from the node's set): fine on standalone servers, which
// is what RedisShards shards over (not Redis Cluster).
//
// Failure: a call that needs a server that is down completes with `unavailable` (locate:
// when any of its servers is down); health() names the servers that are not up.
// Completions run on the Redis loop thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "redis/redis_client.h"
#include "registry/registry.h"

namespace parley {

class RedisRegistry final : public Registry {
 public:
  using Clock = std::function<int64_t()>;  // ms since the epoch; injectable for tests
  // Entries live `ttl` from their attach or their node's refresh(); claims `ttl` from their
  // claim_node(). `prefix` starts every key (tests give each registry its own).
  RedisRegistry(std::shared_ptr<redis::RedisShards> shards, std::chrono::milliseconds ttl,
                Clock clock = nullptr, std::string prefix = "parley:");

  void attach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  void detach(const std::string& user, const std::string& device_id, NodeId node,
              Done done) override;
  void locate(std::vector<std::string> users,
              std::function<void(Result<std::vector<UserLocation>>)> done) override;
  void refresh(NodeId node, Done done) override;
  void reassert(NodeId node, std::vector<SessionEntry> live, Done done) override;
  void clear_node(NodeId node, Done done) override;
  void claim_node(NodeId node, const std::string& instance, Done done) override;
  void release_node(NodeId node, const std::string& instance, Done done) override;
  bool spans_processes() const override { return true; }
  Health health() const override { return shards_->health(); }

 private:
  int64_t now() const;
  std::string user_key(const std::string& user) const { return prefix_ + "reg:" + user; }
  std::string node_set_key(NodeId node) const {
    return prefix_ + "regnode:" + std::to_string(node);
  }
  // Runs `script` on every server with these keys and arguments; `done` once all answered
  // (with the first failure, if any).
  void on_every_shard(const redis::RedisScript& script, std::vector<std::string> keys,
                      std::vector<std::string> args, Done done);

  // reassert(): users per script (registry_test measures a reassert of 10,000 sessions).
  static constexpr size_t kReassertChunkUsers = 500;

  std::shared_ptr<redis::RedisShards> shards_;
  const int64_t ttl_ms_;
  const Clock clock_;
  const std::string prefix_;
};

}  // namespace parley
