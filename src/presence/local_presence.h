// Presence for a single node, or for the nodes of one test process sharing it: a TTL map in
// process memory, sharded by user. Every call completes inline, before it returns.
//
// Memory: one entry per online user (its sessions and their last touch), plus offline users
// until the next expire() forgets them (a status() asked meanwhile still has their
// last_seen, while the node that caused the transition writes it into the Store). Call
// expire() a few times per TTL.
#pragma once

#include <array>
#include <atomic>
#include <boost/container/flat_map.hpp>
#include <chrono>
#include <mutex>
#include <unordered_map>

#include "presence/presence.h"

namespace parley::presence {

class LocalPresence final : public Presence {
 public:
  explicit LocalPresence(std::chrono::milliseconds ttl);

  void touch(std::vector<SessionTouch> sessions, int64_t now_ms, Done done) override;
  void drop(const std::string& user, const std::string& session_key, int64_t now_ms,
            Done done) override;
  void expire(int64_t now_ms, Done done) override;
  void status(std::vector<std::string> users, StatusDone done) const override;
  Health health() const override { return {}; }

  // Users held in memory (online, or offline and not yet forgotten).
  size_t tracked_users() const;

 private:
  struct User {
    // session key -> last touch (ms); a user has a session or a few: a flat map allocates
    // one small array instead of a hash table's buckets and a node per session.
    boost::container::flat_map<std::string, int64_t> sessions;
    int64_t last_seen = 0;  // when it last went offline
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, User> users;
  };
  Shard& shard(const std::string& user);
  const Shard& shard(const std::string& user) const;
  Transition transition(const std::string& user, bool online, int64_t last_seen);

  const int64_t ttl_ms_;
  std::array<Shard, 16> shards_;
  // One counter for every user: versions never go back, also for a user forgotten and seen
  // again.
  std::atomic<uint64_t> version_{0};
};

}  // namespace parley::presence
