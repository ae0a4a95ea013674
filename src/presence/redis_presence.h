// Presence on Redis, for the nodes of a cluster (docs/SCALING.md): every node shares one
// view of who is online, spread over the Redis servers by a stable hash of the user id
// (RedisShards).
//
// Keys, per user on the user's server (prefix "parley:" by default):
//   presence:s:<user>    hash: session key -> its last touch (ms)
//   presence:off:<user>  when the user went offline (ms), kept for the TTL for status()
//   presence:expiry      sorted set, one per server: "<user>\n<session>" scored by last touch
//   presence:version     the server's transition counter
// Every call is one Lua script per server it touches, so each call's changes to a user are
// atomic: the transition a call causes is returned to it alone, also when several nodes
// touch, drop and expire the same users at once. Versions come from the counter, floored at
// now * 1000, so they keep growing across a Redis restart that lost the counter (as long as
// the nodes' clocks do not go back by more than the restart took).
//
// Failure: a server down completes the calls that touch its users with `unavailable`
// (presence.h: their transitions are lost; the sessions are touched again at the next
// refresh, and expire by themselves). Users on the other servers carry on.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "presence/presence.h"
#include "redis/redis_client.h"

namespace parley::presence {

class RedisPresence final : public Presence {
 public:
  // `prefix` starts every key (tests give each backend its own).
  RedisPresence(std::shared_ptr<redis::RedisShards> shards, std::chrono::milliseconds ttl,
                std::string prefix = "parley:");

  void touch(std::vector<SessionTouch> sessions, int64_t now_ms, Done done) override;
  void drop(const std::string& user, const std::string& session_key, int64_t now_ms,
            Done done) override;
  void expire(int64_t now_ms, Done done) override;
  void status(std::vector<std::string> users, StatusDone done) const override;
  Health health() const override { return shards_->health(); }

  // Sessions one expire() script removes at most, per server; more are removed by the next
  // runs of the script within the same expire() call.
  static constexpr int kExpireBatch = 1000;

 private:
  void expire_shard(size_t shard, int64_t now_ms,
                    std::function<void(Result<std::vector<Transition>>)> done);

  std::shared_ptr<redis::RedisShards> shards_;
  const int64_t ttl_ms_;
  const std::string prefix_;
};

}  // namespace parley::presence
